"""Security rules: each passes a compliant resource and names the fault in a non-compliant one."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pulumi_policy import ResourceValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from policies import security
from tests.policy_runs import check_resource

STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
VM = "azure-native:compute:VirtualMachine"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
NIC = "azure-native:network:NetworkInterface"
NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
REGISTRY = "azure-native:containerregistry:Registry"
API_MANAGEMENT = "azure-native:apimanagement:ApiManagementService"

SUBSCRIPTION = "/subscriptions/00000000-0000-4000-8000-00000000c0de"
SUBNET_ID = (
    f"{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
)
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"

GOOD_STORAGE = {
    "kind": "StorageV2",
    "sku": {"name": "Standard_ZRS"},
    "publicNetworkAccess": "Disabled",
    "networkRuleSet": {"defaultAction": "Deny", "bypass": "AzureServices"},
    "allowSharedKeyAccess": False,
    "minimumTlsVersion": "TLS1_2",
    "enableHttpsTrafficOnly": True,
    "allowBlobPublicAccess": False,
    "allowCrossTenantReplication": False,
}
GOOD_VAULT = {
    "properties": {
        "tenantId": "00000000-0000-4000-8000-0000000a2b1e",
        "sku": {"family": "A", "name": "standard"},
        "enableRbacAuthorization": True,
        "enablePurgeProtection": True,
        "softDeleteRetentionInDays": 90,
        "publicNetworkAccess": "Disabled",
    }
}
GOOD_CLUSTER = {
    "aadProfile": {"managed": True, "enableAzureRBAC": True},
    "disableLocalAccounts": True,
    "networkProfile": {"networkPlugin": "azure", "networkPolicy": "cilium"},
    "apiServerAccessProfile": {"enablePrivateCluster": True},
    "identity": {"type": "UserAssigned"},
    "autoUpgradeProfile": {"upgradeChannel": "patch", "nodeOSUpgradeChannel": "NodeImage"},
    "kubernetesVersion": "1.34",
    "addonProfiles": {"azurepolicy": {"enabled": True}},
    "oidcIssuerProfile": {"enabled": True},
    "securityProfile": {"workloadIdentity": {"enabled": True}},
    "agentPoolProfiles": [
        {"name": "system", "mode": "System", "vmSize": "Standard_D4s_v5", "count": 3}
    ],
}
GOOD_AGENT_POOL = {"vmSize": "Standard_NC4as_T4_v3", "orchestratorVersion": "1.34.2", "count": 1}
LINUX_OS = {
    "adminUsername": "azureuser",
    "linuxConfiguration": {
        "disablePasswordAuthentication": True,
        "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys",
                                "keyData": "ssh-ed25519 AAAAC3Nza"}]},
    },
}
NIC_CONFIGS = [
    {"name": "nic", "enableAcceleratedNetworking": True,
     "ipConfigurations": [{"name": "ip", "subnet": {"id": SUBNET_ID}}]}
]
GOOD_VM = {
    "hardwareProfile": {"vmSize": "Standard_NC4as_T4_v3"},
    "osProfile": LINUX_OS,
    "securityProfile": {"encryptionAtHost": True},
    "identity": {"type": "UserAssigned"},
    "networkProfile": {"networkInterfaceConfigurations": NIC_CONFIGS},
}
GOOD_SCALE_SET = {
    "sku": {"name": "Standard_NC4as_T4_v3", "capacity": 2},
    "identity": {"type": "SystemAssigned"},
    "virtualMachineProfile": {
        "osProfile": LINUX_OS,
        "securityProfile": {"encryptionAtHost": True},
        "networkProfile": {"networkInterfaceConfigurations": NIC_CONFIGS},
    },
}
GOOD_NIC = {"ipConfigurations": [{"name": "ip", "subnet": {"id": SUBNET_ID}}],
            "enableAcceleratedNetworking": True}


def rule(**overrides: Any) -> dict[str, Any]:
    """An NSG security rule: inbound allow from the VNet to SSH unless overridden."""
    return {"name": "r", "priority": 100, "direction": "Inbound", "access": "Allow",
            "protocol": "Tcp", "sourceAddressPrefix": "VirtualNetwork", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "22", **overrides}


def role(role_id: str, scope: str, principal_type: str | None = "ServicePrincipal") -> dict:
    """A role assignment's inputs."""
    props = {"principalId": "99999999-8888-7777-6666-555555555555", "scope": scope,
             "roleDefinitionId": f"{SUBSCRIPTION}/providers/Microsoft.Authorization/"
                                 f"roleDefinitions/{role_id}"}
    if principal_type:
        props["principalType"] = principal_type
    return props


def changed(base: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A deep copy of `base` with `edit` applied."""
    props = copy.deepcopy(base)
    edit(props)
    return props


GOOD_REGISTRY = {
    "sku": {"name": "Premium"},
    "adminUserEnabled": False,
    "anonymousPullEnabled": False,
    "publicNetworkAccess": "Disabled",
}
GOOD_APIM = {
    "sku": {"name": "Premium", "capacity": 1},
    "virtualNetworkType": "Internal",
    "virtualNetworkConfiguration": {"subnetResourceId": SUBNET_ID},
}


@dataclass(frozen=True)
class Case:
    """A rule with a compliant and a non-compliant resource, and what the violation must say."""

    policy: ResourceValidationPolicy
    type: str
    good: dict[str, Any]
    bad: dict[str, Any]
    says: str
    config: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.policy.name


CASES = [
    Case(security.storage_public_network_access, STORAGE, GOOD_STORAGE,
         {**GOOD_STORAGE, "publicNetworkAccess": "Enabled"}, "publicNetworkAccess is 'Enabled'"),
    Case(security.storage_network_default_deny, STORAGE, GOOD_STORAGE,
         changed(GOOD_STORAGE, lambda p: p.pop("networkRuleSet")), "default is Allow"),
    Case(security.storage_shared_key_disabled, STORAGE, GOOD_STORAGE,
         {**GOOD_STORAGE, "allowSharedKeyAccess": True}, "allowSharedKeyAccess is True"),
    Case(security.storage_min_tls, STORAGE, GOOD_STORAGE,
         {**GOOD_STORAGE, "minimumTlsVersion": "TLS1_0"}, "'TLS1_0'"),
    Case(security.storage_https_only, STORAGE, GOOD_STORAGE,
         {**GOOD_STORAGE, "enableHttpsTrafficOnly": False}, "enableHttpsTrafficOnly is False"),
    Case(security.storage_blob_public_access, STORAGE, GOOD_STORAGE,
         changed(GOOD_STORAGE, lambda p: p.pop("allowBlobPublicAccess")),
         "allowBlobPublicAccess is not set"),
    Case(security.storage_cross_tenant_replication, STORAGE, GOOD_STORAGE,
         {**GOOD_STORAGE, "allowCrossTenantReplication": True}, "allowCrossTenantReplication"),
    Case(security.keyvault_rbac_authorization, VAULT, GOOD_VAULT,
         changed(GOOD_VAULT, lambda p: p["properties"].update(enableRbacAuthorization=False)),
         "enableRbacAuthorization is False"),
    Case(security.keyvault_purge_protection, VAULT, GOOD_VAULT,
         changed(GOOD_VAULT, lambda p: p["properties"].pop("enablePurgeProtection")),
         "enablePurgeProtection is not set"),
    Case(security.keyvault_soft_delete_retention, VAULT, GOOD_VAULT,
         changed(GOOD_VAULT, lambda p: p["properties"].update(softDeleteRetentionInDays=14)),
         "softDeleteRetentionInDays is 14; keep at least 30", {"minimumRetentionDays": 30}),
    Case(security.keyvault_public_network_access, VAULT, GOOD_VAULT,
         changed(GOOD_VAULT, lambda p: p["properties"].pop("publicNetworkAccess")),
         "default is Enabled"),
    Case(security.aks_local_accounts_disabled, CLUSTER, GOOD_CLUSTER,
         {**GOOD_CLUSTER, "disableLocalAccounts": False}, "disableLocalAccounts is False"),
    Case(security.aks_entra_azure_rbac, CLUSTER, GOOD_CLUSTER,
         {**GOOD_CLUSTER, "aadProfile": {"managed": True, "enableAzureRBAC": False}},
         "enableAzureRBAC is not True"),
    Case(security.aks_network_policy, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["networkProfile"].update(networkPolicy="none")),
         "networkPolicy is 'none'"),
    Case(security.aks_api_server_access, CLUSTER, GOOD_CLUSTER,
         {**GOOD_CLUSTER, "apiServerAccessProfile": {"authorizedIPRanges": ["0.0.0.0/0"]}},
         "0.0.0.0/0, which admits every address"),
    Case(security.aks_managed_identity, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p.update(
             servicePrincipalProfile={"clientId": "11111111-2222-3333-4444-555555555555"})),
         "service principal"),
    Case(security.aks_auto_upgrade_channel, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["autoUpgradeProfile"].update(
             upgradeChannel="node-image")), "'node-image'"),
    Case(security.aks_node_os_upgrade_channel, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["autoUpgradeProfile"].update(
             nodeOSUpgradeChannel="Unmanaged")), "'Unmanaged'"),
    Case(security.aks_supported_version, AGENT_POOL, GOOD_AGENT_POOL,
         {**GOOD_AGENT_POOL, "orchestratorVersion": "1.27.3"}, "orchestratorVersion is '1.27.3'"),
    Case(security.aks_azure_policy_addon, CLUSTER, GOOD_CLUSTER,
         {**GOOD_CLUSTER, "addonProfiles": {"azurePolicy": {"enabled": False}}},
         "azurepolicy is not enabled"),
    Case(security.aks_workload_identity, CLUSTER, GOOD_CLUSTER,
         {**GOOD_CLUSTER, "oidcIssuerProfile": {"enabled": False}}, "oidcIssuerProfile.enabled"),
    Case(security.aks_no_node_public_ip, AGENT_POOL, GOOD_AGENT_POOL,
         {**GOOD_AGENT_POOL, "enableNodePublicIP": True}, "enableNodePublicIP"),
    Case(security.vm_no_public_ip, SCALE_SET, GOOD_SCALE_SET,
         changed(GOOD_SCALE_SET, lambda p: p["virtualMachineProfile"]["networkProfile"][
             "networkInterfaceConfigurations"][0]["ipConfigurations"][0].update(
             publicIPAddressConfiguration={"name": "pip"})), "creates a public IP address"),
    Case(security.vm_ssh_keys_only, VM, GOOD_VM,
         changed(GOOD_VM, lambda p: p["osProfile"].update(adminPassword="hunter2")),
         "osProfile sets adminPassword"),
    Case(security.vm_encryption_at_host, SCALE_SET, GOOD_SCALE_SET,
         changed(GOOD_SCALE_SET, lambda p: p["virtualMachineProfile"].pop("securityProfile")),
         "encryptionAtHost is None"),
    Case(security.vm_managed_identity, VM, GOOD_VM, {**GOOD_VM, "identity": {"type": "None"}},
         "identity.type is 'None'"),
    Case(security.nsg_no_internet_management_ports, NSG,
         {"securityRules": [rule(), rule(name="deny", access="Deny", sourceAddressPrefix="*",
                                         destinationPortRange="*")]},
         {"securityRules": [rule(name="rdp", sourceAddressPrefix="Internet",
                                 destinationPortRange="3380-3390")]},
         "rule 'rdp' allows inbound ports 3389 from the Internet"),
    Case(security.public_ip_standard_sku, PUBLIC_IP, {"sku": {"name": "Standard"}},
         {"sku": {"name": "Basic"}}, "sku.name is 'Basic'"),
    Case(security.acr_admin_user_disabled, REGISTRY, GOOD_REGISTRY,
         {**GOOD_REGISTRY, "adminUserEnabled": True}, "adminUserEnabled is True"),
    Case(security.acr_anonymous_pull_disabled, REGISTRY, GOOD_REGISTRY,
         {**GOOD_REGISTRY, "anonymousPullEnabled": True}, "anonymousPullEnabled is True"),
    Case(security.acr_public_network_access, REGISTRY, GOOD_REGISTRY,
         {k: v for k, v in GOOD_REGISTRY.items() if k != "publicNetworkAccess"},
         "publicNetworkAccess is not set"),
    Case(security.apim_internal_vnet, API_MANAGEMENT, GOOD_APIM,
         {**GOOD_APIM, "virtualNetworkType": "External"}, "virtualNetworkType is 'External'",
         config={"environment": "prod"}),
    Case(security.rbac_no_privileged_workload_roles, ROLE_ASSIGNMENT,
         role(BLOB_READER, f"{SUBSCRIPTION}/resourceGroups/rg"),
         role(CONTRIBUTOR, f"{SUBSCRIPTION}/resourceGroups/rg"),
         "is privileged and scoped to"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_compliant_resource_passes(case: Case) -> None:
    assert check_resource(case.policy, case.type, case.good, config=case.config) == []


@pytest.mark.parametrize("case", CASES, ids=str)
def test_non_compliant_resource_is_reported(case: Case) -> None:
    found = check_resource(case.policy, case.type, case.bad, config=case.config)
    assert len(found) == 1, found
    assert case.says in found[0]


def test_every_security_rule_has_a_case() -> None:
    assert {c.policy.name for c in CASES} == {p.name for p in security.POLICIES}


def test_rules_ignore_other_resource_types() -> None:
    assert check_resource(security.storage_min_tls, VAULT, {"minimumTlsVersion": "TLS1_0"}) == []


def test_versioned_type_tokens_are_checked_like_default_ones() -> None:
    versioned = "azure-native:storage/v20240101:StorageAccount"
    found = check_resource(security.storage_min_tls, versioned, {"minimumTlsVersion": "TLS1_1"})
    assert found and "'TLS1_1'" in found[0]


def test_unknown_value_during_preview_raises_for_the_sdk_to_report() -> None:
    props = {**GOOD_STORAGE, "minimumTlsVersion": UNKNOWN_STRING_VALUE}
    with pytest.raises(UnknownValueError):
        check_resource(security.storage_min_tls, STORAGE, props)


def test_dev_firewall_loosening_accepts_deny_by_default_public_endpoint() -> None:
    firewalled = {**GOOD_STORAGE, "publicNetworkAccess": "Enabled"}
    loosened = {"allowFirewalledPublicAccess": True}
    assert check_resource(security.storage_public_network_access, STORAGE, firewalled,
                          config=loosened) == []
    open_account = {**firewalled, "networkRuleSet": {"defaultAction": "Allow"}}
    assert check_resource(security.storage_public_network_access, STORAGE, open_account,
                          config=loosened)


def test_https_only_defaults_to_azure_default_when_unset() -> None:
    unset = changed(GOOD_STORAGE, lambda p: p.pop("enableHttpsTrafficOnly"))
    assert check_resource(security.storage_https_only, STORAGE, unset) == []


def test_public_api_server_without_authorized_ranges_is_reported() -> None:
    public = {**GOOD_CLUSTER, "apiServerAccessProfile": {"enablePrivateCluster": False}}
    (message,) = check_resource(security.aks_api_server_access, CLUSTER, public)
    assert "authorizedIPRanges is empty" in message
    limited = {**GOOD_CLUSTER, "apiServerAccessProfile": {"authorizedIPRanges": ["203.0.113.0/24"]}}
    assert check_resource(security.aks_api_server_access, CLUSTER, limited) == []


def test_inline_profiles_of_a_foreign_cluster_are_checked() -> None:
    profiles = [{"name": "gpu", "vmSize": "Standard_NC4as_T4_v3", "enableNodePublicIP": True,
                 "orchestratorVersion": "1.20"}]
    cluster = {**GOOD_CLUSTER, "agentPoolProfiles": profiles}
    assert check_resource(security.aks_no_node_public_ip, CLUSTER, cluster)
    assert check_resource(security.aks_supported_version, CLUSTER, cluster)


def test_standalone_nic_with_public_ip_is_reported() -> None:
    assert check_resource(security.vm_no_public_ip, NIC, GOOD_NIC) == []
    bad = changed(GOOD_NIC, lambda p: p["ipConfigurations"][0].update(
        publicIPAddress={"id": f"{SUBSCRIPTION}/publicIPAddresses/p"}))
    assert check_resource(security.vm_no_public_ip, NIC, bad)


def test_standalone_security_rule_open_to_everyone_lists_every_management_port() -> None:
    props = rule(sourceAddressPrefix="0.0.0.0/0", destinationPortRange="*", protocol="*")
    (message,) = check_resource(security.nsg_no_internet_management_ports, SECURITY_RULE, props)
    assert "22, 3389, 5985, 5986" in message


def test_privileged_role_for_a_person_or_on_one_resource_is_allowed() -> None:
    group = role(OWNER, SUBSCRIPTION, principal_type="Group")
    narrow = role(OWNER, f"{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Storage/"
                         "storageAccounts/sa")
    for props in (group, narrow):
        assert check_resource(security.rbac_no_privileged_workload_roles, ROLE_ASSIGNMENT,
                              props) == []
    untyped = role(OWNER, SUBSCRIPTION, principal_type=None)
    assert check_resource(security.rbac_no_privileged_workload_roles, ROLE_ASSIGNMENT, untyped)


def test_windows_vm_is_not_held_to_ssh_keys() -> None:
    windows = {**GOOD_VM, "osProfile": {"adminUsername": "a", "adminPassword": "p",
                                        "windowsConfiguration": {}}}
    assert check_resource(security.vm_ssh_keys_only, VM, windows) == []


def test_apim_outside_internal_mode_is_fine_outside_prod_and_needs_a_subnet_in_it() -> None:
    public = {"sku": {"name": "Developer", "capacity": 1}}
    dev = {"environment": "dev"}
    assert check_resource(security.apim_internal_vnet, API_MANAGEMENT, public, config=dev) == []
    # Unconfigured stacks are read as prod, the strictest reading.
    (message,) = check_resource(security.apim_internal_vnet, API_MANAGEMENT, public)
    assert "not set (None: public)" in message
    no_subnet = {**GOOD_APIM, "virtualNetworkConfiguration": {}}
    (message,) = check_resource(security.apim_internal_vnet, API_MANAGEMENT, no_subnet)
    assert "names no subnet" in message
