"""PrivateLink: every private endpoint has a DNS zone group pointing at the right zones."""

from __future__ import annotations

from components.conventions import ComponentContext, PrivateEndpointTarget
from components.private_link import PrivateLink, PrivateLinkArgs, with_zones
from gpustack import facts
from gpustack.engine import Plan, PlannedResource, capture

VNET = "/subscriptions/s/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/spoke"
SUBNET = f"{VNET}/subnets/snet-endpoints"
TARGET = PrivateEndpointTarget(subnet_id=SUBNET, vnet_id=VNET)
CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus")
ACCOUNT = "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.Storage/storageAccounts/st1"


def _of(resources: list[PlannedResource], token: str) -> list[PlannedResource]:
    return [r for r in resources if r.type == token]


def _link(target: PrivateEndpointTarget, kind: str, name: str = "store") -> PrivateLink:
    return PrivateLink(
        name,
        PrivateLinkArgs(
            context=CONTEXT, private_endpoints=target, resource_id=ACCOUNT, target=kind
        ),
    )


def test_blob_endpoint_registers_in_the_blob_zone_linked_to_the_spoke() -> None:
    resources = capture(lambda: _link(TARGET, "blob"))
    (endpoint,) = _of(resources, "azure-native:network:PrivateEndpoint")
    (zone,) = _of(resources, "azure-native:privatedns:PrivateZone")
    (link,) = _of(resources, "azure-native:privatedns:VirtualNetworkLink")
    (group,) = _of(resources, "azure-native:network:PrivateDnsZoneGroup")

    connection = endpoint.inputs["privateLinkServiceConnections"][0]
    assert connection["groupIds"] == ["blob"]
    assert connection["privateLinkServiceId"] == ACCOUNT
    assert endpoint.inputs["subnet"]["id"] == SUBNET
    assert zone.inputs["privateZoneName"] == "privatelink.blob.core.windows.net"
    assert zone.inputs["location"] == "global"
    assert link.inputs["virtualNetwork"]["id"] == VNET
    assert link.inputs["registrationEnabled"] is False
    assert group.inputs["privateEndpointName"] == endpoint.outputs["name"]
    configs = group.inputs["privateDnsZoneConfigs"]
    assert [c["privateDnsZoneId"] for c in configs] == [zone.id]


def test_central_zone_is_used_by_id_and_not_created() -> None:
    central = (
        "/subscriptions/hub/resourceGroups/rg-dns/providers/Microsoft.Network/"
        "privateDnsZones/privatelink.vaultcore.azure.net"
    )
    hub = PrivateEndpointTarget(
        subnet_id=SUBNET, vnet_id=VNET, dns_zone_ids={"privatelink.vaultcore.azure.net": central}
    )
    resources = capture(lambda: _link(hub, "vault"))
    assert not _of(resources, "azure-native:privatedns:PrivateZone")
    assert not _of(resources, "azure-native:privatedns:VirtualNetworkLink")
    (group,) = _of(resources, "azure-native:network:PrivateDnsZoneGroup")
    assert [c["privateDnsZoneId"] for c in group.inputs["privateDnsZoneConfigs"]] == [central]


def test_a_later_endpoint_reuses_the_zone_an_earlier_one_created() -> None:
    def declare() -> None:
        storage = _link(TARGET, "blob", "store")
        # Azure Monitor's private link scope needs five zones, one of them the blob zone.
        _link(with_zones(TARGET, storage.zone_ids), "azure_monitor", "monitor")

    resources = capture(declare)
    names = [
        z.inputs["privateZoneName"] for z in _of(resources, "azure-native:privatedns:PrivateZone")
    ]
    assert names.count("privatelink.blob.core.windows.net") == 1
    assert sorted(names) == sorted(facts.private_dns_zone("azure_monitor"))
    monitor_group = next(
        g
        for g in _of(resources, "azure-native:network:PrivateDnsZoneGroup")
        if g.name == "monitor-dns"
    )
    assert len(monitor_group.inputs["privateDnsZoneConfigs"]) == 5


def _expected_zones(group_id: str, location: str) -> set[str]:
    keys = [
        k for k, v in facts.load("private_dns_zones")["zones"].items() if v["group_id"] == group_id
    ]
    assert keys, f"no private DNS zone entry has group id {group_id}"
    return set(facts.private_dns_zone(keys[0], region=location))


def test_every_private_endpoint_in_every_environment_has_the_right_zone_group(
    env_plan: Plan,
) -> None:
    endpoints = env_plan.by_type("azure-native:network:PrivateEndpoint")
    groups = env_plan.by_type("azure-native:network:PrivateDnsZoneGroup")
    zones = {
        z.id: z.inputs["privateZoneName"]
        for z in env_plan.by_type("azure-native:privatedns:PrivateZone")
    }
    assert {"blob", "dfs", "vault"} <= {
        e.inputs["privateLinkServiceConnections"][0]["groupIds"][0] for e in endpoints
    }
    for endpoint in endpoints:
        (group,) = [
            g for g in groups if g.inputs["privateEndpointName"] == endpoint.outputs["name"]
        ]
        group_id = endpoint.inputs["privateLinkServiceConnections"][0]["groupIds"][0]
        ids = [c["privateDnsZoneId"] for c in group.inputs["privateDnsZoneConfigs"]]
        assert {zones[i] for i in ids} == _expected_zones(group_id, endpoint.inputs["location"])


def test_each_private_dns_zone_exists_once_per_environment(env_plan: Plan) -> None:
    zones = env_plan.by_type("azure-native:privatedns:PrivateZone")
    names = [z.inputs["privateZoneName"] for z in zones]
    assert len(names) == len(set(names)), names
