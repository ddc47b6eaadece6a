"""`ModelStorage`: an ADLS Gen2 account for datasets, models and checkpoints, reached privately.

It also renders what nodes need to mount it: a BlobFuse2 config for VM pools and a Blob CSI
`StorageClass` + `PersistentVolume` for AKS, both from one `BlobCache` so the cache options match.

Data protection and hierarchical namespace (HNS): blob soft delete and container soft delete
work with HNS; blob versioning does not ("Storage accounts with a hierarchical namespace enabled
... are not currently supported", https://learn.microsoft.com/azure/storage/blobs/versioning-overview,
and the HNS column of https://learn.microsoft.com/azure/storage/blobs/storage-feature-support-in-storage-accounts).
So with HNS (the default: atomic directory renames for checkpoint writers, `type: adls` mounts)
an account gets soft delete only; without HNS it also gets versioning and a lifecycle rule that
deletes old versions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import yaml
from pulumi_azure_native import keyvault, managedidentity, storage

from components.conventions import (
    BlobMountTarget,
    ComponentContext,
    IdentityRef,
    PrivateEndpointTarget,
    child_options,
    stateful_options,
)
from components.diagnostics import send_diagnostics
from components.identity import assign_role
from components.private_link import PrivateLink, PrivateLinkArgs, with_zones
from components.vault import KeyVaultRef
from gpustack import facts

# Storage account names: 3-24 lowercase letters and digits, globally unique. azure-native auto-names
# by appending 8 random characters to the logical name as given (it does not lowercase or strip),
# so the logical name is lowercase alphanumeric and at most 16 characters.
# Sources: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftstorage
#          https://github.com/pulumi/pulumi-azure-native/issues/3665
ACCOUNT_NAME_MAX = 24
AUTONAME_SUFFIX_LENGTH = 8

# Customer-managed keys for Azure Storage: RSA or RSA-HSM of 2048, 3072 or 4096 bits; the vault
# needs soft delete and purge protection. 3072 is this toolkit's choice among the three.
# Source: https://learn.microsoft.com/azure/storage/common/customer-managed-keys-overview
CMK_KEY_SIZE = 3072
CMK_KEY_NAME = "storage-cmk"

# Storage firewall IP rules take public IPv4 addresses or CIDRs; /31 and /32 ranges are refused
# (write the bare address), and so are private (RFC 1918) ranges. Checked in stacks/config.py.
# Source: https://learn.microsoft.com/azure/storage/common/storage-network-security

# The only name ARM accepts for an account's blob service.
# Source: https://learn.microsoft.com/rest/api/storagerp/blob-services/set-service-properties
BLOB_SERVICE = "default"

# BlobFuse2 top-level keys (not in gpustack/data/blobfuse2.yaml's sections): `allow-other` needs
# `user_allow_other` in /etc/fuse.conf on the node; `read-only` mounts read-only.
# Source: https://github.com/Azure/azure-storage-fuse/blob/0bf5427a72fb844aff70a1d7935c275cac59c5ce/setup/baseConfig.yaml
# `--use-adls=true` is the mount flag bound to azstorage.use-adls (v1 compatibility: type adls).
# Source: https://github.com/Azure/azure-storage-fuse/blob/main/component/azstorage/azstorage.go
# With `type: adls`, BlobFuse2 turns a `.blob.` endpoint into the `.dfs.` one itself
# (formatEndpointAccountType), so the blob endpoint serves both account types.
# Source: https://github.com/Azure/azure-storage-fuse/blob/main/component/azstorage/config.go
USE_ADLS_FLAG = "--use-adls=true"
ALLOW_OTHER_OPTION = "-o allow_other"
# Kubernetes requires a PV capacity; the Blob CSI driver does not enforce it.
# Source: https://github.com/kubernetes-sigs/blob-csi-driver/blob/master/deploy/example/pv-blobfuse-csi.yaml
CSI_CAPACITY = "10Ti"


@dataclass(frozen=True)
class ModelStorageArgs:
    """Containers, redundancy, data protection and the explicit loosenings."""

    context: ComponentContext
    private_endpoints: PrivateEndpointTarget | None = None
    containers: Sequence[str] = ("datasets", "models", "checkpoints")
    replication: Literal["LRS", "ZRS", "GRS", "GZRS"] = "ZRS"
    hierarchical_namespace: bool = True
    soft_delete_days: int = 14
    checkpoint_container: str = "checkpoints"
    checkpoints_cool_after_days: int = 30
    # Only with versioning, i.e. without hierarchical namespace (see the module docstring).
    delete_old_versions_after_days: int = 90
    # Encrypt with a key in this vault (created here), read through the storage's own identity.
    customer_managed_key: KeyVaultRef | None = None
    # Dev-only loosening: public IPv4 addresses or CIDRs allowed through the storage firewall.
    allowed_ip_ranges: Sequence[str] = ()


class ModelStorage(pulumi.ComponentResource):
    """StorageV2 + HNS, Entra ID only, blob and dfs private endpoints, soft delete, lifecycle."""

    account_id: pulumi.Output[str]
    account_name: pulumi.Output[str]
    container_ids: dict[str, pulumi.Output[str]]
    blob_endpoint: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:storage:ModelStorage", name, None, opts)
        context = args.context
        self.hierarchical_namespace = args.hierarchical_namespace
        self.resource_group_name = context.resource_group_name
        self.containers = list(args.containers)
        if args.checkpoint_container not in self.containers:
            raise ValueError(
                f"checkpoint container {args.checkpoint_container!r} is not among the "
                f"containers ({', '.join(self.containers)})"
            )
        logical_name = re.sub(r"[^a-z0-9]", "", name.lower()) + "st"
        if len(logical_name) > ACCOUNT_NAME_MAX - AUTONAME_SUFFIX_LENGTH:
            raise ValueError(
                f"ModelStorage name {name!r} is too long: {logical_name!r} plus the "
                f"{AUTONAME_SUFFIX_LENGTH}-character auto-name suffix exceeds {ACCOUNT_NAME_MAX}"
            )

        encryption, identity, cmk_ready = self._encryption(name, args)
        public = bool(args.allowed_ip_ranges)
        self.account = storage.StorageAccount(
            logical_name,
            resource_group_name=context.resource_group_name,
            location=context.location,
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=storage.SkuName(f"Standard_{args.replication}")),
            access_tier=storage.AccessTier.HOT,
            is_hns_enabled=args.hierarchical_namespace,
            # Entra ID (RBAC) only: no account keys, no SAS signed with them, no local users.
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            is_local_user_enabled=False,
            is_sftp_enabled=False,
            allow_blob_public_access=False,
            allow_cross_tenant_replication=False,
            allowed_copy_scope=storage.AllowedCopyScope.AAD,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            enable_https_traffic_only=True,
            public_network_access=storage.PublicNetworkAccess("Enabled" if public else "Disabled"),
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage.DefaultAction.DENY,
                bypass=storage.Bypass.NONE,
                ip_rules=[
                    storage.IPRuleArgs(i_p_address_or_range=ip) for ip in args.allowed_ip_ranges
                ],
            ),
            encryption=encryption,
            identity=identity,
            tags=dict(context.tags),
            opts=stateful_options(self, context, depends_on=cmk_ready),
        )

        self.blob_service = storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=self.account.name,
            resource_group_name=context.resource_group_name,
            blob_services_name=BLOB_SERVICE,
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days, allow_permanent_delete=False
            ),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days
            ),
            is_versioning_enabled=not args.hierarchical_namespace,
            opts=child_options(self),
        )

        self.blob_containers: dict[str, storage.BlobContainer] = {}
        for container in self.containers:
            self.blob_containers[container] = storage.BlobContainer(
                f"{name}-{container}",
                account_name=self.account.name,
                resource_group_name=context.resource_group_name,
                container_name=container,
                public_access=storage.PublicAccess.NONE,
                # Soft delete is on before the first byte lands.
                opts=stateful_options(self, context, depends_on=[self.blob_service]),
            )

        self.lifecycle = storage.ManagementPolicy(
            f"{name}-lifecycle",
            account_name=self.account.name,
            resource_group_name=context.resource_group_name,
            # The only name ARM accepts for an account's management policy.
            management_policy_name="default",
            policy=storage.ManagementPolicySchemaArgs(rules=self._lifecycle_rules(args)),
            opts=child_options(self),
        )

        # Categories per type come from gpustack/data/azure_monitor.yaml: the account sends
        # metrics, its blob service the read/write/delete logs.
        send_diagnostics(self, f"{name}-account", self.account, context)
        send_diagnostics(self, f"{name}-blob", self.blob_service, context)

        self.private_links: dict[str, PrivateLink] = {}
        if args.private_endpoints is not None:
            target = args.private_endpoints
            # dfs serves ADLS (HNS) calls; BlobFuse2 `type: adls` turns the blob endpoint into it.
            for sub_resource in ("blob", "dfs"):
                link = PrivateLink(
                    f"{name}-{sub_resource}",
                    PrivateLinkArgs(
                        context=context,
                        private_endpoints=target,
                        resource_id=self.account.id,
                        target=sub_resource,
                    ),
                    opts=child_options(self),
                )
                self.private_links[sub_resource] = link
                target = with_zones(target, link.zone_ids)

        self.account_id = self.account.id
        self.account_name = self.account.name
        self.container_ids = {c: r.id for c, r in self.blob_containers.items()}
        self.blob_endpoint = self.account.primary_endpoints.apply(lambda ends: ends.blob)
        self.register_outputs(
            {
                "accountId": self.account_id,
                "accountName": self.account_name,
                "containerIds": self.container_ids,
            }
        )

    # --- building blocks, in the order Azure needs them -----------------------------------------

    def _encryption(
        self, name: str, args: ModelStorageArgs
    ) -> tuple[storage.EncryptionArgs, storage.IdentityArgs | None, list[pulumi.Resource]]:
        """Infrastructure (double) encryption; with a CMK, the identity, key and role first."""
        services = storage.EncryptionServicesArgs(
            blob=storage.EncryptionServiceArgs(enabled=True, key_type=storage.KeyType.ACCOUNT),
            file=storage.EncryptionServiceArgs(enabled=True, key_type=storage.KeyType.ACCOUNT),
        )
        vault = args.customer_managed_key
        if vault is None:
            self.encryption_identity: managedidentity.UserAssignedIdentity | None = None
            return (
                storage.EncryptionArgs(
                    key_source=storage.KeySource.MICROSOFT_STORAGE,
                    require_infrastructure_encryption=True,
                    services=services,
                ),
                None,
                [],
            )
        context = args.context
        # A user-assigned identity exists before the account, so the key grant can precede it.
        self.encryption_identity = managedidentity.UserAssignedIdentity(
            f"{name}-encryption",
            resource_group_name=context.resource_group_name,
            location=context.location,
            tags=dict(context.tags),
            opts=child_options(self),
        )
        self.key = keyvault.Key(
            f"{name}-cmk",
            key_name=CMK_KEY_NAME,
            vault_name=vault.name,
            resource_group_name=context.resource_group_name,
            properties=keyvault.KeyPropertiesArgs(
                kty=keyvault.JsonWebKeyType.RSA,
                key_size=CMK_KEY_SIZE,
                key_ops=[
                    keyvault.JsonWebKeyOperation.WRAP_KEY,
                    keyvault.JsonWebKeyOperation.UNWRAP_KEY,
                ],
            ),
            tags=dict(context.tags),
            # Losing the key loses the data it wraps.
            opts=stateful_options(self, context),
        )
        key_grant = assign_role(
            self,
            f"{name}-cmk-crypto-user",
            principal_id=self.encryption_identity.principal_id,
            role="key_vault_crypto_service_encryption_user",
            scope=self.key.id,
        )
        encryption = storage.EncryptionArgs(
            key_source=storage.KeySource.MICROSOFT_KEYVAULT,
            require_infrastructure_encryption=True,
            services=services,
            encryption_identity=storage.EncryptionIdentityArgs(
                encryption_user_assigned_identity=self.encryption_identity.id
            ),
            # No key version: the account follows the key's newest version (auto-rotation).
            key_vault_properties=storage.KeyVaultPropertiesArgs(
                key_name=self.key.name, key_vault_uri=vault.uri
            ),
        )
        identity = storage.IdentityArgs(
            type=storage.IdentityType.USER_ASSIGNED,
            user_assigned_identities=[self.encryption_identity.id],
        )
        return encryption, identity, [key_grant]

    def _lifecycle_rules(self, args: ModelStorageArgs) -> list[storage.ManagementPolicyRuleArgs]:
        rules = [
            storage.ManagementPolicyRuleArgs(
                name="checkpoints-to-cool",
                enabled=True,
                type=storage.RuleType.LIFECYCLE,
                definition=storage.ManagementPolicyDefinitionArgs(
                    filters=storage.ManagementPolicyFilterArgs(
                        blob_types=["blockBlob"],
                        prefix_match=[f"{args.checkpoint_container}/"],
                    ),
                    actions=storage.ManagementPolicyActionArgs(
                        base_blob=storage.ManagementPolicyBaseBlobArgs(
                            tier_to_cool=storage.DateAfterModificationArgs(
                                days_after_modification_greater_than=args.checkpoints_cool_after_days
                            )
                        )
                    ),
                ),
            )
        ]
        if not args.hierarchical_namespace:
            rules.append(
                storage.ManagementPolicyRuleArgs(
                    name="delete-old-versions",
                    enabled=True,
                    type=storage.RuleType.LIFECYCLE,
                    definition=storage.ManagementPolicyDefinitionArgs(
                        filters=storage.ManagementPolicyFilterArgs(blob_types=["blockBlob"]),
                        actions=storage.ManagementPolicyActionArgs(
                            version=storage.ManagementPolicyVersionArgs(
                                delete=storage.DateAfterCreationArgs(
                                    days_after_creation_greater_than=args.delete_old_versions_after_days
                                )
                            )
                        ),
                    ),
                )
            )
        return rules

    # --- handoffs to the VM pool and AKS components ---------------------------------------------

    @property
    def private_dns_zone_ids(self) -> dict[str, pulumi.Output[str]]:
        """The blob and dfs private DNS zones by name, for later endpoints to reuse."""
        return {z: i for link in self.private_links.values() for z, i in link.zone_ids.items()}

    def mount_target(
        self, containers: Sequence[str], identity: IdentityRef | None = None
    ) -> BlobMountTarget:
        """What a node needs to mount `containers` as `identity`."""
        unknown = sorted(set(containers) - set(self.containers))
        if unknown:
            raise ValueError(
                f"containers {', '.join(unknown)} are not in this account "
                f"({', '.join(self.containers)})"
            )
        return BlobMountTarget(
            account_name=self.account_name, containers=list(containers), identity=identity
        )

    def blobfuse2_config(
        self, target: BlobMountTarget, container: str, cache: BlobCache, *, read_only: bool = True
    ) -> pulumi.Output[str]:
        """The BlobFuse2 config file for one container of this account (see `render_...`)."""
        return render_blobfuse2_config(
            target,
            container,
            cache,
            read_only=read_only,
            hierarchical_namespace=self.hierarchical_namespace,
        )

    def csi_volume(
        self, target: BlobMountTarget, container: str, cache: BlobCache, *, read_only: bool = True
    ) -> BlobCsiVolume:
        """The Blob CSI StorageClass and PersistentVolume for one container of this account."""
        return blob_csi_volume(
            target,
            container,
            cache,
            resource_group_name=self.resource_group_name,
            read_only=read_only,
            hierarchical_namespace=self.hierarchical_namespace,
        )


# --- BlobFuse2 (VM pools) and the Blob CSI driver (AKS) -----------------------------------------


@dataclass(frozen=True)
class BlobCache:
    """Where and how much a BlobFuse2 mount caches on a node; `None` keeps BlobFuse2's default.

    `path` is a directory on the node's local NVMe RAID0; each container caches in its own
    subdirectory, so `disk_size_mb` is per mount.
    """

    path: str
    disk_size_mb: int | None = None
    memory_size_mb: int | None = None
    block_size_mb: int | None = None
    prefetch_blocks: int | None = None
    parallelism: int | None = None
    mode: Literal["block", "file"] = "block"

    def section(self, container: str) -> tuple[str, dict[str, Any]]:
        """The BlobFuse2 cache section (`block_cache` or `file_cache`) for one container."""
        path = f"{self.path.rstrip('/')}/{container}"
        if self.mode == "file":
            values: dict[str, Any] = {"path": path, "max-size-mb": self.disk_size_mb}
            return "file_cache", {key: value for key, value in values.items() if value is not None}
        values = {
            "block-size-mb": self.block_size_mb,
            "mem-size-mb": self.memory_size_mb,
            "path": path,
            "disk-size-mb": self.disk_size_mb,
            "prefetch": self.prefetch_blocks,
            "parallelism": self.parallelism,
        }
        return "block_cache", {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class BlobCsiVolume:
    """Kubernetes manifests (plain dicts) for one container, for the caller's k8s provider."""

    storage_class: pulumi.Output[dict[str, Any]]
    persistent_volume: pulumi.Output[dict[str, Any]]


def _pipeline(mode: str) -> list[str]:
    components: dict[str, Any] = facts.load("blobfuse2")["components"]
    return list(components[f"{mode}_cache_pipeline"])


def _check_blobfuse2_sections(
    config: Mapping[str, Any], left_to_default: frozenset[str] = frozenset()
) -> None:
    """Every key is one BlobFuse2 knows, and every key it (or this toolkit) requires is set.

    `left_to_default` names keys deliberately unset (e.g. a cache disk of unknown size).
    """
    data = facts.load("blobfuse2")
    required = facts.blobfuse2_required_keys()
    for section, keys in data["required_by_gpustack"].items():
        required[section] = sorted({*required.get(section, []), *keys})
    for key in required.pop("top_level", []):
        if key not in config:
            raise ValueError(f"BlobFuse2 config lacks required top-level key {key!r}")
    for section, values in config.items():
        known = data["sections"].get(section)
        if not isinstance(values, dict) or known is None:
            continue
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"BlobFuse2 section {section} has unknown keys {unknown}")
        missing = sorted(set(required.get(section, [])) - set(values) - left_to_default)
        if missing:
            raise ValueError(f"BlobFuse2 section {section} lacks required keys {missing}")


def blobfuse2_document(
    account_name: str,
    container: str,
    client_id: str,
    cache: BlobCache,
    *,
    read_only: bool = True,
    hierarchical_namespace: bool = True,
    foreground: bool = False,
) -> dict[str, Any]:
    """The BlobFuse2 config as a dict: managed identity auth, private endpoint, local cache.

    `foreground` suits a systemd unit that runs `blobfuse2 mount` as its main process.
    """
    cache_section, cache_values = cache.section(container)
    config: dict[str, Any] = {
        "allow-other": True,
        "read-only": read_only,
        **({"foreground": True} if foreground else {}),
        "logging": {"type": "syslog", "level": "log_warning"},
        "components": _pipeline(cache.mode),
        cache_section: cache_values,
        "azstorage": {
            "type": "adls" if hierarchical_namespace else "block",
            "account-name": account_name,
            "container": container,
            # Resolves to the private endpoint through privatelink.blob.core.windows.net.
            "endpoint": f"https://{account_name}.blob.core.windows.net",
            "mode": "msi",
            "appid": client_id,
        },
    }
    unsized = frozenset({"disk-size-mb"}) if cache.disk_size_mb is None else frozenset()
    _check_blobfuse2_sections(config, unsized)
    return config


def render_blobfuse2_config(
    target: BlobMountTarget,
    container: str,
    cache: BlobCache,
    *,
    read_only: bool = True,
    hierarchical_namespace: bool = True,
) -> pulumi.Output[str]:
    """The BlobFuse2 YAML a VM writes to e.g. /etc/blobfuse2/<container>.yaml (cloud-init)."""
    identity = _mount_identity(target, container)
    return pulumi.Output.all(target.account_name, identity.client_id).apply(
        lambda values: yaml.safe_dump(
            blobfuse2_document(
                values[0],
                container,
                values[1],
                cache,
                read_only=read_only,
                hierarchical_namespace=hierarchical_namespace,
            ),
            sort_keys=False,
        )
    )


def csi_mount_options(
    container: str, cache: BlobCache, *, hierarchical_namespace: bool = True
) -> list[str]:
    """Blob CSI `mountOptions`: the same block-cache values as the BlobFuse2 config, as flags."""
    if cache.mode != "block":
        raise ValueError(
            "Blob CSI mount options here cover the block cache only (gpustack/data/"
            "blobfuse2.yaml lists its flags); use BlobCache(mode='block') on AKS"
        )
    flags: dict[str, str] = facts.load("blobfuse2")["block_cache_cli_flags"]
    _, values = cache.section(container)
    options = [ALLOW_OTHER_OPTION, "--block-cache"]
    options += [f"{flag}={values[key]}" for flag, key in flags.items() if key in values]
    if hierarchical_namespace:
        options.append(USE_ADLS_FLAG)
    return options


def blob_csi_volume(
    target: BlobMountTarget,
    container: str,
    cache: BlobCache,
    *,
    resource_group_name: pulumi.Input[str],
    read_only: bool = True,
    hierarchical_namespace: bool = True,
) -> BlobCsiVolume:
    """A StorageClass and a static PersistentVolume mounting one container with BlobFuse2 (MSI).

    The identity must be on the node pool's VMs (the kubelet identity, or one added to them).
    """
    identity = _mount_identity(target, container)
    csi: dict[str, Any] = facts.load("blobfuse2")["blob_csi_driver"]
    known = set(csi["storage_class_parameters"])
    mount_options = csi_mount_options(
        container, cache, hierarchical_namespace=hierarchical_namespace
    )
    class_name = f"blobfuse2-{container}"

    def attributes(account: str, group: str, client_id: str) -> dict[str, str]:
        values = {
            "protocol": "fuse2",
            "resourceGroup": group,
            "storageAccount": account,
            "containerName": container,
            "AzureStorageAuthType": "MSI",
            "AzureStorageIdentityClientID": client_id,
        }
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Blob CSI parameters {unknown} are not in gpustack/data/blobfuse2")
        return values

    resolved = pulumi.Output.all(target.account_name, resource_group_name, identity.client_id)
    storage_class = resolved.apply(
        lambda v: {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": class_name},
            "provisioner": csi["provisioner"],
            "parameters": attributes(v[0], v[1], v[2]),
            "mountOptions": mount_options,
            # Data outlives its claims: deleting a PVC never deletes a container.
            "reclaimPolicy": "Retain",
            "volumeBindingMode": "Immediate",
            "allowVolumeExpansion": True,
        }
    )
    persistent_volume = resolved.apply(
        lambda v: {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"{class_name}-{v[0]}"},
            "spec": {
                "capacity": {"storage": CSI_CAPACITY},
                "accessModes": ["ReadOnlyMany" if read_only else "ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": class_name,
                "mountOptions": mount_options,
                "csi": {
                    "driver": csi["provisioner"],
                    # Unique per container in the cluster, as the driver requires.
                    "volumeHandle": f"{v[1]}#{v[0]}#{container}",
                    "readOnly": read_only,
                    "volumeAttributes": attributes(v[0], v[1], v[2]),
                },
            },
        }
    )
    return BlobCsiVolume(storage_class=storage_class, persistent_volume=persistent_volume)


def _mount_identity(target: BlobMountTarget, container: str) -> IdentityRef:
    if container not in target.containers:
        raise ValueError(
            f"container {container!r} is not in the mount target ({', '.join(target.containers)})"
        )
    if target.identity is None:
        raise ValueError("a BlobFuse2 mount authenticates as a managed identity: set identity=")
    return target.identity
