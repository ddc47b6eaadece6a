"""`GpuAlerts`: one action group, Prometheus alert rules per GPU pool, metric alerts for VMs.

Rules are plain data built by `pool_alert_rules` (testable without Pulumi) and name real DCGM
exporter metrics (`gpustack/data/dcgm_metrics.yaml`). A pool is selected by a label on the
series: `agentpool` for AKS pools, `vmpool` for VM pools (the label contract is in
`gpustack/data/azure_monitor.yaml`, `pool_labels`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
from pulumi_azure_native import alertsmanagement, monitor

from components.conventions import ComponentContext, MonitoringTargets, child_options
from gpustack import facts

# Window over which hardware error counters must not grow.
ERROR_WINDOW = "15m"
# Node loss is compared against the pool's size this long ago (spot evictions).
EVICTION_LOOKBACK = "10m"
# How long a Prometheus alert stays resolved-pending before Azure closes it.
TIME_TO_RESOLVE = "PT10M"


def _monitor_facts(section: str) -> dict[str, Any]:
    data: dict[str, Any] = facts.load("azure_monitor")[section]
    return data


def dcgm(metric: str) -> str:
    """A DCGM exporter metric name, checked against the sourced list."""
    if metric not in facts.dcgm_metric_names():
        raise KeyError(f"{metric} is not in gpustack/data/dcgm_metrics.yaml")
    return metric


GPU_UTIL = dcgm("DCGM_FI_DEV_GPU_UTIL")
FB_USED = dcgm("DCGM_FI_DEV_FB_USED")
FB_FREE = dcgm("DCGM_FI_DEV_FB_FREE")
XID_ERRORS = dcgm("DCGM_FI_DEV_XID_ERRORS")
ECC_DBE = dcgm("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL")
ROW_REMAP_FAILURE = dcgm("DCGM_FI_DEV_ROW_REMAP_FAILURE")
REMAPPED_ROWS = dcgm("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS")


@dataclass(frozen=True)
class WatchedPool:
    """A GPU pool to alert on: where it runs, how big it may grow, how it is billed."""

    name: str
    platform: Literal["aks", "vm"]
    max_count: int
    spot: bool = False
    # VM pools: the VM or scale set id and (scale sets) its autoscale setting, for metric alerts.
    resource_id: pulumi.Input[str] | None = None
    scale_set: bool = True
    autoscale_setting_id: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class AlertThresholds:
    """Per-environment thresholds (monitoring.* in the stack file)."""

    gpu_idle_percent: int = 10
    gpu_idle_minutes: int = 60
    gpu_memory_full_percent: int = 95
    gpu_memory_full_minutes: int = 15
    node_not_ready_minutes: int = 10
    capacity_pressure_minutes: int = 30
    cache_disk_full_percent: int = 90
    cache_mount_paths: tuple[str, ...] = ("/mnt", "/mnt/nvme")


@dataclass(frozen=True)
class AlertRule:
    """One Prometheus alert rule, before it becomes an ARM rule."""

    alert: str
    expression: str
    severity: int
    for_minutes: int | None
    summary: str


def pool_alert_rules(pool: WatchedPool, limits: AlertThresholds) -> list[AlertRule]:
    """The alert rules that watch one pool, in the order an operator reads them."""
    labels = _monitor_facts("pool_labels")
    aks = pool.platform == "aks"
    label = labels["aks"] if aks else labels["vm"]
    sel = f'{{{label}="{pool.name}"}}'
    # The unit a GPU alert is about: a node (AKS: the exporter pod's target; VM: the host).
    per_node = f"cluster, {label}, instance" if aks else f"{label}, {labels['vm_host']}"
    rules = [
        AlertRule(
            "GpuIdle",
            f"max by ({per_node}) ({GPU_UTIL}{sel}) < {limits.gpu_idle_percent}",
            3,
            limits.gpu_idle_minutes,
            f"Every GPU of a {pool.name} node has been below {limits.gpu_idle_percent}% for "
            f"{limits.gpu_idle_minutes} minutes: the node is paid for and idle.",
        ),
        AlertRule(
            "GpuMemoryNearFull",
            f"100 * {FB_USED}{sel} / ({FB_USED}{sel} + {FB_FREE}{sel}) "
            f"> {limits.gpu_memory_full_percent}",
            3,
            limits.gpu_memory_full_minutes,
            f"A {pool.name} GPU has used more than {limits.gpu_memory_full_percent}% of its "
            "memory: the next allocation fails with CUDA out of memory.",
        ),
        AlertRule(
            "GpuXidError",
            f"{XID_ERRORS}{sel} > 0",
            1,
            None,
            f"A {pool.name} GPU reported an XID error (value = last XID code); see NVIDIA's XID "
            "catalog, drain the node if it is 48, 63, 64, 74, 79 or 94/95.",
        ),
        AlertRule(
            "GpuMemoryErrors",
            f"increase({ECC_DBE}{sel}[{ERROR_WINDOW}]) > 0 or {ROW_REMAP_FAILURE}{sel} > 0 "
            f"or increase({REMAPPED_ROWS}{sel}[{ERROR_WINDOW}]) > 0",
            1,
            None,
            f"A {pool.name} GPU has uncorrectable memory errors (ECC double-bit, remapped rows or "
            "a failed row remap): take it out of service. ECC counters need a custom "
            "dcgm-exporter collector CSV.",
        ),
    ]
    if aks:
        rules += _aks_node_rules(pool, limits, labels)
    else:
        rules += _vm_node_rules(pool, limits, labels)
    return rules


def _aks_node_rules(
    pool: WatchedPool, limits: AlertThresholds, labels: dict[str, Any]
) -> list[AlertRule]:
    nodes = f'kube_node_labels{{{labels["aks_node_label"]}="{pool.name}"}}'
    mounts = "|".join(limits.cache_mount_paths)
    disk = f'{{job="{labels["node_exporter_job"]}",mountpoint=~"{mounts}"}}'
    rules = [
        AlertRule(
            "NodeNotReady",
            f'kube_node_status_condition{{condition="Ready",status="true"}} '
            f"* on(node) group_left() {nodes} == 0",
            2,
            limits.node_not_ready_minutes,
            f"A {pool.name} node has not been Ready for {limits.node_not_ready_minutes} minutes.",
        ),
    ]
    if pool.spot:
        gpu_pending = (
            f'sum(kube_pod_container_resource_requests{{resource="{labels["ksm_gpu_resource"]}"}} '
            '* on(namespace, pod) group_left() (kube_pod_status_phase{phase="Pending"} == 1))'
        )
        rules.append(
            AlertRule(
                "SpotNodesEvicted",
                f"((count({nodes} offset {EVICTION_LOOKBACK}) or vector(0)) "
                f"- (count({nodes}) or vector(0)) > 0) and on() ({gpu_pending} > 0)",
                2,
                None,
                f"The {pool.name} spot pool lost nodes while GPU pods wait: Azure evicted spot "
                "capacity. Expect restarts; consider a regular-priority fallback pool.",
            )
        )
    rules += [
        AlertRule(
            "PoolAtMaxNodes",
            f"count({nodes}) >= {pool.max_count}",
            3,
            limits.capacity_pressure_minutes,
            f"{pool.name} has run at its maximum of {pool.max_count} nodes for "
            f"{limits.capacity_pressure_minutes} minutes: raise maxCount or check quota.",
        ),
        AlertRule(
            "CacheDiskNearlyFull",
            f"100 * (1 - node_filesystem_avail_bytes{disk} / node_filesystem_size_bytes{disk}) "
            f'* on(instance) group_left() label_replace({nodes}, "instance", "$1", "node", "(.*)") '
            f"> {limits.cache_disk_full_percent}",
            2,
            None,
            f"The BlobFuse2 cache disk of a {pool.name} node is more than "
            f"{limits.cache_disk_full_percent}% full: reads fall back to Blob storage.",
        ),
    ]
    return rules


def _vm_node_rules(
    pool: WatchedPool, limits: AlertThresholds, labels: dict[str, Any]
) -> list[AlertRule]:
    label = labels["vm"]
    exporter = f'up{{job="{labels["dcgm_job"]}",{label}="{pool.name}"}}'
    mounts = "|".join(limits.cache_mount_paths)
    disk = f'{{{label}="{pool.name}",mountpoint=~"{mounts}"}}'
    rules = [
        AlertRule(
            "GpuExporterDown",
            f"{exporter} == 0",
            2,
            limits.node_not_ready_minutes,
            f"dcgm-exporter on a {pool.name} VM has not answered for "
            f"{limits.node_not_ready_minutes} minutes: GPU alerts for it are blind.",
        ),
    ]
    if pool.scale_set and pool.max_count > 1:
        rules.append(
            AlertRule(
                "PoolAtMaxNodes",
                f"count(count by ({labels['vm_host']}) ({exporter})) >= {pool.max_count}",
                3,
                limits.capacity_pressure_minutes,
                f"{pool.name} has run at its maximum of {pool.max_count} VMs for "
                f"{limits.capacity_pressure_minutes} minutes: raise maxCount or check quota.",
            )
        )
    rules.append(
        AlertRule(
            "CacheDiskNearlyFull",
            f"100 * (1 - node_filesystem_avail_bytes{disk} / node_filesystem_size_bytes{disk}) "
            f"> {limits.cache_disk_full_percent}",
            2,
            None,
            f"The BlobFuse2 cache disk of a {pool.name} VM is more than "
            f"{limits.cache_disk_full_percent}% full: reads fall back to Blob storage.",
        )
    )
    return rules


@dataclass(frozen=True)
class GpuAlertsArgs:
    """Receivers, thresholds and the pools to watch."""

    context: ComponentContext
    monitoring: MonitoringTargets
    # Action group short name (SMS and email subjects); at most 12 characters.
    short_name: str
    emails: Sequence[str] = field(default_factory=tuple)
    webhooks: Sequence[str] = field(default_factory=tuple)
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    pools: Sequence[WatchedPool] = field(default_factory=tuple)
    # The AKS cluster the `aks` pools belong to; scopes their rule groups to it when known.
    cluster_id: pulumi.Input[str] | None = None
    cluster_name: pulumi.Input[str] | None = None


class GpuAlerts(pulumi.ComponentResource):
    """The action group every alert and budget notifies, and the GPU pool alert rules."""

    action_group_id: pulumi.Output[str]
    rule_group_ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: GpuAlertsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:monitoring:GpuAlerts", name, None, opts)
        context = args.context
        group = _monitor_facts("action_group")
        if len(args.short_name) > group["short_name_max_length"]:
            raise ValueError(
                f"action group short name {args.short_name!r} is longer than "
                f"{group['short_name_max_length']} characters"
            )
        self.action_group = monitor.ActionGroup(
            f"{name}-actions",
            resource_group_name=context.resource_group_name,
            location=group["location"],
            group_short_name=args.short_name,
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name=_email_name(address),
                    email_address=address,
                    use_common_alert_schema=True,
                )
                for address in args.emails
            ],
            webhook_receivers=[
                monitor.WebhookReceiverArgs(
                    name=_webhook_name(index, url),
                    # Webhook URLs often carry a token: keep them out of logs and state diffs.
                    service_uri=pulumi.Output.secret(url),
                    use_common_alert_schema=True,
                )
                for index, url in enumerate(args.webhooks, start=1)
            ],
            tags=dict(context.tags),
            opts=child_options(self),
        )
        actions = [
            alertsmanagement.PrometheusRuleGroupActionArgs(action_group_id=self.action_group.id)
        ]

        workspace = args.monitoring.azure_monitor_workspace_id
        if workspace is None and args.pools:
            raise ValueError("GPU pool alerts need an Azure Monitor workspace (managed Prometheus)")
        limit = _monitor_facts("prometheus_rule_groups")["max_rules_per_group"]
        self.rule_groups: dict[str, alertsmanagement.PrometheusRuleGroup] = {}
        for pool in args.pools:
            rules = pool_alert_rules(pool, args.thresholds)
            if len(rules) > limit:
                raise ValueError(f"{len(rules)} rules for {pool.name}; a group holds {limit}")
            aks = pool.platform == "aks"
            scopes: list[pulumi.Input[str]] = [workspace]  # type: ignore[list-item]
            if aks and args.cluster_id is not None:
                scopes.append(args.cluster_id)
            # An AKS pool and a VM pool may share a name: key by platform too.
            key = f"{pool.platform}-{pool.name}"
            self.rule_groups[key] = alertsmanagement.PrometheusRuleGroup(
                f"{name}-{key}",
                resource_group_name=context.resource_group_name,
                location=context.location,
                description=f"GPU alerts for the {pool.platform} pool {pool.name}.",
                scopes=scopes,
                cluster_name=args.cluster_name if aks else None,
                enabled=True,
                interval="PT1M",
                rules=[_prometheus_rule(rule, pool, actions) for rule in rules],
                tags=dict(context.tags),
                opts=child_options(self),
            )
            if pool.platform == "vm" and pool.resource_id is not None:
                self._vm_metric_alerts(name, pool, args, context)

        self.action_group_id = self.action_group.id
        self.rule_group_ids = {pool: group.id for pool, group in self.rule_groups.items()}
        self.register_outputs(
            {"actionGroupId": self.action_group_id, "ruleGroupIds": self.rule_group_ids}
        )

    def _vm_metric_alerts(
        self, name: str, pool: WatchedPool, args: GpuAlertsArgs, context: ComponentContext
    ) -> None:
        metrics = _monitor_facts("platform_metrics")
        availability = metrics["vm_availability"]
        target_type = availability["scale_set_type"] if pool.scale_set else availability["vm_type"]
        action = [monitor.MetricAlertActionArgs(action_group_id=self.action_group.id)]
        criteria = monitor.MetricCriteriaArgs(
            criterion_type=metrics["static_criterion"],
            name="vm-availability",
            metric_name=availability["name"],
            metric_namespace=target_type,
            operator=monitor.Operator.LESS_THAN,
            threshold=1,
            time_aggregation=availability["aggregation"],
            # One series per scale set instance, so each VM alerts on its own.
            dimensions=(
                [
                    monitor.MetricDimensionArgs(
                        name=availability["dimension"], operator="Include", values=["*"]
                    )
                ]
                if pool.scale_set
                else None
            ),
        )
        monitor.MetricAlert(
            f"{name}-{pool.name}-unavailable",
            resource_group_name=context.resource_group_name,
            location=metrics["alert_location"],
            description=f"A {pool.name} VM is unavailable: spot eviction, host failure or stop.",
            severity=1,
            enabled=True,
            scopes=[pool.resource_id],  # type: ignore[list-item]
            target_resource_type=target_type,
            target_resource_region=context.location,
            evaluation_frequency="PT1M",
            window_size=_window(args.thresholds.node_not_ready_minutes),
            auto_mitigate=True,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type=metrics["single_resource_criteria"], all_of=[criteria]
            ),
            actions=action,
            tags=dict(context.tags),
            opts=child_options(self),
        )
        if pool.autoscale_setting_id is None:
            return
        capacity = metrics["autoscale_capacity"]
        monitor.MetricAlert(
            f"{name}-{pool.name}-at-capacity",
            resource_group_name=context.resource_group_name,
            location=metrics["alert_location"],
            description=f"Autoscale keeps {pool.name} at its maximum of {pool.max_count} VMs.",
            severity=3,
            enabled=True,
            scopes=[pool.autoscale_setting_id],
            target_resource_type=capacity["resource_type"],
            target_resource_region=context.location,
            evaluation_frequency="PT5M",
            window_size=_window(args.thresholds.capacity_pressure_minutes),
            auto_mitigate=True,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type=metrics["single_resource_criteria"],
                all_of=[
                    monitor.MetricCriteriaArgs(
                        criterion_type=metrics["static_criterion"],
                        name="observed-capacity",
                        metric_name=capacity["name"],
                        metric_namespace=capacity["resource_type"],
                        operator=monitor.Operator.GREATER_THAN_OR_EQUAL,
                        threshold=pool.max_count,
                        time_aggregation=capacity["aggregation"],
                    )
                ],
            ),
            actions=action,
            tags=dict(context.tags),
            opts=child_options(self),
        )


def _prometheus_rule(
    rule: AlertRule,
    pool: WatchedPool,
    actions: list[alertsmanagement.PrometheusRuleGroupActionArgs],
) -> alertsmanagement.PrometheusRuleArgs:
    return alertsmanagement.PrometheusRuleArgs(
        alert=rule.alert,
        expression=rule.expression,
        for_=f"PT{rule.for_minutes}M" if rule.for_minutes else None,
        severity=rule.severity,
        enabled=True,
        labels={"pool": pool.name, "platform": pool.platform},
        annotations={"summary": rule.summary},
        resolve_configuration=alertsmanagement.PrometheusRuleResolveConfigurationArgs(
            auto_resolved=True, time_to_resolve=TIME_TO_RESOLVE
        ),
        actions=actions,
    )


def _email_name(address: str) -> str:
    """A stable receiver name from the address (names must be unique in the group)."""
    return "email-" + re.sub(r"[^A-Za-z0-9]+", "-", address).strip("-")


def _webhook_name(index: int, url: str) -> str:
    """Position and host only: the path and query of a webhook URL may hold its secret."""
    host = re.sub(r"^https://([^/?#:]+).*$", r"\1", url)
    return f"webhook-{index}-" + re.sub(r"[^A-Za-z0-9]+", "-", host).strip("-")


def _window(minutes: int) -> str:
    """The smallest metric alert window that covers `minutes`."""
    allowed: list[int] = _monitor_facts("platform_metrics")["window_minutes"]
    chosen = next((m for m in allowed if m >= minutes), allowed[-1])
    return f"PT{chosen}M" if chosen < 60 else f"PT{chosen // 60}H"
