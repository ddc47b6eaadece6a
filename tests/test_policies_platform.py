"""Platform rules: each passes a well-configured resource and names the fault in a faulty one.

Also: the coverage matrix (policies/coverage/platform.yaml) names only rules that exist and
mirror the id of their row, and the lifecycle data file parses into dates the rules can use.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from pulumi_policy import ResourceValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from policies import RULES
from policies import platform_services as platform
from tests.conftest import ROOT
from tests.policy_runs import Declared, check_resource, check_stack

WEB_APP = "azure-native:web:WebApp"
WEB_APP_SLOT = "azure-native:web:WebAppSlot"
SQL_SERVER = "azure-native:sql:Server"
SQL_FIREWALL_RULE = "azure-native:sql:FirewallRule"
SQL_AUDITING = "azure-native:sql:ServerBlobAuditingPolicy"
SQL_AD_ONLY = "azure-native:sql:ServerAzureADOnlyAuthentication"
COSMOS = "azure-native:cosmosdb:DatabaseAccount"
CONTAINER_GROUP = "azure-native:containerinstance:ContainerGroup"
CONTAINER_APP = "azure-native:app:ContainerApp"
MANAGED_ENVIRONMENT = "azure-native:app:ManagedEnvironment"
FIREWALL = "azure-native:network:AzureFirewall"
FIREWALL_POLICY = "azure-native:network:FirewallPolicy"
GATEWAY = "azure-native:network:VirtualNetworkGateway"
SYNAPSE = "azure-native:synapse:Workspace"
SYNAPSE_FIREWALL_RULE = "azure-native:synapse:IpFirewallRule"
STORAGE = "azure-native:storage:StorageAccount"
VM = "azure-native:compute:VirtualMachine"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"

COVERAGE = ROOT / "policies" / "coverage" / "platform.yaml"
SUBNET_ID = ("/subscriptions/00000000-0000-4000-8000-00000000c0de/resourceGroups/rg/providers/"
             "Microsoft.Network/virtualNetworks/v/subnets/s")

GOOD_WEB_APP = {
    "kind": "app,linux",
    "httpsOnly": True,
    "clientCertEnabled": True,
    "clientCertMode": "Required",
    "publicNetworkAccess": "Disabled",
    "identity": {"type": "UserAssigned"},
    "siteConfig": {
        "minTlsVersion": "1.2",
        "ftpsState": "Disabled",
        "remoteDebuggingEnabled": False,
        "http20Enabled": True,
        "linuxFxVersion": "PYTHON|3.12",
        "cors": {"allowedOrigins": ["https://portal.example.com"]},
        "httpLoggingEnabled": True,
        "detailedErrorLoggingEnabled": True,
        "requestTracingEnabled": True,
        "healthCheckPath": "/healthz",
    },
}
GOOD_PLAN = {"kind": "linux", "reserved": True, "zoneRedundant": True,
             "sku": {"name": "P1v3", "tier": "PremiumV3", "capacity": 3}}
GOOD_SQL_SERVER = {
    "publicNetworkAccess": "Disabled",
    "minimalTlsVersion": "1.2",
    "administrators": {"administratorType": "ActiveDirectory", "azureADOnlyAuthentication": True,
                       "login": "sql-admins", "sid": "11111111-2222-3333-4444-555555555555"},
}
GOOD_COSMOS = {
    "databaseAccountOfferType": "Standard",
    "disableLocalAuth": True,
    "publicNetworkAccess": "Disabled",
    "disableKeyBasedMetadataWriteAccess": True,
    "minimalTlsVersion": "Tls12",
    "backupPolicy": {"type": "Continuous",
                     "continuousModeProperties": {"tier": "Continuous7Days"}},
}
GOOD_CONTAINER_GROUP = {
    "osType": "Linux",
    "ipAddress": {"type": "Private", "ports": [{"port": 8080, "protocol": "TCP"}]},
    "subnetIds": [{"id": SUBNET_ID}],
    "containers": [{"name": "api", "image": "mcr.microsoft.com/hello:1",
                    "environmentVariables": [{"name": "LOG_LEVEL", "value": "info"},
                                             {"name": "DB_PASSWORD", "secureValue": "s3cret"}]}],
}
GOOD_CONTAINER_APP = {
    "identity": {"type": "SystemAssigned"},
    "configuration": {"ingress": {"external": False, "targetPort": 8080, "allowInsecure": False}},
}
GOOD_ENVIRONMENT = {"vnetConfiguration": {"infrastructureSubnetId": SUBNET_ID, "internal": True}}
GOOD_GATEWAY = {"gatewayType": "Vpn", "vpnType": "RouteBased", "activeActive": True,
                "sku": {"name": "VpnGw2AZ", "tier": "VpnGw2AZ"}}
GOOD_SYNAPSE = {"managedVirtualNetwork": "default", "publicNetworkAccess": "Disabled",
                "azureADOnlyAuthentication": True}
GOOD_STORAGE = {"kind": "StorageV2", "allowSharedKeyAccess": True,
                "sasPolicy": {"sasExpirationPeriod": "1.00:00:00", "expirationAction": "Block"},
                "keyPolicy": {"keyExpirationPeriodInDays": 90}}
JAMMY = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
         "sku": "22_04-lts-gen2", "version": "latest"}
GOOD_VM = {"hardwareProfile": {"vmSize": "Standard_D4s_v5"},
           "storageProfile": {"imageReference": JAMMY}}
GOOD_SCALE_SET = {"sku": {"name": "Standard_D4s_v5", "capacity": 2},
                  "virtualMachineProfile": {"storageProfile": {"imageReference": JAMMY}}}


def changed(base: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A deep copy of `base` with `edit` applied."""
    props = copy.deepcopy(base)
    edit(props)
    return props


def site(**config: Any) -> dict[str, Any]:
    """GOOD_WEB_APP with siteConfig settings replaced."""
    return changed(GOOD_WEB_APP, lambda p: p["siteConfig"].update(config))


def firewall_rule(start: str, end: str) -> dict[str, Any]:
    return {"serverName": "sql", "startIpAddress": start, "endIpAddress": end}


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
    Case(platform.appservice_https_only, WEB_APP, GOOD_WEB_APP,
         {k: v for k, v in GOOD_WEB_APP.items() if k != "httpsOnly"},
         "httpsOnly is not set (Azure's default is false)"),
    Case(platform.appservice_min_tls, WEB_APP_SLOT, GOOD_WEB_APP, site(minTlsVersion="1.0"),
         "minTlsVersion is '1.0'"),
    Case(platform.appservice_ftps, WEB_APP, GOOD_WEB_APP, site(ftpsState="AllAllowed"),
         "ftpsState is 'AllAllowed'"),
    Case(platform.appservice_remote_debugging_off, WEB_APP, GOOD_WEB_APP,
         site(remoteDebuggingEnabled=True), "remoteDebuggingEnabled is True"),
    Case(platform.appservice_managed_identity, WEB_APP, GOOD_WEB_APP,
         {**GOOD_WEB_APP, "identity": {"type": "None"}}, "identity.type is 'None'"),
    Case(platform.appservice_client_certificates, WEB_APP, GOOD_WEB_APP,
         {**GOOD_WEB_APP, "clientCertEnabled": False}, "clientCertEnabled is False"),
    Case(platform.appservice_http2, WEB_APP, GOOD_WEB_APP, site(http20Enabled=False),
         "http20Enabled is False"),
    Case(platform.appservice_public_network_access, WEB_APP, GOOD_WEB_APP,
         {**GOOD_WEB_APP, "publicNetworkAccess": "Enabled"}, "publicNetworkAccess is 'Enabled'"),
    Case(platform.appservice_supported_runtime, WEB_APP, GOOD_WEB_APP,
         site(linuxFxVersion="NODE|18-lts"), "node 18 left support on 2025-04-30"),
    Case(platform.appservice_cors_not_wildcard, WEB_APP, GOOD_WEB_APP,
         site(cors={"allowedOrigins": ["*"]}), "allowedOrigins contains '*'"),
    Case(platform.appservice_diagnostic_logging, WEB_APP, GOOD_WEB_APP,
         site(httpLoggingEnabled=False, requestTracingEnabled=None),
         "httpLoggingEnabled, requestTracingEnabled not True"),
    Case(platform.appservice_health_check, WEB_APP_SLOT, GOOD_WEB_APP, site(healthCheckPath="/"),
         "healthCheckPath is '/'"),
    Case(platform.appservice_plan_zone_redundant, "azure-native:web:AppServicePlan", GOOD_PLAN,
         {**GOOD_PLAN, "zoneRedundant": False}, "'PremiumV3' supports zone redundancy"),
    Case(platform.appservice_plan_instances, "azure-native:web:AppServicePlan", GOOD_PLAN,
         {**GOOD_PLAN, "sku": {"name": "S1", "tier": "Standard", "capacity": 1}},
         "sku.capacity is 1; run at least 2"),
    Case(platform.sql_public_network_access, SQL_SERVER, GOOD_SQL_SERVER,
         {k: v for k, v in GOOD_SQL_SERVER.items() if k != "publicNetworkAccess"},
         "default is Enabled"),
    Case(platform.sql_min_tls, SQL_SERVER, GOOD_SQL_SERVER,
         {**GOOD_SQL_SERVER, "minimalTlsVersion": "1.0"}, "minimalTlsVersion is '1.0'"),
    Case(platform.sql_firewall_not_open, SQL_FIREWALL_RULE, firewall_rule("203.0.113.7",
         "203.0.113.7"), firewall_rule("0.0.0.0", "255.255.255.255"),
         "4294967296 addresses (every IPv4 address)"),
    Case(platform.sql_allow_azure_services, SQL_FIREWALL_RULE,
         firewall_rule("203.0.113.7", "203.0.113.7"), firewall_rule("0.0.0.0", "0.0.0.0"),
         "admits every Azure service"),
    Case(platform.cosmosdb_local_auth_disabled, COSMOS, GOOD_COSMOS,
         {k: v for k, v in GOOD_COSMOS.items() if k != "disableLocalAuth"},
         "disableLocalAuth is not set"),
    Case(platform.cosmosdb_public_network_access, COSMOS, GOOD_COSMOS,
         {**GOOD_COSMOS, "publicNetworkAccess": "Enabled"}, "publicNetworkAccess is 'Enabled'"),
    Case(platform.cosmosdb_metadata_write_disabled, COSMOS, GOOD_COSMOS,
         {**GOOD_COSMOS, "disableKeyBasedMetadataWriteAccess": False},
         "disableKeyBasedMetadataWriteAccess is False"),
    Case(platform.cosmosdb_min_tls, COSMOS, GOOD_COSMOS,
         {**GOOD_COSMOS, "minimalTlsVersion": "Tls"}, "minimalTlsVersion is 'Tls'"),
    Case(platform.cosmosdb_continuous_backup, COSMOS, GOOD_COSMOS,
         {k: v for k, v in GOOD_COSMOS.items() if k != "backupPolicy"},
         "backupPolicy.type is not set (Periodic)"),
    Case(platform.aci_no_public_ip, CONTAINER_GROUP, GOOD_CONTAINER_GROUP,
         changed(GOOD_CONTAINER_GROUP, lambda p: p["ipAddress"].update(type="Public")),
         "ipAddress.type is 'Public' (ports 8080)"),
    Case(platform.aci_vnet, CONTAINER_GROUP, GOOD_CONTAINER_GROUP,
         {k: v for k, v in GOOD_CONTAINER_GROUP.items() if k != "subnetIds"},
         "subnetIds is empty"),
    Case(platform.aci_secure_environment_values, CONTAINER_GROUP, GOOD_CONTAINER_GROUP,
         changed(GOOD_CONTAINER_GROUP, lambda p: p["containers"][0]["environmentVariables"][1]
                 .update(value="s3cret")), "container 'api' passes DB_PASSWORD as a plain value"),
    Case(platform.containerapp_internal_ingress, CONTAINER_APP, GOOD_CONTAINER_APP,
         changed(GOOD_CONTAINER_APP, lambda p: p["configuration"]["ingress"].update(
             external=True)), "ingress.external is True"),
    Case(platform.containerapp_https_only, CONTAINER_APP, GOOD_CONTAINER_APP,
         changed(GOOD_CONTAINER_APP, lambda p: p["configuration"]["ingress"].update(
             allowInsecure=True)), "allowInsecure is True"),
    Case(platform.containerapp_managed_identity, CONTAINER_APP, GOOD_CONTAINER_APP,
         {k: v for k, v in GOOD_CONTAINER_APP.items() if k != "identity"},
         "identity.type is None"),
    Case(platform.containerapp_environment_internal, MANAGED_ENVIRONMENT, GOOD_ENVIRONMENT,
         {}, "infrastructureSubnetId is not set; vnetConfiguration.internal is not True"),
    Case(platform.firewall_threat_intel_on, FIREWALL_POLICY, {"threatIntelMode": "Alert"},
         {"threatIntelMode": "Off"}, "threatIntelMode is 'Off'"),
    Case(platform.firewall_threat_intel_deny, FIREWALL, {"threatIntelMode": "Deny"},
         {"sku": {"name": "AZFW_VNet", "tier": "Standard"}},
         "not set (the API's default is Alert)"),
    Case(platform.gateway_legacy_sku, GATEWAY, GOOD_GATEWAY,
         {**GOOD_GATEWAY, "sku": {"name": "HighPerformance"}},
         "'HighPerformance', a legacy SKU"),
    Case(platform.gateway_zone_redundant_sku, GATEWAY, GOOD_GATEWAY,
         {**GOOD_GATEWAY, "sku": {"name": "VpnGw2"}}, "'VpnGw2', not zone-redundant"),
    Case(platform.gateway_vpn_active_active, GATEWAY, GOOD_GATEWAY,
         {**GOOD_GATEWAY, "activeActive": False}, "activeActive is False"),
    Case(platform.synapse_firewall_not_open, SYNAPSE_FIREWALL_RULE,
         {"startIpAddress": "203.0.113.0", "endIpAddress": "203.0.113.255"},
         {"startIpAddress": "0.0.0.0", "endIpAddress": "255.255.255.255"},
         "every IPv4 address"),
    Case(platform.synapse_managed_vnet, SYNAPSE, GOOD_SYNAPSE,
         {k: v for k, v in GOOD_SYNAPSE.items() if k != "managedVirtualNetwork"},
         "managedVirtualNetwork is None"),
    Case(platform.synapse_public_network_access, SYNAPSE, GOOD_SYNAPSE,
         {**GOOD_SYNAPSE, "publicNetworkAccess": "Enabled"}, "publicNetworkAccess is 'Enabled'"),
    Case(platform.synapse_entra_only_auth, SYNAPSE, GOOD_SYNAPSE,
         {**GOOD_SYNAPSE, "azureADOnlyAuthentication": False},
         "azureADOnlyAuthentication is False"),
    Case(platform.storage_sas_expiry_policy, STORAGE, GOOD_STORAGE,
         {k: v for k, v in GOOD_STORAGE.items() if k != "sasPolicy"},
         "sasPolicy.sasExpirationPeriod is not set"),
    Case(platform.storage_key_expiry_policy, STORAGE, GOOD_STORAGE,
         {**GOOD_STORAGE, "keyPolicy": {"keyExpirationPeriodInDays": 365}},
         "keyExpirationPeriodInDays is 365; rotate keys within 90 days"),
    Case(platform.vm_supported_os_image, VM, GOOD_VM,
         changed(GOOD_VM, lambda p: p["storageProfile"].update(imageReference={
             "publisher": "OpenLogic", "offer": "CentOS", "sku": "7_9-gen2",
             "version": "latest"})),
         "is CentOS 7, out of standard support since 2024-06-30"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_compliant_resource_passes(case: Case) -> None:
    assert check_resource(case.policy, case.type, case.good, config=case.config) == []


@pytest.mark.parametrize("case", CASES, ids=str)
def test_non_compliant_resource_is_reported(case: Case) -> None:
    found = check_resource(case.policy, case.type, case.bad, config=case.config)
    assert len(found) == 1, found
    assert case.says in found[0]


STACK_RULES = {platform.sql_entra_only_auth.name, platform.sql_auditing.name}


def test_every_platform_rule_has_a_case() -> None:
    covered = {c.policy.name for c in CASES} | STACK_RULES
    assert covered == {p.name for p in platform.POLICIES}


def test_versioned_tokens_and_other_types() -> None:
    versioned = "azure-native:web/v20240401:WebApp"
    assert check_resource(platform.appservice_ftps, versioned, site(ftpsState="AllAllowed"))
    assert check_resource(platform.appservice_ftps, SQL_SERVER, site(ftpsState="AllAllowed")) == []


# --- App Service runtimes ------------------------------------------------------------------


@pytest.mark.parametrize(("config", "reported"), [
    ({"linuxFxVersion": "DOTNETCORE|6.0"}, "dotnet 6.0"),
    ({"linuxFxVersion": "PHP|8.0"}, "php 8.0"),
    ({"linuxFxVersion": "PYTHON|3.8"}, "python 3.8"),
    ({"nodeVersion": "~16"}, "node 16"),
    ({"netFrameworkVersion": "v7.0"}, "dotnet 7.0"),
    ({"linuxFxVersion": "DOTNET-ISOLATED|6.0"}, "dotnet 6.0"),
    ({"appSettings": [{"name": "FUNCTIONS_EXTENSION_VERSION", "value": "~3"}]},
     "app setting FUNCTIONS_EXTENSION_VERSION is '~3': functions 3 left"),
    ({"appSettings": [{"name": "WEBSITE_NODE_DEFAULT_VERSION", "value": "~14"}]}, "node 14"),
])
def test_end_of_life_runtimes_are_named_by_stack_and_version(
    config: dict[str, str], reported: str
) -> None:
    (message,) = check_resource(platform.appservice_supported_runtime, WEB_APP,
                                site(**{"linuxFxVersion": None, **config}))
    assert reported in message


@pytest.mark.parametrize("config", [
    {"linuxFxVersion": "NODE|22-lts"},
    {"linuxFxVersion": "DOCKER|myregistry.azurecr.io/app:1"},  # a container: not judged
    {"netFrameworkVersion": "v4.0"},  # .NET Framework 4.x follows Windows
    {"phpVersion": "OFF"},
    {"linuxFxVersion": "NODE|99-lts"},  # a version the data file does not know
])
def test_supported_or_unjudged_runtimes_pass(config: dict[str, str]) -> None:
    props = site(**{"linuxFxVersion": None, **config})
    assert check_resource(platform.appservice_supported_runtime, WEB_APP, props) == []


def test_separate_app_settings_resources_are_judged_too() -> None:
    settings = "azure-native:web:WebAppApplicationSettings"
    old = {"name": "fn", "properties": {"FUNCTIONS_EXTENSION_VERSION": "~2",
                                        "FUNCTIONS_WORKER_RUNTIME": "node"}}
    (message,) = check_resource(platform.appservice_supported_runtime, settings, old)
    assert "functions 2 left support on 2022-12-13" in message
    current = {"name": "fn", "properties": {"FUNCTIONS_EXTENSION_VERSION": "~4"}}
    assert check_resource(platform.appservice_supported_runtime, settings, current) == []


def test_unknown_values_of_unrelated_app_settings_do_not_stop_the_runtime_rule() -> None:
    # Before: every setting's value was read, so under preview a registry password or a
    # connection string from another resource made the rule give up ("can't run policy ...
    # during preview: string value at .siteConfig.appSettings.0.value can't be known").
    settings = [
        {"name": "DOCKER_REGISTRY_SERVER_PASSWORD", "value": UNKNOWN_STRING_VALUE},
        {"name": "FUNCTIONS_EXTENSION_VERSION", "value": "~3"},
    ]
    props = site(linuxFxVersion=None, appSettings=settings)
    (message,) = check_resource(platform.appservice_supported_runtime, WEB_APP, props)
    assert "FUNCTIONS_EXTENSION_VERSION is '~3'" in message
    separate = {"name": "fn", "properties": {"AzureWebJobsStorage": UNKNOWN_STRING_VALUE,
                                             "FUNCTIONS_EXTENSION_VERSION": "~4"}}
    assert check_resource(
        platform.appservice_supported_runtime, "azure-native:web:WebAppApplicationSettings",
        separate,
    ) == []
    # A runtime setting whose value is unknown still cannot be judged.
    unknown = [{"name": "FUNCTIONS_EXTENSION_VERSION", "value": UNKNOWN_STRING_VALUE}]
    with pytest.raises(UnknownValueError):
        check_resource(platform.appservice_supported_runtime, WEB_APP,
                       site(linuxFxVersion=None, appSettings=unknown))


def test_unset_min_tls_and_http2_take_the_api_defaults() -> None:
    props = changed(GOOD_WEB_APP, lambda p: p["siteConfig"].pop("minTlsVersion"))
    assert check_resource(platform.appservice_min_tls, WEB_APP, props) == []
    props = changed(GOOD_WEB_APP, lambda p: p["siteConfig"].pop("http20Enabled"))
    assert check_resource(platform.appservice_http2, WEB_APP, props) == []


# --- SQL stack rules --------------------------------------------------------------------------


def sql_stack(server: dict[str, Any], *children: Declared) -> list[Declared]:
    return [Declared(SQL_SERVER, "sql", server), *children]


def auditing(state: str = "Enabled", days: int = 0, name: str = "audit") -> Declared:
    return Declared(SQL_AUDITING, name, {"serverName": "sql", "state": state,
                                         "retentionDays": days,
                                         "isAzureMonitorTargetEnabled": True},
                    deps={"serverName": ["sql"]})


def test_sql_entra_only_inline_or_as_a_separate_resource_passes() -> None:
    assert check_stack(platform.sql_entra_only_auth, sql_stack(GOOD_SQL_SERVER)) == []
    sql_logins = {**GOOD_SQL_SERVER, "administrators": None,
                  "administratorLogin": "sa", "administratorLoginPassword": "p"}
    separate = Declared(SQL_AD_ONLY, "entra-only", {"serverName": "sql",
                                                    "azureADOnlyAuthentication": True},
                        deps={"serverName": ["sql"]})
    assert check_stack(platform.sql_entra_only_auth, sql_stack(sql_logins, separate)) == []
    ((message, urn),) = check_stack(platform.sql_entra_only_auth, sql_stack(sql_logins))
    assert "azureADOnlyAuthentication is not set" in message
    assert urn is not None and urn.endswith("::sql")


def test_sql_entra_only_turned_off_by_a_separate_resource_is_reported() -> None:
    off = Declared(SQL_AD_ONLY, "entra-only", {"serverName": "sql",
                                               "azureADOnlyAuthentication": False},
                   deps={"serverName": ["sql"]})
    ((message, _),) = check_stack(platform.sql_entra_only_auth, sql_stack(GOOD_SQL_SERVER, off))
    assert "sets azureADOnlyAuthentication False" in message


def test_sql_server_without_enabled_auditing_is_reported() -> None:
    assert check_stack(platform.sql_auditing, sql_stack(GOOD_SQL_SERVER, auditing())) == []
    assert check_stack(platform.sql_auditing, sql_stack(GOOD_SQL_SERVER, auditing(days=120))) == []
    for stack in (sql_stack(GOOD_SQL_SERVER), sql_stack(GOOD_SQL_SERVER, auditing("Disabled"))):
        ((message, _),) = check_stack(platform.sql_auditing, stack)
        assert "no ServerBlobAuditingPolicy with state 'Enabled'" in message


def test_sql_auditing_with_short_retention_is_reported() -> None:
    ((message, _),) = check_stack(platform.sql_auditing,
                                  sql_stack(GOOD_SQL_SERVER, auditing(days=30)))
    assert "keeps records 30 days; keep at least 90" in message


def test_auditing_of_another_server_does_not_count() -> None:
    other = Declared(SQL_SERVER, "other", GOOD_SQL_SERVER)
    stack = [*sql_stack(GOOD_SQL_SERVER, auditing()), other]
    ((_, urn),) = check_stack(platform.sql_auditing, stack)
    assert urn == other.urn


# --- other edge cases ---------------------------------------------------------------------------


def test_firewall_attached_to_a_policy_takes_the_policys_mode() -> None:
    attached = {"threatIntelMode": "Off", "firewallPolicy": {"id": "/subscriptions/x/fp"}}
    assert check_resource(platform.firewall_threat_intel_on, FIREWALL, attached) == []
    child = {"threatIntelMode": "Off", "basePolicy": {"id": "/subscriptions/x/base"}}
    assert check_resource(platform.firewall_threat_intel_on, FIREWALL_POLICY, child) == []


def test_gateway_rules_do_not_double_report_a_legacy_sku() -> None:
    legacy = {**GOOD_GATEWAY, "sku": {"name": "Basic"}}
    assert check_resource(platform.gateway_legacy_sku, GATEWAY, legacy)
    assert check_resource(platform.gateway_zone_redundant_sku, GATEWAY, legacy) == []
    express = {"gatewayType": "ExpressRoute", "sku": {"name": "Standard"}}
    assert check_resource(platform.gateway_legacy_sku, GATEWAY, express) == []
    (message,) = check_resource(platform.gateway_zone_redundant_sku, GATEWAY, express)
    assert "ErGw1AZ" in message


def test_plan_rules_skip_tiers_that_cannot_comply() -> None:
    basic = {"sku": {"name": "B1", "tier": "Basic", "capacity": 1}}
    assert check_resource(platform.appservice_plan_zone_redundant,
                          "azure-native:web:AppServicePlan", basic) == []
    for consumption in ({"sku": {"name": "Y1", "tier": "Dynamic"}}, {"sku": {"name": "Y1"}},
                        {"sku": {"name": "F1", "tier": "Free"}}):
        assert check_resource(platform.appservice_plan_instances,
                              "azure-native:web:AppServicePlan", consumption) == []
    basic_vpn = {"gatewayType": "Vpn", "sku": {"name": "Basic"}}
    assert check_resource(platform.gateway_vpn_active_active, GATEWAY, basic_vpn) == []


def test_storage_with_shared_key_disabled_needs_no_sas_or_key_policy() -> None:
    keyless = {"kind": "StorageV2", "allowSharedKeyAccess": False}
    assert check_resource(platform.storage_sas_expiry_policy, STORAGE, keyless) == []
    assert check_resource(platform.storage_key_expiry_policy, STORAGE, keyless) == []
    unset = {"kind": "StorageV2"}  # Shared Key is allowed by default
    assert check_resource(platform.storage_sas_expiry_policy, STORAGE, unset)


def test_wide_firewall_range_follows_the_configured_limit() -> None:
    slash_22 = firewall_rule("203.0.112.0", "203.0.115.255")
    (message,) = check_resource(platform.sql_firewall_not_open, SQL_FIREWALL_RULE, slash_22)
    assert "1024 addresses; allow at most 256" in message
    assert check_resource(platform.sql_firewall_not_open, SQL_FIREWALL_RULE, slash_22,
                          config={"maxAddressesPerRule": 1024}) == []


def test_plain_non_secret_environment_values_are_fine() -> None:
    props = changed(GOOD_CONTAINER_GROUP, lambda p: p["containers"][0].update(
        environmentVariables=[{"name": "MODEL_NAME", "value": "llama"}]))
    assert check_resource(platform.aci_secure_environment_values, CONTAINER_GROUP, props) == []


@pytest.mark.parametrize(("image", "os_name"), [
    ({"publisher": "Canonical", "offer": "UbuntuServer", "sku": "18.04-LTS"}, "Ubuntu 18.04"),
    ({"publisher": "canonical", "offer": "0001-com-ubuntu-server-focal", "sku": "20_04-lts-gen2"},
     "Ubuntu 20.04"),
    ({"publisher": "RedHat", "offer": "RHEL", "sku": "7-LVM"}, "Red Hat Enterprise Linux 7"),
    ({"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
      "sku": "2012-R2-Datacenter"}, "Windows Server 2012"),
])
def test_end_of_life_images_are_named(image: dict[str, str], os_name: str) -> None:
    props = changed(GOOD_SCALE_SET, lambda p: p["virtualMachineProfile"]["storageProfile"].update(
        imageReference=image))
    (message,) = check_resource(platform.vm_supported_os_image, SCALE_SET, props)
    assert os_name in message


def test_images_whose_end_date_is_after_as_of_and_custom_images_pass() -> None:
    # Ubuntu 22.04 is listed (April 2027) but not yet out of support at the data's as_of.
    assert check_resource(platform.vm_supported_os_image, SCALE_SET, GOOD_SCALE_SET) == []
    custom = changed(GOOD_VM, lambda p: p["storageProfile"].update(
        imageReference={"id": "/subscriptions/x/galleries/g/images/centos7"}))
    assert check_resource(platform.vm_supported_os_image, VM, custom) == []


def test_a_listed_end_date_counts_once_the_data_as_of_passes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(platform, "as_of", lambda: datetime.date(2027, 5, 1))
    (message,) = check_resource(platform.vm_supported_os_image, SCALE_SET, GOOD_SCALE_SET)
    assert "Ubuntu 22.04 LTS, out of standard support since 2027-04-30" in message


def test_month_end_dates_mean_the_last_day_of_the_month() -> None:
    assert platform.end_date("2023-04") == datetime.date(2023, 4, 30)
    assert platform.end_date("2024-12") == datetime.date(2024, 12, 31)
    assert platform.end_date("2024-06-30") == datetime.date(2024, 6, 30)


def test_lifecycle_dates_all_parse() -> None:
    for entry in platform.lifecycle("os_images"):
        platform.end_date(entry["end_of_support"])
        assert entry["source"].startswith("https://")
    for stack in platform.lifecycle("app_service_runtimes")["stacks"].values():
        assert stack["source"].startswith("https://")
        for date in stack["end_of_support"].values():
            platform.end_date(date)


# --- the coverage matrix -------------------------------------------------------------------------


def coverage_rows() -> list[tuple[str, dict[str, Any]]]:
    document = yaml.safe_load(COVERAGE.read_text())
    return [(token, row) for token, rows in document["types"].items() for row in rows]


def test_coverage_rows_name_rules_that_mirror_their_id() -> None:
    rows = coverage_rows()
    assert rows
    for token, row in rows:
        assert set(row) in ({"id", "rule"}, {"id", "not_applicable"}), (token, row)
        if "rule" in row:
            rule = RULES.get(row["rule"])
            assert rule is not None, f"{token}: {row['rule']} is not a rule of the pack"
            assert row["id"] in rule.mirrors, f"{token}: {row['rule']} does not mirror {row['id']}"
        else:
            assert len(row["not_applicable"]) > 20, (token, row)


def test_every_mirrored_id_of_a_platform_rule_has_a_coverage_row() -> None:
    listed = {(row["id"], row.get("rule")) for _, row in coverage_rows()}
    for policy in platform.POLICIES:
        for mirrored in RULES[policy.name].mirrors:
            assert (mirrored, policy.name) in listed, (policy.name, mirrored)
