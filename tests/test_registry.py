"""ContainerRegistry: private Premium ACR, AcrPull at registry scope for exactly the pullers."""

from __future__ import annotations

import pytest

from components.conventions import ComponentContext, IdentityRef, PrivateEndpointTarget
from components.registry import ContainerRegistry, ContainerRegistryArgs
from gpustack import facts
from gpustack.engine import Plan, PlannedResource, capture

REGISTRY = "azure-native:containerregistry:Registry"
REPLICA = "azure-native:containerregistry:Replication"
ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ENDPOINT = "azure-native:network:PrivateEndpoint"
ZONE = "azure-native:privatedns:PrivateZone"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
VNET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/spoke"
TARGET = PrivateEndpointTarget(subnet_id=f"{VNET}/subnets/snet-endpoints", vnet_id=VNET)
CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus", diagnostics="/w")
KUBELET = IdentityRef(id="kubelet-id", principal_id="kubelet-principal", client_id="kubelet-client")


def _role(assignment: PlannedResource) -> str:
    return str(assignment.inputs["roleDefinitionId"]).rsplit("/", 1)[-1]


def _registry(**overrides: object) -> list[PlannedResource]:
    values: dict[str, object] = {
        "context": CONTEXT,
        "private_endpoints": TARGET,
        "pull_identities": {"aks-kubelet": KUBELET},
    }
    args = ContainerRegistryArgs(**(values | overrides))  # type: ignore[arg-type]
    return capture(lambda: ContainerRegistry("registry", args))


def test_registry_is_premium_and_reachable_only_through_its_private_endpoint(
    env_plan: Plan,
) -> None:
    (registry,) = env_plan.by_type(REGISTRY)
    inputs = registry.inputs
    assert inputs["sku"]["name"] == "Premium"
    assert inputs["adminUserEnabled"] is False
    assert inputs["anonymousPullEnabled"] is False
    assert inputs["publicNetworkAccess"] == "Disabled"
    assert inputs["networkRuleBypassOptions"] == "None"
    endpoints = [
        e
        for e in env_plan.by_type(ENDPOINT)
        if e.inputs["privateLinkServiceConnections"][0]["privateLinkServiceId"] == registry.id
    ]
    assert [e.inputs["privateLinkServiceConnections"][0]["groupIds"] for e in endpoints] == [
        [facts.private_dns_group_id("acr")]
    ]
    zones = {z.inputs["privateZoneName"] for z in env_plan.by_type(ZONE)}
    assert set(facts.private_dns_zone("acr")) <= zones


def test_acr_pull_goes_to_exactly_the_kubelet_and_vm_node_identities(env_plan: Plan) -> None:
    (registry,) = env_plan.by_type(REGISTRY)
    (cluster,) = env_plan.by_type("azure-native:containerservice:ManagedCluster")
    kubelet = cluster.outputs["identityProfile"]["kubeletidentity"]["objectId"]
    (nodes,) = [i for i in env_plan.by_type(IDENTITY) if i.name == "identities-nodes"]
    acr_roles = {facts.role_definition_id("acr_pull"), facts.role_definition_id("acr_push")}
    grants = [a for a in env_plan.by_type(ASSIGNMENT) if _role(a) in acr_roles]
    # Every environment has VM or CPU scale set nodes and AKS, so both identities pull.
    assert sorted(a.inputs["principalId"] for a in grants) == sorted(
        [kubelet, nodes.outputs["principalId"]]
    )
    assert {a.inputs["scope"] for a in grants} == {registry.id}
    assert {_role(a) for a in grants} == {facts.role_definition_id("acr_pull")}


def test_untagged_manifests_are_purged_and_images_cannot_be_exported() -> None:
    (registry,) = [r for r in _registry(untagged_retention_days=3) if r.type == REGISTRY]
    policies = registry.inputs["policies"]
    assert policies["retentionPolicy"] == {"days": 3, "status": "enabled"}
    assert policies["exportPolicy"] == {"status": "disabled"}
    assert registry.options["protect"] is False  # the context does not protect


def test_geo_replica_exists_before_the_private_endpoint_maps_its_data_endpoint() -> None:
    resources = _registry(geo_replica_location="westus2")
    (replica,) = [r for r in resources if r.type == REPLICA]
    (endpoint,) = [r for r in resources if r.type == ENDPOINT]
    (link,) = [r for r in resources if r.type == "gpustack:network:PrivateLink"]
    assert replica.inputs["location"] == "westus2"
    assert replica.urn in link.options["dependsOn"]
    assert endpoint.parent == link.urn


def test_no_pullers_means_no_role_assignments() -> None:
    assert not [r for r in _registry(pull_identities={}) if r.type == ASSIGNMENT]


def test_prod_replicates_to_a_second_region(prod_plan: Plan) -> None:
    (replica,) = prod_plan.by_type(REPLICA)
    (registry,) = prod_plan.by_type(REGISTRY)
    assert replica.inputs["location"] != registry.inputs["location"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"geo_replica_location": "eastus"}, "the registry's own region"),
        ({"untagged_retention_days": 400}, "outside 0-365"),
    ],
)
def test_bad_arguments_are_refused_by_name(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(Exception, match=message):
        _registry(**overrides)
