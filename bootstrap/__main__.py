"""The state backend for azure-gpu-stacks: a blob container for `azblob://` state and a Key Vault
key for the `azurekeyvault://` secrets provider.

Entra ID only (no account keys, RBAC vault), firewalled, versioned and soft-deleted, protected
from `pulumi destroy`. Deployers get data roles on the container and the key, nothing wider.
"""

from pathlib import Path

import pulumi
from pulumi_azure_native import authorization, keyvault, monitor, resources, storage

from gpustack import facts, yaml_loader

# State files are small and precious: zone-redundant, 30 days to undo a delete or overwrite.
STORAGE_SKU = storage.SkuName.STANDARD_ZRS
RECOVERY_DAYS = 30
# The longest soft-delete window Key Vault allows (7-90 days): losing this key loses every
# stack's secrets. Source: https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview
VAULT_RETENTION_DAYS = 90
# The azurekeyvault secrets provider encrypts with RSA-OAEP-256, so an RSA key with only
# encrypt/decrypt. Source: https://www.pulumi.com/docs/iac/concepts/secrets/#configuring-secrets-encryption
SECRETS_KEY_SIZE = 4096
SECRETS_KEY_OPS = [keyvault.JsonWebKeyOperation.ENCRYPT, keyvault.JsonWebKeyOperation.DECRYPT]

config = pulumi.Config()
location = config.get("location") or "eastus"
prefix = config.get("namePrefix") or "gpu"
container_name = config.get("stateContainer") or "pulumi-state"
allow_all_networks = config.get_bool("allowAllNetworks") or False
allowed_ip_ranges: list[str] = config.get_object("allowedIpRanges") or []
deployers: list[dict[str, str]] = config.get_object("deployers") or []
workspace_id = config.get("logAnalyticsWorkspaceId")
tags: dict[str, str] = {"managedBy": "pulumi", **(config.get_object("tags") or {})}
roles = yaml_loader.read(Path(__file__).parent / "roles.yaml")["roles"]
client = authorization.get_client_config_output()
durable = pulumi.ResourceOptions(protect=True, retain_on_delete=True)

group = resources.ResourceGroup(
    "state",
    resource_group_name=f"rg-{prefix}-pulumi-state",
    location=location,
    tags=tags,
    opts=durable,
)

# --- the state container ---------------------------------------------------------------------

account = storage.StorageAccount(
    "state",
    resource_group_name=group.name,
    location=location,
    kind=storage.Kind.STORAGE_V2,
    sku=storage.SkuArgs(name=STORAGE_SKU),
    minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
    enable_https_traffic_only=True,
    allow_blob_public_access=False,
    allow_shared_key_access=False,
    allow_cross_tenant_replication=False,
    # No SFTP/SMB local users: state is read and written with Entra ID identities only.
    is_local_user_enabled=False,
    default_to_o_auth_authentication=True,
    public_network_access=storage.PublicNetworkAccess.ENABLED,
    network_rule_set=storage.NetworkRuleSetArgs(
        default_action=(
            storage.DefaultAction.ALLOW if allow_all_networks else storage.DefaultAction.DENY
        ),
        bypass="None",
        ip_rules=[storage.IPRuleArgs(i_p_address_or_range=cidr) for cidr in allowed_ip_ranges],
    ),
    tags=tags,
    opts=durable,
)
blob_service = storage.BlobServiceProperties(
    "state-blobs",
    account_name=account.name,
    resource_group_name=group.name,
    blob_services_name="default",
    is_versioning_enabled=True,
    delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=RECOVERY_DAYS),
    container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(
        enabled=True, days=RECOVERY_DAYS
    ),
)
container = storage.BlobContainer(
    "state",
    container_name=container_name,
    account_name=account.name,
    resource_group_name=group.name,
    public_access=storage.PublicAccess.NONE,
    opts=pulumi.ResourceOptions(protect=True, retain_on_delete=True, depends_on=[blob_service]),
)

# --- the secrets provider key --------------------------------------------------------------

vault = keyvault.Vault(
    "state",
    resource_group_name=group.name,
    location=location,
    properties=keyvault.VaultPropertiesArgs(
        tenant_id=client.tenant_id,
        sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
        enable_rbac_authorization=True,
        enable_purge_protection=True,
        soft_delete_retention_in_days=VAULT_RETENTION_DAYS,
        public_network_access="Enabled",
        network_acls=keyvault.NetworkRuleSetArgs(
            default_action=(
                keyvault.NetworkRuleAction.ALLOW
                if allow_all_networks
                else keyvault.NetworkRuleAction.DENY
            ),
            bypass=keyvault.NetworkRuleBypassOptions.NONE,
            ip_rules=[keyvault.IPRuleArgs(value=cidr) for cidr in allowed_ip_ranges],
        ),
    ),
    tags=tags,
    opts=durable,
)
key = keyvault.Key(
    "pulumi-secrets",
    key_name="pulumi-secrets",
    resource_group_name=group.name,
    vault_name=vault.name,
    properties=keyvault.KeyPropertiesArgs(
        kty=keyvault.JsonWebKeyType.RSA,
        key_size=SECRETS_KEY_SIZE,
        key_ops=SECRETS_KEY_OPS,
    ),
    tags=tags,
    opts=durable,
)

# --- audit logs: who read or wrote state, who used the key ----------------------------------

if workspace_id:
    for target, resource_uri in (
        ("state-blobs", pulumi.Output.concat(account.id, "/blobServices/default")),
        ("state-vault", vault.id),
    ):
        monitor.DiagnosticSetting(
            f"{target}-diagnostics",
            name="send-to-workspace",
            resource_uri=resource_uri,
            workspace_id=workspace_id,
            logs=[monitor.DiagnosticsLogSettingsArgs(category_group="audit", enabled=True)],
            metrics=[monitor.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)],
        )

# --- who may use them: data roles on the container and the key only -------------------------

blob_contributor = facts.role_definition_id("storage_blob_data_contributor")
crypto_user = roles["key_vault_crypto_user"]["id"]
for index, deployer in enumerate(deployers):
    for purpose, scope, role_id in (
        ("state", container.id, blob_contributor),
        ("secrets", key.id, crypto_user),
    ):
        authorization.RoleAssignment(
            f"deployer-{index}-{purpose}",
            principal_id=deployer["objectId"],
            principal_type=deployer.get("principalType", "ServicePrincipal"),
            role_definition_id=client.subscription_id.apply(
                lambda sub, role=role_id: (
                    f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
                    f"roleDefinitions/{role}"
                )
            ),
            scope=scope,
        )

pulumi.export(
    "backendUrl",
    pulumi.Output.concat("azblob://", container.name, "?storage_account=", account.name),
)
pulumi.export(
    "secretsProvider",
    pulumi.Output.concat("azurekeyvault://", vault.name, ".vault.azure.net/keys/", key.name),
)
pulumi.export("storageAccount", account.name)
