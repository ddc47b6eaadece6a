"""Security rules: storage, Key Vault, AKS, VMs and scale sets, NSGs, role assignments.

Mandatory: each guards against exposure (public endpoints, keys, passwords, open ports) or
privilege that Azure's secure baseline and this project's defaults rule out.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re

from pulumi_policy import Severity
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError

from gpustack import facts
from policies.rulebook import (
    ADVISORY,
    MANDATORY,
    PRODUCTION_LIKE,
    UNKNOWNS,
    Deferred,
    Report,
    Resource,
    Rule,
    Stack,
    StackReport,
    api_version,
    arm_leaf,
    carries_ports,
    dig,
    environment_scope,
    from_internet,
    given,
    has_no_blob_service,
    in_scope,
    is_windows,
    items,
    known_size,
    lower,
    names,
    node_pools,
    number,
    one_of,
    plain,
    policy_fact,
    port_ranges,
    resource_rule,
    stack_rule,
    taints,
    vm_profile,
    vm_size,
    zoneless_region,
)

STORAGE = "storage:StorageAccount"
VAULT = "keyvault:Vault"
CLUSTER = "containerservice:ManagedCluster"
AGENT_POOL = "containerservice:AgentPool"
VM = "compute:VirtualMachine"
SCALE_SET = "compute:VirtualMachineScaleSet"
NIC = "network:NetworkInterface"
NSG = "network:NetworkSecurityGroup"
SECURITY_RULE = "network:SecurityRule"
PUBLIC_IP = "network:PublicIPAddress"
ROLE_ASSIGNMENT = "authorization:RoleAssignment"
REGISTRY = "containerregistry:Registry"
API_MANAGEMENT = "apimanagement:ApiManagementService"
API = "apimanagement:Api"
PRODUCT = "apimanagement:Product"
PRODUCT_POLICY = "apimanagement:ProductPolicy"
API_POLICY = "apimanagement:ApiPolicy"
BLOB_CONTAINER = "storage:BlobContainer"
LOCAL_USER = "storage:LocalUser"
SECRET = "keyvault:Secret"
KEY = "keyvault:Key"
DISK = "compute:Disk"
VM_EXTENSION = "compute:VirtualMachineExtension"
ROLE_DEFINITION = "authorization:RoleDefinition"
# AKS's OS disk size when a pool leaves os_disk_size_gb unset (for most sizes).
# Source: https://learn.microsoft.com/azure/aks/concepts-storage#ephemeral-os-disk
AKS_DEFAULT_OS_DISK_GB = 128

FIREWALL_SETTING = {
    "allowFirewalledPublicAccess": {
        "type": "boolean",
        "default": False,
        "description": "Accept a public endpoint whose firewall denies by default "
        "(explicit loosening, e.g. operator IPs in dev).",
    }
}

# --- storage -------------------------------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-storage-public-network-access",
        area="security",
        title="Storage accounts disable public network access",
        why="Model weights and datasets must be reachable only through private endpoints; a "
        "public endpoint exposes them to the Internet, where one leaked token is enough.",
        fix="Set public_network_access='Disabled' and reach the account through a private "
        "endpoint; in dev, allowFirewalledPublicAccess accepts a firewall that denies by default.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/storage/common/storage-network-security",
            "https://learn.microsoft.com/azure/storage/common/storage-private-endpoints",
        ),
        mirrors=("CKV_AZURE_59",),
        settings=FIREWALL_SETTING,
    ),
    STORAGE,
)
def storage_public_network_access(account: Resource, report: Report) -> None:
    access = account.get("publicNetworkAccess")
    # SecuredByPerimeter: a network security perimeter denies public traffic unless its own
    # access rules allow it; Azure Policy's "disable public network access" accepts it.
    if one_of(access, *policy_fact("storage_public_access")["closed"]):
        return
    default_action = account.get("networkRuleSet", "defaultAction")
    if account.config["allowFirewalledPublicAccess"] and one_of(default_action, "Deny"):
        return
    shown = "not set (Azure's default is Enabled)" if access is None else repr(access)
    report(
        f"publicNetworkAccess is {shown} (networkRuleSet.defaultAction {default_action!r}); "
        "set public_network_access='Disabled'"
    )


@resource_rule(
    Rule(
        id="gpustack-storage-network-default-deny",
        area="security",
        title="Storage account firewalls deny by default",
        why="With defaultAction Allow every network can reach the account whenever public "
        "access is on; Deny limits it to private endpoints, listed VNets and IP rules.",
        fix="Set network_rule_set=NetworkRuleSetArgs(default_action='Deny', bypass='None' or "
        "'AzureServices').",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/storage/common/storage-network-security",),
        mirrors=("Azure.Storage.Firewall", "CKV_AZURE_35"),
    ),
    STORAGE,
)
def storage_network_default_deny(account: Resource, report: Report) -> None:
    action = account.get("networkRuleSet", "defaultAction")
    if not one_of(action, "Deny"):
        shown = "not set (Azure's default is Allow)" if action is None else repr(action)
        report(f"networkRuleSet.defaultAction is {shown}; set default_action='Deny'")


@resource_rule(
    Rule(
        id="gpustack-storage-shared-key-disabled",
        area="security",
        title="Storage accounts disable Shared Key authorization",
        why="Account keys grant full access, never expire and bypass Entra ID audit; BlobFuse2 "
        "and workloads authenticate with managed identities instead.",
        fix="Set allow_shared_key_access=False and grant Storage Blob Data roles to identities.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/storage/common/shared-key-authorization-prevent",
        ),
        mirrors=("Azure.Storage.LocalAuth", "CKV2_AZURE_40"),
    ),
    STORAGE,
)
def storage_shared_key_disabled(account: Resource, report: Report) -> None:
    allowed = account.get("allowSharedKeyAccess")
    if allowed is not False:
        shown = "not set (Azure's default allows it)" if allowed is None else repr(allowed)
        report(f"allowSharedKeyAccess is {shown}; set allow_shared_key_access=False")


@resource_rule(
    Rule(
        id="gpustack-storage-min-tls",
        area="security",
        title="Storage accounts require TLS 1.2 or later",
        why="TLS 1.0 and 1.1 have known weaknesses and are being retired by Azure Storage.",
        fix="Set minimum_tls_version='TLS1_2'.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/storage/common/transport-layer-security-configure-minimum-version",
        ),
        mirrors=("Azure.Storage.MinTLS", "CKV_AZURE_44"),
    ),
    STORAGE,
)
def storage_min_tls(account: Resource, report: Report) -> None:
    version = account.get("minimumTlsVersion")
    if not one_of(version, "TLS1_2", "TLS1_3"):
        shown = "not set (the API's default is TLS1_0)" if version is None else repr(version)
        report(f"minimumTlsVersion is {shown}; set minimum_tls_version='TLS1_2'")


@resource_rule(
    Rule(
        id="gpustack-storage-https-only",
        area="security",
        title="Storage accounts accept HTTPS only",
        why="Plain HTTP sends data and SAS tokens in clear text.",
        fix="Leave enable_https_traffic_only unset (Azure's default is true) or set it to True.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/storage/common/storage-require-secure-transfer",
        ),
        mirrors=("Azure.Storage.SecureTransfer", "CKV_AZURE_3"),
    ),
    STORAGE,
)
def storage_https_only(account: Resource, report: Report) -> None:
    https_only = account.get("enableHttpsTrafficOnly")
    if https_only is None:
        defaults = policy_fact("arm_defaults")
        pinned = api_version(account.type)
        since = str(defaults["storage_https_only_since_api"])
        if pinned is not None and pinned < since:
            report(f"enableHttpsTrafficOnly is not set and API version {pinned} defaults it to "
                   f"false (true only since {since}); set enable_https_traffic_only=True")
            return
        https_only = defaults["storage_https_only"]
    if https_only is not True:
        report(f"enableHttpsTrafficOnly is {https_only!r}; set enable_https_traffic_only=True")


@resource_rule(
    Rule(
        id="gpustack-storage-blob-public-access",
        area="security",
        title="Storage accounts forbid anonymous blob access",
        why="allowBlobPublicAccess lets any container be made anonymously readable, one "
        "setting away from publishing models or datasets.",
        fix="Set allow_blob_public_access=False.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/storage/blobs/anonymous-read-access-prevent",
        ),
        mirrors=("Azure.Storage.BlobPublicAccess", "CKV_AZURE_190", "CKV2_AZURE_47"),
    ),
    STORAGE,
)
def storage_blob_public_access(account: Resource, report: Report) -> None:
    if has_no_blob_service(account):
        return  # a FileStorage account has no blobs to expose
    allowed = account.get("allowBlobPublicAccess")
    if allowed is not False:
        shown = "not set" if allowed is None else repr(allowed)
        report(f"allowBlobPublicAccess is {shown}; set allow_blob_public_access=False")


@resource_rule(
    Rule(
        id="gpustack-storage-cross-tenant-replication",
        area="security",
        title="Storage accounts do not replicate to other tenants",
        why="Object replication to an account in another Entra tenant copies data outside the "
        "organisation's control.",
        fix="Leave allow_cross_tenant_replication unset or set it to False.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/storage/blobs/object-replication-prevent-cross-tenant-policies",
        ),
    ),
    STORAGE,
)
def storage_cross_tenant_replication(account: Resource, report: Report) -> None:
    if account.get("allowCrossTenantReplication") is True:
        report("allowCrossTenantReplication is True; set allow_cross_tenant_replication=False")


# --- Key Vault -----------------------------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-keyvault-rbac-authorization",
        area="security",
        title="Key Vaults use the Azure RBAC permission model",
        why="Access policies grant vault-wide rights outside Azure RBAC; RBAC scopes roles to "
        "one secret and shows up in access reviews.",
        fix="Set properties.enable_rbac_authorization=True and assign Key Vault data roles.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/key-vault/general/rbac-guide",),
        mirrors=("Azure.KeyVault.RBAC",),
    ),
    VAULT,
)
def keyvault_rbac_authorization(vault: Resource, report: Report) -> None:
    enabled = vault.get("properties", "enableRbacAuthorization")
    pinned = api_version(vault.type)
    if enabled is None and pinned is not None and (
        pinned >= str(policy_fact("arm_defaults")["key_vault_rbac_default_since_api"])
    ):
        return  # from this API version on, a new vault defaults to Azure RBAC
    if enabled is not True:
        shown = "not set (access policies)" if enabled is None else repr(enabled)
        report(f"properties.enableRbacAuthorization is {shown}; set it to True")


@resource_rule(
    Rule(
        id="gpustack-keyvault-purge-protection",
        area="security",
        title="Key Vaults have purge protection",
        why="Without it a deleted vault or key can be purged before the retention period ends, "
        "destroying the keys that encrypt stored data.",
        fix="Set properties.enable_purge_protection=True (it cannot be turned off again).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview",),
        mirrors=("Azure.KeyVault.PurgeProtect", "CKV_AZURE_110"),
    ),
    VAULT,
)
def keyvault_purge_protection(vault: Resource, report: Report) -> None:
    enabled = vault.get("properties", "enablePurgeProtection")
    if enabled is not True:
        shown = "not set" if enabled is None else repr(enabled)
        report(f"properties.enablePurgeProtection is {shown}; set it to True")


@resource_rule(
    Rule(
        id="gpustack-keyvault-soft-delete-retention",
        area="security",
        title="Key Vaults keep deleted objects long enough to recover them",
        why="Soft delete is the only way back from an accidental or malicious delete; the "
        "retention window is how long the team has to notice.",
        fix="Keep soft delete on and set properties.soft_delete_retention_in_days to at least "
        "the configured minimum (7-90).",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview",),
        mirrors=("Azure.KeyVault.SoftDelete", "CKV_AZURE_42", "CKV_AZURE_111"),
        settings={
            "minimumRetentionDays": {
                "type": "integer",
                "minimum": 7,
                "maximum": 90,
                "default": 7,
                "description": "Fewest days a deleted vault object must be kept.",
            }
        },
    ),
    VAULT,
)
def keyvault_soft_delete_retention(vault: Resource, report: Report) -> None:
    if vault.get("properties", "enableSoftDelete") is False:
        report("properties.enableSoftDelete is False; remove it (soft delete is always on)")
        return
    days = number(vault.get("properties", "softDeleteRetentionInDays"))
    if days is None:
        days = float(policy_fact("arm_defaults")["key_vault_soft_delete_days"])
    minimum = vault.config["minimumRetentionDays"]
    if days < minimum:
        report(f"softDeleteRetentionInDays is {days:g}; keep at least {minimum:g} days")


@resource_rule(
    Rule(
        id="gpustack-keyvault-public-network-access",
        area="security",
        title="Key Vaults disable public network access",
        why="Secrets and keys should be reachable only through a private endpoint.",
        fix="Set properties.public_network_access='Disabled'; in dev, "
        "allowFirewalledPublicAccess accepts network_acls with default_action='Deny'.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/key-vault/general/network-security",),
        mirrors=("Azure.KeyVault.Firewall", "CKV_AZURE_189", "CKV_AZURE_109"),
        settings=FIREWALL_SETTING,
    ),
    VAULT,
)
def keyvault_public_network_access(vault: Resource, report: Report) -> None:
    access = vault.get("properties", "publicNetworkAccess")
    if one_of(access, "Disabled"):
        return
    default_action = vault.get("properties", "networkAcls", "defaultAction")
    if vault.config["allowFirewalledPublicAccess"] and one_of(default_action, "Deny"):
        return
    shown = "not set (Azure's default is Enabled)" if access is None else repr(access)
    report(
        f"properties.publicNetworkAccess is {shown} (networkAcls.defaultAction "
        f"{default_action!r}); set it to 'Disabled'"
    )


# --- AKS -----------------------------------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-aks-local-accounts-disabled",
        area="security",
        title="AKS clusters disable local accounts",
        why="The local cluster-admin credential bypasses Entra ID, cannot be audited per user "
        "and never expires.",
        fix="Set disable_local_accounts=True (needs Entra ID integration).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/manage-local-accounts-managed-azure-ad",),
        mirrors=("Azure.AKS.LocalAccounts", "CKV_AZURE_141"),
    ),
    CLUSTER,
)
def aks_local_accounts_disabled(cluster: Resource, report: Report) -> None:
    disabled = cluster.get("disableLocalAccounts")
    if disabled is not True:
        shown = "not set" if disabled is None else repr(disabled)
        report(f"disableLocalAccounts is {shown}; set disable_local_accounts=True")


@resource_rule(
    Rule(
        id="gpustack-aks-entra-azure-rbac",
        area="security",
        title="AKS clusters authenticate with Entra ID and authorize with Azure RBAC",
        why="Entra ID sign-in with Azure RBAC puts cluster access in the same role assignments, "
        "reviews and conditional access as the rest of Azure.",
        fix="Set aad_profile=ManagedClusterAADProfileArgs(managed=True, enable_azure_rbac=True) "
        "and leave enable_rbac unset or True.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/manage-azure-rbac",),
        mirrors=("Azure.AKS.ManagedAAD", "Azure.AKS.AzureRBAC", "Azure.AKS.UseRBAC", "CKV_AZURE_5"),
    ),
    CLUSTER,
)
def aks_entra_azure_rbac(cluster: Resource, report: Report) -> None:
    problems = []
    if cluster.get("enableRBAC") is False:
        problems.append("enableRBAC is False")
    profile = cluster.get("aadProfile")
    if profile is None:
        problems.append("aadProfile is not set (no Entra ID integration)")
    else:
        if dig(profile, "managed") is False:
            problems.append("aadProfile.managed is False (legacy Entra ID integration)")
        if dig(profile, "enableAzureRBAC") is not True:
            problems.append("aadProfile.enableAzureRBAC is not True")
    if problems:
        report("; ".join(problems))


@resource_rule(
    Rule(
        id="gpustack-aks-network-policy",
        area="security",
        title="AKS clusters enforce Kubernetes network policies",
        why="Without a network policy engine every pod can reach every other pod, including "
        "other teams' training jobs and the GPU Operator's components.",
        fix="Set network_profile.network_policy to 'azure', 'calico' or 'cilium'.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/use-network-policies",),
        mirrors=("Azure.AKS.NetworkPolicy", "CKV_AZURE_7"),
    ),
    CLUSTER,
)
def aks_network_policy(cluster: Resource, report: Report) -> None:
    engine = cluster.get("networkProfile", "networkPolicy")
    if not one_of(engine, "azure", "calico", "cilium"):
        shown = "not set (no enforcement)" if engine is None else repr(engine)
        report(f"networkProfile.networkPolicy is {shown}; use 'azure', 'calico' or 'cilium'")


@resource_rule(
    Rule(
        id="gpustack-aks-api-server-access",
        area="security",
        title="AKS API servers are private or limited to authorized IP ranges",
        why="A public API server open to every address is one stolen kubeconfig away from "
        "compromise, and is scanned continuously.",
        fix="Set api_server_access_profile.enable_private_cluster=True, or list the operator "
        "CIDRs in authorized_ip_ranges (never 0.0.0.0/0).",
        severity=Severity.CRITICAL,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/aks/private-clusters",
            "https://learn.microsoft.com/azure/aks/api-server-authorized-ip-ranges",
        ),
        mirrors=("Azure.AKS.AuthorizedIPs", "CKV_AZURE_6", "CKV_AZURE_115"),
    ),
    CLUSTER,
)
def aks_api_server_access(cluster: Resource, report: Report) -> None:
    profile = cluster.get("apiServerAccessProfile")
    if dig(profile, "enablePrivateCluster") is True:
        return
    # An operator range computed from another resource is unknown during a preview: the known
    # ranges are still judged, and the unknown one is reported afterwards.
    deferred = Deferred()
    ranges = [r for r in deferred.each(dig(profile, "authorizedIPRanges")) if isinstance(r, str)]
    if not ranges and deferred.error is None:
        report("the API server is public and authorizedIPRanges is empty; make the cluster "
               "private or list the operator CIDRs")
        return
    open_ranges = [r for r in ranges if _is_everyone(r)]
    if open_ranges:
        report(f"authorizedIPRanges includes {names(open_ranges)}, which admits every address")
    elif _together_everyone(ranges):
        report(f"authorizedIPRanges {names(ranges)} together admit every IPv4 address")
    deferred.finish()


def _is_everyone(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _together_everyone(cidrs: list[str]) -> bool:
    """True when IPv4 ranges such as 0.0.0.0/1 and 128.0.0.0/1 add up to every address."""
    networks = []
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            continue
        if isinstance(network, ipaddress.IPv4Network):
            networks.append(network)
    return list(ipaddress.collapse_addresses(networks)) == [ipaddress.ip_network("0.0.0.0/0")]


@resource_rule(
    Rule(
        id="gpustack-aks-managed-identity",
        area="security",
        title="AKS clusters use a managed identity, not a service principal",
        why="Service principal secrets expire, are stored in the cluster and must be rotated by "
        "hand; managed identities have no secret to leak.",
        fix="Set identity=ManagedClusterIdentityArgs(type='SystemAssigned' or 'UserAssigned') "
        "and remove service_principal_profile.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/use-managed-identity",),
        mirrors=("Azure.AKS.ManagedIdentity",),
    ),
    CLUSTER,
)
def aks_managed_identity(cluster: Resource, report: Report) -> None:
    identity_type = cluster.get("identity", "type")
    client_id = cluster.get("servicePrincipalProfile", "clientId")
    if client_id is not None and not one_of(client_id, "msi"):
        report("servicePrincipalProfile sets a service principal; use a managed identity")
    elif not one_of(identity_type, "SystemAssigned", "UserAssigned"):
        shown = "not set" if identity_type is None else repr(identity_type)
        report(f"identity.type is {shown}; use 'SystemAssigned' or 'UserAssigned'")


@resource_rule(
    Rule(
        id="gpustack-aks-auto-upgrade-channel",
        area="security",
        title="AKS clusters take Kubernetes patches automatically",
        why="Without an auto-upgrade channel, clusters fall behind on CVE fixes and then out "
        "of AKS support.",
        fix="Set auto_upgrade_profile.upgrade_channel to 'patch' or 'stable' (with a "
        "maintenance window); 'node-image' is legacy, use node_os_upgrade_channel for nodes.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/auto-upgrade-cluster",),
        mirrors=("Azure.AKS.AutoUpgrade", "CKV_AZURE_171"),
    ),
    CLUSTER,
)
def aks_auto_upgrade_channel(cluster: Resource, report: Report) -> None:
    channel = cluster.get("autoUpgradeProfile", "upgradeChannel")
    channels = facts.load("aks_versions")["auto_upgrade_channels"]
    usable = set(channels["values"]) - {channels["default"], *channels["legacy"]}
    if not one_of(channel, *usable):
        shown = "not set (none)" if channel is None else repr(channel)
        report(f"autoUpgradeProfile.upgradeChannel is {shown}; use one of {names(sorted(usable))}")


@resource_rule(
    Rule(
        id="gpustack-aks-node-os-upgrade-channel",
        area="security",
        title="AKS node images receive security updates",
        why="Node OS patches close kernel and driver CVEs; 'None' and 'Unmanaged' leave it to "
        "someone remembering.",
        fix="Set auto_upgrade_profile.node_os_upgrade_channel='NodeImage' (Azure Linux GPU "
        "nodes do not support SecurityPatch).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/auto-upgrade-node-os-image",),
        mirrors=("Azure.AKS.NodeAutoUpgrade",),
    ),
    CLUSTER,
)
def aks_node_os_upgrade_channel(cluster: Resource, report: Report) -> None:
    channel = cluster.get("autoUpgradeProfile", "nodeOSUpgradeChannel")
    if channel is not None and not one_of(channel, "NodeImage", "SecurityPatch"):
        report(f"autoUpgradeProfile.nodeOSUpgradeChannel is {channel!r}; use 'NodeImage'")


@resource_rule(
    Rule(
        id="gpustack-aks-supported-version",
        area="security",
        title="AKS clusters and node pools run a supported Kubernetes version",
        why="Versions outside AKS's N-2 window get no security patches and block upgrades.",
        fix="Set kubernetes_version (and orchestrator_version on pools) to a supported minor "
        "version, or leave it unset for AKS's default.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/supported-kubernetes-versions",),
        mirrors=("Azure.AKS.Version", "Azure.AKS.PoolVersion"),
    ),
    CLUSTER,
    AGENT_POOL,
)
def aks_supported_version(resource: Resource, report: Report) -> None:
    supported = facts.supported_kubernetes_versions()
    versions = []
    if resource.is_a(CLUSTER):
        versions.append(("kubernetesVersion", resource.get("kubernetesVersion")))
    for pool in node_pools(resource):
        versions.append((f"{pool.label} orchestratorVersion", pool.get("orchestratorVersion")))
    for where, version in versions:
        if version is None:
            continue
        minor = ".".join(str(version).split(".")[:2])
        if minor not in supported:
            report(f"{where} is {version!r}; supported minor versions: {names(supported)}")


@resource_rule(
    Rule(
        id="gpustack-aks-azure-policy-addon",
        area="security",
        title="AKS clusters run the Azure Policy add-on",
        why="The add-on enforces pod security and image policies (no privileged pods, approved "
        "registries) inside the cluster, where Pulumi policies cannot reach.",
        fix="Set addon_profiles={'azurepolicy': ManagedClusterAddonProfileArgs(enabled=True)}.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/governance/policy/concepts/policy-for-kubernetes",),
        mirrors=("Azure.AKS.AzurePolicyAddOn", "CKV_AZURE_116"),
    ),
    CLUSTER,
)
def aks_azure_policy_addon(cluster: Resource, report: Report) -> None:
    addons = cluster.get("addonProfiles") or {}
    # Add-on names are case-insensitive in ARM ("azurepolicy" or "azurePolicy").
    enabled = any(
        lower(name) == "azurepolicy" and dig(addons, name, "enabled") is True for name in addons
    )
    if not enabled:
        report("addonProfiles.azurepolicy is not enabled")


@resource_rule(
    Rule(
        id="gpustack-aks-workload-identity",
        area="security",
        title="AKS clusters use workload identity",
        why="Workload identity gives each pod a federated managed identity instead of secrets "
        "in Kubernetes or the node's identity.",
        fix="Set oidc_issuer_profile.enabled=True and security_profile.workload_identity."
        "enabled=True.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/workload-identity-overview",),
    ),
    CLUSTER,
)
def aks_workload_identity(cluster: Resource, report: Report) -> None:
    missing = []
    if cluster.get("oidcIssuerProfile", "enabled") is not True:
        missing.append("oidcIssuerProfile.enabled")
    if cluster.get("securityProfile", "workloadIdentity", "enabled") is not True:
        missing.append("securityProfile.workloadIdentity.enabled")
    if missing:
        report(f"{names(missing)} must be True")


@resource_rule(
    Rule(
        id="gpustack-aks-no-node-public-ip",
        area="security",
        title="AKS nodes have no public IP addresses",
        why="A public IP on a node bypasses the cluster's egress path and exposes its ports; "
        "GPU nodes especially hold model weights and credentials.",
        fix="Leave enable_node_public_ip unset or False on every pool.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/use-node-public-ips",),
        mirrors=("CKV_AZURE_143",),
    ),
    CLUSTER,
    AGENT_POOL,
)
def aks_no_node_public_ip(resource: Resource, report: Report) -> None:
    for pool in node_pools(resource):
        if pool.get("enableNodePublicIP") is True:
            report(f"{pool.label} sets enableNodePublicIP")


# --- VMs and scale sets --------------------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-vm-no-public-ip",
        area="security",
        title="VMs, scale sets and NICs have no public IP addresses",
        why="GPU nodes with public IPs are scanned and attacked within minutes; reach them "
        "through Bastion or a private network and send egress through a NAT gateway.",
        fix="Remove public_ip_address_configuration / public_ip_address from the IP "
        "configurations; use Azure Bastion for access.",
        severity=Severity.CRITICAL,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/bastion/bastion-overview",
            "https://learn.microsoft.com/azure/virtual-network/ip-services/default-outbound-access",
        ),
        mirrors=("Azure.VM.PublicIPAttached", "CKV_AZURE_119", "CKV2_AZURE_39"),
    ),
    VM,
    SCALE_SET,
    NIC,
)
def vm_no_public_ip(resource: Resource, report: Report) -> None:
    # Presence decides, not the value: a public IP's id is unknown until it exists. An IP
    # configuration unknown as a whole is noted after the known ones are judged.
    deferred = Deferred()
    if resource.is_a(NIC):
        for config in deferred.each(resource.get("ipConfigurations")):
            if deferred.check(given, config, "publicIPAddress"):
                report(f"IP configuration {deferred.check(dig, config, 'name')!r} attaches a "
                       "public IP address")
        deferred.finish()
        return
    nics = deferred.each(vm_profile(resource, "networkProfile", "networkInterfaceConfigurations"))
    for nic in nics:
        for config in deferred.each(deferred.check(dig, nic, "ipConfigurations")):
            if deferred.check(given, config, "publicIPAddressConfiguration"):
                report(f"NIC {deferred.check(dig, nic, 'name')!r} IP configuration "
                       f"{deferred.check(dig, config, 'name')!r} creates a public IP address")
    deferred.finish()


def _has_ssh_keys(profile: object) -> bool:
    """True when the OS profile lists SSH keys (a list computed elsewhere counts)."""
    path = ("linuxConfiguration", "ssh", "publicKeys")
    if not given(profile, *path):
        return False
    try:
        return bool(items(dig(profile, *path)))
    except UnknownValueError:
        return True  # the whole list is an Output: keys are given, their values come later


@resource_rule(
    Rule(
        id="gpustack-vm-ssh-keys-only",
        area="security",
        title="Linux VMs and scale sets allow SSH keys only",
        why="Password sign-in is brute-forced; keys (or Entra ID login) are not.",
        fix="Set linux_configuration.disable_password_authentication=True, give ssh public "
        "keys and no admin_password.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/virtual-machines/linux/create-ssh-keys-detailed",),
        mirrors=(
            "Azure.VM.PublicKey",
            "Azure.VMSS.PublicKey",
            "CKV_AZURE_1",
            "CKV_AZURE_49",
            "CKV_AZURE_149",
            "CKV_AZURE_178",
        ),
    ),
    VM,
    SCALE_SET,
)
def vm_ssh_keys_only(resource: Resource, report: Report) -> None:
    profile = vm_profile(resource, "osProfile")
    if profile is None or is_windows(resource):
        return  # attached OS disk or a Windows VM: no Linux sign-in settings to check
    problems = []
    # A generated password (an Output) is unknown during a preview but is still a password.
    if given(profile, "adminPassword"):
        problems.append("osProfile sets adminPassword")
    if dig(profile, "linuxConfiguration", "disablePasswordAuthentication") is not True:
        problems.append("linuxConfiguration.disablePasswordAuthentication is not True")
    if not _has_ssh_keys(profile):
        problems.append("no SSH public keys are set")
    if problems:
        report("; ".join(problems))


@resource_rule(
    Rule(
        id="gpustack-vm-encryption-at-host",
        area="security",
        title="VMs and scale sets encrypt at host where the size supports it",
        why="Encryption at host covers temp disks and disk caches, which platform-managed disk "
        "encryption leaves in clear; GPU nodes cache models and checkpoints there.",
        fix="Set security_profile.encryption_at_host=True (register the EncryptionAtHost "
        "feature on the subscription once).",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/virtual-machines/disk-encryption#encryption-at-host---end-to-end-encryption-for-your-vm-data",),
        mirrors=("CKV_AZURE_97", "CKV_AZURE_151"),
    ),
    VM,
    SCALE_SET,
)
def vm_encryption_at_host(resource: Resource, report: Report) -> None:
    known = known_size(vm_size(resource))
    if known is None or not known.encryption_at_host:
        return  # unknown size (gpustack-vm-size-known says so) or one that cannot encrypt at host
    enabled = vm_profile(resource, "securityProfile", "encryptionAtHost")
    if enabled is not True:
        report(f"securityProfile.encryptionAtHost is {enabled!r}; set it to True")


@resource_rule(
    Rule(
        id="gpustack-vm-managed-identity",
        area="security",
        title="VMs and scale sets have a managed identity",
        why="Nodes reach storage (BlobFuse2), Key Vault and registries as a managed identity; "
        "without one, keys end up on disk.",
        fix="Set identity with type 'UserAssigned' (preferred) or 'SystemAssigned'.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/overview",),
    ),
    VM,
    SCALE_SET,
)
def vm_managed_identity(resource: Resource, report: Report) -> None:
    if resource.is_a(SCALE_SET) and not given(resource.props, "virtualMachineProfile"):
        # A Flexible scale set without a VM profile only groups VMs declared on their own;
        # those VMs carry (and are checked for) their identities.
        return
    identity_type = resource.get("identity", "type")
    if identity_type is None or one_of(identity_type, "None"):
        report(f"identity.type is {identity_type!r}; give the VM a managed identity")


# --- network security groups and public IPs ------------------------------------------------


def _open_management_ports(rule: object) -> list[int]:
    if not from_internet(rule) or not carries_ports(rule):
        return []
    ports = policy_fact("management_ports")["ports"]
    ranges = port_ranges(rule)
    return [port for port in ports if any(low <= port <= high for low, high in ranges)]


@resource_rule(
    Rule(
        id="gpustack-nsg-no-internet-management-ports",
        area="security",
        title="NSGs do not allow management ports from the Internet",
        why="SSH, RDP and WinRM open to the Internet are brute-forced continuously; use Bastion "
        "or just-in-time access.",
        fix="Remove the Allow rule or limit its source to a private range or service tag; "
        "reach machines through Azure Bastion.",
        severity=Severity.CRITICAL,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/defender-for-cloud/just-in-time-access-overview",
            "https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview",
        ),
        mirrors=("CKV_AZURE_9", "CKV_AZURE_10"),
    ),
    NSG,
    SECURITY_RULE,
)
def nsg_no_internet_management_ports(resource: Resource, report: Report) -> None:
    deferred = Deferred()
    rules = [resource.props] if resource.is_a(SECURITY_RULE) else deferred.each(
        resource.get("securityRules"))
    for rule in rules:
        # A rule with a value unknown during a preview (a source from another resource's
        # output) must not hide the known rules' violations.
        ports = deferred.check(_open_management_ports, rule)
        if ports:
            name = dig(rule, "name") or resource.name
            report(f"rule {name!r} allows inbound ports {names(ports)} from the Internet")
    deferred.finish()


@resource_rule(
    Rule(
        id="gpustack-network-public-ip-standard-sku",
        area="security",
        title="Public IP addresses use the Standard SKU",
        why="Basic public IPs were retired on 30 September 2025 and are open by default; "
        "Standard IPs are closed until an NSG allows traffic.",
        fix="Set sku=PublicIPAddressSkuArgs(name='Standard').",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/virtual-network/ip-services/public-ip-basic-upgrade-guidance",
        ),
        mirrors=("Azure.PublicIP.StandardSKU", "Azure.PublicIP.MigrateStandard"),
    ),
    PUBLIC_IP,
)
def public_ip_standard_sku(address: Resource, report: Report) -> None:
    sku = address.get("sku", "name")
    allowed = policy_fact("public_ip")["allowed_skus"]
    if not one_of(sku, *allowed):
        shown = "not set (Basic on older API versions)" if sku is None else repr(sku)
        report(f"sku.name is {shown}; use {names(allowed)}")


# --- container registries and API Management -----------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-acr-admin-user-disabled",
        area="security",
        title="Container registries disable the admin user",
        why="The admin user is one shared username and password with push and pull rights on "
        "every repository; it bypasses Entra ID, per-identity audit and AcrPull scoping.",
        fix="Set admin_user_enabled=False and grant AcrPull (or AcrPush) to managed identities.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/container-registry/container-registry-authentication#admin-account",
        ),
        mirrors=("Azure.ACR.AdminUser", "CKV_AZURE_137"),
    ),
    REGISTRY,
)
def acr_admin_user_disabled(registry: Resource, report: Report) -> None:
    if registry.get("adminUserEnabled") is True:
        report("adminUserEnabled is True; set admin_user_enabled=False")


@resource_rule(
    Rule(
        id="gpustack-acr-anonymous-pull-disabled",
        area="security",
        title="Container registries do not allow anonymous pull",
        why="Anonymous pull lets anyone who can reach the registry download every image, "
        "including model-serving images with weights or credentials baked in.",
        fix="Leave anonymous_pull_enabled unset or set it to False.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/container-registry/anonymous-pull-access",
        ),
        mirrors=("Azure.ACR.AnonymousAccess", "CKV_AZURE_138"),
    ),
    REGISTRY,
)
def acr_anonymous_pull_disabled(registry: Resource, report: Report) -> None:
    if registry.get("anonymousPullEnabled") is True:
        report("anonymousPullEnabled is True; set anonymous_pull_enabled=False")


@resource_rule(
    Rule(
        id="gpustack-acr-public-network-access",
        area="security",
        title="Container registries disable public network access",
        why="Images and the models in them should be pulled only through a private endpoint; "
        "a public registry endpoint is reachable by every stolen token from anywhere.",
        fix="Use the Premium SKU (Basic and Standard registries cannot disable public access "
        "or take private endpoints), set public_network_access='Disabled' and add a private "
        "endpoint with the privatelink.azurecr.io zone.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/container-registry/container-registry-private-link",
        ),
        mirrors=("CKV_AZURE_139", "Azure.ACR.Firewall"),
    ),
    REGISTRY,
)
def acr_public_network_access(registry: Resource, report: Report) -> None:
    access = registry.get("publicNetworkAccess")
    if not one_of(access, "Disabled"):
        shown = "not set (Azure's default is Enabled)" if access is None else repr(access)
        sku = registry.get("sku", "name")
        if isinstance(sku, str) and not one_of(sku, "Premium"):
            report(f"publicNetworkAccess is {shown} and the {sku} SKU cannot disable it; use the "
                   "Premium SKU with public_network_access='Disabled' and a private endpoint")
        else:
            report(f"publicNetworkAccess is {shown}; set public_network_access='Disabled'")


@resource_rule(
    Rule(
        id="gpustack-apim-internal-vnet",
        area="security",
        title="API Management runs in internal VNet mode in production-like environments",
        why="The inference gateway fronts private model endpoints; in internal mode its gateway "
        "and portals have only private addresses, reachable from the VNet and peered networks.",
        fix="Set virtual_network_type='Internal' with virtual_network_configuration on a "
        "dedicated subnet (Developer or Premium tier).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/api-management/api-management-using-with-internal-vnet",
        ),
        mirrors=("CKV_AZURE_107",),
        settings=environment_scope(*PRODUCTION_LIKE),
    ),
    API_MANAGEMENT,
)
def apim_internal_vnet(service: Resource, report: Report) -> None:
    if not in_scope(service.config):
        return
    mode = service.get("virtualNetworkType")
    if not one_of(mode, "Internal"):
        shown = "not set (None: public)" if mode is None else repr(mode)
        report(f"virtualNetworkType is {shown}; use 'Internal' in {service.config['environment']}")
    elif not given(service.props, "virtualNetworkConfiguration", "subnetResourceId"):
        # Only whether a subnet is named: its id is often unknown until the subnet exists.
        report("virtualNetworkType is 'Internal' but virtualNetworkConfiguration names no subnet")


# --- role assignments ----------------------------------------------------------------------

_BROAD_SCOPE = (
    r"^/$",
    r"^/subscriptions/[^/]+/?$",
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/?$",
    r"^/providers/microsoft\.management/managementgroups/[^/]+/?$",
)


@resource_rule(
    Rule(
        id="gpustack-rbac-no-privileged-workload-roles",
        area="security",
        title="Workload identities get no Owner, Contributor or User Access Administrator at "
        "subscription or resource-group scope",
        why="A compromised pod or VM with a privileged role over a whole subscription or group "
        "can take over everything in it; workloads need data-plane roles on one resource.",
        fix="Assign the narrowest built-in role (Storage Blob Data Reader, Key Vault Secrets "
        "User, AcrPull...) scoped to the one resource the workload uses.",
        severity=Severity.CRITICAL,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/role-based-access-control/best-practices",
            "https://learn.microsoft.com/azure/role-based-access-control/built-in-roles",
        ),
        mirrors=("Azure.RBAC.LimitOwner",),
    ),
    ROLE_ASSIGNMENT,
)
def rbac_no_privileged_workload_roles(assignment: Resource, report: Report) -> None:
    role = lower(arm_leaf(assignment.get("roleDefinitionId")))
    if role not in facts.privileged_role_ids():
        return
    principal_type = assignment.get("principalType")
    # Users and groups are people; service principals (managed identities included) and
    # assignments that leave the type to ARM's detection are treated as workloads.
    if principal_type is not None and not one_of(principal_type, "ServicePrincipal"):
        return
    scope = lower(assignment.get("scope"))
    if scope is not None and any(re.match(pattern, scope) for pattern in _BROAD_SCOPE):
        report(f"role {role} is privileged and scoped to {assignment.get('scope')!r}; assign a "
               "narrower role on the resource itself")


# --- storage: containers and local users ----------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-storage-container-private",
        area="security",
        title="Blob containers are private",
        why="A container with Blob or Container access serves its blobs to anyone with the URL, "
        "whatever the account's network rules say once public access is on.",
        fix="Leave public_access unset or set it to 'None' on every BlobContainer.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/storage/blobs/anonymous-read-access-configure",
        ),
        mirrors=("Azure.Storage.BlobAccessType", "CKV_AZURE_34"),
    ),
    BLOB_CONTAINER,
)
def storage_container_private(container: Resource, report: Report) -> None:
    access = container.get("publicAccess")
    if access is not None and not one_of(access, "None"):
        report(f"publicAccess is {access!r}; set public_access='None'")


@resource_rule(
    Rule(
        id="gpustack-storage-local-users-disabled",
        area="security",
        title="Storage accounts disable local users",
        why="Local users sign in to SFTP and SMB with passwords or SSH keys that Entra ID does "
        "not know: no conditional access, no per-identity audit, no expiry.",
        fix="Set is_local_user_enabled=False and declare no storage.LocalUser; reach the data "
        "with managed identities.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/storage/blobs/secure-file-transfer-protocol-support-how-to",),
        mirrors=("CKV_AZURE_244",),
    ),
    STORAGE,
    LOCAL_USER,
)
def storage_local_users_disabled(resource: Resource, report: Report) -> None:
    if resource.is_a(LOCAL_USER):
        user = resource.get("username") or resource.name
        report(f"local user {user!r} signs in outside Entra ID")
        return
    enabled = resource.get("isLocalUserEnabled")
    if enabled is not False:
        shown = "not set" if enabled is None else repr(enabled)
        report(f"isLocalUserEnabled is {shown}; set is_local_user_enabled=False")


# --- Key Vault keys and secrets ------------------------------------------------------------


def _expires(resource: Resource) -> bool:
    # An expiry computed from another value (now + 90 days) is unknown during a preview but set.
    if given(resource.props, "properties", "attributes", "expires"):
        return True
    # A rotation policy's expiryTime gives every new key version an expiry date.
    return given(resource.props, "properties", "rotationPolicy", "attributes", "expiryTime")


@resource_rule(
    Rule(
        id="gpustack-keyvault-expiry",
        area="security",
        title="Key Vault keys and secrets expire",
        why="A credential without an expiry date is valid forever once leaked; an expiry forces "
        "rotation and shows up in Key Vault's near-expiry events.",
        fix="Set properties.attributes.expires (Unix seconds); for keys, a rotation_policy with "
        "attributes.expiry_time (e.g. 'P1Y') gives every version an expiry.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/key-vault/keys/how-to-configure-key-rotation",),
        mirrors=("CKV_AZURE_40", "CKV_AZURE_41"),
    ),
    SECRET,
    KEY,
)
def keyvault_expiry(resource: Resource, report: Report) -> None:
    if not _expires(resource):
        kind = "key" if resource.is_a(KEY) else "secret"
        report(f"the {kind} has no expiry (properties.attributes.expires)")


@resource_rule(
    Rule(
        id="gpustack-keyvault-key-rotation",
        area="security",
        title="Key Vault keys rotate automatically",
        why="Keys that encrypt stored data should roll on a schedule without a person "
        "remembering; Key Vault rotates them from a rotation policy.",
        fix="Set properties.rotation_policy with a lifetime action of type 'rotate' "
        "(time_after_create or time_before_expiry) and attributes.expiry_time.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/key-vault/keys/how-to-configure-key-rotation",),
        mirrors=("Azure.KeyVault.AutoRotationPolicy",),
    ),
    KEY,
)
def keyvault_key_rotation(key: Resource, report: Report) -> None:
    actions = items(key.get("properties", "rotationPolicy", "lifetimeActions"))
    if not any(one_of(dig(action, "action", "type"), "rotate") for action in actions):
        report("properties.rotationPolicy has no 'rotate' lifetime action")


# --- AKS: node pools, add-ons and profiles --------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-aks-encryption-at-host",
        area="security",
        title="AKS node pools encrypt at host where the size supports it",
        why="Node temp disks and OS disk caches hold container layers, model weights and "
        "secrets mounted from Key Vault; encryption at host covers them, platform-managed disk "
        "encryption does not.",
        fix="Set enable_encryption_at_host=True on every pool (register the EncryptionAtHost "
        "feature on the subscription once).",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/enable-host-encryption",),
        mirrors=("CKV_AZURE_227",),
    ),
    CLUSTER,
    AGENT_POOL,
)
def aks_encryption_at_host(resource: Resource, report: Report) -> None:
    for pool in node_pools(resource):
        known = known_size(pool.size)
        if known is None or not known.encryption_at_host:
            continue  # unknown size (gpustack-vm-size-known) or one that cannot encrypt at host
        if pool.get("enableEncryptionAtHost") is not True:
            report(f"{pool.label} ({known.name}) does not set enableEncryptionAtHost")


def _addon(cluster: Resource, wanted: str) -> object | None:
    """An add-on profile by name (ARM compares add-on names case-insensitively)."""
    addons = cluster.get("addonProfiles") or {}
    for name in addons:
        if lower(name) == wanted.lower():
            return dig(addons, name)
    return None


@resource_rule(
    Rule(
        id="gpustack-aks-defender-profile",
        area="security",
        title="AKS clusters run the Microsoft Defender sensor",
        why="The Defender profile collects the runtime events (process, network, Kubernetes "
        "audit) that detect crypto-miners on GPU nodes and container escapes.",
        fix="Set security_profile.defender with security_monitoring.enabled=True and the Log "
        "Analytics workspace id (Defender for Containers enabled on the subscription).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/defender-for-cloud/defender-for-containers-enable",),
        mirrors=("Azure.AKS.DefenderProfile",),
    ),
    CLUSTER,
)
def aks_defender_profile(cluster: Resource, report: Report) -> None:
    defender = cluster.get("securityProfile", "defender")
    if dig(defender, "securityMonitoring", "enabled") is not True:
        report("securityProfile.defender.securityMonitoring.enabled is not True")
    # Only whether the workspace is named: its id is often unknown until the workspace exists.
    elif "logAnalyticsWorkspaceResourceId" not in list(defender or {}):
        report("securityProfile.defender names no logAnalyticsWorkspaceResourceId")


@resource_rule(
    Rule(
        id="gpustack-aks-container-insights",
        area="security",
        title="AKS clusters send container logs to Azure Monitor (Container insights)",
        why="Without container logs and inventory there is no record of what ran on a GPU node "
        "when a job fails, or when a workload misbehaves.",
        fix="Enable the omsagent add-on with the Log Analytics workspace id (and a Container "
        "insights data collection rule).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/azure-monitor/containers/kubernetes-monitoring-enable",),
        mirrors=("Azure.AKS.ContainerInsights", "CKV_AZURE_4"),
    ),
    CLUSTER,
)
def aks_container_insights(cluster: Resource, report: Report) -> None:
    if dig(_addon(cluster, "omsagent"), "enabled") is not True:
        report("addonProfiles.omsagent is not enabled")


@resource_rule(
    Rule(
        id="gpustack-aks-secret-store-rotation",
        area="security",
        title="The Key Vault secrets store CSI driver rotates mounted secrets",
        why="Without rotation a pod keeps the secret version it mounted at start: a rotated or "
        "revoked credential stays live on the node until the pod restarts.",
        fix="Set addonProfiles.azureKeyvaultSecretsProvider.config.enableSecretRotation='true'.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/csi-secrets-store-configuration-options",),
        mirrors=("Azure.AKS.SecretStoreRotation", "CKV_AZURE_172"),
    ),
    CLUSTER,
)
def aks_secret_store_rotation(cluster: Resource, report: Report) -> None:
    addon = _addon(cluster, "azureKeyvaultSecretsProvider")
    if dig(addon, "enabled") is not True:
        return  # the driver is off: nothing is mounted to rotate
    if lower(dig(addon, "config", "enableSecretRotation")) != "true":
        report("azureKeyvaultSecretsProvider is enabled without enableSecretRotation 'true'")


@resource_rule(
    Rule(
        id="gpustack-aks-no-insecure-addons",
        area="security",
        title="AKS clusters run neither HTTP application routing nor the Kubernetes dashboard",
        why="HTTP application routing publishes services on a public DNS zone without TLS and "
        "is retired; the dashboard add-on exposes a privileged UI.",
        fix="Remove the httpApplicationRouting and kubeDashboard add-ons; use the application "
        "routing add-on (ingress_profile.web_app_routing) with an internal controller.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/app-routing-migration",),
        mirrors=("Azure.AKS.HttpAppRouting", "CKV_AZURE_246", "CKV_AZURE_8"),
    ),
    CLUSTER,
)
def aks_no_insecure_addons(cluster: Resource, report: Report) -> None:
    for addon in ("httpApplicationRouting", "kubeDashboard"):
        if dig(_addon(cluster, addon), "enabled") is True:
            report(f"addonProfiles.{addon} is enabled")


@resource_rule(
    Rule(
        id="gpustack-aks-azure-cni",
        area="security",
        title="AKS clusters use Azure CNI, not kubenet",
        why="Kubenet is retired (support ends March 2028), needs route tables and does not "
        "support the Azure network policy manager or Cilium.",
        fix="Set network_profile.network_plugin='azure' (with network_plugin_mode='overlay' to "
        "keep pod IPs out of the VNet).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/upgrade-azure-cni",),
        mirrors=("Azure.AKS.AzureCNI", "CKV2_AZURE_29"),
    ),
    CLUSTER,
)
def aks_azure_cni(cluster: Resource, report: Report) -> None:
    plugin = cluster.get("networkProfile", "networkPlugin")
    if one_of(plugin, "kubenet"):
        report("networkProfile.networkPlugin is 'kubenet'; use 'azure'")
    elif plugin is None:
        report("networkProfile.networkPlugin is not set (older API versions default to "
               "kubenet); set network_plugin='azure'")


@resource_rule(
    Rule(
        id="gpustack-aks-system-pool-critical-only",
        area="security",
        title="AKS system pools run only critical add-ons",
        why="Application pods on the system pool compete with CoreDNS, konnectivity and the GPU "
        "software's controllers, and a noisy or hostile pod there takes the cluster down.",
        fix="Add node_taints=['CriticalAddonsOnly=true:NoSchedule'] to system pools.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/use-system-pools",),
        mirrors=("CKV_AZURE_232",),
    ),
    CLUSTER,
    AGENT_POOL,
)
def aks_system_pool_critical_only(resource: Resource, report: Report) -> None:
    for index, pool in enumerate(node_pools(resource)):
        system = pool.is_system or (pool.inline and index == 0 and pool.get("mode") is None)
        if not system:
            continue
        if not any(t.startswith("CriticalAddonsOnly=true:") for t in taints(pool)):
            report(f"system {pool.label} lacks the CriticalAddonsOnly=true:NoSchedule taint")


@stack_rule(
    Rule(
        id="gpustack-aks-max-pods",
        area="security",
        title="AKS nodes allow enough pods",
        why="GPU nodes run the GPU Operator, DCGM exporter, CSI drivers and agents as "
        "DaemonSets; with Azure CNI's default of 30 pods a node fills up before its GPUs do.",
        fix="Set max_pods to at least the minimum (50) on every pool.",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/azure-cni-overview",),
        mirrors=("Azure.AKS.NodeMinPods", "CKV_AZURE_168"),
        settings={
            "minimumMaxPods": {
                "type": "integer",
                "minimum": 10,
                "maximum": 250,
                "default": policy_fact("aks_max_pods")["minimum"],
                "description": "Fewest pods per node a pool may allow.",
            }
        },
    ),
)
def aks_max_pods(stack: Stack, report: StackReport) -> None:
    minimum = stack.config["minimumMaxPods"]
    cni_default = float(policy_fact("aks_max_pods")["azure_cni_default"])
    clusters = stack.of(CLUSTER)

    def pods_take_subnet_ips(cluster: Resource) -> bool:
        # Azure CNI without overlay defaults to 30 pods; overlay and kubenet default higher.
        return one_of(cluster.known("networkProfile", "networkPlugin"), "azure") and not one_of(
            cluster.known("networkProfile", "networkPluginMode"), "overlay")

    # A stack rule, not a resource rule: a separate AgentPool (how GPU pools are usually
    # declared) takes its default from the cluster it names in resourceName.
    unknown: list[list[str]] = []
    for resource in stack.of(CLUSTER, AGENT_POOL):
        if resource.is_a(CLUSTER):
            defaults_low = pods_take_subnet_ips(resource)
        else:
            defaults_low = any(
                pods_take_subnet_ips(cluster) for cluster in clusters
                if stack.refers_to(resource, "resourceName", cluster, "managedClusters",
                                   "resourceName"))
        for pool in node_pools(resource):
            try:
                max_pods = number(plain(pool.get("maxPods")))
            except UnknownValueError:
                unknown.append([resource.name, "maxPods"])
                continue
            if max_pods is None and defaults_low:
                max_pods = cni_default
            if max_pods is not None and max_pods < minimum:
                report(f"{pool.label} allows {max_pods:g} pods per node; allow at least "
                       f"{minimum:g}", resource.urn)
    if unknown:
        # Known pools are reported above; a pool whose maxPods is computed is not passed.
        raise UnknownValueError(UNKNOWN_NUMBER_VALUE, unknown[0])


@resource_rule(
    Rule(
        id="gpustack-aks-ephemeral-os-disk",
        area="security",
        title="AKS node pools use ephemeral OS disks where the size can hold them",
        why="Ephemeral OS disks live on the node's local disk: lower latency, faster scaling "
        "and reimaging, no disk cost, and no OS disk state that outlives the node.",
        fix="Set os_disk_type='Ephemeral' with an os_disk_size_gb that fits the size's cache or "
        "temp disk (see max_ephemeral_os_disk_gib in the catalog).",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/concepts-storage#ephemeral-os-disk",),
        mirrors=("Azure.AKS.EphemeralOSDisk", "CKV_AZURE_226"),
    ),
    CLUSTER,
    AGENT_POOL,
)
def aks_ephemeral_os_disk(resource: Resource, report: Report) -> None:
    for pool in node_pools(resource):
        known = known_size(pool.size)
        if known is None:
            continue  # gpustack-vm-size-known reports the size
        disk = number(pool.get("osDiskSizeGB")) or float(AKS_DEFAULT_OS_DISK_GB)
        if known.max_ephemeral_os_disk_gib < disk:
            continue  # the size's local disk cannot hold this OS disk
        # Left unset, AKS picks Ephemeral itself when the disk fits.
        if one_of(pool.get("osDiskType"), "Managed"):
            report(f"{pool.label} uses a managed OS disk although {known.name} can hold a "
                   f"{disk:g} GB ephemeral one; set os_disk_type='Ephemeral'")


@resource_rule(
    Rule(
        id="gpustack-aks-scale-set-pools",
        area="security",
        title="AKS node pools are virtual machine scale sets",
        why="Availability-set pools cannot autoscale, use zones or run more than one pool.",
        fix="Leave type unset or set type='VirtualMachineScaleSets'.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/create-node-pools",),
        mirrors=("Azure.AKS.PoolScaleSet", "CKV_AZURE_169"),
    ),
    CLUSTER,
    AGENT_POOL,
)
def aks_scale_set_pools(resource: Resource, report: Report) -> None:
    for pool in node_pools(resource):
        if one_of(pool.get("type"), "AvailabilitySet"):
            report(f"{pool.label} is an AvailabilitySet pool; use VirtualMachineScaleSets")


@resource_rule(
    Rule(
        id="gpustack-aks-standard-load-balancer",
        area="security",
        title="AKS clusters use the Standard load balancer",
        why="The Basic load balancer was retired on 30 September 2025: no zones, no SLA, and "
        "open by default.",
        fix="Leave network_profile.load_balancer_sku unset or set it to 'standard'.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/load-balancer-standard",),
        mirrors=("Azure.AKS.StandardLB",),
    ),
    CLUSTER,
)
def aks_standard_load_balancer(cluster: Resource, report: Report) -> None:
    sku = cluster.get("networkProfile", "loadBalancerSku")
    if one_of(sku, "basic"):
        report("networkProfile.loadBalancerSku is 'basic'; use 'standard'")


# --- container registries: Premium hardening ------------------------------------------------


def _premium(registry: Resource) -> bool:
    return one_of(registry.get("sku", "name"), "Premium")


@resource_rule(
    Rule(
        id="gpustack-acr-export-disabled",
        area="security",
        title="Premium container registries disable artifact export",
        why="Export copies images (and the model weights in them) to any registry the caller "
        "can write to, around the private endpoint; disabling it closes that exfiltration path.",
        fix="Set policies.export_policy.status='disabled' (Premium, with public network access "
        "disabled). Basic and Standard registries cannot disable export.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/container-registry/data-loss-prevention",),
        mirrors=("Azure.ACR.ExportPolicy",),
    ),
    REGISTRY,
)
def acr_export_disabled(registry: Resource, report: Report) -> None:
    if not _premium(registry):
        return  # only Premium registries can turn export off
    status = registry.get("policies", "exportPolicy", "status")
    if not one_of(status, "disabled"):
        shown = "not set (enabled)" if status is None else repr(status)
        report(f"policies.exportPolicy.status is {shown}; set it to 'disabled'")


@resource_rule(
    Rule(
        id="gpustack-acr-premium-resilience",
        area="security",
        title="Premium container registries are zone-redundant and purge untagged manifests",
        why="A zonal registry is one zone outage away from nodes that cannot pull images; "
        "untagged manifests pile up with every build and hold old, vulnerable layers.",
        fix="Set zone_redundancy='Enabled' and policies.retention_policy.status='enabled' "
        "(Premium only; Basic and Standard offer neither).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=(
            "https://learn.microsoft.com/azure/container-registry/zone-redundancy",
            "https://learn.microsoft.com/azure/container-registry/container-registry-retention-policy",
        ),
        mirrors=("Azure.ACR.Retention", "CKV_AZURE_167", "CKV_AZURE_233"),
    ),
    REGISTRY,
)
def acr_premium_resilience(registry: Resource, report: Report) -> None:
    if not _premium(registry):
        return
    # Zone redundancy needs a region with availability zones.
    if not one_of(registry.get("zoneRedundancy"), "Enabled") and not zoneless_region(registry):
        report("zoneRedundancy is not 'Enabled'")
    if not one_of(registry.get("policies", "retentionPolicy", "status"), "enabled"):
        report("policies.retentionPolicy.status is not 'enabled'")


@resource_rule(
    Rule(
        id="gpustack-acr-quarantine",
        area="security",
        title="Premium container registries quarantine pushed images until scanned",
        why="With quarantine, a pushed image cannot be pulled until a scanner marks it verified, "
        "so an unscanned or poisoned image never reaches a GPU node.",
        fix="Set policies.quarantine_policy.status='enabled' (Premium) and run a scanner that "
        "marks images verified; without one, every new image stays unpullable.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/container-registry/container-registry-faq",),
        mirrors=("Azure.ACR.Quarantine", "CKV_AZURE_166"),
    ),
    REGISTRY,
)
def acr_quarantine(registry: Resource, report: Report) -> None:
    if not _premium(registry):
        return
    if not one_of(registry.get("policies", "quarantinePolicy", "status"), "enabled"):
        report("policies.quarantinePolicy.status is not 'enabled'")


@resource_rule(
    Rule(
        id="gpustack-acr-min-sku",
        area="security",
        title="Container registries use the Standard or Premium SKU",
        why="Basic registries have the lowest throughput and storage: pulling multi-GB inference "
        "images onto many GPU nodes at once gets throttled.",
        fix="Set sku.name='Standard' or 'Premium' (Premium for private endpoints).",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/container-registry/container-registry-skus",),
        mirrors=("Azure.ACR.MinSku",),
    ),
    REGISTRY,
)
def acr_min_sku(registry: Resource, report: Report) -> None:
    if one_of(registry.get("sku", "name"), "Basic"):
        report("sku.name is 'Basic'; use 'Standard' or 'Premium'")


# --- VMs and scale sets: disks, agent, secrets -----------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-vm-managed-disks",
        area="security",
        title="VMs and scale sets use managed disks",
        why="Unmanaged disks are page blobs in a storage account the team must secure itself; "
        "they were retired on 30 September 2025 and get no encryption at host.",
        fix="Remove vhd / vhd_containers from the storage profile and use managed_disk.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/virtual-machines/unmanaged-disks-deprecation",),
        mirrors=("Azure.VM.UseManagedDisks", "CKV_AZURE_92", "CKV2_AZURE_9"),
    ),
    VM,
    SCALE_SET,
)
def vm_managed_disks(resource: Resource, report: Report) -> None:
    storage = vm_profile(resource, "storageProfile")
    if given(storage, "osDisk", "vhd") or items(dig(storage, "osDisk", "vhdContainers")):
        report("storageProfile.osDisk is an unmanaged VHD; use a managed disk")
    for disk in items(dig(storage, "dataDisks")):
        if given(disk, "vhd"):
            lun = number(dig(disk, "lun"))
            shown = "(no lun)" if lun is None else f"{lun:g}"
            report(f"data disk {shown} is an unmanaged VHD; use a managed disk")


@resource_rule(
    Rule(
        id="gpustack-vm-agent",
        area="security",
        title="VMs and scale sets provision the VM agent",
        why="Without the agent no extension runs: no GPU driver extension, no Azure Monitor "
        "agent, no password reset or patching.",
        fix="Leave provision_vm_agent unset (true) in linux_configuration / "
        "windows_configuration.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-machines/extensions/agent-linux",),
        mirrors=("Azure.VM.Agent", "CKV_AZURE_179"),
    ),
    VM,
    SCALE_SET,
)
def vm_agent(resource: Resource, report: Report) -> None:
    for config in ("linuxConfiguration", "windowsConfiguration"):
        if vm_profile(resource, "osProfile", config, "provisionVMAgent") is False:
            report(f"osProfile.{config}.provisionVMAgent is False")


def _credential_hits(text: str) -> list[str]:
    """What kinds of credential `text` holds, by name (never the matched text itself)."""
    patterns = policy_fact("plaintext_credentials")["patterns"]
    return [kind for kind, pattern in patterns.items() if re.search(pattern, text)]


def _decoded(value: object) -> str | None:
    """Custom and user data are base64; fall back to the raw text when they are not."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return value


def _settings_text(settings: object, where: str) -> tuple[str, list[str]]:
    """Public settings as JSON text, and the paths of values unknown during a preview."""
    value = plain(settings)
    unknown: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                walk(item, f"{path}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]")
        elif isinstance(node, str) and node in UNKNOWNS:
            unknown.append(path)

    walk(value, where)
    return json.dumps(value, default=str), unknown


@resource_rule(
    Rule(
        id="gpustack-vm-no-plaintext-secrets",
        area="security",
        title="VM custom data, user data and extension settings carry no credentials",
        why="Custom data, user data and an extension's public settings are stored in clear and "
        "returned to anyone with read access on the VM; protectedSettings are encrypted.",
        fix="Move secrets to an extension's protected_settings, Key Vault (read with the VM's "
        "managed identity) or workload identity; never template them into cloud-init.",
        severity=Severity.CRITICAL,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/virtual-machines/custom-data",
            "https://learn.microsoft.com/azure/virtual-machines/extensions/custom-script-linux",
        ),
        mirrors=("CKV_AZURE_45", "Azure.VM.ScriptExtensions", "Azure.VMSS.ScriptExtensions"),
    ),
    VM,
    SCALE_SET,
    VM_EXTENSION,
)
def vm_no_plaintext_secrets(resource: Resource, report: Report) -> None:
    texts: list[tuple[str, str | None]] = []
    # Settings values computed from other resources (a storage key, a SAS) are unknown during a
    # preview: the known text is still checked, and then the rule says it could not finish
    # instead of passing what it could not read.
    unknown: list[str] = []
    if resource.is_a(VM_EXTENSION):
        text, missing = _settings_text(resource.get("settings"), "settings")
        texts.append(("settings", text))
        unknown += missing
    else:
        texts.append(("osProfile.customData", _decoded(vm_profile(resource, "osProfile",
                                                                  "customData"))))
        texts.append(("userData", _decoded(vm_profile(resource, "userData"))))
        profile = "virtualMachineProfile." if resource.is_a(SCALE_SET) else ""
        extensions = items(vm_profile(resource, "extensionProfile", "extensions"))
        for index, extension in enumerate(extensions):
            where = f"extension {dig(extension, 'name')!r} settings"
            path = f"{profile}extensionProfile.extensions.{index}.settings"
            text, missing = _settings_text(dig(extension, "settings"), path)
            texts.append((where, text))
            unknown += missing
    found = False
    for where, text in texts:
        hits = _credential_hits(text) if text else []
        if hits:
            found = True
            report(f"{where} contains what looks like a credential ({names(hits)})")
    if unknown and not found:
        raise UnknownValueError(UNKNOWN_STRING_VALUE, unknown[0].split("."))


# --- managed disks and role definitions -------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-disk-no-public-access",
        area="security",
        title="Managed disks cannot be exported or imported over the Internet",
        why="With network access AllowAll, anyone holding a SAS for the disk can download it "
        "(an OS disk with credentials, a data disk with datasets) from anywhere.",
        fix="Set public_network_access='Disabled' and network_access_policy='DenyAll' (or "
        "'AllowPrivate' with a disk access resource).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/virtual-machines/disks-enable-private-links-for-import-export-portal",),
        mirrors=("CKV_AZURE_251",),
    ),
    DISK,
)
def disk_no_public_access(disk: Resource, report: Report) -> None:
    access = disk.get("publicNetworkAccess")
    policy = disk.get("networkAccessPolicy")
    if one_of(access, "Disabled") or one_of(policy, "DenyAll", "AllowPrivate"):
        return
    shown = "not set (AllowAll)" if policy is None else repr(policy)
    public = "not set (Enabled)" if access is None else repr(access)
    report(f"publicNetworkAccess is {public} and networkAccessPolicy is {shown}; set "
           "network_access_policy='DenyAll'")


@resource_rule(
    Rule(
        id="gpustack-rbac-no-wildcard-custom-roles",
        area="security",
        title="Custom role definitions grant no wildcard actions",
        why="A custom role with '*' actions is an Owner in disguise: it grants every current "
        "and future operation, including role assignments, wherever it is assignable.",
        fix="List the exact actions the role needs (e.g. Microsoft.Compute/virtualMachines/"
        "read); use a built-in role where one fits.",
        severity=Severity.CRITICAL,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/role-based-access-control/custom-roles",),
        mirrors=("CKV_AZURE_39",),
    ),
    ROLE_DEFINITION,
)
def rbac_no_wildcard_custom_roles(definition: Resource, report: Report) -> None:
    for permission in items(definition.get("permissions")):
        for field in ("actions", "dataActions"):
            wild = [a for a in items(dig(permission, field)) if isinstance(a, str) and a == "*"]
            if wild:
                report(f"permissions {field} include '*'; list the actions the role needs")


# --- API Management ---------------------------------------------------------------------------

_APIM_WEAK = (
    "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls10",
    "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls11",
    "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Ssl30",
    "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Tls10",
    "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Tls11",
    "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Ssl30",
    "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Ciphers.TripleDes168",
)


@resource_rule(
    Rule(
        id="gpustack-apim-tls",
        area="security",
        title="API Management accepts TLS 1.2 or later and no weak ciphers",
        why="Prompts and completions cross the gateway; SSL 3.0, TLS 1.0/1.1 and 3DES are "
        "broken, and services created before April 2018 still enable them.",
        fix="Set the Tls10, Tls11 and Ssl30 protocol and the TripleDes168 cipher "
        "custom_properties (client and backend) to 'false'.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/api-management/api-management-howto-manage-protocols-ciphers",),
        mirrors=("Azure.APIM.Protocols", "Azure.APIM.Ciphers", "CKV_AZURE_173"),
    ),
    API_MANAGEMENT,
)
def apim_tls(service: Resource, report: Report) -> None:
    properties = service.get("customProperties") or {}
    weak = [key.rsplit(".", 2)[-2] + "." + key.rsplit(".", 1)[-1] for key in _APIM_WEAK
            if lower(dig(properties, key)) == "true"]
    if weak:
        report(f"customProperties enable {names(weak)}; set them to 'false'")


@resource_rule(
    Rule(
        id="gpustack-apim-managed-identity",
        area="security",
        title="API Management has a managed identity",
        why="The gateway reads named values and certificates from Key Vault and calls backends "
        "as a managed identity instead of stored keys.",
        fix="Set identity with type 'SystemAssigned' or 'UserAssigned'.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/api-management/api-management-howto-use-managed-service-identity",),
        mirrors=("Azure.APIM.ManagedIdentity",),
    ),
    API_MANAGEMENT,
)
def apim_managed_identity(service: Resource, report: Report) -> None:
    identity_type = service.get("identity", "type")
    if identity_type is None or one_of(identity_type, "None"):
        report(f"identity.type is {identity_type!r}; give the service a managed identity")


@resource_rule(
    Rule(
        id="gpustack-apim-https-only",
        area="security",
        title="API Management APIs accept HTTPS only",
        why="An API that accepts HTTP sends prompts, completions and subscription keys in "
        "clear text.",
        fix="Set protocols=['https'] on every apimanagement.Api.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/api-management/api-management-howto-manage-protocols-ciphers",),
        mirrors=("Azure.APIM.HTTPEndpoint",),
    ),
    API,
)
def apim_https_only(api: Resource, report: Report) -> None:
    protocols = [p for p in items(api.get("protocols")) if isinstance(p, str)]
    if any(one_of(p, "http", "ws") for p in protocols):
        report(f"protocols are {names(protocols)}; accept 'https' only")


@resource_rule(
    Rule(
        id="gpustack-apim-product-subscription",
        area="security",
        title="API Management products require a subscription",
        why="A product without subscription keys lets anyone who reaches the gateway call the "
        "model endpoints, unmetered and unattributed.",
        fix="Leave subscription_required unset (true) or set it to True on every Product.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/api-management/api-management-subscriptions",),
        mirrors=("Azure.APIM.ProductSubscription",),
    ),
    PRODUCT,
)
def apim_product_subscription(product: Resource, report: Report) -> None:
    if product.get("subscriptionRequired") is False:
        report("subscriptionRequired is False; require subscriptions")


@resource_rule(
    Rule(
        id="gpustack-apim-product-approval",
        area="security",
        title="API Management products approve new subscriptions",
        why="Without approval anyone who can sign in to the developer portal gets a key to the "
        "model endpoints, and with it GPU time.",
        fix="Set approval_required=True on products that require subscriptions.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/api-management/api-management-howto-add-products",),
        mirrors=("Azure.APIM.ProductApproval",),
    ),
    PRODUCT,
)
def apim_product_approval(product: Resource, report: Report) -> None:
    if product.get("subscriptionRequired") is False:
        return  # no subscriptions to approve (gpustack-apim-product-subscription reports it)
    if product.get("approvalRequired") is not True:
        report("approvalRequired is not True; approve subscriptions before they get keys")


_POLICY_SECTIONS = ("inbound", "backend", "outbound", "on-error")


def _policy_xml(resource: Resource) -> str | None:
    value = resource.get("value")
    policy_format = resource.get("format")
    # ARM compares the format enum case-insensitively ("xml", "XML", "rawxml", "RawXml").
    if not isinstance(value, str) or (
        policy_format is not None and not one_of(policy_format, "xml", "rawxml")
    ):
        return None  # a link to the policy, or not XML
    return value


@resource_rule(
    Rule(
        id="gpustack-apim-policy-base",
        area="security",
        title="API Management policies keep the inherited <base /> in every section",
        why="Dropping <base /> silently discards the global and product policies above it: "
        "authentication, rate limits and logging stop applying to that API or product.",
        fix="Put <base /> in the inbound, backend, outbound and on-error sections.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/api-management/api-management-howto-policies",),
        mirrors=("Azure.APIM.PolicyBase",),
    ),
    PRODUCT_POLICY,
    API_POLICY,
)
def apim_policy_base(policy: Resource, report: Report) -> None:
    xml = _policy_xml(policy)
    if xml is None:
        return
    for section in _POLICY_SECTIONS:
        match = re.search(rf"<{section}\b[^>]*>(.*?)</{section}>", xml, re.DOTALL)
        if match and not re.search(r"<base\s*/>", match.group(1)):
            report(f"the {section} section has no <base />")


@resource_rule(
    Rule(
        id="gpustack-apim-cors-no-wildcard",
        area="security",
        title="API Management CORS policies name their origins",
        why="A wildcard origin lets any web page call the inference API from a visitor's "
        "browser, with whatever credentials that browser holds.",
        fix="List the allowed origins in <allowed-origins> instead of <origin>*</origin>.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/api-management/cors-policy",),
        mirrors=("Azure.APIM.CORSPolicy",),
    ),
    PRODUCT_POLICY,
    API_POLICY,
)
def apim_cors_no_wildcard(policy: Resource, report: Report) -> None:
    xml = _policy_xml(policy)
    if xml and re.search(r"<origin>\s*\*\s*</origin>", xml):
        report("the CORS policy allows origin '*'")

POLICIES = [
    storage_public_network_access,
    storage_network_default_deny,
    storage_shared_key_disabled,
    storage_min_tls,
    storage_https_only,
    storage_blob_public_access,
    storage_cross_tenant_replication,
    keyvault_rbac_authorization,
    keyvault_purge_protection,
    keyvault_soft_delete_retention,
    keyvault_public_network_access,
    aks_local_accounts_disabled,
    aks_entra_azure_rbac,
    aks_network_policy,
    aks_api_server_access,
    aks_managed_identity,
    aks_auto_upgrade_channel,
    aks_node_os_upgrade_channel,
    aks_supported_version,
    aks_azure_policy_addon,
    aks_workload_identity,
    aks_no_node_public_ip,
    vm_no_public_ip,
    vm_ssh_keys_only,
    vm_encryption_at_host,
    vm_managed_identity,
    nsg_no_internet_management_ports,
    public_ip_standard_sku,
    acr_admin_user_disabled,
    acr_anonymous_pull_disabled,
    acr_public_network_access,
    apim_internal_vnet,
    rbac_no_privileged_workload_roles,
    storage_container_private,
    storage_local_users_disabled,
    keyvault_expiry,
    keyvault_key_rotation,
    aks_encryption_at_host,
    aks_defender_profile,
    aks_container_insights,
    aks_secret_store_rotation,
    aks_no_insecure_addons,
    aks_azure_cni,
    aks_system_pool_critical_only,
    aks_max_pods,
    aks_ephemeral_os_disk,
    aks_scale_set_pools,
    aks_standard_load_balancer,
    acr_export_disabled,
    acr_premium_resilience,
    acr_quarantine,
    acr_min_sku,
    vm_managed_disks,
    vm_agent,
    vm_no_plaintext_secrets,
    disk_no_public_access,
    rbac_no_wildcard_custom_roles,
    apim_tls,
    apim_managed_identity,
    apim_https_only,
    apim_product_subscription,
    apim_product_approval,
    apim_policy_base,
    apim_cors_no_wildcard,
]
