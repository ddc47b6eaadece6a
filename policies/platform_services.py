"""Platform rules: the Azure services common in Pulumi programs beyond this project's own stacks.

App Service and Functions, Azure SQL, Cosmos DB, Container Instances and Container Apps, Azure
Firewall, VPN and ExpressRoute gateways, Synapse, storage SAS and key expiry, and end-of-life OS
images. `gpustack plan --program` runs the pack on any program, so these judge types our stacks
never declare. Mandatory where data or credentials would be exposed; advisory where a team may
reasonably choose otherwise (a public web app, a client-certificate scheme of its own).
Lifecycle facts (end-of-support dates, legacy gateway SKUs) come from
gpustack/data/platform_lifecycle.yaml.

Not named `platform.py`: the Pulumi CLI runs the pack with this folder first on sys.path, where
such a module would shadow the standard library's `platform` (imported by `uuid`).
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from gpustack import facts
from policies.rulebook import (
    ADVISORY,
    MANDATORY,
    Report,
    Resource,
    Rule,
    Stack,
    StackReport,
    dig,
    items,
    lower,
    names,
    number,
    one_of,
    resource_rule,
    stack_rule,
    vm_profile,
    zoneless_region,
)

WEB_APP = "web:WebApp"
WEB_APP_SLOT = "web:WebAppSlot"
APP_SETTINGS = ("web:WebAppApplicationSettings", "web:WebAppApplicationSettingsSlot")
APP_SERVICE_PLAN = "web:AppServicePlan"
SQL_SERVER = "sql:Server"
SQL_FIREWALL_RULE = "sql:FirewallRule"
SQL_AUDITING = ("sql:ServerBlobAuditingPolicy", "sql:ExtendedServerBlobAuditingPolicy")
SQL_AD_ONLY = "sql:ServerAzureADOnlyAuthentication"
COSMOS = "cosmosdb:DatabaseAccount"
CONTAINER_GROUP = "containerinstance:ContainerGroup"
CONTAINER_APP = "app:ContainerApp"
MANAGED_ENVIRONMENT = "app:ManagedEnvironment"
FIREWALL = "network:AzureFirewall"
FIREWALL_POLICY = "network:FirewallPolicy"
GATEWAY = "network:VirtualNetworkGateway"
SYNAPSE = "synapse:Workspace"
SYNAPSE_FIREWALL_RULE = "synapse:IpFirewallRule"
STORAGE = "storage:StorageAccount"
VM = "compute:VirtualMachine"
SCALE_SET = "compute:VirtualMachineScaleSet"


def lifecycle(section: str) -> Any:
    """A section of gpustack/data/platform_lifecycle.yaml."""
    return facts.load("platform_lifecycle")[section]


@functools.cache
def as_of() -> datetime.date:
    """The day the lifecycle facts were checked: dates up to it count as passed."""
    return datetime.date.fromisoformat(str(lifecycle("as_of")))


def end_date(value: str) -> datetime.date:
    """`YYYY-MM-DD`, or `YYYY-MM` meaning the last day of that month."""
    text = str(value)
    if len(text) == 7:
        year, month = (int(part) for part in text.split("-"))
        first_of_next = datetime.date(year + month // 12, month % 12 + 1, 1)
        return first_of_next - datetime.timedelta(days=1)
    return datetime.date.fromisoformat(text)


def has_managed_identity(resource: Resource) -> bool:
    """True when the resource's identity.type names a system- or user-assigned identity."""
    identity_type = lower(resource.get("identity", "type"))
    return identity_type is not None and identity_type != "none"


# --- App Service and Functions -------------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-appservice-https-only",
        area="security",
        title="App Service apps accept HTTPS only",
        why="Without httpsOnly an app answers plain HTTP, sending cookies, tokens and request "
        "data in clear text; Azure's default is to accept both.",
        fix="Set https_only=True on the web app and each slot.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/app-service/configure-ssl-bindings#enforce-https",),
        mirrors=("Azure.AppService.UseHTTPS", "CKV_AZURE_14", "CKV_AZURE_153"),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_https_only(app: Resource, report: Report) -> None:
    https_only = app.get("httpsOnly")
    if https_only is not True:
        shown = "not set (Azure's default is false)" if https_only is None else repr(https_only)
        report(f"httpsOnly is {shown}; set https_only=True")


@resource_rule(
    Rule(
        id="gpustack-appservice-min-tls",
        area="security",
        title="App Service apps require TLS 1.2 or later",
        why="TLS 1.0 and 1.1 have known weaknesses; clients that need them should not reach "
        "the app.",
        fix="Set site_config.min_tls_version='1.2' (or '1.3'), or leave it unset for Azure's "
        "default of 1.2.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/app-service/overview-tls",),
        mirrors=("Azure.AppService.MinTLS", "CKV_AZURE_15", "CKV_AZURE_154"),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_min_tls(app: Resource, report: Report) -> None:
    version = app.get("siteConfig", "minTlsVersion")
    if version is None:
        version = lifecycle("app_service_defaults")["min_tls_version"]
    if str(version) not in {"1.2", "1.3"}:
        report(f"siteConfig.minTlsVersion is {version!r}; set min_tls_version='1.2'")


@resource_rule(
    Rule(
        id="gpustack-appservice-ftps",
        area="security",
        title="App Service apps disable plain FTP",
        why="Plain FTP sends deployment credentials and code unencrypted; the API's default "
        "(AllAllowed) accepts it.",
        fix="Set site_config.ftps_state='Disabled' (or 'FtpsOnly' if FTP deployment is needed).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/app-service/deploy-ftp#enforce-ftps",),
        mirrors=("Azure.AppService.WebSecureFtp", "CKV_AZURE_78"),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_ftps(app: Resource, report: Report) -> None:
    state = app.get("siteConfig", "ftpsState")
    if not one_of(state, "Disabled", "FtpsOnly"):
        shown = "not set (the API's default is AllAllowed)" if state is None else repr(state)
        report(f"siteConfig.ftpsState is {shown}; set ftps_state='Disabled'")


@resource_rule(
    Rule(
        id="gpustack-appservice-remote-debugging-off",
        area="security",
        title="App Service apps have remote debugging off",
        why="Remote debugging opens extra ports on the app and attaches a debugger to "
        "production code; it is meant to be switched on briefly, never deployed on.",
        fix="Remove site_config.remote_debugging_enabled or set it to False.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/app-service/overview-security",),
        mirrors=("Azure.AppService.RemoteDebug", "CKV_AZURE_72", "CKV_AZURE_155"),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_remote_debugging_off(app: Resource, report: Report) -> None:
    if app.get("siteConfig", "remoteDebuggingEnabled") is True:
        report("siteConfig.remoteDebuggingEnabled is True; set remote_debugging_enabled=False")


@resource_rule(
    Rule(
        id="gpustack-appservice-managed-identity",
        area="security",
        title="App Service apps have a managed identity",
        why="An app reaches storage, Key Vault and databases as a managed identity instead of "
        "keys in app settings; an app with no Azure dependencies may not need one.",
        fix="Set identity=ManagedServiceIdentityArgs(type='UserAssigned', ...) or "
        "'SystemAssigned'.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/app-service/overview-managed-identity",),
        mirrors=("Azure.AppService.ManagedIdentity", "CKV_AZURE_16", "CKV_AZURE_71"),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_managed_identity(app: Resource, report: Report) -> None:
    if not has_managed_identity(app):
        report(f"identity.type is {app.get('identity', 'type')!r}; give the app a managed "
               "identity")


@resource_rule(
    Rule(
        id="gpustack-appservice-client-certificates",
        area="security",
        title="App Service apps require client certificates",
        why="Incoming client certificates (mutual TLS) authenticate callers before a request "
        "reaches the app; apps that authenticate with Entra ID tokens may rely on that instead.",
        fix="Set client_cert_enabled=True and client_cert_mode='Required'.",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/app-service/app-service-web-configure-tls-mutual-auth",),
        mirrors=("CKV_AZURE_17",),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_client_certificates(app: Resource, report: Report) -> None:
    if app.get("clientCertEnabled") is not True:
        report(f"clientCertEnabled is {app.get('clientCertEnabled')!r}; set "
               "client_cert_enabled=True")


@resource_rule(
    Rule(
        id="gpustack-appservice-http2",
        area="security",
        title="App Service apps serve HTTP/2",
        why="Browsers speak HTTP/2 only over TLS, so enabling it keeps clients on modern TLS "
        "connections and removes HTTP/1.1 head-of-line blocking.",
        fix="Set site_config.http20_enabled=True, or leave it unset for the API's default "
        "(true).",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/app-service/configure-common#configure-general-settings",),
        mirrors=("Azure.AppService.HTTP2", "CKV_AZURE_18", "CKV_AZURE_67"),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_http2(app: Resource, report: Report) -> None:
    enabled = app.get("siteConfig", "http20Enabled")
    if enabled is None:
        enabled = lifecycle("app_service_defaults")["http20_enabled"]
    if enabled is not True:
        report(f"siteConfig.http20Enabled is {enabled!r}; set http20_enabled=True")


@resource_rule(
    Rule(
        id="gpustack-appservice-public-network-access",
        area="security",
        title="Internal App Service apps disable public network access",
        why="An API or back end that only other Azure resources call should be reachable only "
        "through a private endpoint; public sites are a reasonable exception.",
        fix="Set public_network_access='Disabled' and add a private endpoint, or keep the site "
        "public on purpose.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/app-service/overview-private-endpoint",),
        mirrors=("CKV_AZURE_222",),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_public_network_access(app: Resource, report: Report) -> None:
    access = app.get("publicNetworkAccess")
    if not one_of(access, "Disabled"):
        shown = "not set (Azure's default is Enabled)" if access is None else repr(access)
        report(f"publicNetworkAccess is {shown}")


@resource_rule(
    Rule(
        id="gpustack-appservice-cors-not-wildcard",
        area="security",
        title="App Service apps do not allow CORS from every origin",
        why="CORS '*' lets any web page call the app from a visitor's browser; public, "
        "unauthenticated APIs may reasonably allow it.",
        fix="List the calling origins in site_config.cors.allowed_origins instead of '*'.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/app-service/app-service-web-tutorial-rest-api#enable-cors",),
        mirrors=("CKV_AZURE_57", "CKV_AZURE_62"),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_cors_not_wildcard(app: Resource, report: Report) -> None:
    if "*" in items(app.get("siteConfig", "cors", "allowedOrigins")):
        report("siteConfig.cors.allowedOrigins contains '*'; list the calling origins")


@resource_rule(
    Rule(
        id="gpustack-appservice-diagnostic-logging",
        area="reliability",
        title="App Service apps log HTTP requests, detailed errors and failed requests",
        why="Without web server logs, failed and suspicious requests leave no trace to debug or "
        "investigate; apps that log through Application Insights only may skip them.",
        fix="Set site_config.http_logging_enabled, detailed_error_logging_enabled and "
        "request_tracing_enabled to True.",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/app-service/troubleshoot-diagnostic-logs",),
        mirrors=("CKV_AZURE_63", "CKV_AZURE_65", "CKV_AZURE_66"),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_diagnostic_logging(app: Resource, report: Report) -> None:
    off = [setting for setting in ("httpLoggingEnabled", "detailedErrorLoggingEnabled",
                                   "requestTracingEnabled")
           if app.get("siteConfig", setting) is not True]
    if off:
        report(f"siteConfig {names(off)} not True")


@resource_rule(
    Rule(
        id="gpustack-appservice-health-check",
        area="reliability",
        title="App Service apps have a health check path",
        why="With a health check path, App Service takes unhealthy instances out of the load "
        "balancer and replaces them; without one a failing instance keeps getting traffic.",
        fix="Set site_config.health_check_path to an endpoint that checks the app's "
        "dependencies (for example '/healthz').",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/app-service/monitor-instances-health-check",),
        mirrors=("Azure.AppService.WebProbe", "Azure.AppService.WebProbePath", "CKV_AZURE_213"),
    ),
    WEB_APP,
    WEB_APP_SLOT,
)
def appservice_health_check(app: Resource, report: Report) -> None:
    path = app.get("siteConfig", "healthCheckPath")
    if not isinstance(path, str) or path.strip("/ ") == "":
        report(f"siteConfig.healthCheckPath is {path!r}; point it at a dedicated health "
               "endpoint, not the site root")


def _plan_tier(plan: Resource) -> str | None:
    tier = plan.get("sku", "tier")
    if tier is None and one_of(plan.get("sku", "name"), "Y1"):
        return "Dynamic"
    return tier if isinstance(tier, str) else None


@resource_rule(
    Rule(
        id="gpustack-appservice-plan-zone-redundant",
        area="reliability",
        title="App Service plans on tiers that support it are zone-redundant",
        why="A zone-redundant plan spreads its instances over availability zones, so a zone "
        "outage does not take the apps down; only Premium v2/v3 and Isolated v2 tiers can.",
        fix="Set zone_redundant=True with sku.capacity of at least 2 (3 recommended).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/reliability/reliability-app-service",),
        mirrors=("CKV_AZURE_225",),
    ),
    APP_SERVICE_PLAN,
)
def appservice_plan_zone_redundant(plan: Resource, report: Report) -> None:
    tier = _plan_tier(plan)
    if not one_of(tier, *lifecycle("app_service_plans")["zone_redundant_tiers"]):
        return  # the tier cannot be zone-redundant
    if zoneless_region(plan):
        return  # nor can a plan in a region without availability zones
    if plan.get("zoneRedundant") is not True:
        report(f"sku.tier {tier!r} supports zone redundancy and zoneRedundant is "
               f"{plan.get('zoneRedundant')!r}")


@resource_rule(
    Rule(
        id="gpustack-appservice-plan-instances",
        area="reliability",
        title="App Service plans run at least two instances",
        why="A single instance takes every app on the plan down while it is patched or "
        "replaced; consumption, Free and Shared tiers have no instance count to raise.",
        fix="Set sku.capacity to 2 or more.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/well-architected/service-guides/app-service-web-apps",),
        mirrors=("Azure.AppService.PlanInstanceCount",),
    ),
    APP_SERVICE_PLAN,
)
def appservice_plan_instances(plan: Resource, report: Report) -> None:
    if one_of(_plan_tier(plan), *lifecycle("app_service_plans")["no_instance_count_tiers"]):
        return
    capacity = number(plan.get("sku", "capacity"))
    if capacity is None or capacity < 2:
        shown = "not set (1 instance)" if capacity is None else f"{capacity:g}"
        report(f"sku.capacity is {shown}; run at least 2 instances")


# Runtime settings and how each names a stack and version.
_FX = re.compile(r"^\s*(?P<stack>[A-Za-z-]+)\|(?P<version>[^\s]+)\s*$")
_FX_STACKS = {"node": "node", "python": "python", "php": "php", "dotnetcore": "dotnet",
              "dotnet": "dotnet", "dotnet-isolated": "dotnet"}


# App settings that pick a runtime: Functions reads them, App Service passes them on.
_RUNTIME_SETTINGS = {"WEBSITE_NODE_DEFAULT_VERSION": "node",
                     "FUNCTIONS_EXTENSION_VERSION": "functions"}


def _runtime_key(stack: str, version: str, known: dict[str, Any]) -> str | None:
    """The lifecycle key (`20`, `3.11`, `8.0`) a stack's version string falls under."""
    text = version.strip().lstrip("~vV").lower().removesuffix("-lts")
    if stack in ("node", "functions"):
        match = re.match(r"\d+", text)
        return match.group(0) if match else None
    match = re.match(r"(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    major, minor = match.group(1), match.group(2) or "0"
    key = f"{major}.{minor}"
    return key if key in known else None


def app_settings(resource: Resource) -> list[tuple[Any, Callable[[], Any]]]:
    """An app's settings as (name, read its value): siteConfig.appSettings of an app, or a
    settings resource's map. A value is read only when a rule asks for it: under preview the
    values of unrelated settings (a registry password, a connection string) are often unknown,
    and reading one stops the rule ("can't run policy ... during preview")."""
    if resource.is_a(*APP_SETTINGS):
        settings = resource.get("properties")
        if not isinstance(settings, Mapping):
            return []
        return [(name, lambda name=name: settings.get(name)) for name in settings]
    return [(dig(pair, "name"), lambda pair=pair: dig(pair, "value"))
            for pair in items(resource.get("siteConfig", "appSettings"))]


def app_runtimes(app: Resource) -> Iterator[tuple[str, str, str]]:
    """(setting, stack, version) for every language runtime an app's settings name."""
    for name, read in app_settings(app):
        stack = _RUNTIME_SETTINGS.get(str(name).upper())
        value = read() if stack else None
        if stack and isinstance(value, str) and value:
            yield f"app setting {name}", stack, value
    if app.is_a(*APP_SETTINGS):
        return
    config = app.get("siteConfig") or {}
    for setting in ("linuxFxVersion", "windowsFxVersion"):
        match = _FX.match(str(dig(config, setting) or ""))
        if match and match["stack"].lower() in _FX_STACKS:
            yield f"siteConfig.{setting}", _FX_STACKS[match["stack"].lower()], match["version"]
    for setting, stack in (("nodeVersion", "node"), ("pythonVersion", "python"),
                           ("phpVersion", "php")):
        value = dig(config, setting)
        if isinstance(value, str) and value and value.upper() != "OFF":
            yield f"siteConfig.{setting}", stack, value
    framework = dig(config, "netFrameworkVersion")
    # v2.0 and v4.0 are .NET Framework 3.5 / 4.x, supported with Windows itself.
    if isinstance(framework, str) and re.match(r"^v?([5-9]|\d{2,})\.", framework):
        yield "siteConfig.netFrameworkVersion", "dotnet", framework


@resource_rule(
    Rule(
        id="gpustack-appservice-supported-runtime",
        area="security",
        title="App Service apps run a language runtime that still gets security patches",
        why="App Service stops patching a runtime when its community support ends; the app "
        "keeps running, unpatched.",
        fix="Move site_config.linux_fx_version (or node_version, python_version, php_version, "
        "net_framework_version, the FUNCTIONS_EXTENSION_VERSION and "
        "WEBSITE_NODE_DEFAULT_VERSION app settings) to a supported version.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/app-service/language-support-policy",
            "https://learn.microsoft.com/azure/azure-functions/language-support-policy",
        ),
        mirrors=("Azure.AppService.NETVersion", "Azure.AppService.PHPVersion",
                 "Azure.AppService.NodeJsVersion", "CKV_AZURE_80", "CKV_AZURE_81",
                 "CKV_AZURE_82"),
    ),
    WEB_APP,
    WEB_APP_SLOT,
    *APP_SETTINGS,
)
def appservice_supported_runtime(app: Resource, report: Report) -> None:
    stacks = lifecycle("app_service_runtimes")["stacks"]
    for setting, stack, version in app_runtimes(app):
        known = stacks[stack]["end_of_support"]
        key = _runtime_key(stack, version, known)
        if key is None or key not in known:
            continue  # a version the data file does not list is not judged
        ended = end_date(known[key])
        if ended <= as_of():
            report(f"{setting} is {version!r}: {stack} {key} left support on "
                   f"{ended.isoformat()}; move to a supported version")


# --- Azure SQL ---------------------------------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-sql-public-network-access",
        area="security",
        title="Azure SQL servers disable public network access",
        why="A public endpoint exposes the databases to the Internet, guarded only by firewall "
        "rules and credentials; private endpoints keep them on the network.",
        fix="Set public_network_access='Disabled' and reach the server through a private "
        "endpoint.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/azure-sql/database/connectivity-settings#deny-public-network-access",),
        mirrors=("CKV_AZURE_113",),
    ),
    SQL_SERVER,
)
def sql_public_network_access(server: Resource, report: Report) -> None:
    access = server.get("publicNetworkAccess")
    if not one_of(access, "Disabled"):
        shown = "not set (Azure's default is Enabled)" if access is None else repr(access)
        report(f"publicNetworkAccess is {shown}; set public_network_access='Disabled'")


@resource_rule(
    Rule(
        id="gpustack-sql-min-tls",
        area="security",
        title="Azure SQL servers require TLS 1.2 or later",
        why="Clients on TLS 1.0 and 1.1 connect over protocols with known weaknesses.",
        fix="Set minimal_tls_version='1.2'.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/azure-sql/database/connectivity-settings#minimal-tls-version",),
        mirrors=("Azure.SQL.MinTLS", "CKV_AZURE_52"),
    ),
    SQL_SERVER,
)
def sql_min_tls(server: Resource, report: Report) -> None:
    version = server.get("minimalTlsVersion")
    if str(version) not in {"1.2", "1.3"}:
        shown = "not set" if version is None else repr(version)
        report(f"minimalTlsVersion is {shown}; set minimal_tls_version='1.2'")


def _children_of_server(
    stack: Stack, kinds: tuple[str, ...], server: Resource
) -> list[Resource]:
    """Child resources of `kinds` whose serverName points at `server`."""
    return [
        child for child in stack.of(*kinds)
        if stack.refers_to(child, "serverName", server, "servers", "serverName")
    ]


@stack_rule(
    Rule(
        id="gpustack-sql-entra-only-auth",
        area="security",
        title="Azure SQL servers allow Microsoft Entra authentication only",
        why="SQL logins are passwords that never expire and bypass Conditional Access and MFA; "
        "Entra-only authentication turns them off.",
        fix="Set administrators=ServerExternalAdministratorArgs(administrator_type="
        "'ActiveDirectory', azure_ad_only_authentication=True, login=..., sid=...), or "
        "declare a ServerAzureADOnlyAuthentication with azure_ad_only_authentication=True.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/azure-sql/database/authentication-azure-ad-only-authentication",),
        mirrors=("Azure.SQL.AAD", "Azure.SQL.AADOnly", "CKV2_AZURE_27"),
    )
)
def sql_entra_only_auth(stack: Stack, report: StackReport) -> None:
    for server in stack.of(SQL_SERVER):
        inline = server.get("administrators", "azureADOnlyAuthentication")
        separate = [dig(child.props, "azureADOnlyAuthentication")
                    for child in _children_of_server(stack, (SQL_AD_ONLY,), server)]
        if False in separate:
            report("a ServerAzureADOnlyAuthentication sets azureADOnlyAuthentication False",
                   server.urn)
        elif inline is not True and True not in separate:
            shown = "not set" if inline is None else repr(inline)
            report(f"administrators.azureADOnlyAuthentication is {shown} and no "
                   "ServerAzureADOnlyAuthentication enables it", server.urn)


@stack_rule(
    Rule(
        id="gpustack-sql-auditing",
        area="security",
        title="Azure SQL servers audit to a destination that keeps 90 days or more",
        why="Auditing records who read or changed which data; without it a breach cannot be "
        "traced. Short retention loses the trail before most breaches are found.",
        fix="Declare a sql.ServerBlobAuditingPolicy for the server with state='Enabled', "
        "is_azure_monitor_target_enabled=True (or a storage endpoint), and retention_days "
        "0 (forever) or at least 90.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/azure-sql/database/auditing-overview",),
        mirrors=("Azure.SQL.Auditing", "CKV_AZURE_23", "CKV_AZURE_24"),
        settings={
            "minimumRetentionDays": {
                "type": "number",
                "default": 90,
                "description": "Fewest days audit records are kept (0 in the policy means "
                "forever).",
            }
        },
    )
)
def sql_auditing(stack: Stack, report: StackReport) -> None:
    minimum = stack.config["minimumRetentionDays"]
    for server in stack.of(SQL_SERVER):
        policies = _children_of_server(stack, SQL_AUDITING, server)
        enabled = [p for p in policies if one_of(dig(p.props, "state"), "Enabled")]
        if not enabled:
            report("no ServerBlobAuditingPolicy with state 'Enabled' targets this server",
                   server.urn)
            continue
        for policy in enabled:
            days = number(dig(policy.props, "retentionDays"))
            if days is not None and 0 < days < minimum:
                report(f"auditing policy {policy.name!r} keeps records {days:g} days; keep at "
                       f"least {minimum:g} (or 0 for forever)", server.urn)


def _address_span(start: Any, end: Any) -> int | None:
    """How many addresses a start-end firewall range admits; None for unparseable input."""
    try:
        first = ipaddress.ip_address(str(start))
        last = ipaddress.ip_address(str(end))
    except ValueError:
        return None
    return int(last) - int(first) + 1


FIREWALL_RANGE_SETTING = {
    "maxAddressesPerRule": {
        "type": "number",
        "default": 256,
        "description": "Most addresses one firewall rule may admit (256 is a /24).",
    }
}


def _open_firewall_rule(rule: Resource, report: Report) -> None:
    start, end = rule.get("startIpAddress"), rule.get("endIpAddress")
    span = _address_span(start, end)
    if span is None or (str(start) == "0.0.0.0" and str(end) == "0.0.0.0"):
        return  # 0.0.0.0-0.0.0.0 is "allow Azure services": its own advisory rule
    limit = rule.config["maxAddressesPerRule"]
    if span > limit:
        everyone = " (every IPv4 address)" if span >= 2**32 else ""
        report(f"rule admits {start}-{end}, {span} addresses{everyone}; allow at most "
               f"{limit:g} per rule, or use a private endpoint")


@resource_rule(
    Rule(
        id="gpustack-sql-firewall-not-open",
        area="security",
        title="Azure SQL firewall rules do not open the server to the Internet",
        why="A rule such as 0.0.0.0-255.255.255.255 lets every address try credentials "
        "against the server.",
        fix="Remove wide firewall rules; allow single operator addresses or reach the server "
        "through a private endpoint.",
        severity=Severity.CRITICAL,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/azure-sql/database/firewall-configure",),
        mirrors=("Azure.SQL.FirewallIPRange", "CKV_AZURE_11"),
        settings=FIREWALL_RANGE_SETTING,
    ),
    SQL_FIREWALL_RULE,
)
def sql_firewall_not_open(rule: Resource, report: Report) -> None:
    _open_firewall_rule(rule, report)


@resource_rule(
    Rule(
        id="gpustack-sql-allow-azure-services",
        area="security",
        title="Azure SQL servers do not admit every Azure service",
        why="The 0.0.0.0 rule (\"Allow Azure services\") admits connections from any Azure "
        "resource, including other customers'; a team may accept it for services without "
        "private networking.",
        fix="Remove the 0.0.0.0-0.0.0.0 firewall rule and use private endpoints or VNet rules.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/azure-sql/database/firewall-configure#connections-from-inside-azure",),
        mirrors=("Azure.SQL.AllowAzureAccess",),
    ),
    SQL_FIREWALL_RULE,
)
def sql_allow_azure_services(rule: Resource, report: Report) -> None:
    if str(rule.get("startIpAddress")) == "0.0.0.0" and str(rule.get("endIpAddress")) == "0.0.0.0":
        report("rule 0.0.0.0-0.0.0.0 admits every Azure service")


# --- Cosmos DB --------------------------------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-cosmosdb-local-auth-disabled",
        area="security",
        title="Cosmos DB accounts disable key-based authentication",
        why="Account keys give full data access, never expire and bypass Entra ID audit; "
        "workloads use Entra ID identities and data-plane RBAC instead.",
        fix="Set disable_local_auth=True and grant Cosmos DB data-plane roles.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/cosmos-db/how-to-setup-rbac#disable-local-auth",),
        mirrors=("Azure.Cosmos.DisableLocalAuth", "CKV_AZURE_140"),
    ),
    COSMOS,
)
def cosmosdb_local_auth_disabled(account: Resource, report: Report) -> None:
    disabled = account.get("disableLocalAuth")
    if disabled is not True:
        shown = "not set (keys are enabled by default)" if disabled is None else repr(disabled)
        report(f"disableLocalAuth is {shown}; set disable_local_auth=True")


@resource_rule(
    Rule(
        id="gpustack-cosmosdb-public-network-access",
        area="security",
        title="Cosmos DB accounts disable public network access",
        why="A public endpoint exposes the data to the Internet, guarded only by keys or "
        "firewall rules.",
        fix="Set public_network_access='Disabled' and add a private endpoint.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/cosmos-db/how-to-configure-private-endpoints",),
        mirrors=("Azure.Cosmos.PublicAccess", "CKV_AZURE_101", "CKV_AZURE_99"),
    ),
    COSMOS,
)
def cosmosdb_public_network_access(account: Resource, report: Report) -> None:
    access = account.get("publicNetworkAccess")
    if not one_of(access, "Disabled"):
        shown = "not set (Azure's default is Enabled)" if access is None else repr(access)
        report(f"publicNetworkAccess is {shown}; set public_network_access='Disabled'")


@resource_rule(
    Rule(
        id="gpustack-cosmosdb-metadata-write-disabled",
        area="security",
        title="Cosmos DB accounts block key-based changes to databases and containers",
        why="With key-based metadata writes on, anyone holding an account key can delete or "
        "reconfigure databases outside Azure RBAC and the activity log.",
        fix="Set disable_key_based_metadata_write_access=True and manage databases and "
        "containers through ARM (Pulumi).",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/cosmos-db/role-based-access-control#prevent-sdk-changes",),
        mirrors=("Azure.Cosmos.DisableMetadataWrite", "CKV_AZURE_132"),
    ),
    COSMOS,
)
def cosmosdb_metadata_write_disabled(account: Resource, report: Report) -> None:
    if account.get("disableKeyBasedMetadataWriteAccess") is not True:
        report(f"disableKeyBasedMetadataWriteAccess is "
               f"{account.get('disableKeyBasedMetadataWriteAccess')!r}; set "
               "disable_key_based_metadata_write_access=True")


@resource_rule(
    Rule(
        id="gpustack-cosmosdb-min-tls",
        area="security",
        title="Cosmos DB accounts require TLS 1.2 or later",
        why="Clients on TLS 1.0 and 1.1 connect over protocols with known weaknesses.",
        fix="Set minimal_tls_version='Tls12'.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/cosmos-db/self-serve-minimum-tls-enforcement",),
        mirrors=("Azure.Cosmos.MinTLS",),
    ),
    COSMOS,
)
def cosmosdb_min_tls(account: Resource, report: Report) -> None:
    version = account.get("minimalTlsVersion")
    if not one_of(version, "Tls12", "Tls13"):
        shown = "not set" if version is None else repr(version)
        report(f"minimalTlsVersion is {shown}; set minimal_tls_version='Tls12'")


@resource_rule(
    Rule(
        id="gpustack-cosmosdb-continuous-backup",
        area="reliability",
        title="Cosmos DB accounts use continuous backup",
        why="Continuous backup restores to any second in the retention window; periodic "
        "backup keeps a few snapshots and restores only through a support request.",
        fix="Set backup_policy=ContinuousModeBackupPolicyArgs(type='Continuous', "
        "continuous_mode_properties=ContinuousModePropertiesArgs(tier='Continuous7Days')).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/cosmos-db/continuous-backup-restore-introduction",),
        mirrors=("Azure.Cosmos.ContinuousBackup",),
    ),
    COSMOS,
)
def cosmosdb_continuous_backup(account: Resource, report: Report) -> None:
    backup = account.get("backupPolicy", "type")
    if not one_of(backup, "Continuous"):
        shown = "not set (Periodic)" if backup is None else repr(backup)
        report(f"backupPolicy.type is {shown}; use continuous backup")


# --- Container Instances ------------------------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-aci-no-public-ip",
        area="security",
        title="Container groups have no public IP address",
        why="A public container group exposes its ports to the Internet with no firewall, WAF "
        "or authentication in front.",
        fix="Set ip_address.type='Private' with subnet_ids, or remove ip_address; publish "
        "through Application Gateway or Front Door when it must be public.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/container-instances/container-instances-vnet",),
        mirrors=("CKV_AZURE_245",),
    ),
    CONTAINER_GROUP,
)
def aci_no_public_ip(group: Resource, report: Report) -> None:
    if one_of(group.get("ipAddress", "type"), "Public"):
        ports = [f"{port:g}" for port in (number(dig(p, "port"))
                                          for p in items(group.get("ipAddress", "ports")))
                 if port is not None]
        report(f"ipAddress.type is 'Public' (ports {names(ports)}); use a private IP in a "
               "subnet")


@resource_rule(
    Rule(
        id="gpustack-aci-vnet",
        area="security",
        title="Container groups run in a virtual network",
        why="Outside a VNet a container group cannot use private endpoints, NSGs or a NAT "
        "gateway; batch jobs that reach only public services may reasonably skip it.",
        fix="Set subnet_ids=[ContainerGroupSubnetIdArgs(id=...)] on a subnet delegated to "
        "Microsoft.ContainerInstance/containerGroups.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/container-instances/container-instances-vnet",),
        mirrors=("CKV_AZURE_98",),
    ),
    CONTAINER_GROUP,
)
def aci_vnet(group: Resource, report: Report) -> None:
    if not items(group.get("subnetIds")):
        report("subnetIds is empty; the group is not in a virtual network")


_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|"
                          r"CONNECTION_?STRING|CREDENTIAL)", re.IGNORECASE)


@resource_rule(
    Rule(
        id="gpustack-aci-secure-environment-values",
        area="security",
        title="Container groups pass secrets as secure environment values",
        why="Plain environment values are returned by the ARM API and shown in the portal to "
        "anyone who can read the group; secureValue is write-only.",
        fix="Pass secrets with EnvironmentVariableArgs(name=..., secure_value=...) (or mount a "
        "Key Vault secret), not value=.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/container-instances/container-instances-environment-variables#secure-values",),
        mirrors=("CKV_AZURE_235",),
    ),
    CONTAINER_GROUP,
)
def aci_secure_environment_values(group: Resource, report: Report) -> None:
    containers = [*items(group.get("containers")), *items(group.get("initContainers"))]
    for container in containers:
        for variable in items(dig(container, "environmentVariables")):
            name = dig(variable, "name")
            if (isinstance(name, str) and _SECRET_NAME.search(name)
                    and dig(variable, "value") is not None):
                report(f"container {dig(container, 'name')!r} passes {name} as a plain value; "
                       "use secure_value")


# --- Container Apps ------------------------------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-containerapp-internal-ingress",
        area="security",
        title="Container apps accept traffic from their environment only",
        why="External ingress publishes the app to the Internet (or the whole VNet for an "
        "internal environment); internal APIs and workers should not be reachable there.",
        fix="Set configuration.ingress.external=False, or keep it True on purpose for a public "
        "front end.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/container-apps/ingress-overview",),
        mirrors=("Azure.ContainerApp.ExternalIngress",),
    ),
    CONTAINER_APP,
)
def containerapp_internal_ingress(app: Resource, report: Report) -> None:
    if app.get("configuration", "ingress", "external") is True:
        report("configuration.ingress.external is True")


@resource_rule(
    Rule(
        id="gpustack-containerapp-https-only",
        area="security",
        title="Container apps reject plain HTTP",
        why="allowInsecure serves the app over HTTP as well, sending tokens and data in clear "
        "text.",
        fix="Leave configuration.ingress.allow_insecure unset or False.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/container-apps/ingress-overview#protocol-types",),
        mirrors=("Azure.ContainerApp.Insecure",),
    ),
    CONTAINER_APP,
)
def containerapp_https_only(app: Resource, report: Report) -> None:
    if app.get("configuration", "ingress", "allowInsecure") is True:
        report("configuration.ingress.allowInsecure is True; set allow_insecure=False")


@resource_rule(
    Rule(
        id="gpustack-containerapp-managed-identity",
        area="security",
        title="Container apps have a managed identity",
        why="An app pulls images and reaches Azure services as a managed identity instead of "
        "registry passwords and keys in secrets.",
        fix="Set identity=ManagedServiceIdentityArgs(type='UserAssigned', ...) or "
        "'SystemAssigned'.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/container-apps/managed-identity",),
        mirrors=("Azure.ContainerApp.ManagedIdentity",),
    ),
    CONTAINER_APP,
)
def containerapp_managed_identity(app: Resource, report: Report) -> None:
    if not has_managed_identity(app):
        report(f"identity.type is {app.get('identity', 'type')!r}; give the app a managed "
               "identity")


@resource_rule(
    Rule(
        id="gpustack-containerapp-environment-internal",
        area="security",
        title="Container Apps environments are internal and VNet-integrated",
        why="An environment without its own subnet, or with a public load balancer, puts every "
        "externally ingressed app on the Internet; public front ends may reasonably want that.",
        fix="Set vnet_configuration=VnetConfigurationArgs(infrastructure_subnet_id=..., "
        "internal=True).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/container-apps/networking",),
        mirrors=("Azure.ContainerApp.PublicAccess",),
    ),
    MANAGED_ENVIRONMENT,
)
def containerapp_environment_internal(environment: Resource, report: Report) -> None:
    problems = []
    if not environment.get("vnetConfiguration", "infrastructureSubnetId"):
        problems.append("vnetConfiguration.infrastructureSubnetId is not set")
    if environment.get("vnetConfiguration", "internal") is not True:
        problems.append("vnetConfiguration.internal is not True")
    if problems:
        report("; ".join(problems))


# --- Azure Firewall ----------------------------------------------------------------------------


def _threat_intel_mode(resource: Resource) -> str | None:
    """The threat-intel mode a firewall or policy decides, or None when something else does.

    A firewall attached to a firewall policy (or a Virtual WAN hub firewall) takes the policy's
    mode; a child policy inherits its base policy's.
    """
    if resource.is_a(FIREWALL):
        if resource.get("firewallPolicy") is not None or one_of(resource.get("sku", "name"),
                                                                "AZFW_Hub"):
            return None
    elif resource.get("basePolicy") is not None:
        return None
    mode = resource.get("threatIntelMode")
    return str(mode) if mode is not None else "Alert"  # the API's default


@resource_rule(
    Rule(
        id="gpustack-firewall-threat-intel-on",
        area="security",
        title="Azure Firewalls keep threat intelligence on",
        why="With threat intelligence Off, traffic to and from known malicious addresses and "
        "domains passes unnoticed.",
        fix="Set threat_intel_mode='Deny' (or at least 'Alert') on the firewall policy or "
        "classic firewall.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/firewall/threat-intel",),
    ),
    FIREWALL,
    FIREWALL_POLICY,
)
def firewall_threat_intel_on(resource: Resource, report: Report) -> None:
    if one_of(_threat_intel_mode(resource), "Off"):
        report("threatIntelMode is 'Off'; set threat_intel_mode='Deny'")


@resource_rule(
    Rule(
        id="gpustack-firewall-threat-intel-deny",
        area="security",
        title="Azure Firewalls deny traffic flagged by threat intelligence",
        why="Alert mode only logs traffic to known malicious addresses; Deny blocks it. A team "
        "tuning a new firewall may run in Alert for a while.",
        fix="Set threat_intel_mode='Deny'.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/firewall/threat-intel",),
        mirrors=("Azure.Firewall.Mode", "Azure.Firewall.PolicyMode", "CKV_AZURE_216"),
    ),
    FIREWALL,
    FIREWALL_POLICY,
)
def firewall_threat_intel_deny(resource: Resource, report: Report) -> None:
    mode = _threat_intel_mode(resource)
    if mode is not None and not one_of(mode, "Deny"):
        shown = "not set (the API's default is Alert)" if resource.get(
            "threatIntelMode") is None else repr(mode)
        report(f"threatIntelMode is {shown}; set threat_intel_mode='Deny'")


# --- VPN and ExpressRoute gateways -------------------------------------------------------------


def _gateway(resource: Resource) -> tuple[str | None, str | None]:
    """(gateway type as the data file spells it, SKU name) of a virtual network gateway."""
    gateway_type = resource.get("gatewayType")
    kind = next((k for k in ("Vpn", "ExpressRoute") if one_of(gateway_type, k)), None)
    sku = resource.get("sku", "name")
    return kind, sku if isinstance(sku, str) else None


@resource_rule(
    Rule(
        id="gpustack-gateway-legacy-sku",
        area="reliability",
        title="VPN and ExpressRoute gateways do not use legacy SKUs",
        why="Legacy gateway SKUs (VPN Basic, Standard, HighPerformance; ExpressRoute Basic) "
        "lack zone redundancy and the newer SKUs' throughput; Standard and HighPerformance VPN "
        "SKUs are deprecated.",
        fix="Use a VpnGwNAZ SKU for VPN gateways and an ErGwNAZ (or ErGwScale) SKU for "
        "ExpressRoute gateways.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/vpn-gateway/vpn-gateway-about-skus-legacy",
            "https://learn.microsoft.com/azure/expressroute/expressroute-about-virtual-network-gateways",
        ),
        mirrors=("Azure.VNG.VPNLegacySKU", "Azure.VNG.ERLegacySKU"),
    ),
    GATEWAY,
)
def gateway_legacy_sku(gateway: Resource, report: Report) -> None:
    kind, sku = _gateway(gateway)
    if kind is None or sku is None:
        return
    legacy = lifecycle("virtual_network_gateways")["legacy_skus"][kind]
    if one_of(sku, *legacy):
        report(f"{kind} gateway sku.name is {sku!r}, a legacy SKU; use one of "
               f"{names(lifecycle('virtual_network_gateways')['zone_redundant_skus'][kind])}")


@resource_rule(
    Rule(
        id="gpustack-gateway-zone-redundant-sku",
        area="reliability",
        title="VPN and ExpressRoute gateways use zone-redundant SKUs",
        why="Non-AZ gateway SKUs run in one zone: a zone outage cuts the site-to-site or "
        "ExpressRoute connection. Regions without zones may reasonably keep them.",
        fix="Use the AZ variant of the SKU (VpnGw1 -> VpnGw1AZ, ErGw1 -> ErGw1AZ) with Standard "
        "public IPs.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=(
            "https://learn.microsoft.com/azure/vpn-gateway/about-zone-redundant-vnet-gateways",
            "https://learn.microsoft.com/azure/expressroute/gateway-migration",
        ),
        mirrors=("Azure.VNG.VPNAvailabilityZoneSKU", "Azure.VNG.ERAvailabilityZoneSKU"),
    ),
    GATEWAY,
)
def gateway_zone_redundant_sku(gateway: Resource, report: Report) -> None:
    kind, sku = _gateway(gateway)
    if kind is None or sku is None:
        return
    gateways = lifecycle("virtual_network_gateways")
    if one_of(sku, *gateways["legacy_skus"][kind]):
        return  # the legacy-SKU rule already names it
    if zoneless_region(gateway):
        return  # zone-redundant SKUs need a region with availability zones
    zonal = gateways["zone_redundant_skus"][kind]
    if not one_of(sku, *zonal):
        report(f"{kind} gateway sku.name is {sku!r}, not zone-redundant; use one of "
               f"{names(zonal)}")


@resource_rule(
    Rule(
        id="gpustack-gateway-vpn-active-active",
        area="reliability",
        title="VPN gateways run active-active",
        why="In active-standby mode a gateway failover or maintenance drops tunnels for up to "
        "a few minutes; active-active keeps both instances carrying traffic. Basic SKUs cannot.",
        fix="Set active_active=True with a second IP configuration and public IP.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/vpn-gateway/active-active-portal",),
        mirrors=("Azure.VNG.VPNActiveActive",),
    ),
    GATEWAY,
)
def gateway_vpn_active_active(gateway: Resource, report: Report) -> None:
    kind, sku = _gateway(gateway)
    if kind != "Vpn" or one_of(sku, "Basic"):
        return  # ExpressRoute gateways and Basic VPN gateways have no active-active mode
    if gateway.get("activeActive") is not True:
        report(f"activeActive is {gateway.get('activeActive')!r}; set active_active=True")


# --- Synapse -------------------------------------------------------------------------------------


@resource_rule(
    Rule(
        id="gpustack-synapse-firewall-not-open",
        area="security",
        title="Synapse firewall rules do not open the workspace to the Internet",
        why="A rule such as 0.0.0.0-255.255.255.255 lets every address reach the workspace's "
        "SQL and development endpoints.",
        fix="Remove wide IP firewall rules; use managed private endpoints and private links.",
        severity=Severity.CRITICAL,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/synapse-analytics/security/synapse-workspace-ip-firewall",),
        mirrors=("CKV2_AZURE_19",),
        settings=FIREWALL_RANGE_SETTING,
    ),
    SYNAPSE_FIREWALL_RULE,
)
def synapse_firewall_not_open(rule: Resource, report: Report) -> None:
    _open_firewall_rule(rule, report)


@resource_rule(
    Rule(
        id="gpustack-synapse-managed-vnet",
        area="security",
        title="Synapse workspaces use a managed virtual network",
        why="Without the managed VNet, Spark and pipelines run on shared networks and data "
        "exfiltration protection is unavailable; it can only be chosen at creation.",
        fix="Set managed_virtual_network='default' (and managed_virtual_network_settings."
        "prevent_data_exfiltration=True).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/synapse-analytics/security/synapse-workspace-managed-vnet",),
        mirrors=("CKV_AZURE_58",),
    ),
    SYNAPSE,
)
def synapse_managed_vnet(workspace: Resource, report: Report) -> None:
    if lower(workspace.get("managedVirtualNetwork")) != "default":
        report(f"managedVirtualNetwork is {workspace.get('managedVirtualNetwork')!r}; set "
               "managed_virtual_network='default'")


@resource_rule(
    Rule(
        id="gpustack-synapse-public-network-access",
        area="security",
        title="Synapse workspaces disable public network access",
        why="A public workspace endpoint exposes its SQL pools and Studio to the Internet, "
        "guarded only by firewall rules.",
        fix="Set public_network_access='Disabled' and connect through private link hubs and "
        "private endpoints.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/synapse-analytics/security/connectivity-settings",),
    ),
    SYNAPSE,
)
def synapse_public_network_access(workspace: Resource, report: Report) -> None:
    access = workspace.get("publicNetworkAccess")
    if not one_of(access, "Disabled"):
        shown = "not set (Azure's default is Enabled)" if access is None else repr(access)
        report(f"publicNetworkAccess is {shown}; set public_network_access='Disabled'")


@resource_rule(
    Rule(
        id="gpustack-synapse-entra-only-auth",
        area="security",
        title="Synapse workspaces allow Microsoft Entra authentication only",
        why="The SQL administrator login is a password that never expires and bypasses "
        "Conditional Access and MFA; Entra-only authentication turns SQL logins off.",
        fix="Set azure_ad_only_authentication=True and grant access to Entra groups.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/synapse-analytics/sql/active-directory-authentication",),
    ),
    SYNAPSE,
)
def synapse_entra_only_auth(workspace: Resource, report: Report) -> None:
    entra_only = workspace.get("azureADOnlyAuthentication")
    if entra_only is not True:
        shown = "not set" if entra_only is None else repr(entra_only)
        report(f"azureADOnlyAuthentication is {shown}; set azure_ad_only_authentication=True")


# --- storage SAS and key expiry -------------------------------------------------------------------


def _shared_key_disabled(account: Resource) -> bool:
    # Account keys and the SAS tokens they sign stop working when Shared Key is off.
    return account.get("allowSharedKeyAccess") is False


@resource_rule(
    Rule(
        id="gpustack-storage-sas-expiry-policy",
        area="security",
        title="Storage accounts that allow Shared Key cap SAS lifetimes",
        why="A SAS token signed with an account key is a bearer credential; without a SAS "
        "expiration policy one can be issued for years. Accounts with Shared Key disabled "
        "cannot sign such tokens.",
        fix="Set allow_shared_key_access=False, or sas_policy=SasPolicyArgs("
        "sas_expiration_period='1.00:00:00', expiration_action='Block').",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/storage/common/sas-expiration-policy",),
        mirrors=("CKV2_AZURE_41",),
    ),
    STORAGE,
)
def storage_sas_expiry_policy(account: Resource, report: Report) -> None:
    if _shared_key_disabled(account):
        return
    if not account.get("sasPolicy", "sasExpirationPeriod"):
        report("Shared Key is allowed and sasPolicy.sasExpirationPeriod is not set")


@resource_rule(
    Rule(
        id="gpustack-storage-key-expiry-policy",
        area="security",
        title="Storage accounts that allow Shared Key require key rotation",
        why="Account keys never expire by themselves; a key expiration policy flags keys not "
        "rotated within the period. Accounts with Shared Key disabled do not accept keys.",
        fix="Set allow_shared_key_access=False, or key_policy=KeyPolicyArgs("
        "key_expiration_period_in_days=90).",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/storage/common/storage-account-keys-manage#create-a-key-expiration-policy",),
        settings={
            "maximumKeyAgeDays": {
                "type": "number",
                "default": 90,
                "description": "Longest key expiration period accepted, in days.",
            }
        },
    ),
    STORAGE,
)
def storage_key_expiry_policy(account: Resource, report: Report) -> None:
    if _shared_key_disabled(account):
        return
    days = number(account.get("keyPolicy", "keyExpirationPeriodInDays"))
    limit = account.config["maximumKeyAgeDays"]
    if days is None:
        report("Shared Key is allowed and keyPolicy.keyExpirationPeriodInDays is not set")
    elif days > limit:
        report(f"keyPolicy.keyExpirationPeriodInDays is {days:g}; rotate keys within "
               f"{limit:g} days")


# --- end-of-life OS images -----------------------------------------------------------------------


def end_of_life_image(reference: Any) -> dict[str, Any] | None:
    """The lifecycle entry an imageReference matches, or None for supported or unknown images."""
    publisher, offer, sku = (lower(dig(reference, key)) for key in ("publisher", "offer", "sku"))
    if not (publisher and offer and sku):
        return None
    for entry in lifecycle("os_images"):
        if (publisher == entry["publisher"].lower() and offer == entry["offer"].lower()
                and re.fullmatch(entry["sku"], sku, re.IGNORECASE)):
            return dict(entry)
    return None


@resource_rule(
    Rule(
        id="gpustack-vm-supported-os-image",
        area="security",
        title="VMs and scale sets boot a marketplace image that still gets security updates",
        why="An OS past its end of standard support gets no free security patches; every new "
        "vulnerability stays open (or needs a paid extension such as Ubuntu Pro or ESU).",
        fix="Move storage_profile.image_reference to a supported release (Ubuntu 22.04/24.04, "
        "RHEL 8/9, AlmaLinux, Windows Server 2022/2025).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/virtual-machines/linux/endorsed-distros",
            "https://learn.microsoft.com/azure/virtual-machines/workloads/centos/centos-end-of-life",
        ),
    ),
    VM,
    SCALE_SET,
)
def vm_supported_os_image(resource: Resource, report: Report) -> None:
    reference = vm_profile(resource, "storageProfile", "imageReference")
    entry = end_of_life_image(reference)
    if entry is None:
        return
    ended = end_date(entry["end_of_support"])
    if ended > as_of():
        return
    image = ":".join(str(dig(reference, key)) for key in ("publisher", "offer", "sku"))
    note = f" ({entry['note']})" if entry.get("note") else ""
    report(f"image {image} is {entry['os']}, out of standard support since "
           f"{ended.isoformat()}{note}; move to a supported release")


POLICIES = [
    appservice_https_only,
    appservice_min_tls,
    appservice_ftps,
    appservice_remote_debugging_off,
    appservice_managed_identity,
    appservice_client_certificates,
    appservice_http2,
    appservice_public_network_access,
    appservice_supported_runtime,
    appservice_cors_not_wildcard,
    appservice_diagnostic_logging,
    appservice_health_check,
    appservice_plan_zone_redundant,
    appservice_plan_instances,
    sql_public_network_access,
    sql_min_tls,
    sql_entra_only_auth,
    sql_auditing,
    sql_firewall_not_open,
    sql_allow_azure_services,
    cosmosdb_local_auth_disabled,
    cosmosdb_public_network_access,
    cosmosdb_metadata_write_disabled,
    cosmosdb_min_tls,
    cosmosdb_continuous_backup,
    aci_no_public_ip,
    aci_vnet,
    aci_secure_environment_values,
    containerapp_internal_ingress,
    containerapp_https_only,
    containerapp_managed_identity,
    containerapp_environment_internal,
    firewall_threat_intel_on,
    firewall_threat_intel_deny,
    gateway_legacy_sku,
    gateway_zone_redundant_sku,
    gateway_vpn_active_active,
    synapse_firewall_not_open,
    synapse_managed_vnet,
    synapse_public_network_access,
    synapse_entra_only_auth,
    storage_sas_expiry_policy,
    storage_key_expiry_policy,
    vm_supported_os_image,
]
