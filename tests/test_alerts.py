"""GPU alerts: rules watch their pool with real DCGM metrics and notify the one action group."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.alerts import (
    AlertThresholds,
    GpuAlerts,
    GpuAlertsArgs,
    WatchedPool,
    dcgm,
    pool_alert_rules,
)
from components.conventions import ComponentContext, MonitoringTargets
from gpustack import catalog, facts
from gpustack.engine import Plan, PlannedResource, capture
from stacks.config import PROJECT, StackConfig, parse_config

ROOT = Path(__file__).resolve().parent.parent
RULE_GROUP = "azure-native:alertsmanagement:PrometheusRuleGroup"
ACTION_GROUP = "azure-native:monitor:ActionGroup"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
DCGM_NAME = re.compile(r"\bDCGM_FI_[A-Z0-9_]+\b")
PROVIDERS = "/subscriptions/s/resourceGroups/rg/providers"
WORKSPACE = f"{PROVIDERS}/Microsoft.Monitor/accounts/amw"
SCALE_SET = f"{PROVIDERS}/Microsoft.Compute/virtualMachineScaleSets/nd"
AUTOSCALE = f"{PROVIDERS}/Microsoft.Insights/autoscalesettings/nd"
CLUSTER = f"{PROVIDERS}/Microsoft.ContainerService/managedClusters/aks"
CONTEXT = ComponentContext(resource_group_name="rg-gpu-test-core", location="eastus")


def stack_config(plan: Plan) -> StackConfig:
    """The validated config of the plan's stack file."""
    raw = yaml.safe_load((ROOT / f"Pulumi.{plan.stack}.yaml").read_text())["config"]
    prefix = f"{PROJECT}:"
    values = {k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}
    return parse_config(values, f"Pulumi.{plan.stack}.yaml")


def pool_selector(pool: str, platform: str) -> re.Pattern[str]:
    """The label matchers a rule may select the pool by (series label or node label)."""
    labels = facts.load("azure_monitor")["pool_labels"]
    names = [labels["aks"], labels["aks_node_label"]] if platform == "aks" else [labels["vm"]]
    return re.compile(rf'\b({"|".join(names)})="{re.escape(pool)}"')


def _alerts(**overrides: Any) -> list[PlannedResource]:
    args = {
        "context": CONTEXT,
        "monitoring": MonitoringTargets("/law", WORKSPACE),
        "short_name": "gpu-test",
        "emails": ("ops@example.com",),
        "pools": (WatchedPool("t4spot", "aks", 3, spot=True),),
    } | overrides
    return capture(lambda: GpuAlerts("alerts", GpuAlertsArgs(**args)))


# --- the shared environment plans ------------------------------------------------------------


def test_every_configured_gpu_pool_has_a_rule_group(env_plan: Plan) -> None:
    cfg = stack_config(env_plan)
    expected = {("aks", p.name) for p in (cfg.aks.gpu_pools if cfg.aks else [])}
    expected |= {("vm", p.name) for p in cfg.vm_pools}
    watched = set()
    for group in env_plan.by_type(RULE_GROUP):
        labels = {(r["labels"]["platform"], r["labels"]["pool"]) for r in group.inputs["rules"]}
        assert len(labels) == 1, f"{group.name} watches several pools: {labels}"
        watched |= labels
    assert watched == expected


def test_every_rule_names_its_pool_and_only_real_dcgm_metrics(env_plan: Plan) -> None:
    known = facts.dcgm_metric_names()
    for group in env_plan.by_type(RULE_GROUP):
        for rule in group.inputs["rules"]:
            pool, platform = rule["labels"]["pool"], rule["labels"]["platform"]
            expression = rule["expression"]
            assert pool_selector(pool, platform).search(expression), (rule["alert"], expression)
            assert set(DCGM_NAME.findall(expression)) <= known, expression


def test_gpu_rules_use_the_dcgm_metric_that_measures_them(env_plan: Plan) -> None:
    measures = {
        "GpuIdle": {"DCGM_FI_DEV_GPU_UTIL"},
        "GpuMemoryNearFull": {"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"},
        "GpuXidError": {"DCGM_FI_DEV_XID_ERRORS"},
        "GpuMemoryErrors": {"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_ROW_REMAP_FAILURE"},
    }
    groups = env_plan.by_type(RULE_GROUP)
    assert groups
    for group in groups:
        rules = {rule["alert"]: rule["expression"] for rule in group.inputs["rules"]}
        for alert, metrics in measures.items():
            assert metrics <= set(DCGM_NAME.findall(rules[alert])), (group.name, alert)


def test_every_rule_notifies_the_one_action_group(env_plan: Plan) -> None:
    (action_group,) = env_plan.by_type(ACTION_GROUP)
    for group in env_plan.by_type(RULE_GROUP):
        for rule in group.inputs["rules"]:
            assert [a["actionGroupId"] for a in rule["actions"]] == [action_group.id]
    for alert in env_plan.by_type(METRIC_ALERT):
        assert [a["actionGroupId"] for a in alert.inputs["actions"]] == [action_group.id]


def test_action_group_receivers_come_from_config(env_plan: Plan) -> None:
    cfg = stack_config(env_plan)
    (action_group,) = env_plan.by_type(ACTION_GROUP)
    emails = [r["emailAddress"] for r in action_group.inputs.get("emailReceivers", [])]
    assert emails == cfg.monitoring.alert_emails
    assert len(action_group.inputs.get("webhookReceivers", [])) == len(
        cfg.monitoring.alert_webhooks
    )
    assert len(action_group.inputs["groupShortName"]) <= 12


def test_rule_groups_watch_the_stack_azure_monitor_workspace(env_plan: Plan) -> None:
    (workspace,) = env_plan.by_type("azure-native:monitor:AzureMonitorWorkspace")
    for group in env_plan.by_type(RULE_GROUP):
        assert group.inputs["scopes"][0] == workspace.id


def test_scale_set_pools_get_availability_metric_alerts(env_plan: Plan) -> None:
    # GPU scale sets; CPU scale sets for data preparation are not watched pools.
    scale_sets = {
        r.id
        for r in env_plan.by_type("azure-native:compute:VirtualMachineScaleSet")
        if catalog.lookup(r.inputs["sku"]["name"]).is_gpu
    }
    alerted = {
        scope
        for alert in env_plan.by_type(METRIC_ALERT)
        for scope in alert.inputs["scopes"]
        if alert.inputs["criteria"]["allOf"][0]["metricName"] == "VmAvailabilityMetric"
    }
    assert scale_sets <= alerted, f"no availability alert: {scale_sets - alerted}"


# --- rules as data -----------------------------------------------------------------------------


def test_idle_threshold_and_period_come_from_the_thresholds() -> None:
    limits = AlertThresholds(gpu_idle_percent=7, gpu_idle_minutes=45)
    rules = {r.alert: r for r in pool_alert_rules(WatchedPool("a100", "aks", 2), limits)}
    assert rules["GpuIdle"].expression.endswith("< 7")
    assert rules["GpuIdle"].for_minutes == 45


def test_pool_at_max_compares_with_the_pool_max_count() -> None:
    aks = {r.alert: r for r in pool_alert_rules(WatchedPool("t4", "aks", 6), AlertThresholds())}
    vm = {r.alert: r for r in pool_alert_rules(WatchedPool("nd", "vm", 4), AlertThresholds())}
    assert aks["PoolAtMaxNodes"].expression.endswith(">= 6")
    assert vm["PoolAtMaxNodes"].expression.endswith(">= 4")


def test_a_single_vm_pool_has_no_capacity_rule() -> None:
    rules = pool_alert_rules(WatchedPool("devbox", "vm", 1, scale_set=False), AlertThresholds())
    assert "PoolAtMaxNodes" not in {r.alert for r in rules}


def test_spot_eviction_rule_only_on_spot_aks_pools() -> None:
    def alerts(pool: WatchedPool) -> set[str]:
        return {r.alert for r in pool_alert_rules(pool, AlertThresholds())}

    assert "SpotNodesEvicted" in alerts(WatchedPool("t4spot", "aks", 2, spot=True))
    assert "SpotNodesEvicted" not in alerts(WatchedPool("t4", "aks", 2))


def test_cache_disk_rule_watches_the_configured_mounts() -> None:
    limits = AlertThresholds(cache_disk_full_percent=85, cache_mount_paths=("/mnt/nvme",))
    for pool in (WatchedPool("t4", "aks", 2), WatchedPool("nd", "vm", 2)):
        rules = {r.alert: r for r in pool_alert_rules(pool, limits)}
        expression = rules["CacheDiskNearlyFull"].expression
        assert 'mountpoint=~"/mnt/nvme"' in expression
        assert expression.endswith("> 85")


def test_an_unknown_dcgm_metric_is_refused() -> None:
    with pytest.raises(KeyError, match=r"dcgm_metrics\.yaml"):
        dcgm("DCGM_FI_DEV_GPU_UTILIZATION")


# --- the component -----------------------------------------------------------------------------


def test_webhook_urls_are_secret_and_receiver_names_do_not_leak_them() -> None:
    url = "https://hooks.example.com/services/T000/B000/SECRETTOKEN"
    (group,) = [r for r in _alerts(webhooks=(url,)) if r.type == ACTION_GROUP]
    (receiver,) = group.inputs["webhookReceivers"]
    assert receiver["serviceUri"] == {"__secret__": url}
    assert "SECRETTOKEN" not in receiver["name"]


def test_vm_pool_with_ids_gets_availability_and_capacity_alerts() -> None:
    pool = WatchedPool("nd", "vm", 4, resource_id=SCALE_SET, autoscale_setting_id=AUTOSCALE)
    resources = _alerts(pools=(pool,))
    (action_group,) = [r for r in resources if r.type == ACTION_GROUP]
    alerts = {r.name: r for r in resources if r.type == METRIC_ALERT}
    availability = alerts["alerts-nd-unavailable"].inputs
    assert availability["scopes"] == [SCALE_SET]
    (criterion,) = availability["criteria"]["allOf"]
    assert criterion["metricName"] == "VmAvailabilityMetric"
    assert criterion["dimensions"][0]["name"] == "VMName"
    capacity = alerts["alerts-nd-at-capacity"].inputs
    assert capacity["scopes"] == [AUTOSCALE]
    (criterion,) = capacity["criteria"]["allOf"]
    assert (criterion["metricName"], criterion["threshold"]) == ("ObservedCapacity", 4)
    for alert in alerts.values():
        assert alert.inputs["actions"] == [{"actionGroupId": action_group.id}]


def test_an_aks_and_a_vm_pool_may_share_a_name() -> None:
    pools = (WatchedPool("ndtrain", "aks", 4), WatchedPool("ndtrain", "vm", 4))
    groups = [r.name for r in _alerts(pools=pools) if r.type == RULE_GROUP]
    assert sorted(groups) == ["alerts-aks-ndtrain", "alerts-vm-ndtrain"]


def test_aks_rule_groups_are_scoped_to_the_cluster_when_known() -> None:
    resources = _alerts(cluster_id=CLUSTER, cluster_name="aks")
    (group,) = [r for r in resources if r.type == RULE_GROUP]
    assert group.inputs["scopes"] == [WORKSPACE, CLUSTER]
    assert group.inputs["clusterName"] == "aks"
