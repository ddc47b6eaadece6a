"""Monitoring: workspaces, Grafana access, GPU VM metrics, diagnostics, the DCGM dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_azure_native import compute, network

from components.alerts import AlertThresholds, WatchedPool, pool_alert_rules
from components.conventions import ComponentContext, IdentityRef
from components.diagnostics import diagnostic_specs, send_diagnostics, skipped_types
from components.monitoring import (
    DASHBOARD_FILE,
    DASHBOARD_PATH,
    GpuMonitoring,
    GpuMonitoringArgs,
    VmCollection,
    VmPoolMonitoring,
    VmPoolMonitoringArgs,
    VmPoolTarget,
    monitoring_agent_extension,
    vm_prometheus_agent_config,
)
from gpustack import facts
from gpustack.engine import Plan, PlannedResource, capture
from stacks.config import PROJECT, parse_config

ROOT = Path(__file__).resolve().parent.parent
DCGM_NAME = re.compile(r"\bDCGM_FI_[A-Z0-9_]+\b")
ADMINS = "0f1e2d3c-4b5a-4968-8776-655443322110"
CONTEXT = ComponentContext(resource_group_name="rg-gpu-test-core", location="eastus")
WORKSPACE = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w"
)
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
VMSS = "azure-native:compute:VirtualMachineScaleSet"


def _monitoring(**overrides: Any) -> dict[str, PlannedResource]:
    args = {"context": CONTEXT, "retention_days": 45} | overrides
    resources = capture(lambda: GpuMonitoring("monitoring", GpuMonitoringArgs(**args)))
    return {r.name: r for r in resources}


@pytest.fixture(scope="module")
def monitoring() -> dict[str, PlannedResource]:
    return _monitoring(grafana_admin_group_object_id=ADMINS)


def _role_guid(assignment: PlannedResource) -> str:
    return str(assignment.inputs["roleDefinitionId"]).rsplit("/", 1)[-1]


def _stack_config_values(stack: str) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    prefix = f"{PROJECT}:"
    return {k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}


# --- workspaces ----------------------------------------------------------------------------------


def test_workspace_keeps_logs_for_the_configured_days_with_entra_auth_only(
    monitoring: dict[str, PlannedResource],
) -> None:
    workspace = monitoring["monitoring-logs"].inputs
    assert workspace["retentionInDays"] == 45
    assert workspace["features"]["disableLocalAuth"] is True
    assert monitoring["monitoring-logs"].options["protect"] is False


def test_workspaces_are_protected_when_the_context_says_so() -> None:
    resources = _monitoring(context=ComponentContext("rg", "eastus", protect=True), grafana=False)
    for name in ("monitoring-logs", "monitoring-prometheus"):
        assert resources[name].options["protect"] and resources[name].options["retainOnDelete"]


def test_retention_follows_each_environment(env_plan: Plan) -> None:
    cfg = parse_config(_stack_config_values(env_plan.stack), env_plan.stack)
    (workspace,) = env_plan.by_type("azure-native:operationalinsights:Workspace")
    assert workspace.inputs["retentionInDays"] == cfg.monitoring.log_retention_days


# --- Grafana -------------------------------------------------------------------------------------


def test_grafana_is_linked_to_the_workspace_it_may_read(
    monitoring: dict[str, PlannedResource],
) -> None:
    grafana = monitoring["monitoring-grafana"]
    prometheus = monitoring["monitoring-prometheus"]
    integrations = grafana.inputs["properties"]["grafanaIntegrations"]
    assert integrations["azureMonitorWorkspaceIntegrations"] == [
        {"azureMonitorWorkspaceResourceId": prometheus.id}
    ]
    reader = monitoring["monitoring-grafana-prometheus-reader"]
    assert reader.inputs["scope"] == prometheus.id
    assert reader.inputs["principalId"] == grafana.outputs["identity"]["principalId"]
    assert _role_guid(reader) == facts.role_definition_id("monitoring_data_reader")


def test_grafana_admin_role_goes_to_the_configured_group_on_grafana_only(
    monitoring: dict[str, PlannedResource],
) -> None:
    admins = monitoring["monitoring-grafana-admins"].inputs
    assert admins["principalId"] == ADMINS
    assert admins["principalType"] == "Group"
    assert admins["scope"] == monitoring["monitoring-grafana"].id
    assert _role_guid(monitoring["monitoring-grafana-admins"]) == facts.role_definition_id(
        "grafana_admin"
    )


def test_without_an_admin_group_no_one_is_granted_grafana_admin() -> None:
    resources = _monitoring()
    assigned = {_role_guid(r) for r in resources.values() if r.type == ROLE_ASSIGNMENT}
    assert facts.role_definition_id("grafana_admin") not in assigned


def test_grafana_is_private_and_keyless_unless_config_opens_it(
    monitoring: dict[str, PlannedResource],
) -> None:
    props = monitoring["monitoring-grafana"].inputs["properties"]
    assert (props["publicNetworkAccess"], props["apiKey"]) == ("Disabled", "Disabled")
    opened = _monitoring(grafana_public_network_access=True)
    assert opened["monitoring-grafana"].inputs["properties"]["publicNetworkAccess"] == "Enabled"


def test_grafana_off_declares_no_grafana_and_no_grafana_roles() -> None:
    resources = _monitoring(grafana=False)
    assert not [r for r in resources.values() if r.type == "azure-native:dashboard:Grafana"]
    assert not [r for r in resources.values() if r.type == ROLE_ASSIGNMENT]


def test_private_grafana_gets_a_private_endpoint(env_plan: Plan) -> None:
    cfg = parse_config(_stack_config_values(env_plan.stack), env_plan.stack)
    (grafana,) = env_plan.by_type("azure-native:dashboard:Grafana")
    endpoints = [
        r
        for r in env_plan.by_type("azure-native:network:PrivateEndpoint")
        if r.inputs["privateLinkServiceConnections"][0]["privateLinkServiceId"] == grafana.id
    ]
    assert len(endpoints) == (0 if cfg.monitoring.grafana_public_network_access else 1)


# --- GPU VM pools ----------------------------------------------------------------------------


def test_vm_remote_write_url_is_the_rule_ingestion_endpoint() -> None:
    urls: list[str] = []

    def declare() -> None:
        monitor = GpuMonitoring("monitoring", GpuMonitoringArgs(context=CONTEXT, retention_days=45))
        monitor.vm_collection.remote_write_url.apply(urls.append)  # type: ignore[union-attr]

    resources = {r.name: r for r in capture(declare)}
    endpoint = resources["monitoring-vm-dce"].outputs["metricsIngestion"]["endpoint"]
    rule = resources["monitoring-vm-prometheus-dcr"]
    stream = facts.load("azure_monitor")["managed_prometheus"]["stream"]
    assert urls == [
        f"{endpoint}/dataCollectionRules/{rule.outputs['immutableId']}/streams/{stream}"
        "/api/v1/write?api-version=2023-04-24"
    ]
    destination = rule.inputs["destinations"]["monitoringAccounts"][0]
    assert destination["accountResourceId"] == resources["monitoring-prometheus"].id


def test_vm_pools_send_syslog_and_may_publish_only_into_the_prometheus_rule() -> None:
    collection = VmCollection("/dcr/syslog", "/dcr/prometheus", "https://ingest")
    identity = IdentityRef("/identities/nodes", "00000000-0000-4000-8000-0000000000aa", "cid")
    targets = [
        VmPoolTarget("nd", "/vmss/nd", identity),
        VmPoolTarget("t4", "/vmss/t4", identity),
        VmPoolTarget("devbox", "/vm/devbox"),
    ]
    resources = capture(
        lambda: VmPoolMonitoring(
            "vm", VmPoolMonitoringArgs(context=CONTEXT, collection=collection, targets=targets)
        )
    )
    associations = {
        r.inputs["resourceUri"]: r.inputs["dataCollectionRuleId"]
        for r in resources
        if r.type == "azure-native:monitor:DataCollectionRuleAssociation"
    }
    assert associations == dict.fromkeys(("/vmss/nd", "/vmss/t4", "/vm/devbox"), "/dcr/syslog")
    # One grant per identity: Azure refuses a second identical role assignment.
    (grant,) = [r for r in resources if r.type == ROLE_ASSIGNMENT]
    assert grant.inputs["scope"] == "/dcr/prometheus"
    assert grant.inputs["principalId"] == identity.principal_id
    assert _role_guid(grant) == facts.role_definition_id("monitoring_metrics_publisher")


def test_each_syslog_association_waits_for_its_pools_monitoring_agent() -> None:
    collection = VmCollection("/dcr/syslog", "/dcr/prometheus", "https://ingest")

    def declare() -> None:
        agent = compute.VirtualMachineExtension(
            "devbox-monitoring-agent",
            resource_group_name="rg",
            vm_name="devbox",
            **monitoring_agent_extension("/identities/nodes"),
        )
        targets = [
            VmPoolTarget("devbox", "/vm/devbox", agent=agent),
            # An agent installed outside the program (Azure Policy): nothing to wait for.
            VmPoolTarget("legacy", "/vm/legacy"),
        ]
        VmPoolMonitoring(
            "vm", VmPoolMonitoringArgs(context=CONTEXT, collection=collection, targets=targets)
        )

    resources = capture(declare)
    (agent,) = [r for r in resources if r.name == "devbox-monitoring-agent"]
    waits = {
        r.inputs["resourceUri"]: r.options["dependsOn"]
        for r in resources
        if r.type == "azure-native:monitor:DataCollectionRuleAssociation"
    }
    assert waits == {"/vm/devbox": [agent.urn], "/vm/legacy": []}


def test_every_vm_pool_the_syslog_rule_reaches_runs_the_agent_first(env_plan: Plan) -> None:
    agent = facts.load("azure_monitor")["monitoring_agent"]
    wanted = (agent["publisher"], agent["types"]["linux"])
    machines = {
        r.id: r
        for r in env_plan.resources
        if r.type in ("azure-native:compute:VirtualMachine", VMSS)
    }
    agents = {
        r.inputs["vmName"]: r
        for r in env_plan.by_type("azure-native:compute:VirtualMachineExtension")
        if (r.inputs["publisher"], r.inputs["type"]) == wanted
    }
    associated = set()
    for association in env_plan.by_type("azure-native:monitor:DataCollectionRuleAssociation"):
        machine = machines.get(association.inputs["resourceUri"])
        if machine is None:
            continue  # the AKS cluster's rules
        associated.add(machine.name)
        if machine.type == VMSS:
            extensions = machine.inputs["virtualMachineProfile"]["extensionProfile"]["extensions"]
            assert wanted in {(e["publisher"], e["type"]) for e in extensions}, machine.name
        else:
            extension = agents[machine.outputs["name"]]
            assert extension.urn in association.options["dependsOn"], machine.name
    assert associated, "the stack associates the syslog rule with no VM pool"
    # The CPU scale sets get no syslog rule, so no agent either.
    for machine in machines.values():
        if machine.name not in associated and machine.type == VMSS:
            profile = machine.inputs["virtualMachineProfile"]
            extensions = profile.get("extensionProfile", {}).get("extensions", [])
            assert wanted not in {(e["publisher"], e["type"]) for e in extensions}, machine.name


def test_vm_agent_config_scrapes_dcgm_exporter_and_labels_the_pool() -> None:
    rendered: list[str] = []

    def declare() -> None:
        vm_prometheus_agent_config("ndtrain", "https://ingest/write", "client-1").apply(
            rendered.append
        )

    capture(declare)
    config = yaml.safe_load(rendered[0])
    labels = facts.load("azure_monitor")["pool_labels"]
    assert config["global"]["external_labels"][labels["vm"]] == "ndtrain"
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets[labels["dcgm_job"]] == [f"localhost:{facts.dcgm_exporter_port()}"]
    (write,) = config["remote_write"]
    assert write["url"] == "https://ingest/write"
    assert write["azuread"]["managed_identity"]["client_id"] == "client-1"


# --- diagnostic settings -----------------------------------------------------------------------


def test_every_resource_of_a_diagnosable_type_sends_to_the_stack_workspace(
    env_plan: Plan,
) -> None:
    (workspace,) = env_plan.by_type("azure-native:operationalinsights:Workspace")
    settings = {
        r.inputs["resourceUri"]: r.inputs["workspaceId"]
        for r in env_plan.by_type(DIAGNOSTIC_SETTING)
    }
    specs = diagnostic_specs()
    missing = [
        f"{r.type} {r.name}"
        for r in env_plan.custom_resources()
        if r.type in specs and settings.get(r.id) != workspace.id
    ]
    assert not missing, f"no diagnostic setting to the stack workspace: {missing}"


def test_diagnostic_settings_respect_what_their_type_may_send(env_plan: Plan) -> None:
    """AKS must not ship kube-audit (cost); types without metrics or logs must not ask for them."""
    specs = diagnostic_specs()
    types = {r.id: r.type for r in env_plan.custom_resources()}
    wrong = []
    for setting in env_plan.by_type(DIAGNOSTIC_SETTING):
        spec = specs.get(types.get(setting.inputs["resourceUri"], ""))
        if spec is None:
            continue
        sent = {
            log.get("category") or log.get("categoryGroup")
            for log in setting.inputs.get("logs", [])
        }
        refused = set(spec.excluded_logs) | ({"allLogs"} if spec.excluded_logs else set())
        if sent & refused or (sent and not spec.log_categories):
            wrong.append(f"{setting.name} sends {sorted(sent)}")
        if "metrics" in setting.inputs and not spec.metrics:
            wrong.append(f"{setting.name} asks for metrics {spec.resource_type} does not have")
    assert not wrong, wrong


def test_diagnostic_types_have_sources_and_no_type_is_both_sent_and_skipped() -> None:
    table = facts.load("azure_monitor")["diagnostic_settings"]
    assert not set(table) & set(skipped_types())
    for token, entry in table.items():
        assert entry["source"].startswith("https://learn.microsoft.com/"), token
        assert entry["arm_type"].startswith("Microsoft."), token


def _setting(**kwargs: Any) -> dict[str, Any] | None:
    context = ComponentContext("rg", "eastus", diagnostics=WORKSPACE)

    def declare() -> None:
        from pulumi_azure_native import resources

        parent = resources.ResourceGroup("parent", resource_group_name="rg")
        send_diagnostics(parent, "target", context=context, **kwargs)

    settings = [r for r in capture(declare) if r.type == DIAGNOSTIC_SETTING]
    return settings[0].inputs if settings else None


def test_aks_sends_admin_audit_not_the_full_audit_log() -> None:
    setting = _setting(
        resource_id="/clusters/aks", resource_type="azure-native:containerservice:ManagedCluster"
    )
    assert setting is not None
    categories = {log["category"] for log in setting["logs"]}
    assert "kube-audit-admin" in categories
    assert "kube-audit" not in categories
    assert setting["logAnalyticsDestinationType"] == "Dedicated"


def test_a_resource_passed_itself_gets_its_type_categories() -> None:
    context = ComponentContext("rg", "eastus", diagnostics=WORKSPACE)

    def declare() -> None:
        nsg = network.NetworkSecurityGroup("nsg", resource_group_name="rg")
        send_diagnostics(nsg, "nsg", nsg, context)

    (setting,) = [r for r in capture(declare) if r.type == DIAGNOSTIC_SETTING]
    categories = {log["category"] for log in setting.inputs["logs"]}
    assert categories == {"NetworkSecurityGroupEvent", "NetworkSecurityGroupRuleCounter"}
    # NSGs have no platform metrics: asking for AllMetrics would fail the deployment.
    assert "metrics" not in setting.inputs


def test_storage_account_level_sends_metrics_only() -> None:
    setting = _setting(
        resource_id="/accounts/models", resource_type="azure-native:storage:StorageAccount"
    )
    assert setting is not None
    assert "logs" not in setting
    assert setting["metrics"] == [{"category": "AllMetrics", "enabled": True}]


def test_skipped_types_and_diagnostics_off_declare_nothing() -> None:
    assert (
        _setting(resource_id="/vms/a", resource_type="azure-native:compute:VirtualMachine") is None
    )

    def declare() -> None:
        from pulumi_azure_native import resources

        parent = resources.ResourceGroup("parent", resource_group_name="rg")
        send_diagnostics(parent, "target", "/vaults/v", ComponentContext("rg", "eastus"))

    assert not [r for r in capture(declare) if r.type == DIAGNOSTIC_SETTING]


# --- the DCGM dashboard ------------------------------------------------------------------------


def _dashboard_queries() -> list[str]:
    model = json.loads(DASHBOARD_FILE.read_text())
    queries = [t["expr"] for panel in model["panels"] for t in panel["targets"]]
    queries += [v["definition"] for v in model["templating"]["list"] if "definition" in v]
    return queries


def test_dashboard_json_parses_and_queries_only_known_dcgm_metrics() -> None:
    used = {name for query in _dashboard_queries() for name in DCGM_NAME.findall(query)}
    assert used
    assert used <= facts.dcgm_metric_names()


def test_dashboard_shows_every_metric_the_alerts_watch() -> None:
    alerted = {
        name
        for pool in (WatchedPool("t4", "aks", 2, spot=True), WatchedPool("nd", "vm", 2))
        for rule in pool_alert_rules(pool, AlertThresholds())
        for name in DCGM_NAME.findall(rule.expression)
    }
    shown = {name for query in _dashboard_queries() for name in DCGM_NAME.findall(query)}
    assert alerted <= shown, alerted - shown


def test_dashboard_panels_filter_by_both_pool_labels() -> None:
    labels = facts.load("azure_monitor")["pool_labels"]
    model = json.loads(DASHBOARD_FILE.read_text())
    for panel in model["panels"]:
        for target in panel["targets"]:
            for metric in DCGM_NAME.findall(target["expr"]):
                selector = f'{metric}{{{labels["aks"]}=~"${labels["aks"]}", '
                selector += f'{labels["vm"]}=~"${labels["vm"]}"}}'
                assert selector in target["expr"], (panel["title"], target["expr"])


def test_stacks_with_grafana_export_the_dashboard_import_command(env_plan: Plan) -> None:
    (grafana,) = env_plan.by_type("azure-native:dashboard:Grafana")
    command = env_plan.outputs["grafanaDashboardImport"]
    assert f"--name {grafana.outputs['name']} " in command
    assert f"--definition {DASHBOARD_PATH}" in command
    assert (ROOT / DASHBOARD_PATH).is_file()
