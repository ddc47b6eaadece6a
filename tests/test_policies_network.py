"""Network rules: Internet exposure, subnets, IP forwarding, DNS, public IPs, private endpoints."""

from __future__ import annotations

import pytest

from policies import network
from tests.policy_runs import Declared, check_resource, check_stack

NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
VNET = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
NIC = "azure-native:network:NetworkInterface"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
NSG_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n"


def rule(**overrides: object) -> dict[str, object]:
    """An inbound Allow rule from the VNet to HTTPS unless overridden."""
    return {"name": "r", "priority": 100, "direction": "Inbound", "access": "Allow",
            "protocol": "Tcp", "sourceAddressPrefix": "VirtualNetwork", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "443", **overrides}


@pytest.mark.parametrize(
    ("port", "service"),
    [("80", "80 (http)"), ("443", "443 (https)"), ("6379", "6379 (redis)"),
     ("10250", "10250 (kubelet)"), ("8000-8100", "8000-8100, including 8080 (http-alt)")],
)
def test_internet_inbound_to_well_known_services_is_reported(port: str, service: str) -> None:
    props = {"securityRules": [rule(name="web", sourceAddressPrefix="Internet",
                                    destinationPortRange=port)]}
    (message,) = check_resource(network.nsg_no_internet_inbound, NSG, props)
    assert f"rule 'web' allows Tcp from the Internet to {service}" in message


def test_internet_inbound_passes_for_private_sources_denies_and_listed_ports() -> None:
    private = {"securityRules": [rule(), rule(name="deny", access="Deny",
                                              sourceAddressPrefix="Internet",
                                              destinationPortRange="*")]}
    assert check_resource(network.nsg_no_internet_inbound, NSG, private) == []
    public_https = rule(sourceAddressPrefix="*", destinationPortRange="443")
    assert check_resource(network.nsg_no_internet_inbound, SECURITY_RULE, public_https,
                          config={"allowedInternetPorts": [443]}) == []
    udp_everything = rule(sourceAddressPrefix="0.0.0.0/0", protocol="Udp",
                          destinationPortRange="*")
    (message,) = check_resource(network.nsg_no_internet_inbound, SECURITY_RULE, udp_everything,
                                config={"allowedInternetPorts": [443]})
    assert "allows Udp from the Internet to every port" in message


def test_bastion_nsg_may_take_https_from_the_internet_and_nothing_else() -> None:
    gateway_manager = rule(name="gm", sourceAddressPrefix="GatewayManager")
    https = rule(name="https", sourceAddressPrefix="Internet", destinationPortRange="443")
    assert check_resource(network.nsg_no_internet_inbound, NSG,
                          {"securityRules": [https, gateway_manager]}) == []
    # Without Bastion's mandated rules the same Internet rule is an exposure.
    assert check_resource(network.nsg_no_internet_inbound, NSG, {"securityRules": [https]})
    web = rule(name="web", sourceAddressPrefix="Internet", destinationPortRange="80")
    (message,) = check_resource(network.nsg_no_internet_inbound, NSG,
                                {"securityRules": [https, gateway_manager, web]})
    assert "rule 'web'" in message


def test_deny_all_inbound_from_every_source_is_advised_against() -> None:
    internet = {"securityRules": [rule(access="Deny", sourceAddressPrefix="Internet",
                                       destinationPortRange="*")]}
    assert check_resource(network.nsg_no_deny_all_inbound, NSG, internet) == []
    everyone = {"securityRules": [rule(name="all", access="Deny", sourceAddressPrefix="*",
                                       destinationPortRange="*")]}
    (message,) = check_resource(network.nsg_no_deny_all_inbound, NSG, everyone)
    assert "rule 'all' denies all inbound traffic from every source" in message


def test_subnets_need_an_nsg_inline_or_standalone() -> None:
    guarded = {"subnetName": "snet-gpu", "networkSecurityGroup": {"id": NSG_ID}}
    assert check_resource(network.subnet_nsg, SUBNET, guarded) == []
    (message,) = check_resource(network.subnet_nsg, SUBNET, {"subnetName": "snet-gpu"})
    assert "subnet 'snet-gpu' has no networkSecurityGroup" in message
    vnet = {"subnets": [{"name": "GatewaySubnet"}, {"name": "snet-a"},
                        {"name": "snet-b", "networkSecurityGroup": {"id": NSG_ID}}]}
    (message,) = check_resource(network.subnet_nsg, VNET, vnet)
    assert "subnet 'snet-a'" in message


def test_subnets_disable_default_outbound_access() -> None:
    private = {"subnetName": "snet-gpu", "defaultOutboundAccess": False}
    assert check_resource(network.subnet_no_default_outbound, SUBNET, private) == []
    (message,) = check_resource(network.subnet_no_default_outbound, SUBNET,
                                {"subnetName": "snet-gpu"})
    assert "subnet 'snet-gpu' does not set defaultOutboundAccess to False" in message
    gateway = {"subnets": [{"name": "GatewaySubnet"}]}
    assert check_resource(network.subnet_no_default_outbound, VNET, gateway) == []


def test_ip_forwarding_is_reported_on_nics_and_scale_sets() -> None:
    assert check_resource(network.nic_no_ip_forwarding, NIC, {"enableIPForwarding": False}) == []
    assert check_resource(network.nic_no_ip_forwarding, NIC, {"enableIPForwarding": True})
    scale_set = {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": [
        {"name": "nic", "enableIPForwarding": True}]}}}
    (message,) = check_resource(network.nic_no_ip_forwarding, SCALE_SET, scale_set)
    assert "NIC 'nic' enables IP forwarding" in message


def test_nics_inherit_dns_from_the_vnet() -> None:
    assert check_resource(network.nic_inherits_dns, NIC, {"dnsSettings": {}}) == []
    (message,) = check_resource(network.nic_inherits_dns, NIC,
                                {"dnsSettings": {"dnsServers": ["10.0.0.4"]}})
    assert "dnsSettings.dnsServers sets 10.0.0.4" in message


def test_custom_dns_needs_two_private_servers() -> None:
    assert check_resource(network.vnet_dns, VNET, {}) == []
    two = {"dhcpOptions": {"dnsServers": ["10.0.0.4", "10.0.0.5"]}}
    assert check_resource(network.vnet_dns, VNET, two) == []
    found = check_resource(network.vnet_dns, VNET, {"dhcpOptions": {"dnsServers": ["8.8.8.8"]}})
    assert len(found) == 2 and "lists one server" in found[0] and "8.8.8.8" in found[1]


def test_standard_public_ips_are_zone_redundant() -> None:
    zonal = {"sku": {"name": "Standard"}, "zones": ["1"]}
    (message,) = check_resource(network.public_ip_zone_redundant, PUBLIC_IP, zonal)
    assert "zones are 1" in message
    redundant = {"sku": {"name": "Standard"}, "zones": ["1", "2", "3"]}
    assert check_resource(network.public_ip_zone_redundant, PUBLIC_IP, redundant) == []


def test_private_services_have_a_private_endpoint() -> None:
    account = Declared(STORAGE, "models", {"accountName": "modelsabc",
                                           "publicNetworkAccess": "Disabled"})
    vault = Declared(VAULT, "kv", {"vaultName": "kv-gpu",
                                   "properties": {"publicNetworkAccess": "Disabled"}})
    by_dependency = Declared(PRIVATE_ENDPOINT, "pe-blob", {},
                             deps={"privateLinkServiceConnections": ["models"]})
    by_id = Declared(PRIVATE_ENDPOINT, "pe-kv", {"privateLinkServiceConnections": [
        {"privateLinkServiceId": "/subscriptions/s/resourceGroups/rg/providers/"
                                 "Microsoft.KeyVault/vaults/kv-gpu"}]})
    policy = network.private_endpoint_for_private_services
    assert check_stack(policy, [account, vault, by_dependency, by_id]) == []
    ((message, urn),) = check_stack(policy, [account, vault, by_dependency])
    assert "keyvault:Vault kv disables public access but no private endpoint" in message
    assert urn == vault.urn


def test_nsgs_are_associated_with_a_subnet_or_nic() -> None:
    nsg = Declared(NSG, "gpu-nsg", {"networkSecurityGroupName": "gpu-nsg"})
    subnet = Declared(SUBNET, "gpu", {"subnetName": "snet-gpu"},
                      deps={"networkSecurityGroup": ["gpu-nsg"]})
    assert check_stack(network.nsg_associated, [nsg, subnet]) == []
    ((message, urn),) = check_stack(network.nsg_associated, [nsg])
    assert "gpu-nsg is not associated" in message and urn == nsg.urn


def test_every_network_rule_is_tested() -> None:
    assert {p.name for p in network.POLICIES} == {
        "gpustack-nsg-no-internet-inbound", "gpustack-nsg-no-deny-all-inbound",
        "gpustack-subnet-nsg", "gpustack-subnet-no-default-outbound",
        "gpustack-nic-no-ip-forwarding", "gpustack-nic-inherits-dns", "gpustack-vnet-dns",
        "gpustack-public-ip-zone-redundant", "gpustack-private-endpoint-for-private-services",
        "gpustack-nsg-associated",
    }
