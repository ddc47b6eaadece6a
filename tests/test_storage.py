"""ModelStorage: secure account settings, data protection, private endpoints, mount configs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest
import yaml

from components.conventions import ComponentContext, IdentityRef, PrivateEndpointTarget
from components.storage import (
    BlobCache,
    ModelStorage,
    ModelStorageArgs,
    blobfuse2_document,
    csi_mount_options,
)
from components.vault import KeyVaultRef
from gpustack import facts
from gpustack.engine import Plan, PlannedResource, capture
from stacks.config import ConfigError, parse_config

VNET = "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.Network/virtualNetworks/spoke"
TARGET = PrivateEndpointTarget(subnet_id=f"{VNET}/subnets/snet-endpoints", vnet_id=VNET)
WORKSPACE = (
    "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.OperationalInsights/workspaces/w"
)
CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus", diagnostics=WORKSPACE)
VAULT = KeyVaultRef(
    id="/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/kv1",
    name="kv1",
    uri="https://kv1.vault.azure.net/",
)
IDENTITY = IdentityRef(id="/identities/nodes", principal_id="p-1", client_id="client-1")
CACHE = BlobCache(path="/mnt/nvme/blobfuse2/", disk_size_mb=200_000, memory_size_mb=16_384)


def _storage(**overrides: Any) -> list[PlannedResource]:
    args = ModelStorageArgs(context=CONTEXT, private_endpoints=TARGET, **overrides)
    return capture(lambda: ModelStorage("models", args))


@pytest.fixture(scope="module")
def default_storage() -> list[PlannedResource]:
    """One capture of ModelStorage with default args and private endpoints."""
    return _storage()


def _one(resources: list[PlannedResource], token: str) -> PlannedResource:
    (found,) = [r for r in resources if r.type == token]
    return found


def _resolve(make: Callable[[], pulumi.Output[Any]]) -> Any:
    """The value of an Output built under the mocks."""
    box: dict[str, Any] = {}
    capture(lambda: make().apply(lambda value: box.setdefault("value", value)))
    return box["value"]


# --- the account ------------------------------------------------------------------------------


def test_account_is_adls_gen2_reachable_only_privately_with_entra_id(
    default_storage: list[PlannedResource],
) -> None:
    account = _one(default_storage, "azure-native:storage:StorageAccount").inputs
    assert account["kind"] == "StorageV2"
    assert account["isHnsEnabled"] is True
    assert account["publicNetworkAccess"] == "Disabled"
    assert account["networkRuleSet"]["defaultAction"] == "Deny"
    assert account["networkRuleSet"]["ipRules"] == []
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["enableHttpsTrafficOnly"] is True
    assert account["encryption"]["requireInfrastructureEncryption"] is True
    assert account["encryption"]["keySource"] == "Microsoft.Storage"
    assert account["sku"]["name"] == "Standard_ZRS"


def test_operator_ips_open_the_firewall_to_those_addresses_only() -> None:
    account = _one(
        _storage(allowed_ip_ranges=["20.30.40.50"]), "azure-native:storage:StorageAccount"
    ).inputs
    assert account["publicNetworkAccess"] == "Enabled"
    assert account["networkRuleSet"]["defaultAction"] == "Deny"
    assert [r["iPAddressOrRange"] for r in account["networkRuleSet"]["ipRules"]] == ["20.30.40.50"]


def test_containers_come_from_args_and_are_private() -> None:
    resources = _storage(containers=["models", "checkpoints", "eval"])
    containers = [r for r in resources if r.type == "azure-native:storage:BlobContainer"]
    assert sorted(c.inputs["containerName"] for c in containers) == [
        "checkpoints",
        "eval",
        "models",
    ]
    assert {c.inputs["publicAccess"] for c in containers} == {"None"}


def test_unknown_checkpoint_container_is_refused() -> None:
    with pytest.raises(ValueError, match="checkpoint container 'ckpt'"):
        _storage(checkpoint_container="ckpt")


# --- data protection ----------------------------------------------------------------------------


def test_hns_account_gets_soft_delete_but_not_versioning() -> None:
    resources = _storage(soft_delete_days=21)
    service = _one(resources, "azure-native:storage:BlobServiceProperties").inputs
    assert service["deleteRetentionPolicy"] == {
        "enabled": True,
        "days": 21,
        "allowPermanentDelete": False,
    }
    assert service["containerDeleteRetentionPolicy"] == {"enabled": True, "days": 21}
    assert service["isVersioningEnabled"] is False
    rules = _one(resources, "azure-native:storage:ManagementPolicy").inputs["policy"]["rules"]
    assert [r["name"] for r in rules] == ["checkpoints-to-cool"]


def test_flat_namespace_account_versions_blobs_and_deletes_old_versions() -> None:
    resources = _storage(hierarchical_namespace=False, delete_old_versions_after_days=45)
    assert _one(resources, "azure-native:storage:StorageAccount").inputs["isHnsEnabled"] is False
    service = _one(resources, "azure-native:storage:BlobServiceProperties").inputs
    assert service["isVersioningEnabled"] is True
    rules = _one(resources, "azure-native:storage:ManagementPolicy").inputs["policy"]["rules"]
    versions = next(r for r in rules if r["name"] == "delete-old-versions")
    delete = versions["definition"]["actions"]["version"]["delete"]
    assert delete["daysAfterCreationGreaterThan"] == 45


def test_checkpoints_move_to_cool_after_the_configured_days() -> None:
    policy = _one(
        _storage(checkpoints_cool_after_days=12), "azure-native:storage:ManagementPolicy"
    ).inputs
    assert policy["managementPolicyName"] == "default"
    rule = policy["policy"]["rules"][0]
    assert rule["definition"]["filters"]["prefixMatch"] == ["checkpoints/"]
    cool = rule["definition"]["actions"]["baseBlob"]["tierToCool"]
    assert cool["daysAfterModificationGreaterThan"] == 12


def test_stateful_resources_are_protected_and_retained_when_the_context_says_so() -> None:
    protected = ComponentContext(resource_group_name="rg", location="eastus", protect=True)
    resources = capture(lambda: ModelStorage("models", ModelStorageArgs(context=protected)))
    tokens = ("azure-native:storage:StorageAccount", "azure-native:storage:BlobContainer")
    stateful = [r for r in resources if r.type in tokens]
    assert len(stateful) == 4
    for resource in stateful:
        assert resource.options["protect"], resource.name
        assert resource.options["retainOnDelete"], resource.name
    unprotected = capture(lambda: ModelStorage("models", ModelStorageArgs(context=CONTEXT)))
    assert not any(r.options["protect"] for r in unprotected)


def test_stateful_resources_are_protected_in_prod(prod_plan: Plan) -> None:
    tokens = {
        "azure-native:storage:StorageAccount",
        "azure-native:storage:BlobContainer",
        "azure-native:keyvault:Vault",
    }
    stateful = [r for r in prod_plan.resources if r.type in tokens]
    assert {r.type for r in stateful} == tokens
    for resource in stateful:
        assert resource.options["protect"] and resource.options["retainOnDelete"], resource.name


def test_dev_leaves_stateful_resources_unprotected(dev_plan: Plan) -> None:
    (account,) = dev_plan.by_type("azure-native:storage:StorageAccount")
    assert not account.options["protect"]


# --- customer-managed key -----------------------------------------------------------------------


def test_customer_managed_key_is_read_by_the_storage_identity_granted_on_the_key() -> None:
    protected = ComponentContext(resource_group_name="rg-test", location="eastus", protect=True)
    resources = capture(
        lambda: ModelStorage(
            "models", ModelStorageArgs(context=protected, customer_managed_key=VAULT)
        )
    )
    key = _one(resources, "azure-native:keyvault:Key")
    grant = _one(resources, "azure-native:authorization:RoleAssignment")
    identity = _one(resources, "azure-native:managedidentity:UserAssignedIdentity")
    account = _one(resources, "azure-native:storage:StorageAccount")

    assert key.inputs["vaultName"] == "kv1"
    assert key.inputs["properties"]["kty"] == "RSA"
    assert grant.inputs["scope"] == key.id
    role = facts.role_definition_id("key_vault_crypto_service_encryption_user")
    assert grant.inputs["roleDefinitionId"].endswith(f"/roleDefinitions/{role}")
    assert grant.inputs["principalId"] == identity.outputs["principalId"]
    encryption = account.inputs["encryption"]
    assert encryption["keySource"] == "Microsoft.Keyvault"
    assert encryption["keyVaultProperties"]["keyVaultUri"] == VAULT.uri
    assert "keyVersion" not in encryption["keyVaultProperties"]
    assert encryption["encryptionIdentity"]["encryptionUserAssignedIdentity"] == identity.id
    assert account.inputs["identity"]["userAssignedIdentities"] == [identity.id]
    # The key must be readable before the account is encrypted with it, and never lost.
    assert grant.urn in account.options["dependsOn"]
    assert key.options["protect"] and key.options["retainOnDelete"]


# --- private endpoints and diagnostics ----------------------------------------------------------


def test_blob_and_dfs_get_private_endpoints_with_their_zones(
    default_storage: list[PlannedResource],
) -> None:
    resources = default_storage
    account = _one(resources, "azure-native:storage:StorageAccount")
    endpoints = [r for r in resources if r.type == "azure-native:network:PrivateEndpoint"]
    groups = {
        e.inputs["privateLinkServiceConnections"][0]["groupIds"][0]: e.inputs[
            "privateLinkServiceConnections"
        ][0]["privateLinkServiceId"]
        for e in endpoints
    }
    assert groups == {"blob": account.id, "dfs": account.id}
    zones = {
        r.inputs["privateZoneName"]
        for r in resources
        if r.type == "azure-native:privatedns:PrivateZone"
    }
    assert zones == {"privatelink.blob.core.windows.net", "privatelink.dfs.core.windows.net"}


def test_diagnostics_cover_the_account_metrics_and_the_blob_service_logs(
    default_storage: list[PlannedResource],
) -> None:
    resources = default_storage
    account = _one(resources, "azure-native:storage:StorageAccount")
    service = _one(resources, "azure-native:storage:BlobServiceProperties")
    assert service.id == f"{account.id}/blobServices/default"
    settings = {
        r.inputs["resourceUri"]: r.inputs
        for r in resources
        if r.type == "azure-native:monitor:DiagnosticSetting"
    }
    assert set(settings) == {account.id, service.id}
    assert not settings[account.id].get("logs")
    assert settings[account.id]["metrics"][0]["category"] == "AllMetrics"
    categories = {log["category"] for log in settings[service.id]["logs"]}
    assert categories == {"StorageRead", "StorageWrite", "StorageDelete"}
    assert {s["workspaceId"] for s in settings.values()} == {WORKSPACE}


# --- mounting: BlobFuse2 on VMs, Blob CSI on AKS ------------------------------------------------


def test_blobfuse2_config_mounts_with_the_managed_identity_through_the_private_endpoint() -> None:
    def render() -> pulumi.Output[str]:
        storage = ModelStorage("models", ModelStorageArgs(context=CONTEXT))
        return storage.blobfuse2_config(storage.mount_target(["models"], IDENTITY), "models", CACHE)

    config = yaml.safe_load(_resolve(render))
    azstorage = config["azstorage"]
    assert azstorage["mode"] == "msi"
    assert azstorage["appid"] == "client-1"
    assert azstorage["type"] == "adls"
    assert azstorage["container"] == "models"
    assert azstorage["endpoint"] == f"https://{azstorage['account-name']}.blob.core.windows.net"
    assert config["read-only"] is True
    assert config["components"] == facts.load("blobfuse2")["components"]["block_cache_pipeline"]
    assert config["block_cache"]["path"] == "/mnt/nvme/blobfuse2/models"
    assert config["block_cache"]["disk-size-mb"] == 200_000


def test_blobfuse2_writable_flat_namespace_mount() -> None:
    config = blobfuse2_document(
        "st1", "checkpoints", "c", CACHE, read_only=False, hierarchical_namespace=False
    )
    assert config["read-only"] is False
    assert config["azstorage"]["type"] == "block"


def test_csi_mount_options_carry_the_same_cache_values_as_the_blobfuse2_config() -> None:
    config = blobfuse2_document("st1", "models", "c", CACHE)
    options = csi_mount_options("models", CACHE)
    flags = facts.load("blobfuse2")["block_cache_cli_flags"]
    for flag, key in flags.items():
        if key in config["block_cache"]:
            assert f"{flag}={config['block_cache'][key]}" in options
    assert "--block-cache" in options
    assert "--use-adls=true" in options
    assert "--use-adls=true" not in csi_mount_options("models", CACHE, hierarchical_namespace=False)


def test_csi_volume_mounts_the_container_read_only_as_the_node_identity() -> None:
    def volume() -> pulumi.Output[Any]:
        storage = ModelStorage("models", ModelStorageArgs(context=CONTEXT))
        csi = storage.csi_volume(storage.mount_target(["models"], IDENTITY), "models", CACHE)
        return pulumi.Output.all(csi.storage_class, csi.persistent_volume)

    storage_class, pv = _resolve(volume)
    attributes = pv["spec"]["csi"]["volumeAttributes"]
    assert pv["spec"]["csi"]["driver"] == "blob.csi.azure.com"
    assert attributes["containerName"] == "models"
    assert attributes["resourceGroup"] == "rg-test"
    assert attributes["AzureStorageAuthType"] == "MSI"
    assert attributes["AzureStorageIdentityClientID"] == "client-1"
    assert attributes["protocol"] == "fuse2"
    assert pv["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert pv["spec"]["storageClassName"] == storage_class["metadata"]["name"]
    assert pv["spec"]["mountOptions"] == storage_class["mountOptions"]
    assert storage_class["reclaimPolicy"] == "Retain"


def test_mounting_needs_an_identity_and_a_known_container() -> None:
    def declare() -> None:
        storage = ModelStorage("models", ModelStorageArgs(context=CONTEXT))
        with pytest.raises(ValueError, match="not in this account"):
            storage.mount_target(["weights"])
        with pytest.raises(ValueError, match="managed identity"):
            storage.blobfuse2_config(storage.mount_target(["models"]), "models", CACHE)

    capture(declare)


def test_file_cache_is_refused_for_csi_mounts() -> None:
    with pytest.raises(ValueError, match="block cache only"):
        csi_mount_options("models", BlobCache(path="/mnt", disk_size_mb=1, mode="file"))


# --- config -------------------------------------------------------------------------------------


BASE = {
    "environment": "dev",
    "location": "eastus",
    "budget": {"monthlyAmountUsd": 100},
    "monitoring": {"alertEmails": ["ops@example.com"]},
}


def test_storage_without_a_checkpoints_container_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="containers: must include checkpoints"):
        parse_config({**BASE, "storage": {"containers": ["models", "datasets"]}}, "Pulumi.t.yaml")
