"""GpuNetwork: NSGs deny Internet inbound, NAT egress, hub peering, Bastion; subnet sizing."""

from __future__ import annotations

from typing import Any

import pytest

from components.conventions import ComponentContext
from components.network import (
    BastionSpec,
    GpuNetwork,
    GpuNetworkArgs,
    NatGatewaySpec,
    SubnetSpec,
    bastion_facts,
)
from gpustack.engine import Plan, PlannedResource, capture
from stacks.config import ConfigError, parse_config

WORKSPACE = (
    "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.OperationalInsights/workspaces/w"
)
CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus", diagnostics=WORKSPACE)
HUB = (
    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-hub/providers/"
    "Microsoft.Network/virtualNetworks/hub"
)
SUBNETS = {
    "system": SubnetSpec("10.40.0.0/22", nat_egress=True),
    "gpu": SubnetSpec("10.40.4.0/22", nat_egress=True),
    "endpoints": SubnetSpec("10.40.8.0/24", private_endpoints=True),
    "bastion": SubnetSpec("10.40.9.0/26", service_name="AzureBastionSubnet"),
}


@pytest.fixture(scope="module")
def resources() -> list[PlannedResource]:
    """One capture of a network with NAT, hub peering and Bastion, shared by this module."""
    args = GpuNetworkArgs(
        context=CONTEXT,
        address_space="10.40.0.0/16",
        subnets=SUBNETS,
        nat_gateway=NatGatewaySpec(),
        hub_vnet_id=HUB,
        bastion=BastionSpec(),
    )
    return capture(lambda: GpuNetwork("network", args))


def _of(resources: list[PlannedResource], token: str) -> list[PlannedResource]:
    return [r for r in resources if r.type == token]


def _subnet(resources: list[PlannedResource], role: str) -> PlannedResource:
    (subnet,) = [
        r for r in _of(resources, "azure-native:network:Subnet") if r.name == f"network-{role}"
    ]
    return subnet


def _internet_inbound(nsg: PlannedResource) -> list[dict[str, Any]]:
    return [
        rule
        for rule in nsg.inputs["securityRules"]
        if rule["direction"] == "Inbound" and rule["sourceAddressPrefix"] in ("Internet", "*")
    ]


def test_every_subnet_has_an_nsg_that_denies_internet_inbound(
    resources: list[PlannedResource],
) -> None:
    nsgs = {r.id: r for r in _of(resources, "azure-native:network:NetworkSecurityGroup")}
    subnets = _of(resources, "azure-native:network:Subnet")
    assert len(subnets) == len(SUBNETS)
    for subnet in subnets:
        nsg = nsgs[subnet.inputs["networkSecurityGroup"]["id"]]
        denies = [r for r in _internet_inbound(nsg) if r["access"] == "Deny"]
        assert denies and denies[0]["destinationPortRange"] == "*", subnet.name
        assert subnet.inputs["defaultOutboundAccess"] is False


def test_only_bastion_accepts_internet_traffic_and_only_https(
    resources: list[PlannedResource],
) -> None:
    for nsg in _of(resources, "azure-native:network:NetworkSecurityGroup"):
        allows = [r for r in _internet_inbound(nsg) if r["access"] == "Allow"]
        if nsg.name == "network-bastion-nsg":
            assert [(r["protocol"], r["destinationPortRange"]) for r in allows] == [("Tcp", "443")]
        else:
            assert not allows, nsg.name


def test_bastion_subnet_carries_every_rule_azure_mandates(resources: list[PlannedResource]) -> None:
    (nsg,) = [
        n
        for n in _of(resources, "azure-native:network:NetworkSecurityGroup")
        if n.name == "network-bastion-nsg"
    ]
    rules = {
        (r["direction"], r["sourceAddressPrefix"], r["destinationAddressPrefix"]): sorted(
            r.get("destinationPortRanges") or [r["destinationPortRange"]]
        )
        for r in nsg.inputs["securityRules"]
        if r["access"] == "Allow"
    }
    assert rules[("Inbound", "GatewayManager", "*")] == ["443"]
    assert rules[("Inbound", "AzureLoadBalancer", "*")] == ["443"]
    assert rules[("Inbound", "VirtualNetwork", "VirtualNetwork")] == ["5701", "8080"]
    assert rules[("Outbound", "*", "AzureCloud")] == ["443"]
    assert rules[("Outbound", "*", "VirtualNetwork")] == ["22", "3389"]
    assert len(rules) == len(bastion_facts()["nsg_rules"])


def test_bastion_host_sits_in_azure_bastion_subnet_with_its_own_public_ip(
    resources: list[PlannedResource],
) -> None:
    subnet = _subnet(resources, "bastion")
    assert subnet.inputs["subnetName"] == "AzureBastionSubnet"
    (host,) = _of(resources, "azure-native:network:BastionHost")
    ip_config = host.inputs["ipConfigurations"][0]
    assert ip_config["subnet"]["id"] == subnet.id
    (bastion_ip,) = [
        p
        for p in _of(resources, "azure-native:network:PublicIPAddress")
        if p.name == "network-bastion-ip"
    ]
    assert ip_config["publicIPAddress"]["id"] == bastion_ip.id
    assert host.inputs["enableTunneling"] is True


def test_bastion_without_its_subnet_is_refused() -> None:
    subnets = {k: v for k, v in SUBNETS.items() if k != "bastion"}
    args = GpuNetworkArgs(
        context=CONTEXT, address_space="10.40.0.0/16", subnets=subnets, bastion=BastionSpec()
    )
    with pytest.raises(ValueError, match="AzureBastionSubnet"):
        capture(lambda: GpuNetwork("network", args))


def test_system_and_gpu_subnets_egress_through_the_nat_gateway(
    resources: list[PlannedResource],
) -> None:
    (nat,) = _of(resources, "azure-native:network:NatGateway")
    (nat_ip,) = [
        p
        for p in _of(resources, "azure-native:network:PublicIPAddress")
        if p.name == "network-nat-ip"
    ]
    assert _subnet(resources, "gpu").inputs["natGateway"]["id"] == nat.id
    assert _subnet(resources, "system").inputs["natGateway"]["id"] == nat.id
    assert "natGateway" not in _subnet(resources, "endpoints").inputs
    assert "natGateway" not in _subnet(resources, "bastion").inputs
    assert nat.inputs["publicIpAddresses"] == [{"id": nat_ip.id}]
    assert "zones" not in nat.inputs
    assert nat_ip.inputs["sku"]["name"] == "Standard"
    assert nat_ip.inputs["publicIPAllocationMethod"] == "Static"
    assert nat_ip.inputs["zones"] == ["1", "2", "3"]


def test_hub_peering_is_created_after_the_subnets(resources: list[PlannedResource]) -> None:
    (peering,) = _of(resources, "azure-native:network:VirtualNetworkPeering")
    assert peering.inputs["remoteVirtualNetwork"]["id"] == HUB
    assert peering.inputs["allowForwardedTraffic"] is True
    assert peering.inputs["useRemoteGateways"] is False
    assert _subnet(resources, "bastion").urn in peering.options["dependsOn"]


def test_vnet_nsgs_public_ips_and_bastion_send_diagnostics(
    resources: list[PlannedResource],
) -> None:
    monitored = {
        r.id
        for r in resources
        if r.type
        in (
            "azure-native:network:VirtualNetwork",
            "azure-native:network:NetworkSecurityGroup",
            "azure-native:network:PublicIPAddress",
            "azure-native:network:BastionHost",
        )
    }
    settings = _of(resources, "azure-native:monitor:DiagnosticSetting")
    assert {s.inputs["resourceUri"] for s in settings} == monitored
    assert len(monitored) == 1 + len(SUBNETS) + 2 + 1
    assert {s.inputs["workspaceId"] for s in settings} == {WORKSPACE}


def test_gpu_subnet_egresses_through_nat_in_every_environment(env_plan: Plan) -> None:
    (nat,) = env_plan.by_type("azure-native:network:NatGateway")
    subnets = {s.inputs["subnetName"]: s for s in env_plan.by_type("azure-native:network:Subnet")}
    assert subnets["snet-gpu"].inputs["natGateway"]["id"] == nat.id
    nsgs = {n.id: n for n in env_plan.by_type("azure-native:network:NetworkSecurityGroup")}
    for subnet in subnets.values():
        rules = nsgs[subnet.inputs["networkSecurityGroup"]["id"]].inputs["securityRules"]
        assert any(r["name"] == "deny-internet-inbound" for r in rules), subnet.name


# --- config -------------------------------------------------------------------------------------

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICWWEKvBQHrRUG6uF5ZH8bPQTu/wiThy/6dSr1zezbrL k"


def _config(network: dict[str, Any], environment: str = "dev", **extra: Any) -> Any:
    raw = {
        "environment": environment,
        "location": "eastus",
        "budget": {"monthlyAmountUsd": 100},
        "monitoring": {"alertEmails": ["ops@example.com"]},
        "network": network,
        "aks": {
            "privateCluster": True,
            "systemPool": {"vmSize": "Standard_D4s_v5", "minCount": 1, "maxCount": 3},
            "gpuPools": [
                {"name": "t4spot", "vmSize": "Standard_NC4as_T4_v3", "maxCount": 2, "spot": True}
            ],
        },
        "vmPools": [
            {
                "name": "devbox",
                "kind": "vm",
                "vmSize": "Standard_NC4as_T4_v3",
                "purpose": "development",
                "minCount": 1,
                "maxCount": 1,
                "sshPublicKey": KEY,
            }
        ],
        **extra,
    }
    return parse_config(raw, f"Pulumi.{environment}.yaml")


def test_gpu_subnet_too_small_for_the_pools_is_a_config_error_with_the_arithmetic() -> None:
    network = {"gpuSubnet": "10.40.4.0/29"}
    with pytest.raises(ConfigError) as error:
        _config(network)
    message = str(error.value)
    # A /29 has 8 addresses, Azure keeps 5; t4spot needs 2 + 1 surge (10% rounded up), devbox 1.
    assert "network.gpuSubnet: 10.40.4.0/29 has 3 usable addresses" in message
    assert "pools need 4 (t4spot 2 + surge 1, devbox 1)" in message


def test_system_subnet_counts_the_system_pool_and_its_surge() -> None:
    with pytest.raises(ConfigError, match=r"systemSubnet: 10.40.0.0/29 has 3 usable .* need 4"):
        _config({"systemSubnet": "10.40.0.0/29"})


def test_subnets_that_fit_exactly_are_accepted() -> None:
    # /28: 16 - 5 = 11 usable; the GPU pools need 4.
    cfg = _config({"gpuSubnet": "10.40.4.0/28"})
    assert cfg.network.gpu_subnet == "10.40.4.0/28"


def test_bastion_subnet_smaller_than_a_26_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="needs /26 or larger"):
        _config({"bastion": True, "bastionSubnet": "10.40.9.0/27"})


def test_no_nat_and_no_hub_leaves_no_egress_and_is_refused() -> None:
    with pytest.raises(ConfigError, match="without any egress"):
        _config({"natGateway": False})
    assert not _config({"natGateway": False, "hubVnetId": HUB}).network.nat_gateway


def test_malformed_hub_vnet_id_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="hubVnetId"):
        _config({"hubVnetId": "hub-vnet"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.1.2.3", "private or reserved"),
        ("20.30.40.50/32", "write 20.30.40.50"),
        ("not-an-ip", "public IPv4"),
    ],
)
def test_operator_ips_must_be_public_ipv4_the_storage_firewall_accepts(
    value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _config({"allowOperatorIps": [value]})


def test_operator_ips_are_a_dev_only_loosening() -> None:
    assert _config({"allowOperatorIps": ["20.30.40.50"]}).network.allow_operator_ips
    with pytest.raises(ConfigError, match="for dev only"):
        _config({"allowOperatorIps": ["20.30.40.50"]}, environment="staging")
