"""The bootstrap program: an Entra-ID-only, recoverable state backend the policy pack accepts."""

from __future__ import annotations

import json

from gpustack.analyzer import run_policy_pack
from gpustack.engine import Plan, PlannedResource
from tests.conftest import ROOT, bootstrap_plan

BOOTSTRAP = ROOT / "bootstrap"


def plan() -> Plan:
    return bootstrap_plan()


def one(token: str) -> PlannedResource:
    (resource,) = plan().by_type(token)
    return resource


def test_state_account_takes_no_keys_and_keeps_deleted_state() -> None:
    account = one("azure-native:storage:StorageAccount").inputs
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["networkRuleSet"]["defaultAction"] == "Deny"
    assert [r["iPAddressOrRange"] for r in account["networkRuleSet"]["ipRules"]] == [
        "203.0.113.0/24"]
    blobs = one("azure-native:storage:BlobServiceProperties").inputs
    assert blobs["isVersioningEnabled"] is True
    assert blobs["deleteRetentionPolicy"]["enabled"] is True
    assert blobs["containerDeleteRetentionPolicy"]["enabled"] is True


def test_secrets_key_lives_in_an_rbac_vault_with_purge_protection() -> None:
    vault = one("azure-native:keyvault:Vault").inputs["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True
    key = one("azure-native:keyvault:Key").inputs
    assert key["properties"]["kty"] == "RSA"
    assert sorted(key["properties"]["keyOps"]) == ["decrypt", "encrypt"]


def test_backend_resources_are_protected_and_retained() -> None:
    for token in ("azure-native:storage:StorageAccount", "azure-native:storage:BlobContainer",
                  "azure-native:keyvault:Vault", "azure-native:keyvault:Key"):
        options = one(token).options
        assert options["protect"] and options["retainOnDelete"], token


def test_deployers_get_data_roles_on_the_container_and_the_key_only() -> None:
    container, key = one("azure-native:storage:BlobContainer"), one("azure-native:keyvault:Key")
    assignments = plan().by_type("azure-native:authorization:RoleAssignment")
    assert len(assignments) == 4  # two deployers, two roles each
    scopes = {a.inputs["scope"] for a in assignments}
    assert scopes == {container.id, key.id}
    roles = {a.inputs["roleDefinitionId"].rsplit("/", 1)[-1] for a in assignments}
    assert roles == {"ba92f5b4-2d11-453d-a403-e96b0029c9fe",   # Storage Blob Data Contributor
                     "12338af0-0e69-4776-bea7-57ae8d297424"}   # Key Vault Crypto User


def test_outputs_are_the_login_and_secrets_provider_urls() -> None:
    outputs = plan().outputs
    assert outputs["backendUrl"] == f"azblob://pulumi-state?storage_account={outputs['storageAccount']}"
    assert outputs["secretsProvider"].startswith("azurekeyvault://")
    assert outputs["secretsProvider"].endswith(".vault.azure.net/keys/pulumi-secrets")


def test_policy_pack_finds_no_mandatory_violation_in_the_bootstrap() -> None:
    config = json.loads((BOOTSTRAP / "policy-config.json").read_text())
    result = run_policy_pack(
        ROOT / "policies", [r.analyzer_view() for r in plan().resources], config)
    assert not result.mandatory, [(v.rule, v.message) for v in result.mandatory]
    # Only the documented gap: no workspace configured for audit logs.
    assert {v.rule for v in result.violations} == {"gpustack-reliability-diagnostic-settings"}
