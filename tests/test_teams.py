"""GpuTeam: namespace, GPU quota, container defaults, federated identity with least privilege."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi_kubernetes as k8s
import pytest
import yaml

from components.conventions import ComponentContext
from components.teams import GpuTeam, GpuTeamArgs
from gpustack import facts
from gpustack.engine import Plan, PlannedResource, capture
from stacks.config import PROJECT, ConfigError, parse_config

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "kubernetes:core/v1:Namespace"

CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus")
GROUP = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg"
ACCOUNT = f"{GROUP}/providers/Microsoft.Storage/storageAccounts/st"
VAULT = f"{GROUP}/providers/Microsoft.KeyVault/vaults/kv"
ISSUER = "https://eastus.oic.prod-aks.azure.com/tenant/issuer/"
ROLE = "azure-native:authorization:RoleAssignment"


def _team(**overrides: Any) -> list[PlannedResource]:
    values: dict[str, Any] = {
        "context": CONTEXT,
        "namespace": "vision",
        "oidc_issuer_url": ISSUER,
        "gpu_quota": 6,
        "read_containers": ("datasets", "models"),
        "write_containers": ("checkpoints",),
        "key_vault_secrets": True,
        "storage_account_id": ACCOUNT,
        "vault_id": VAULT,
    }

    def declare() -> None:
        provider = k8s.Provider("cluster", kubeconfig="apiVersion: v1\nkind: Config\n")
        GpuTeam("team-vision", GpuTeamArgs(provider=provider, **(values | overrides)))

    return capture(declare)


def _one(resources: list[PlannedResource], token: str) -> PlannedResource:
    (found,) = [r for r in resources if r.type == token]
    return found


def _roles(resources: list[PlannedResource]) -> dict[str, str]:
    """Role assignments as scope -> role GUID."""
    return {
        r.inputs["scope"]: r.inputs["roleDefinitionId"].rsplit("/", 1)[1]
        for r in resources
        if r.type == ROLE
    }


# --- committed environments ---------------------------------------------------------------------


def test_team_quotas_are_created_from_config(env_plan: Plan) -> None:
    stack_file = ROOT / f"Pulumi.{env_plan.stack}.yaml"
    aks = yaml.safe_load(stack_file.read_text())["config"].get(f"{PROJECT}:aks") or {}
    expected = {team["name"]: str(team["gpuQuota"]) for team in aks.get("teams", [])}
    quotas = {
        q.inputs["metadata"]["namespace"]: q.inputs["spec"]["hard"]["requests.nvidia.com/gpu"]
        for q in env_plan.by_type("kubernetes:core/v1:ResourceQuota")
    }
    assert quotas == expected
    namespaces = {n.inputs["metadata"]["name"] for n in env_plan.by_type(NAMESPACE)}
    assert set(quotas) <= namespaces


def test_prod_has_quotas_for_its_teams(prod_plan: Plan) -> None:
    quotas = {
        q.inputs["metadata"]["namespace"]: q.inputs["spec"]["hard"]["requests.nvidia.com/gpu"]
        for q in prod_plan.by_type("kubernetes:core/v1:ResourceQuota")
    }
    assert quotas == {"research": "24", "serving": "8"}


# --- GpuTeam -------------------------------------------------------------------------------------


def test_namespace_quota_and_limit_range() -> None:
    resources = _team()
    namespace = _one(resources, "kubernetes:core/v1:Namespace")
    quota = _one(resources, "kubernetes:core/v1:ResourceQuota")
    limits = _one(resources, "kubernetes:core/v1:LimitRange")
    assert namespace.inputs["metadata"]["name"] == "vision"
    assert quota.inputs["metadata"]["namespace"] == "vision"
    assert quota.inputs["spec"]["hard"] == {"requests.nvidia.com/gpu": "6"}
    (item,) = limits.inputs["spec"]["limits"]
    assert item["type"] == "Container"
    assert item["defaultRequest"] == {"cpu": "500m", "memory": "1Gi"}
    assert item["default"] == {"memory": "8Gi"}


def test_service_account_is_federated_to_the_team_identity() -> None:
    resources = _team(service_account="trainer")
    identity = _one(resources, "azure-native:managedidentity:UserAssignedIdentity")
    federation = _one(resources, "azure-native:managedidentity:FederatedIdentityCredential")
    account = _one(resources, "kubernetes:core/v1:ServiceAccount")
    assert federation.inputs["issuer"] == ISSUER
    assert federation.inputs["subject"] == "system:serviceaccount:vision:trainer"
    assert federation.inputs["audiences"] == ["api://AzureADTokenExchange"]
    assert federation.inputs["resourceName"] == identity.outputs["name"]
    assert account.inputs["metadata"]["name"] == "trainer"
    annotations = account.inputs["metadata"]["annotations"]
    assert annotations["azure.workload.identity/client-id"] == identity.outputs["clientId"]


def test_identity_holds_only_container_and_vault_roles_it_needs() -> None:
    resources = _team()
    identity = _one(resources, "azure-native:managedidentity:UserAssignedIdentity")
    containers = f"{ACCOUNT}/blobServices/default/containers"
    assert _roles(resources) == {
        f"{containers}/datasets": facts.role_definition_id("storage_blob_data_reader"),
        f"{containers}/models": facts.role_definition_id("storage_blob_data_reader"),
        f"{containers}/checkpoints": facts.role_definition_id("storage_blob_data_contributor"),
        VAULT: facts.role_definition_id("key_vault_secrets_user"),
    }
    for grant in (r for r in resources if r.type == ROLE):
        assert grant.inputs["principalId"] == identity.outputs["principalId"]
        assert grant.inputs["principalType"] == "ServicePrincipal"
        # The role definition lives in the scope's own subscription.
        assert grant.inputs["roleDefinitionId"].startswith(
            "/subscriptions/00000000-0000-4000-8000-000000000001/providers/"
        )


def test_no_vault_role_when_the_team_needs_no_secrets() -> None:
    scopes = _roles(_team(key_vault_secrets=False))
    assert VAULT not in scopes
    assert len(scopes) == 3


def test_no_data_roles_until_storage_and_vault_exist() -> None:
    resources = _team(storage_account_id=None, vault_id=None)
    assert [r for r in resources if r.type == ROLE] == []
    assert _one(resources, "kubernetes:core/v1:ResourceQuota")


# --- config rules ---------------------------------------------------------------------------------


def _problems(teams: list[dict[str, Any]]) -> list[str]:
    raw = {
        "environment": "dev",
        "location": "eastus",
        "budget": {"monthlyAmountUsd": 100},
        "monitoring": {"alertEmails": ["ml-platform@example.com"]},
        "aks": {"authorizedIpRanges": ["203.0.113.0/24"], "teams": teams},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "Pulumi.test.yaml")
    return caught.value.problems


def test_team_containers_must_exist_in_storage() -> None:
    (problem,) = _problems([{"name": "vision", "gpuQuota": 2, "readContainers": ["images"]}])
    assert "team vision uses containers images" in problem


@pytest.mark.parametrize(
    ("team", "fragment"),
    [
        ({"name": "kube-system", "gpuQuota": 1}, "namespace the cluster already uses"),
        (
            {"name": "vision", "gpuQuota": 1, "writeContainers": ["models"]},
            "write access includes read",
        ),
        ({"name": "vision", "gpuQuota": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_team_config_is_a_config_error(team: dict[str, Any], fragment: str) -> None:
    problems = _problems([team])
    assert any(fragment in p for p in problems), problems


def test_team_names_are_unique() -> None:
    problems = _problems([{"name": "vision", "gpuQuota": 1}, {"name": "vision", "gpuQuota": 2}])
    assert any("repeated: vision" in p for p in problems), problems
