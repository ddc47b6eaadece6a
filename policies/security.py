"""Security rules: storage, Key Vault, AKS, VMs and scale sets, NSGs, role assignments.

Mandatory: each guards against exposure (public endpoints, keys, passwords, open ports) or
privilege that Azure's secure baseline and this project's defaults rule out.
"""

from __future__ import annotations

import ipaddress
import re

from pulumi_policy import Severity

from gpustack import facts
from policies.rulebook import (
    ADVISORY,
    ENVIRONMENT_SETTING,
    MANDATORY,
    Report,
    Resource,
    Rule,
    arm_leaf,
    dig,
    items,
    lower,
    names,
    nic_configurations,
    node_pools,
    number,
    one_of,
    policy_fact,
    resource_rule,
    size_facts,
    vm_profile,
    vm_size,
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
    if one_of(access, "Disabled"):
        return
    default_action = account.get("networkRuleSet", "defaultAction")
    if account.config["allowFirewalledPublicAccess"] and one_of(default_action, "Deny"):
        return
    report(
        f"publicNetworkAccess is {access!r} (networkRuleSet.defaultAction {default_action!r}); "
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
        https_only = policy_fact("arm_defaults")["storage_https_only"]
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
        mirrors=("Azure.Storage.BlobPublicAccess", "CKV_AZURE_190"),
    ),
    STORAGE,
)
def storage_blob_public_access(account: Resource, report: Report) -> None:
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
    if enabled is not True:
        shown = "not set" if enabled is None else repr(enabled)
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
        mirrors=("Azure.KeyVault.SoftDelete", "CKV_AZURE_42"),
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
        mirrors=("Azure.KeyVault.Firewall", "CKV_AZURE_189"),
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
    ranges = [r for r in items(dig(profile, "authorizedIPRanges")) if isinstance(r, str)]
    if not ranges:
        report("the API server is public and authorizedIPRanges is empty; make the cluster "
               "private or list the operator CIDRs")
        return
    open_ranges = [r for r in ranges if _is_everyone(r)]
    if open_ranges:
        report(f"authorizedIPRanges includes {names(open_ranges)}, which admits every address")


def _is_everyone(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


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
        mirrors=("Azure.VM.PublicIPAttached", "CKV_AZURE_119"),
    ),
    VM,
    SCALE_SET,
    NIC,
)
def vm_no_public_ip(resource: Resource, report: Report) -> None:
    if resource.is_a(NIC):
        for config in items(resource.get("ipConfigurations")):
            if dig(config, "publicIPAddress") is not None:
                report(f"IP configuration {dig(config, 'name')!r} attaches a public IP address")
        return
    for nic in nic_configurations(resource):
        for config in items(dig(nic, "ipConfigurations")):
            if dig(config, "publicIPAddressConfiguration") is not None:
                report(f"NIC {dig(nic, 'name')!r} IP configuration {dig(config, 'name')!r} "
                       "creates a public IP address")


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
        mirrors=("Azure.VM.PublicKey", "Azure.VMSS.PublicKey", "CKV_AZURE_1", "CKV_AZURE_49"),
    ),
    VM,
    SCALE_SET,
)
def vm_ssh_keys_only(resource: Resource, report: Report) -> None:
    profile = vm_profile(resource, "osProfile")
    if profile is None or dig(profile, "windowsConfiguration") is not None:
        return  # attached OS disk or a Windows VM: no Linux sign-in settings to check
    problems = []
    if dig(profile, "adminPassword") is not None:
        problems.append("osProfile sets adminPassword")
    if dig(profile, "linuxConfiguration", "disablePasswordAuthentication") is not True:
        problems.append("linuxConfiguration.disablePasswordAuthentication is not True")
    if not items(dig(profile, "linuxConfiguration", "ssh", "publicKeys")):
        problems.append("no SSH public keys are set")
    if problems:
        report("; ".join(problems))


@resource_rule(
    Rule(
        id="gpustack-vm-encryption-at-host",
        area="security",
        title="VMs and scale sets encrypt at host",
        why="Encryption at host covers temp disks and disk caches, which platform-managed disk "
        "encryption leaves in clear; GPU nodes cache models and checkpoints there.",
        fix="Set security_profile.encryption_at_host=True (register the EncryptionAtHost "
        "feature on the subscription once).",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/virtual-machines/disk-encryption#encryption-at-host---end-to-end-encryption-for-your-vm-data",),
        mirrors=("CKV_AZURE_97",),
    ),
    VM,
    SCALE_SET,
)
def vm_encryption_at_host(resource: Resource, report: Report) -> None:
    size = vm_size(resource)
    known = size_facts(size) if size else None
    if known is not None and not known.encryption_at_host:
        return  # the size cannot encrypt at host
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
    identity_type = resource.get("identity", "type")
    if identity_type is None or one_of(identity_type, "None"):
        report(f"identity.type is {identity_type!r}; give the VM a managed identity")


# --- network security groups and public IPs ------------------------------------------------


def _port_ranges(rule: object) -> list[tuple[int, int]]:
    """A rule's destination ports as inclusive (low, high) ranges; '*' is every port."""
    values = [dig(rule, "destinationPortRange"), *items(dig(rule, "destinationPortRanges"))]
    ranges = []
    for value in values:
        if value is None:
            continue
        text = str(value).strip()
        if text in ("*", ""):
            ranges.append((0, 65535))
            continue
        low, _, high = text.partition("-")
        try:
            ranges.append((int(float(low)), int(float(high or low))))
        except ValueError:
            continue
    return ranges


def _open_management_ports(rule: object) -> list[int]:
    if not one_of(dig(rule, "direction"), "Inbound") or not one_of(dig(rule, "access"), "Allow"):
        return []
    sources = [dig(rule, "sourceAddressPrefix"), *items(dig(rule, "sourceAddressPrefixes"))]
    internet = {prefix.lower() for prefix in policy_fact("internet_sources")["prefixes"]}
    if not any(lower(source) in internet for source in sources):
        return []
    ports = policy_fact("management_ports")["ports"]
    ranges = _port_ranges(rule)
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
        mirrors=("Azure.NSG.AnyInboundSource", "CKV_AZURE_9", "CKV_AZURE_10"),
    ),
    NSG,
    SECURITY_RULE,
)
def nsg_no_internet_management_ports(resource: Resource, report: Report) -> None:
    rules = [resource.props] if resource.is_a(SECURITY_RULE) else items(
        resource.get("securityRules"))
    for rule in rules:
        ports = _open_management_ports(rule)
        if ports:
            name = dig(rule, "name") or resource.name
            report(f"rule {name!r} allows inbound ports {names(ports)} from the Internet")


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
        mirrors=("Azure.PublicIP.StandardSKU",),
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
        mirrors=("Azure.ACR.AnonymousAccess",),
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
        fix="Set public_network_access='Disabled' (Premium SKU) and add a private endpoint with "
        "the privatelink.azurecr.io zone.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/container-registry/container-registry-private-link",
        ),
        mirrors=("CKV_AZURE_139",),
    ),
    REGISTRY,
)
def acr_public_network_access(registry: Resource, report: Report) -> None:
    access = registry.get("publicNetworkAccess")
    if not one_of(access, "Disabled"):
        shown = "not set (Azure's default is Enabled)" if access is None else repr(access)
        report(f"publicNetworkAccess is {shown}; set public_network_access='Disabled'")


@resource_rule(
    Rule(
        id="gpustack-apim-internal-vnet",
        area="security",
        title="Production API Management runs in internal VNet mode",
        why="The inference gateway fronts private model endpoints; in internal mode its gateway "
        "and portals have only private addresses, reachable from the VNet and peered networks.",
        fix="Set virtual_network_type='Internal' with virtual_network_configuration on a "
        "dedicated subnet (Developer or Premium tier).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/api-management/api-management-using-with-internal-vnet",
        ),
        settings=ENVIRONMENT_SETTING,
    ),
    API_MANAGEMENT,
)
def apim_internal_vnet(service: Resource, report: Report) -> None:
    if service.config["environment"] != "prod":
        return
    mode = service.get("virtualNetworkType")
    if not one_of(mode, "Internal"):
        shown = "not set (None: public)" if mode is None else repr(mode)
        report(f"virtualNetworkType is {shown}; use 'Internal' in prod")
    elif service.get("virtualNetworkConfiguration", "subnetResourceId") is None:
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
]
