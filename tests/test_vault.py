"""SecretsVault: RBAC, purge protection, soft delete, no public access, private endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from components.conventions import ComponentContext, PrivateEndpointTarget
from components.vault import SecretsVault, SecretsVaultArgs
from gpustack.engine import Plan, PlannedResource, capture
from gpustack.mocks import answers
from stacks.config import ConfigError, parse_config

VNET = "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.Network/virtualNetworks/spoke"
TARGET = PrivateEndpointTarget(subnet_id=f"{VNET}/subnets/snet-endpoints", vnet_id=VNET)
WORKSPACE = (
    "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.OperationalInsights/workspaces/w"
)
CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus", diagnostics=WORKSPACE)


def _vault(name: str = "secrets", **overrides: Any) -> list[PlannedResource]:
    args = SecretsVaultArgs(context=CONTEXT, private_endpoints=TARGET, **overrides)
    return capture(lambda: SecretsVault(name, args))


def _properties(resources: list[PlannedResource]) -> dict[str, Any]:
    (vault,) = [r for r in resources if r.type == "azure-native:keyvault:Vault"]
    return vault.inputs["properties"]


def test_vault_uses_rbac_purge_protection_and_no_public_network() -> None:
    properties = _properties(_vault(soft_delete_retention_days=30))
    assert properties["enableRbacAuthorization"] is True
    assert properties["enablePurgeProtection"] is True
    assert properties["enableSoftDelete"] is True
    assert properties["softDeleteRetentionInDays"] == 30
    assert properties["publicNetworkAccess"] == "Disabled"
    assert properties["networkAcls"]["defaultAction"] == "Deny"
    assert properties["networkAcls"]["bypass"] == "None"
    assert properties["networkAcls"]["ipRules"] == []
    assert "accessPolicies" not in properties
    # The tenant comes from the deploying identity, never a literal.
    assert properties["tenantId"] == answers()["tenant"]


def test_customer_managed_keys_let_trusted_services_through_the_firewall() -> None:
    acls = _properties(_vault(trusted_services_bypass=True))["networkAcls"]
    assert acls["bypass"] == "AzureServices"
    assert acls["defaultAction"] == "Deny"


def test_operator_ips_are_the_only_public_addresses_allowed() -> None:
    properties = _properties(_vault(allowed_ip_ranges=["20.30.40.0/24"]))
    assert properties["publicNetworkAccess"] == "Enabled"
    assert properties["networkAcls"]["defaultAction"] == "Deny"
    assert properties["networkAcls"]["ipRules"] == [{"value": "20.30.40.0/24"}]


def test_vault_gets_a_private_endpoint_in_the_vault_zone_and_diagnostics() -> None:
    resources = _vault()
    (vault,) = [r for r in resources if r.type == "azure-native:keyvault:Vault"]
    (endpoint,) = [r for r in resources if r.type == "azure-native:network:PrivateEndpoint"]
    (zone,) = [r for r in resources if r.type == "azure-native:privatedns:PrivateZone"]
    (setting,) = [r for r in resources if r.type == "azure-native:monitor:DiagnosticSetting"]
    connection = endpoint.inputs["privateLinkServiceConnections"][0]
    assert connection == {**connection, "groupIds": ["vault"], "privateLinkServiceId": vault.id}
    assert zone.inputs["privateZoneName"] == "privatelink.vaultcore.azure.net"
    assert setting.inputs["resourceUri"] == vault.id
    assert setting.inputs["logs"][0]["categoryGroup"] == "allLogs"


def test_vault_name_that_cannot_take_the_autoname_suffix_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        _vault(name="a-very-long-vault-name")


def test_prod_vault_keeps_deleted_secrets_ninety_days_and_is_protected(prod_plan: Plan) -> None:
    (vault,) = prod_plan.by_type("azure-native:keyvault:Vault")
    assert vault.inputs["properties"]["softDeleteRetentionInDays"] == 90
    assert vault.options["protect"] and vault.options["retainOnDelete"]


BASE = {
    "location": "eastus",
    "budget": {"monthlyAmountUsd": 100},
    "monitoring": {"alertEmails": ["ops@example.com"]},
}


def test_prod_with_a_short_vault_retention_is_a_config_error() -> None:
    raw = {**BASE, "environment": "prod", "vault": {"softDeleteRetentionDays": 7}}
    with pytest.raises(ConfigError, match="softDeleteRetentionDays: is 7"):
        parse_config(raw, "Pulumi.prod.yaml")
