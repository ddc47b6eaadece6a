"""Security rules: each passes a compliant resource and names the fault in a non-compliant one."""

from __future__ import annotations

import base64
import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pulumi_policy import ResourceValidationPolicy
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError

from gpustack import catalog
from policies import rulebook, security
from tests.policy_runs import Declared, check_resource, check_stack, stack_args

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
API = "azure-native:apimanagement:Api"
PRODUCT = "azure-native:apimanagement:Product"
PRODUCT_POLICY = "azure-native:apimanagement:ProductPolicy"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
LOCAL_USER = "azure-native:storage:LocalUser"
SECRET = "azure-native:keyvault:Secret"
KEY = "azure-native:keyvault:Key"
DISK = "azure-native:compute:Disk"
VM_EXTENSION = "azure-native:compute:VirtualMachineExtension"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"

SUBSCRIPTION = "/subscriptions/00000000-0000-4000-8000-00000000c0de"
SUBNET_ID = (
    f"{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
)
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"

GOOD_STORAGE = {
    "kind": "StorageV2",
    "isLocalUserEnabled": False,
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
    "securityProfile": {
        "workloadIdentity": {"enabled": True},
        "defender": {"logAnalyticsWorkspaceResourceId": "/workspaces/w",
                     "securityMonitoring": {"enabled": True}},
    },
    "disableLocalAccounts": True,
    "networkProfile": {"networkPlugin": "azure", "networkPolicy": "cilium"},
    "apiServerAccessProfile": {"enablePrivateCluster": True},
    "identity": {"type": "UserAssigned"},
    "autoUpgradeProfile": {"upgradeChannel": "patch", "nodeOSUpgradeChannel": "NodeImage"},
    "kubernetesVersion": "1.34",
    "addonProfiles": {
        "azurepolicy": {"enabled": True},
        "omsagent": {"enabled": True},
        "azureKeyvaultSecretsProvider": {"enabled": True,
                                         "config": {"enableSecretRotation": "true"}},
    },
    "oidcIssuerProfile": {"enabled": True},
    "agentPoolProfiles": [
        {"name": "system", "mode": "System", "vmSize": "Standard_D4ds_v5", "count": 3,
         "enableEncryptionAtHost": True, "maxPods": 110, "osDiskType": "Ephemeral",
         "osDiskSizeGB": 64, "nodeTaints": ["CriticalAddonsOnly=true:NoSchedule"]}
    ],
}
GOOD_AGENT_POOL = {"vmSize": "Standard_NC4as_T4_v3", "orchestratorVersion": "1.34.2", "count": 1,
                   "enableEncryptionAtHost": True}
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
    "zoneRedundancy": "Enabled",
    "policies": {"exportPolicy": {"status": "disabled"},
                 "retentionPolicy": {"status": "enabled", "days": 7},
                 "quarantinePolicy": {"status": "enabled"}},
    "adminUserEnabled": False,
    "anonymousPullEnabled": False,
    "publicNetworkAccess": "Disabled",
}
GOOD_APIM = {
    "sku": {"name": "Premium", "capacity": 1},
    "identity": {"type": "SystemAssigned"},
    "customProperties": {
        "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls10": "false",
    },
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

GOOD_KEY = {"properties": {
    "kty": "RSA",
    "attributes": {"expires": 1893456000},
    "rotationPolicy": {"attributes": {"expiryTime": "P1Y"},
                       "lifetimeActions": [{"action": {"type": "rotate"},
                                            "trigger": {"timeAfterCreate": "P11M"}}]},
}}
CLOUD_INIT = "#cloud-config\npackages: [mdadm]\n"
LEAKY_INIT = "#cloud-config\nwrite_files:\n- content: password=Sup3rSecretValue\n"
WILDCARD = [{"actions": ["*"], "notActions": []}]
BASE_POLICY = ("<policies><inbound><base /><rate-limit calls=\"60\" renewal-period=\"60\" />"
               "</inbound><backend><base /></backend><outbound><base /></outbound>"
               "<on-error><base /></on-error></policies>")
CORS = ("<policies><inbound><base /><cors><allowed-origins><origin>{origin}</origin>"
        "</allowed-origins></cors></inbound></policies>")


def b64(text: str) -> str:
    """Custom data as the VM API takes it."""
    return base64.b64encode(text.encode()).decode()


CASES += [
    Case(security.storage_container_private, BLOB_CONTAINER, {"publicAccess": "None"},
         {"publicAccess": "Container"}, "publicAccess is 'Container'"),
    Case(security.storage_local_users_disabled, STORAGE, GOOD_STORAGE,
         {**GOOD_STORAGE, "isLocalUserEnabled": True}, "isLocalUserEnabled is True"),
    Case(security.keyvault_expiry, KEY, GOOD_KEY, {"properties": {"kty": "RSA"}},
         "the key has no expiry"),
    Case(security.keyvault_key_rotation, KEY, GOOD_KEY,
         changed(GOOD_KEY, lambda p: p["properties"].pop("rotationPolicy")),
         "no 'rotate' lifetime action"),
    Case(security.aks_encryption_at_host, AGENT_POOL, GOOD_AGENT_POOL,
         {**GOOD_AGENT_POOL, "enableEncryptionAtHost": False},
         "does not set enableEncryptionAtHost"),
    Case(security.aks_defender_profile, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["securityProfile"].pop("defender")),
         "securityMonitoring.enabled is not True"),
    Case(security.aks_container_insights, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["addonProfiles"].pop("omsagent")),
         "omsagent is not enabled"),
    Case(security.aks_secret_store_rotation, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["addonProfiles"]["azureKeyvaultSecretsProvider"][
             "config"].update(enableSecretRotation="false")), "without enableSecretRotation"),
    Case(security.aks_no_insecure_addons, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["addonProfiles"].update(
             httpApplicationRouting={"enabled": True})), "httpApplicationRouting is enabled"),
    Case(security.aks_azure_cni, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["networkProfile"].update(networkPlugin="kubenet")),
         "networkPlugin is 'kubenet'"),
    Case(security.aks_system_pool_critical_only, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["agentPoolProfiles"][0].pop("nodeTaints")),
         "lacks the CriticalAddonsOnly=true:NoSchedule taint"),
    Case(security.aks_ephemeral_os_disk, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["agentPoolProfiles"][0].update(osDiskType="Managed")),
         "uses a managed OS disk although Standard_D4ds_v5"),
    Case(security.aks_scale_set_pools, AGENT_POOL, GOOD_AGENT_POOL,
         {**GOOD_AGENT_POOL, "type": "AvailabilitySet"}, "is an AvailabilitySet pool"),
    Case(security.aks_standard_load_balancer, CLUSTER, GOOD_CLUSTER,
         changed(GOOD_CLUSTER, lambda p: p["networkProfile"].update(loadBalancerSku="basic")),
         "loadBalancerSku is 'basic'"),
    Case(security.acr_export_disabled, REGISTRY, GOOD_REGISTRY,
         changed(GOOD_REGISTRY, lambda p: p["policies"].pop("exportPolicy")),
         "exportPolicy.status is not set (enabled)"),
    Case(security.acr_premium_resilience, REGISTRY, GOOD_REGISTRY,
         {**GOOD_REGISTRY, "zoneRedundancy": "Disabled"}, "zoneRedundancy is not 'Enabled'"),
    Case(security.acr_quarantine, REGISTRY, GOOD_REGISTRY,
         changed(GOOD_REGISTRY, lambda p: p["policies"].pop("quarantinePolicy")),
         "quarantinePolicy.status is not 'enabled'"),
    Case(security.acr_min_sku, REGISTRY, GOOD_REGISTRY, {**GOOD_REGISTRY, "sku": {"name": "Basic"}},
         "sku.name is 'Basic'"),
    Case(security.vm_managed_disks, VM, GOOD_VM,
         {**GOOD_VM, "storageProfile": {"osDisk": {"vhd": {"uri": "https://sa/vhds/os.vhd"}}}},
         "osDisk is an unmanaged VHD"),
    Case(security.vm_agent, VM, GOOD_VM,
         changed(GOOD_VM, lambda p: p["osProfile"]["linuxConfiguration"].update(
             provisionVMAgent=False)), "linuxConfiguration.provisionVMAgent is False"),
    Case(security.vm_no_plaintext_secrets, VM,
         changed(GOOD_VM, lambda p: p["osProfile"].update(customData=b64(CLOUD_INIT))),
         changed(GOOD_VM, lambda p: p["osProfile"].update(customData=b64(LEAKY_INIT))),
         "osProfile.customData contains what looks like a credential (password or key "
         "assignment)"),
    Case(security.disk_no_public_access, DISK,
         {"publicNetworkAccess": "Disabled", "networkAccessPolicy": "DenyAll"},
         {"creationData": {"createOption": "Empty"}, "diskSizeGB": 64},
         "networkAccessPolicy is not set (AllowAll)"),
    Case(security.rbac_no_wildcard_custom_roles, ROLE_DEFINITION,
         {"permissions": [{"actions": ["Microsoft.Compute/virtualMachines/read"]}]},
         {"permissions": WILDCARD}, "actions include '*'"),
    Case(security.apim_tls, API_MANAGEMENT, GOOD_APIM,
         changed(GOOD_APIM, lambda p: p["customProperties"].update({
             "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls11": "True"})),
         "customProperties enable Protocols.Tls11"),
    Case(security.apim_managed_identity, API_MANAGEMENT, GOOD_APIM,
         changed(GOOD_APIM, lambda p: p.pop("identity")), "identity.type is None"),
    Case(security.apim_https_only, API, {"protocols": ["https"]},
         {"protocols": ["http", "https"]}, "protocols are http, https"),
    Case(security.apim_product_subscription, PRODUCT, {"subscriptionRequired": True},
         {"subscriptionRequired": False}, "subscriptionRequired is False"),
    Case(security.apim_product_approval, PRODUCT,
         {"subscriptionRequired": True, "approvalRequired": True},
         {"subscriptionRequired": True}, "approvalRequired is not True"),
    Case(security.apim_policy_base, PRODUCT_POLICY, {"format": "xml", "value": BASE_POLICY},
         {"format": "xml", "value": BASE_POLICY.replace("<outbound><base /></outbound>",
                                                        "<outbound></outbound>")},
         "the outbound section has no <base />"),
    Case(security.apim_cors_no_wildcard, PRODUCT_POLICY, {"value": CORS.format(origin="https://app")},
         {"value": CORS.format(origin="*")}, "allows origin '*'"),
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
    # gpustack-aks-max-pods is a stack rule: its passing and failing cases are the max_pods
    # tests below, run with check_stack.
    stack_rules = {security.aks_max_pods.name}
    assert {c.policy.name for c in CASES} | stack_rules == {p.name for p in security.POLICIES}
    assert not stack_rules & {c.policy.name for c in CASES}


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


@pytest.fixture
def a1_v2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard_A1_v2 is in the catalog and cannot encrypt at host."""
    lookup = rulebook.size_facts.__wrapped__
    small = dataclasses.replace(catalog.lookup("Standard_D2s_v5"), name="Standard_A1_v2",
                                accelerated_networking=False, encryption_at_host=False)
    monkeypatch.setattr(rulebook, "size_facts",
                        lambda size: small if size == "Standard_A1_v2" else lookup(size))


@pytest.mark.usefixtures("a1_v2")
@pytest.mark.parametrize("size", ["Standard_A1_v2", "Standard_Z99_unknown"])
def test_encryption_at_host_is_not_demanded_of_sizes_that_cannot_or_are_unknown(size: str) -> None:
    vm = {**GOOD_VM, "hardwareProfile": {"vmSize": size}, "securityProfile": {}}
    assert check_resource(security.vm_encryption_at_host, VM, vm) == []
    pool = {**GOOD_AGENT_POOL, "vmSize": size, "enableEncryptionAtHost": False}
    assert check_resource(security.aks_encryption_at_host, AGENT_POOL, pool) == []


def test_inline_system_pool_is_held_to_encryption_at_host() -> None:
    cluster = changed(GOOD_CLUSTER, lambda p: p["agentPoolProfiles"][0].pop(
        "enableEncryptionAtHost"))
    (message,) = check_resource(security.aks_encryption_at_host, CLUSTER, cluster)
    assert "inline node pool system (Standard_D4ds_v5)" in message


def test_basic_registry_is_told_to_move_to_premium_and_spared_premium_only_rules() -> None:
    basic = {"sku": {"name": "Basic"}, "adminUserEnabled": False}
    (message,) = check_resource(security.acr_public_network_access, REGISTRY, basic)
    assert "Basic SKU cannot disable it; use the Premium SKU" in message
    for policy in (security.acr_export_disabled, security.acr_premium_resilience,
                   security.acr_quarantine):
        assert check_resource(policy, REGISTRY, basic) == []


def max_pods_found(*resources: Declared) -> list[tuple[str, str | None]]:
    return check_stack(security.aks_max_pods, resources)


def test_max_pods_below_the_minimum_is_reported_on_a_separate_pool() -> None:
    assert max_pods_found(Declared(AGENT_POOL, "gpu", {**GOOD_AGENT_POOL, "maxPods": 50})) == []
    ((message, urn),) = max_pods_found(Declared(AGENT_POOL, "gpu",
                                                {**GOOD_AGENT_POOL, "maxPods": 30}))
    assert "allows 30 pods per node; allow at least 50" in message
    assert urn == Declared(AGENT_POOL, "gpu").urn


def test_max_pods_default_counts_only_where_the_cluster_plugin_is_known() -> None:
    unset = changed(GOOD_CLUSTER, lambda p: p["agentPoolProfiles"][0].pop("maxPods"))
    ((message, _),) = max_pods_found(Declared(CLUSTER, "aks", unset))
    assert "allows 30 pods" in message
    overlay = changed(unset, lambda p: p["networkProfile"].update(networkPluginMode="overlay"))
    assert max_pods_found(Declared(CLUSTER, "aks", overlay)) == []
    assert max_pods_found(Declared(AGENT_POOL, "gpu", GOOD_AGENT_POOL)) == []


# Before: a separate AgentPool (how GPU pools are declared) never got Azure CNI's default of 30
# pods, so a GPU pool under a node-subnet CNI cluster that left maxPods out passed.
def test_separate_pool_takes_the_low_default_of_the_cluster_it_names() -> None:
    cni = Declared(CLUSTER, "aks", GOOD_CLUSTER)
    pool = Declared(AGENT_POOL, "gpu", {**GOOD_AGENT_POOL, "resourceName": "aks-1234"},
                    deps={"resourceName": ["aks"]})
    ((message, urn),) = max_pods_found(cni, pool)
    assert message.startswith("node pool gpu allows 30 pods per node")
    assert urn == pool.urn
    overlay = Declared(CLUSTER, "aks", changed(
        GOOD_CLUSTER, lambda p: p["networkProfile"].update(networkPluginMode="overlay")))
    assert max_pods_found(overlay, pool) == []
    # By ARM name when no dependency links them (a cluster declared elsewhere in the program).
    by_name = Declared(AGENT_POOL, "gpu", {**GOOD_AGENT_POOL, "resourceName": "aks"})
    assert len(max_pods_found(Declared(CLUSTER, "aks", {**GOOD_CLUSTER, "resourceName": "aks"}),
                              by_name)) == 1


def test_max_pods_unknown_during_preview_is_not_passed_silently() -> None:
    pool = Declared(AGENT_POOL, "gpu", {**GOOD_AGENT_POOL, "maxPods": UNKNOWN_NUMBER_VALUE})
    low = Declared(AGENT_POOL, "cpu", {**GOOD_AGENT_POOL, "maxPods": 30})
    found: list[tuple[str, str | None]] = []
    with pytest.raises(UnknownValueError):
        security.aks_max_pods.validate(stack_args([low, pool]),
                                       lambda m, u=None: found.append((m, u)))
    assert [u for _, u in found] == [low.urn]  # the known pool is still reported


def test_ephemeral_os_disk_is_not_demanded_where_the_disk_does_not_fit() -> None:
    big = changed(GOOD_CLUSTER, lambda p: p["agentPoolProfiles"][0].update(
        osDiskType="Managed", osDiskSizeGB=256))
    assert check_resource(security.aks_ephemeral_os_disk, CLUSTER, big) == []
    no_temp_disk = {**GOOD_AGENT_POOL, "vmSize": "Standard_D4s_v5", "osDiskType": "Managed"}
    assert check_resource(security.aks_ephemeral_os_disk, AGENT_POOL, no_temp_disk) == []


def test_storage_local_user_resource_is_reported() -> None:
    (message,) = check_resource(security.storage_local_users_disabled, LOCAL_USER,
                                {"username": "sftpuser", "hasSshPassword": True})
    assert "local user 'sftpuser'" in message


def test_secret_without_expiry_and_extension_settings_with_keys_are_reported() -> None:
    (message,) = check_resource(security.keyvault_expiry, SECRET, {"properties": {"value": "x"}})
    assert "the secret has no expiry" in message
    assert check_resource(security.keyvault_expiry, SECRET,
                          {"properties": {"attributes": {"expires": 1893456000}}}) == []
    sas = "?sv=2024&sig=abcdefghijklmnopqrstuvwxyz123"
    leaky = {"settings": {"commandToExecute": f"azcopy copy 'https://sa.blob/c{sas}' /data"}}
    (message,) = check_resource(security.vm_no_plaintext_secrets, VM_EXTENSION, leaky)
    assert "settings contains what looks like a credential (SAS signature)" in message
    assert "abcdefghijklmnop" not in message  # the secret itself is never echoed
    safe = {"settings": {"commandToExecute": "bash setup.sh"},
            "protectedSettings": {"commandToExecute": "password=Sup3rSecretValue"}}
    assert check_resource(security.vm_no_plaintext_secrets, VM_EXTENSION, safe) == []


def test_secret_references_in_custom_data_are_not_credentials() -> None:
    init = "#cloud-config\nruncmd:\n- export password=$(az keyvault secret show)\n"
    vm = changed(GOOD_VM, lambda p: p["osProfile"].update(customData=b64(init)))
    assert check_resource(security.vm_no_plaintext_secrets, VM, vm) == []


# Before: `\b` before the name missed DB_PASSWORD=..., AWS_SECRET_ACCESS_KEY=... and
# AZURE_CLIENT_SECRET=... (an underscore is a word character), and JSON settings missed
# "password": "..." (the closing quote sits between the name and the colon) and camelCase keys.
@pytest.mark.parametrize(("init", "kind"), [
    ("export DB_PASSWORD=Sup3rS3cretPassw0rd\n", "password or key assignment"),
    ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
     "password or key assignment"),
    ("AZURE_CLIENT_SECRET=abc~defghijklmnopqrst\n", "password or key assignment"),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n", "AWS access key ID"),
])
def test_credentials_in_environment_style_names_are_found_in_custom_data(init: str,
                                                                        kind: str) -> None:
    vm = changed(GOOD_VM, lambda p: p["osProfile"].update(customData=b64(init)))
    (message,) = check_resource(security.vm_no_plaintext_secrets, VM, vm)
    assert f"osProfile.customData contains what looks like a credential ({kind})" in message


@pytest.mark.parametrize(("settings", "kind"), [
    ({"password": "Sup3rS3cretPassw0rd"}, "password or key assignment"),
    ({"adminPassword": "Sup3rS3cretPassw0rd"}, "secret setting"),
    ({"fileUris": ["https://sa.blob.core.windows.net/s/setup.sh"], "storageAccountName": "sa",
      "storageAccountKey": "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="}, "secret setting"),
])
def test_credentials_under_json_keys_in_extension_settings_are_found(
        settings: dict[str, Any], kind: str) -> None:
    (message,) = check_resource(security.vm_no_plaintext_secrets, VM_EXTENSION,
                                {"settings": settings})
    assert f"settings contains what looks like a credential ({kind})" in message


def test_references_and_flags_named_like_secrets_are_not_credentials() -> None:
    init = "DB_PASSWORD=$(az keyvault secret show)\nPASSWORD_FILE=/etc/secret/pw\n"
    vm = changed(GOOD_VM, lambda p: p["osProfile"].update(customData=b64(init)))
    assert check_resource(security.vm_no_plaintext_secrets, VM, vm) == []
    settings = {"adminPassword": "${ADMIN_PW}", "disablePasswordAuthentication": True,
                "secretsManagementSettings": {"observedCertificates": ["https://kv/secrets/x"]}}
    assert check_resource(security.vm_no_plaintext_secrets, VM_EXTENSION,
                          {"settings": settings}) == []

def test_insecure_addons_are_matched_case_insensitively() -> None:
    cluster = changed(GOOD_CLUSTER, lambda p: p["addonProfiles"].update(
        KubeDashboard={"enabled": True}))
    (message,) = check_resource(security.aks_no_insecure_addons, CLUSTER, cluster)
    assert "kubeDashboard is enabled" in message


def test_defender_profile_is_judged_during_preview_with_an_unknown_workspace_id() -> None:
    cluster = changed(GOOD_CLUSTER, lambda p: p["securityProfile"]["defender"].update(
        logAnalyticsWorkspaceResourceId=UNKNOWN_STRING_VALUE))
    assert check_resource(security.aks_defender_profile, CLUSTER, cluster) == []
    no_workspace = changed(GOOD_CLUSTER, lambda p: p["securityProfile"]["defender"].pop(
        "logAnalyticsWorkspaceResourceId"))
    (message,) = check_resource(security.aks_defender_profile, CLUSTER, no_workspace)
    assert "names no logAnalyticsWorkspaceResourceId" in message
