"""WorkloadIdentities: one identity per workload, roles at container or vault scope only."""

from __future__ import annotations

import re

import pytest

from components.conventions import ComponentContext
from components.identity import (
    AccessGrant,
    WorkloadIdentities,
    WorkloadIdentitiesArgs,
    default_grants,
    role_assignment_name,
)
from gpustack import facts
from gpustack.engine import Plan, PlannedResource, capture
from gpustack.mocks import answers

CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus")
ACCOUNT = "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.Storage/storageAccounts/st1"
CONTAINERS = {
    name: f"{ACCOUNT}/blobServices/default/containers/{name}"
    for name in ("datasets", "models", "checkpoints")
}
VAULT = "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/kv1"
ROLE = {key: facts.role_definition_id(key) for key in facts.load("role_definitions")["roles"]}
BROAD_SCOPE = re.compile(r"^/subscriptions/[^/]+(/resourceGroups/[^/]+)?/?$", re.IGNORECASE)


def _identities(grants: list[AccessGrant] | None = None) -> list[PlannedResource]:
    args = WorkloadIdentitiesArgs(
        context=CONTEXT,
        container_ids=CONTAINERS,
        vault_id=VAULT,
        grants=default_grants(list(CONTAINERS)) if grants is None else grants,
    )
    return capture(lambda: WorkloadIdentities("identities", args))


def _grants(resources: list[PlannedResource]) -> set[tuple[str, str, str]]:
    """(workload, role key, scope) for each role assignment, resolved through the identities."""
    workloads = {
        r.outputs["principalId"]: r.inputs["tags"]["workload"]
        for r in resources
        if r.type == "azure-native:managedidentity:UserAssignedIdentity"
    }
    role_keys = {guid: key for key, guid in ROLE.items()}
    found = set()
    for r in resources:
        if r.type == "azure-native:authorization:RoleAssignment":
            guid = r.inputs["roleDefinitionId"].rsplit("/", 1)[1]
            found.add((workloads[r.inputs["principalId"]], role_keys[guid], r.inputs["scope"]))
    return found


def test_one_user_assigned_identity_per_workload() -> None:
    resources = _identities()
    workloads = sorted(
        r.inputs["tags"]["workload"]
        for r in resources
        if r.type == "azure-native:managedidentity:UserAssignedIdentity"
    )
    assert workloads == ["inference", "nodes", "training"]


def test_each_workload_gets_exactly_its_least_privilege_roles() -> None:
    reader, writer = "storage_blob_data_reader", "storage_blob_data_contributor"
    secrets = "key_vault_secrets_user"
    assert _grants(_identities()) == {
        ("inference", reader, CONTAINERS["models"]),
        ("inference", secrets, VAULT),
        ("training", writer, CONTAINERS["checkpoints"]),
        ("training", reader, CONTAINERS["models"]),
        ("training", reader, CONTAINERS["datasets"]),
        ("training", secrets, VAULT),
        ("nodes", reader, CONTAINERS["models"]),
        ("nodes", reader, CONTAINERS["datasets"]),
    }


def test_role_assignments_name_a_subscription_role_definition_and_a_service_principal() -> None:
    subscription = answers()["subscription"]
    for r in _identities():
        if r.type != "azure-native:authorization:RoleAssignment":
            continue
        assert r.inputs["roleDefinitionId"].startswith(
            f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/"
        )
        assert r.inputs["principalType"] == "ServicePrincipal"
        assert not BROAD_SCOPE.match(r.inputs["scope"]), r.inputs["scope"]


def test_role_assignment_names_are_stable_guids_of_scope_role_and_principal() -> None:
    first = {
        r.name: r.inputs["roleAssignmentName"]
        for r in _identities()
        if r.type == "azure-native:authorization:RoleAssignment"
    }
    second = {
        r.name: r.inputs["roleAssignmentName"]
        for r in _identities()
        if r.type == "azure-native:authorization:RoleAssignment"
    }
    assert first == second
    assert len(set(first.values())) == len(first)
    assert role_assignment_name("/s/a", "r", "p") != role_assignment_name("/s/b", "r", "p")


def test_without_datasets_container_no_dataset_grants() -> None:
    grants = default_grants(["models", "checkpoints"])
    assert all(g.container != "datasets" for g in grants)


@pytest.mark.parametrize(
    ("grant", "message"),
    [
        (AccessGrant("batch", "storage_blob_data_reader", container="models"), "identity 'batch'"),
        (AccessGrant("training", "storage_blob_data_reader", container="logs"), "container 'logs'"),
        (AccessGrant("training", "blob_superuser", container="models"), "unknown role key"),
    ],
)
def test_grants_naming_unknown_things_are_refused(grant: AccessGrant, message: str) -> None:
    with pytest.raises((ValueError, KeyError), match=message):
        _identities([grant])


def test_a_grant_names_exactly_one_scope() -> None:
    with pytest.raises(ValueError, match="exactly one scope"):
        AccessGrant("training", "key_vault_secrets_user", container="models", vault=True)
    with pytest.raises(ValueError, match="exactly one scope"):
        AccessGrant("training", "key_vault_secrets_user")


def test_environment_grants_target_containers_and_the_vault_never_broader(env_plan: Plan) -> None:
    (component,) = env_plan.by_type("gpustack:identity:WorkloadIdentities")
    assignments = [
        r
        for r in env_plan.by_type("azure-native:authorization:RoleAssignment")
        if r.parent == component.urn
    ]
    containers = {r.id for r in env_plan.by_type("azure-native:storage:BlobContainer")}
    (vault,) = env_plan.by_type("azure-native:keyvault:Vault")
    assert assignments
    for assignment in assignments:
        assert assignment.inputs["scope"] in containers | {vault.id}, assignment.name
