"""Diagnostic settings: every component sends its logs and metrics to the stack's workspace.

Which categories each resource type sends is data (`gpustack/data/azure_monitor.yaml`,
`diagnostic_settings`), so AKS sends `kube-audit-admin` rather than the costly `kube-audit`,
NSGs send no metrics (they have none) and storage accounts send metrics at the account level.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import monitor

from components.conventions import ComponentContext, child_options
from gpustack import facts

ALL_LOGS = "allLogs"
ALL_METRICS = "AllMetrics"


@dataclass(frozen=True)
class DiagnosticSpec:
    """What one resource type sends: log categories (or the `allLogs` group) and metrics."""

    resource_type: str
    log_categories: tuple[str, ...]
    metrics: bool
    dedicated: bool
    # Categories deliberately left out (which rules out the `allLogs` group too).
    excluded_logs: tuple[str, ...] = ()

    @property
    def all_logs(self) -> bool:
        """Whether the setting uses the `allLogs` category group."""
        return self.log_categories == (ALL_LOGS,)


def diagnostic_specs() -> dict[str, DiagnosticSpec]:
    """Every azure-native type that gets a diagnostic setting, by type token."""
    table = facts.load("azure_monitor")["diagnostic_settings"]
    specs = {}
    for token, entry in table.items():
        logs = entry["logs"]
        categories: tuple[str, ...] = (
            () if logs == "none" else (ALL_LOGS,) if logs == ALL_LOGS else tuple(logs)
        )
        specs[token] = DiagnosticSpec(
            token,
            categories,
            bool(entry["metrics"]),
            entry["dedicated"],
            tuple(entry.get("excluded_logs", ())),
        )
    return specs


def skipped_types() -> dict[str, str]:
    """Types deliberately left without a diagnostic setting, with the reason."""
    skipped: dict[str, str] = facts.load("azure_monitor")["diagnostic_settings_skipped"]
    return dict(skipped)


def send_diagnostics(
    parent: pulumi.Resource,
    name: str,
    resource_id: pulumi.Input[str] | pulumi.CustomResource,
    context: ComponentContext,
    *,
    logs: bool = True,
    metrics: bool = True,
    resource_type: str | None = None,
) -> monitor.DiagnosticSetting | None:
    """A diagnostic setting sending the resource's logs and metrics to the workspace.

    Pass the resource itself (or its id and `resource_type`, the azure-native token) so the
    categories come from the data table; an id alone, or a type the table does not list, sends
    every log (`allLogs`) and metric. Returns None when the context carries no workspace
    (diagnostics explicitly off) or the table skips the type.
    Source for category groups: https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings#category-groups
    """
    if context.diagnostics is None:
        return None
    if isinstance(resource_id, pulumi.CustomResource):
        resource_type = resource_type or resource_id.pulumi_resource_type
        target: pulumi.Input[str] = resource_id.id
    else:
        target = resource_id
    spec = _spec_for(resource_type)
    if spec is None:
        return None
    categories = spec.log_categories if logs else ()
    send_metrics = spec.metrics and metrics
    if not categories and not send_metrics:
        return None
    log_settings = [
        monitor.DiagnosticsLogSettingsArgs(category_group=ALL_LOGS, enabled=True)
        if category == ALL_LOGS
        else monitor.DiagnosticsLogSettingsArgs(category=category, enabled=True)
        for category in categories
    ]
    return monitor.DiagnosticSetting(
        f"{name}-diagnostics",
        name="send-to-workspace",
        resource_uri=target,
        workspace_id=context.diagnostics,
        # Resource-specific tables where the type has them (cheaper, typed); else AzureDiagnostics.
        log_analytics_destination_type="Dedicated" if spec.dedicated and categories else None,
        logs=log_settings or None,
        metrics=(
            [monitor.DiagnosticsMetricSettingsArgs(category=ALL_METRICS, enabled=True)]
            if send_metrics
            else None
        ),
        opts=child_options(parent),
    )


def _spec_for(resource_type: str | None) -> DiagnosticSpec | None:
    """The table's entry; None for a type the table skips; everything for an unlisted type."""
    if resource_type in skipped_types():
        return None
    known = diagnostic_specs().get(resource_type or "")
    return known or DiagnosticSpec(resource_type or "unknown", (ALL_LOGS,), True, True)
