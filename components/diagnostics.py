"""Diagnostic settings: every component sends its logs and metrics to the stack's workspace."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import monitor

from components.conventions import ComponentContext, child_options


def send_diagnostics(
    parent: pulumi.Resource,
    name: str,
    resource_id: pulumi.Input[str],
    context: ComponentContext,
    *,
    logs: bool = True,
    metrics: bool = True,
) -> monitor.DiagnosticSetting | None:
    """A diagnostic setting sending every log (the `allLogs` group) and metric to the workspace.

    Returns None when the context carries no workspace (diagnostics explicitly off).
    Source for category groups: https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings#category-groups
    """
    if context.diagnostics is None:
        return None
    all_logs = monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)
    all_metrics = monitor.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)
    return monitor.DiagnosticSetting(
        f"{name}-diagnostics",
        name="send-to-workspace",
        resource_uri=resource_id,
        workspace_id=context.diagnostics,
        # Dedicated tables (not AzureDiagnostics) where the resource type supports them.
        log_analytics_destination_type="Dedicated",
        logs=[all_logs] if logs else None,
        metrics=[all_metrics] if metrics else None,
        opts=child_options(parent),
    )
