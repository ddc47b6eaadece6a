"""`GpuMonitoring`: where GPU stacks report, and how GPU VM pools get their metrics there.

Log Analytics (logs, diagnostics, Container Insights), an Azure Monitor workspace (managed
Prometheus) and Azure Managed Grafana reading it. AKS clusters bring their own collection rules
(`GpuAksCluster` takes `GpuMonitoring.targets`); GPU VM pools report through this component's
rules, attached by `VmPoolMonitoring` once the VMs exist. The NVIDIA DCGM dashboard is JSON in
this repository (`dashboards/dcgm-gpu.json`): ARM cannot create dashboards inside Managed
Grafana, so the stack exports it for `az grafana dashboard import`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi_azure_native import authorization, dashboard, monitor, operationalinsights

from components.conventions import (
    ComponentContext,
    IdentityRef,
    MonitoringTargets,
    child_options,
    stateful_options,
)
from components.diagnostics import send_diagnostics
from gpustack import facts

DASHBOARD_FILE = Path(__file__).parent / "dashboards" / "dcgm-gpu.json"
# The same file, as `az grafana dashboard import` run from the project directory finds it.
DASHBOARD_PATH = "components/dashboards/dcgm-gpu.json"


def _monitor_facts(section: str) -> dict[str, Any]:
    data: dict[str, Any] = facts.load("azure_monitor")[section]
    return data


@dataclass(frozen=True)
class GpuMonitoringArgs:
    """Retention and Grafana access for one environment."""

    context: ComponentContext
    retention_days: int
    grafana: bool = True
    # Entra group made Grafana Admin; None leaves Grafana administration to Azure RBAC owners.
    grafana_admin_group_object_id: str | None = None
    grafana_public_network_access: bool = False


@dataclass(frozen=True)
class VmCollection:
    """What GPU VM pools report through: a syslog rule for the agent, a Prometheus remote write."""

    syslog_rule_id: pulumi.Input[str]
    prometheus_rule_id: pulumi.Input[str]
    remote_write_url: pulumi.Input[str]


class GpuMonitoring(pulumi.ComponentResource):
    """Workspaces, data collection and Grafana; every other component's diagnostics go here."""

    log_analytics_workspace_id: pulumi.Output[str]
    azure_monitor_workspace_id: pulumi.Output[str]
    grafana_id: pulumi.Output[str] | None
    grafana_name: pulumi.Output[str] | None
    grafana_endpoint: pulumi.Output[str] | None
    dcgm_dashboard: dict[str, Any]

    def __init__(
        self, name: str, args: GpuMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:monitoring:GpuMonitoring", name, None, opts)
        context = args.context
        tags = dict(context.tags)

        self.workspace = operationalinsights.Workspace(
            f"{name}-logs",
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku=operationalinsights.WorkspaceSkuArgs(
                name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018
            ),
            retention_in_days=args.retention_days,
            features=operationalinsights.WorkspaceFeaturesArgs(
                # Ingestion and queries with Entra identities only: no shared workspace keys.
                disable_local_auth=True,
                enable_log_access_using_only_resource_permissions=True,
            ),
            # Agents and AKS reach the workspace over its public endpoints with Entra tokens;
            # closing them needs an Azure Monitor Private Link Scope, not part of this stack.
            public_network_access_for_ingestion=operationalinsights.PublicNetworkAccessType.ENABLED,
            public_network_access_for_query=operationalinsights.PublicNetworkAccessType.ENABLED,
            tags=tags,
            opts=stateful_options(self, context),
        )
        # Diagnostics of the monitoring resources themselves go to this workspace too.
        logs_context = replace(context, diagnostics=self.workspace.id)
        send_diagnostics(self, f"{name}-logs", self.workspace, logs_context)

        self.prometheus = monitor.AzureMonitorWorkspace(
            f"{name}-prometheus",
            resource_group_name=context.resource_group_name,
            location=context.location,
            # Grafana queries it with its managed identity; a closed workspace would need a
            # Grafana managed private endpoint.
            public_network_access=monitor.PublicNetworkAccess.ENABLED,
            tags=tags,
            opts=stateful_options(self, context),
        )

        # GPU VMs have no managed Prometheus agent: the Azure Monitor Agent's DCR data sources
        # cannot scrape a Prometheus endpoint on a VM. A Prometheus agent on each node scrapes
        # dcgm-exporter and remote-writes to this endpoint and rule with the pool's identity.
        prometheus = _monitor_facts("managed_prometheus")
        self.endpoint = monitor.DataCollectionEndpoint(
            f"{name}-vm-dce",
            resource_group_name=context.resource_group_name,
            location=context.location,
            kind=monitor.KnownDataCollectionEndpointResourceKind.LINUX,
            description="Prometheus remote-write ingestion for GPU VM pools.",
            tags=tags,
            opts=child_options(self),
        )
        self.prometheus_rule = monitor.DataCollectionRule(
            f"{name}-vm-prometheus-dcr",
            resource_group_name=context.resource_group_name,
            location=context.location,
            kind=prometheus["dcr_kind"],
            description="GPU VM Prometheus metrics (dcgm-exporter, node-exporter) to the Azure "
            "Monitor workspace.",
            data_collection_endpoint_id=self.endpoint.id,
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                prometheus_forwarder=[
                    monitor.PrometheusForwarderDataSourceArgs(
                        name=prometheus["data_source_name"],
                        streams=[prometheus["stream"]],
                        label_include_filter={},
                    )
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                monitoring_accounts=[
                    monitor.MonitoringAccountDestinationArgs(
                        account_resource_id=self.prometheus.id,
                        name=prometheus["destination_name"],
                    )
                ]
            ),
            data_flows=[
                monitor.DataFlowArgs(
                    streams=[prometheus["stream"]], destinations=[prometheus["destination_name"]]
                )
            ],
            tags=tags,
            opts=child_options(self),
        )

        syslog = _monitor_facts("vm_syslog")
        self.syslog_rule = monitor.DataCollectionRule(
            f"{name}-vm-syslog-dcr",
            resource_group_name=context.resource_group_name,
            location=context.location,
            kind=monitor.KnownDataCollectionRuleResourceKind.LINUX,
            description="GPU VM kernel and daemon syslog (NVIDIA XID reports) to Log Analytics.",
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                syslog=[
                    monitor.SyslogDataSourceArgs(
                        name="gpu-node-syslog",
                        streams=[monitor.KnownSyslogDataSourceStreams.MICROSOFT_SYSLOG],
                        facility_names=list(syslog["facilities"]),
                        log_levels=list(syslog["levels_from_warning"]),
                    )
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                log_analytics=[
                    monitor.LogAnalyticsDestinationArgs(
                        workspace_resource_id=self.workspace.id, name="workspace"
                    )
                ]
            ),
            data_flows=[
                monitor.DataFlowArgs(
                    streams=[monitor.KnownDataFlowStreams.MICROSOFT_SYSLOG],
                    destinations=["workspace"],
                )
            ],
            tags=tags,
            opts=child_options(self),
        )

        self.grafana: dashboard.Grafana | None = None
        self.grafana_id = self.grafana_name = self.grafana_endpoint = None
        if args.grafana:
            self._grafana(name, args, logs_context)

        # Read now so a broken dashboard file fails the plan, not the import.
        self.dcgm_dashboard = load_dashboard()
        self.log_analytics_workspace_id = self.workspace.id
        self.azure_monitor_workspace_id = self.prometheus.id
        self.vm_collection = VmCollection(
            syslog_rule_id=self.syslog_rule.id,
            prometheus_rule_id=self.prometheus_rule.id,
            remote_write_url=remote_write_url(self.endpoint, self.prometheus_rule),
        )
        self.register_outputs(
            {
                "logAnalyticsWorkspaceId": self.log_analytics_workspace_id,
                "azureMonitorWorkspaceId": self.azure_monitor_workspace_id,
                "grafanaEndpoint": self.grafana_endpoint,
            }
        )

    @property
    def targets(self) -> MonitoringTargets:
        """The workspaces, as the handoff type other components take."""
        return MonitoringTargets(
            log_analytics_workspace_id=self.log_analytics_workspace_id,
            azure_monitor_workspace_id=self.azure_monitor_workspace_id,
        )

    def _grafana(self, name: str, args: GpuMonitoringArgs, context: ComponentContext) -> None:
        grafana_facts = _monitor_facts("grafana")
        access = (
            dashboard.PublicNetworkAccess.ENABLED
            if args.grafana_public_network_access
            else dashboard.PublicNetworkAccess.DISABLED
        )
        grafana = dashboard.Grafana(
            f"{name}-grafana",
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku=dashboard.ResourceSkuArgs(name=grafana_facts["sku"]),
            identity=dashboard.ManagedServiceIdentityArgs(
                type=dashboard.ManagedServiceIdentityType.SYSTEM_ASSIGNED
            ),
            properties=dashboard.ManagedGrafanaPropertiesArgs(
                # Entra sign-in only: no long-lived Grafana API keys.
                api_key=dashboard.ApiKey.DISABLED,
                deterministic_outbound_ip=dashboard.DeterministicOutboundIP.DISABLED,
                public_network_access=access,
                grafana_integrations=dashboard.GrafanaIntegrationsArgs(
                    azure_monitor_workspace_integrations=[
                        dashboard.AzureMonitorWorkspaceIntegrationArgs(
                            azure_monitor_workspace_resource_id=self.prometheus.id
                        )
                    ]
                ),
            ),
            tags=dict(context.tags),
            opts=stateful_options(self, context),
        )
        send_diagnostics(self, f"{name}-grafana", grafana, context)
        subscription = authorization.get_client_config_output().subscription_id

        # Grafana's identity reads Prometheus data from the workspace it is linked to, nothing else.
        authorization.RoleAssignment(
            f"{name}-grafana-prometheus-reader",
            scope=self.prometheus.id,
            principal_id=grafana.identity.apply(lambda identity: identity.principal_id),
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=_role_id(subscription, "monitoring_data_reader"),
            opts=child_options(self),
        )
        if args.grafana_admin_group_object_id:
            authorization.RoleAssignment(
                f"{name}-grafana-admins",
                scope=grafana.id,
                principal_id=args.grafana_admin_group_object_id,
                principal_type=authorization.PrincipalType.GROUP,
                role_definition_id=_role_id(subscription, "grafana_admin"),
                opts=child_options(self),
            )
        self.grafana = grafana
        self.grafana_id = grafana.id
        self.grafana_name = grafana.name
        self.grafana_endpoint = grafana.properties.apply(lambda props: props.endpoint)


def _role_id(subscription_id: pulumi.Output[str], key: str) -> pulumi.Output[str]:
    return subscription_id.apply(lambda sub: facts.role_definition_resource_id(sub, key))


def remote_write_url(
    endpoint: monitor.DataCollectionEndpoint, rule: monitor.DataCollectionRule
) -> pulumi.Output[str]:
    """The Prometheus remote-write URL of a DCE and DCR pair (metrics ingestion endpoint)."""
    prometheus = _monitor_facts("managed_prometheus")
    ingestion = endpoint.metrics_ingestion.apply(lambda metrics: metrics.endpoint)
    return pulumi.Output.all(ingestion, rule.immutable_id).apply(
        lambda parts: (
            parts[0]
            + prometheus["remote_write_path"].format(dcr_immutable_id=parts[1])
            + f"?api-version={prometheus['remote_write_api_version']}"
        )
    )


def load_dashboard() -> dict[str, Any]:
    """The DCGM GPU dashboard model from the repository."""
    model: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return model


def dashboard_import_command(grafana_name: str, group: str, file: str) -> str:
    """The Azure CLI command that imports the dashboard into a Managed Grafana workspace."""
    template: str = _monitor_facts("grafana")["dashboard_import"]
    return template.format(grafana=grafana_name, group=group, file=file)


# --- GPU VM pools ------------------------------------------------------------------------------


def monitoring_agent_extension(identity_id: pulumi.Input[str]) -> dict[str, Any]:
    """The Azure Monitor Agent (Linux) extension as `compute` extension arguments take it.

    It authenticates as the user-assigned identity `identity_id` (a VM with several identities
    must name one) and upgrades itself; versions and names come from
    gpustack/data/azure_monitor.yaml, `monitoring_agent`.
    """
    agent = _monitor_facts("monitoring_agent")
    return {
        "publisher": agent["publisher"],
        "type": agent["types"]["linux"],
        "type_handler_version": agent["type_handler_version"],
        "auto_upgrade_minor_version": agent["auto_upgrade_minor_version"],
        "enable_automatic_upgrade": agent["enable_automatic_upgrade"],
        "settings": {
            "authentication": {
                "managedIdentity": {
                    "identifier-name": agent["identity_identifier_name"],
                    "identifier-value": identity_id,
                }
            }
        },
    }


@dataclass(frozen=True)
class VmPoolTarget:
    """A GPU VM or scale set to collect from, and the identity its Prometheus agent uses."""

    pool: str
    resource_id: pulumi.Input[str]
    identity: IdentityRef | None = None
    # What installs the Azure Monitor Agent there (`GpuVmPool.monitoring_agent`); None when
    # something outside this program installs it (an Azure Policy DeployIfNotExists, say).
    agent: pulumi.Resource | None = None


@dataclass(frozen=True)
class VmPoolMonitoringArgs:
    """The VMs and scale sets of the stack's VM pools."""

    context: ComponentContext
    collection: VmCollection
    targets: Sequence[VmPoolTarget] = field(default_factory=tuple)


class VmPoolMonitoring(pulumi.ComponentResource):
    """Syslog through the Azure Monitor Agent, and the right to remote-write DCGM metrics.

    A rule association collects nothing without the Azure Monitor Agent on the VMs: pools install
    it with `GpuVmPoolArgs(monitoring_agent=True)` and hand it over as `VmPoolTarget.agent`. The
    nodes also run a Prometheus agent configured with `vm_prometheus_agent_config`.
    """

    def __init__(
        self, name: str, args: VmPoolMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:monitoring:VmPoolMonitoring", name, None, opts)
        subscription = authorization.get_client_config_output().subscription_id
        publisher = _role_id(subscription, "monitoring_metrics_publisher")
        granted: list[IdentityRef] = []
        for target in args.targets:
            monitor.DataCollectionRuleAssociation(
                f"{name}-{target.pool}-syslog",
                resource_uri=target.resource_id,
                association_name="gpu-node-syslog",
                data_collection_rule_id=args.collection.syslog_rule_id,
                # After the agent: a failed agent install stops the rollout before an
                # association that would collect nothing.
                opts=child_options(
                    self, depends_on=[target.agent] if target.agent is not None else None
                ),
            )
            if target.identity is not None and target.identity not in granted:
                # Remote write authenticates as the pool's identity; publishing into this one
                # rule is all it may do. Pools sharing an identity share the grant (Azure
                # refuses a second identical role assignment).
                granted.append(target.identity)
                authorization.RoleAssignment(
                    f"{name}-{target.pool}-metrics-publisher",
                    scope=args.collection.prometheus_rule_id,
                    principal_id=target.identity.principal_id,
                    principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
                    role_definition_id=publisher,
                    opts=child_options(self),
                )
        self.register_outputs({})


def vm_prometheus_agent_config(
    pool: str, remote_write: pulumi.Input[str], client_id: pulumi.Input[str]
) -> pulumi.Output[str]:
    """prometheus.yml for a GPU VM: scrape dcgm-exporter and node-exporter, remote-write to Azure.

    Run Prometheus (>= 2.45) in agent mode with --enable-feature=expand-external-labels so
    ${HOSTNAME} becomes the `host` label the alert rules group by.
    """
    labels = _monitor_facts("pool_labels")

    def render(values: list[str]) -> str:
        url, client = values
        config = {
            "global": {
                "scrape_interval": "30s",
                "external_labels": {labels["vm"]: pool, labels["vm_host"]: "${HOSTNAME}"},
            },
            "scrape_configs": [
                {
                    "job_name": labels["dcgm_job"],
                    "static_configs": [{"targets": [f"localhost:{facts.dcgm_exporter_port()}"]}],
                },
                {
                    "job_name": labels["node_exporter_job"],
                    "static_configs": [{"targets": [f"localhost:{labels['node_exporter_port']}"]}],
                },
            ],
            "remote_write": [
                {
                    "url": url,
                    "azuread": {"cloud": "AzurePublic", "managed_identity": {"client_id": client}},
                }
            ],
        }
        return yaml.safe_dump(config, sort_keys=False)

    return pulumi.Output.all(remote_write, client_id).apply(render)
