"""`GpuAksCluster` and `GpuNodePool`: an Entra-ID-only AKS cluster and its tainted GPU node pools.

The cluster carries only the CPU system pool inline; every GPU pool is its own
`containerservice.AgentPool`, so changing one pool never rescales another.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import authorization, containerservice, managedidentity, monitor

from components.conventions import (
    ComponentContext,
    IdentityRef,
    MonitoringTargets,
    child_options,
    stateful_options,
)
from components.diagnostics import send_diagnostics
from gpustack import catalog, facts

# The system pool runs only critical add-ons; everything else needs a toleration.
# Source: https://learn.microsoft.com/azure/aks/use-system-pools
SYSTEM_POOL_TAINT = "CriticalAddonsOnly=true:NoSchedule"
# AKS does not taint GPU nodes; its GPU guide's taint, shared with the policy pack's rule
# (source in gpustack/data/policy_facts.yaml).
GPU_TAINT: str = facts.load("policy_facts")["aks_gpu_taint"]["taint"]
# AKS adds this taint and label to spot nodes itself; declaring them keeps the pool's inputs
# equal to what AKS reports. Source: https://learn.microsoft.com/azure/aks/spot-node-pool
SPOT_TAINT = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
SPOT_LABEL = ("kubernetes.azure.com/scalesetpriority", "spot")
# -1: pay up to the pay-as-you-go price; nodes are evicted for capacity, never for price.
# Source: https://learn.microsoft.com/azure/aks/spot-node-pool
SPOT_MAX_PRICE_PAYG = -1.0
# Labels AKS puts on every node. Source: https://learn.microsoft.com/azure/aks/virtual-nodes
AGENT_POOL_LABEL = "kubernetes.azure.com/agentpool"
# Labels this toolkit puts on GPU pools; the NVIDIA software selects nodes with them.
ACCELERATOR_LABEL = "accelerator"
GPU_MODEL_LABEL = "gpu-model"
PURPOSE_LABEL = "purpose"
DRIVER_LABEL = "gpu-driver"
# With this label the GPU Operator deploys no operands on a node (AKS already installed the
# driver there; the two stacks must not mix on one node). Source:
# https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/getting-started.html
GPU_OPERATOR_OPERANDS_LABEL = "nvidia.com/gpu.deploy.operands"
# The GPU Operator's device plugin reads the key of its config ConfigMap named by this label.
# Source: https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/gpu-sharing.html
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
# Maintenance configurations AKS binds to the two auto-upgrade channels by name.
# Source: https://learn.microsoft.com/azure/aks/planned-maintenance
AUTO_UPGRADE_SCHEDULE = "aksManagedAutoUpgradeSchedule"
NODE_OS_UPGRADE_SCHEDULE = "aksManagedNodeOSUpgradeSchedule"
SCHEDULED_NODE_OS_CHANNELS = frozenset({"NodeImage", "SecurityPatch"})
# Secrets Store CSI driver: rotation on, polling at AKS's default interval.
# Source: https://learn.microsoft.com/azure/aks/csi-secrets-store-configuration-options
SECRET_ROTATION_POLL_INTERVAL = "2m"
# Image Cleaner's default scan interval (7 days). Source: https://learn.microsoft.com/azure/aks/image-cleaner
IMAGE_CLEANER_INTERVAL_HOURS = 168
# Kubeconfig in exec format: kubelogin gets an Entra ID token (local accounts are off).
# Source: https://learn.microsoft.com/rest/api/aks/managed-clusters/list-cluster-user-credentials
KUBECONFIG_FORMAT = "exec"
# The cluster DNS service takes the tenth address of the service range by AKS convention.
# Source: https://learn.microsoft.com/azure/aks/azure-cni-overlay
DNS_SERVICE_IP_OFFSET = 10
# Managed Prometheus and Container Insights data collection, as Microsoft's onboarding
# templates name and shape it. Sources:
# https://github.com/Azure/prometheus-collector/blob/main/AddonTerraformTemplate/main.tf
# https://learn.microsoft.com/azure/azure-monitor/containers/kubernetes-monitoring-enable
PROMETHEUS_STREAM = "Microsoft-PrometheusMetrics"
CONTAINER_INSIGHTS_STREAM = "Microsoft-ContainerInsights-Group-Default"
DCE_NAME_MAX = 44
DCR_NAME_MAX = 64


@dataclass(frozen=True)
class SystemPoolSpec:
    """The inline CPU system pool."""

    vm_size: str
    min_count: int
    max_count: int
    zones: Sequence[str] = ("1", "2", "3")
    os_disk_gb: int = 128


@dataclass(frozen=True)
class MaintenanceWindow:
    """A weekly upgrade window in UTC."""

    day_of_week: str = "Sunday"
    start_hour: int = 2
    duration_hours: int = 4


@dataclass(frozen=True)
class GpuAksClusterArgs:
    """Everything the cluster needs; GPU pools are declared separately with `GpuNodePool`."""

    context: ComponentContext
    cluster_name: str
    system_subnet_id: pulumi.Input[str]
    # Every subnet the cluster's nodes join; its identity gets Network Contributor on each.
    node_subnet_ids: Sequence[pulumi.Input[str]]
    system_pool: SystemPoolSpec
    private_cluster: bool = True
    authorized_ip_ranges: Sequence[str] = ()
    admin_group_object_ids: Sequence[str] = ()
    kubernetes_version: str | None = None
    tier: str = "Standard"
    auto_upgrade_channel: str = "patch"
    node_os_upgrade_channel: str = "NodeImage"
    maintenance_window: MaintenanceWindow = field(default_factory=MaintenanceWindow)
    node_os_maintenance_window: MaintenanceWindow = field(default_factory=MaintenanceWindow)
    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.0.0.0/16"
    # userAssignedNATGateway when the node subnets egress through a NAT gateway.
    outbound_type: str = "loadBalancer"
    # "UserAssigned": an identity created first holds its subnet roles before the cluster
    # exists (best for custom subnets and private clusters). "SystemAssigned": the roles follow
    # the cluster's creation.
    control_plane_identity: Literal["UserAssigned", "SystemAssigned"] = "UserAssigned"
    monitoring: MonitoringTargets | None = None
    # The application routing add-on (managed NGINX) without its default controller; the
    # inference gateway (components/inference.py) declares an internal one.
    app_routing: bool = False


class GpuAksCluster(pulumi.ComponentResource):
    """AKS with Entra ID + Azure RBAC only, workload identity, Cilium, and managed upgrades."""

    cluster_name: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    node_resource_group: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    kubelet_identity: IdentityRef
    kubeconfig: pulumi.Output[str]
    kubernetes_provider: k8s.Provider

    def __init__(
        self, name: str, args: GpuAksClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:aks:GpuAksCluster", name, None, opts)
        context = args.context
        client = authorization.get_client_config_output()

        user_assigned = args.control_plane_identity == "UserAssigned"
        subnet_grants: list[authorization.RoleAssignment] = []
        self.identity: managedidentity.UserAssignedIdentity | None = None
        if user_assigned:
            self.identity = managedidentity.UserAssignedIdentity(
                f"{name}-identity",
                resource_name_=f"id-{args.cluster_name}",
                resource_group_name=context.resource_group_name,
                location=context.location,
                tags=dict(context.tags),
                opts=child_options(self),
            )
            subnet_grants = self._subnet_grants(name, args, self.identity.principal_id, client)
            identity = containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[self.identity.id],
            )
        else:
            identity = containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.SYSTEM_ASSIGNED
            )

        self.cluster = containerservice.ManagedCluster(
            f"{name}-cluster",
            resource_name_=args.cluster_name,
            resource_group_name=context.resource_group_name,
            location=context.location,
            dns_prefix=args.cluster_name,
            kubernetes_version=args.kubernetes_version or facts.default_kubernetes_version(),
            sku=containerservice.ManagedClusterSKUArgs(
                name=containerservice.ManagedClusterSKUName.BASE,
                tier=containerservice.ManagedClusterSKUTier(args.tier),
            ),
            identity=identity,
            enable_rbac=True,
            disable_local_accounts=True,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(
                managed=True,
                enable_azure_rbac=True,
                admin_group_object_ids=list(args.admin_group_object_ids) or None,
            ),
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(
                    enabled=True
                ),
                image_cleaner=containerservice.ManagedClusterSecurityProfileImageCleanerArgs(
                    enabled=True, interval_hours=IMAGE_CLEANER_INTERVAL_HOURS
                ),
                defender=_defender_profile(args.monitoring),
            ),
            api_server_access_profile=_api_server_access(args),
            network_profile=_network_profile(args),
            agent_pool_profiles=[_system_pool(args)],
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=containerservice.UpgradeChannel(args.auto_upgrade_channel),
                node_os_upgrade_channel=containerservice.NodeOSUpgradeChannel(
                    args.node_os_upgrade_channel
                ),
            ),
            storage_profile=containerservice.ManagedClusterStorageProfileArgs(
                blob_csi_driver=containerservice.ManagedClusterStorageProfileBlobCSIDriverArgs(
                    enabled=True
                ),
            ),
            addon_profiles=_addon_profiles(args.monitoring),
            azure_monitor_profile=_azure_monitor_profile(args.monitoring),
            ingress_profile=_ingress_profile(args.app_routing),
            tags=dict(context.tags),
            # The autoscaler owns the system pool's node count.
            opts=stateful_options(
                self,
                context,
                depends_on=subnet_grants,
                ignore_changes=["agentPoolProfiles[0].count"],
            ),
        )

        if not user_assigned:
            # Load balancers and NAT egress in the node subnets act as the cluster identity.
            principal = self.cluster.identity.apply(lambda i: i.principal_id if i else "")
            self._subnet_grants(name, args, principal, client)
        self._maintenance_windows(name, args)
        if args.monitoring is not None:
            self._data_collection(name, args, args.monitoring)
        send_diagnostics(self, name, self.cluster, context)

        self.cluster_name = self.cluster.name
        self.cluster_id = self.cluster.id
        self.node_resource_group = self.cluster.node_resource_group.apply(lambda g: g or "")
        self.oidc_issuer_url = self.cluster.oidc_issuer_profile.apply(
            lambda profile: profile.issuer_url if profile and profile.issuer_url else ""
        )
        kubelet = self.cluster.identity_profile.apply(
            lambda profiles: (profiles or {}).get("kubeletidentity")
        )
        self.kubelet_identity = IdentityRef(
            id=kubelet.apply(lambda k: k.resource_id if k else ""),
            principal_id=kubelet.apply(lambda k: k.object_id if k else ""),
            client_id=kubelet.apply(lambda k: k.client_id if k else ""),
        )

        # Whoever runs `pulumi up` manages the in-cluster objects below through Azure RBAC for
        # Kubernetes (local accounts are off), so it needs the cluster-admin role on this cluster.
        deployer_admin = authorization.RoleAssignment(
            f"{name}-deployer-cluster-admin",
            principal_id=client.object_id,
            role_definition_id=client.subscription_id.apply(
                lambda sub: facts.role_definition_resource_id(sub, "aks_rbac_cluster_admin")
            ),
            scope=self.cluster.id,
            opts=child_options(self),
        )
        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=context.resource_group_name,
            resource_name=self.cluster.name,
            format=KUBECONFIG_FORMAT,
        )
        self.kubeconfig = pulumi.Output.secret(
            credentials.kubeconfigs.apply(
                lambda configs: base64.b64decode(configs[0].value).decode()
            )
        )
        self.kubernetes_provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=child_options(self, depends_on=[deployer_admin]),
        )

        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "clusterId": self.cluster_id,
                "nodeResourceGroup": self.node_resource_group,
                "oidcIssuerUrl": self.oidc_issuer_url,
                "kubeletIdentityObjectId": self.kubelet_identity.principal_id,
                "kubeletIdentityClientId": self.kubelet_identity.client_id,
                "kubeletIdentityResourceId": self.kubelet_identity.id,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _subnet_grants(
        self,
        name: str,
        args: GpuAksClusterArgs,
        principal_id: pulumi.Input[str],
        client: pulumi.Output[authorization.GetClientConfigResult],
    ) -> list[authorization.RoleAssignment]:
        """Network Contributor on each node subnet, the narrowest scope AKS needs."""
        return [
            authorization.RoleAssignment(
                f"{name}-subnet-{index}-network-contributor",
                principal_id=principal_id,
                principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
                role_definition_id=client.subscription_id.apply(
                    lambda sub: facts.role_definition_resource_id(sub, "network_contributor")
                ),
                scope=subnet_id,
                opts=child_options(self),
            )
            for index, subnet_id in enumerate(args.node_subnet_ids)
        ]

    def _maintenance_windows(self, name: str, args: GpuAksClusterArgs) -> None:
        windows = {AUTO_UPGRADE_SCHEDULE: args.maintenance_window}
        if args.node_os_upgrade_channel in SCHEDULED_NODE_OS_CHANNELS:
            windows[NODE_OS_UPGRADE_SCHEDULE] = args.node_os_maintenance_window
        for config_name, window in windows.items():
            containerservice.MaintenanceConfiguration(
                f"{name}-{config_name}",
                config_name=config_name,
                resource_group_name=args.context.resource_group_name,
                resource_name_=self.cluster.name,
                maintenance_window=containerservice.MaintenanceWindowArgs(
                    schedule=containerservice.ScheduleArgs(
                        weekly=containerservice.WeeklyScheduleArgs(
                            day_of_week=containerservice.WeekDay(window.day_of_week),
                            interval_weeks=1,
                        )
                    ),
                    start_time=f"{window.start_hour:02d}:00",
                    duration_hours=window.duration_hours,
                    utc_offset="+00:00",
                ),
                opts=child_options(self),
            )

    def _data_collection(
        self, name: str, args: GpuAksClusterArgs, monitoring: MonitoringTargets
    ) -> None:
        """The collection rules the metrics profile and Container Insights add-on send through."""
        context = args.context
        location = context.location
        if monitoring.azure_monitor_workspace_id is not None:
            prometheus_name = f"MSProm-{location}-{args.cluster_name}"
            endpoint = monitor.DataCollectionEndpoint(
                f"{name}-prometheus-dce",
                data_collection_endpoint_name=prometheus_name[:DCE_NAME_MAX],
                resource_group_name=context.resource_group_name,
                location=location,
                kind=monitor.KnownDataCollectionEndpointResourceKind.LINUX,
                tags=dict(context.tags),
                opts=child_options(self),
            )
            rule = monitor.DataCollectionRule(
                f"{name}-prometheus-dcr",
                data_collection_rule_name=prometheus_name[:DCR_NAME_MAX],
                resource_group_name=context.resource_group_name,
                location=location,
                kind=monitor.KnownDataCollectionRuleResourceKind.LINUX,
                data_collection_endpoint_id=endpoint.id,
                data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                    prometheus_forwarder=[
                        monitor.PrometheusForwarderDataSourceArgs(
                            name="PrometheusDataSource", streams=[PROMETHEUS_STREAM]
                        )
                    ]
                ),
                destinations=monitor.DataCollectionRuleDestinationsArgs(
                    monitoring_accounts=[
                        monitor.MonitoringAccountDestinationArgs(
                            name="MonitoringAccount1",
                            account_resource_id=monitoring.azure_monitor_workspace_id,
                        )
                    ]
                ),
                data_flows=[
                    monitor.DataFlowArgs(
                        streams=[PROMETHEUS_STREAM], destinations=["MonitoringAccount1"]
                    )
                ],
                tags=dict(context.tags),
                opts=child_options(self),
            )
            monitor.DataCollectionRuleAssociation(
                f"{name}-prometheus-dcra",
                association_name=prometheus_name[:DCR_NAME_MAX],
                resource_uri=self.cluster.id,
                data_collection_rule_id=rule.id,
                opts=child_options(self),
            )
        insights = monitor.DataCollectionRule(
            f"{name}-container-insights-dcr",
            data_collection_rule_name=f"MSCI-{location}-{args.cluster_name}"[:DCR_NAME_MAX],
            resource_group_name=context.resource_group_name,
            location=location,
            kind=monitor.KnownDataCollectionRuleResourceKind.LINUX,
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                extensions=[
                    monitor.ExtensionDataSourceArgs(
                        name="ContainerInsightsExtension",
                        extension_name="ContainerInsights",
                        streams=[CONTAINER_INSIGHTS_STREAM],
                        extension_settings={
                            "dataCollectionSettings": {
                                "interval": "1m",
                                "namespaceFilteringMode": "Off",
                                "enableContainerLogV2": True,
                            }
                        },
                    )
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                log_analytics=[
                    monitor.LogAnalyticsDestinationArgs(
                        name="ciworkspace",
                        workspace_resource_id=monitoring.log_analytics_workspace_id,
                    )
                ]
            ),
            data_flows=[
                monitor.DataFlowArgs(
                    streams=[CONTAINER_INSIGHTS_STREAM], destinations=["ciworkspace"]
                )
            ],
            tags=dict(context.tags),
            opts=child_options(self),
        )
        monitor.DataCollectionRuleAssociation(
            f"{name}-container-insights-dcra",
            association_name="ContainerInsightsExtension",
            resource_uri=self.cluster.id,
            data_collection_rule_id=insights.id,
            opts=child_options(self),
        )


def _api_server_access(
    args: GpuAksClusterArgs,
) -> containerservice.ManagedClusterAPIServerAccessProfileArgs:
    if args.private_cluster:
        return containerservice.ManagedClusterAPIServerAccessProfileArgs(
            enable_private_cluster=True, enable_private_cluster_public_fqdn=False
        )
    return containerservice.ManagedClusterAPIServerAccessProfileArgs(
        authorized_ip_ranges=list(args.authorized_ip_ranges)
    )


def _network_profile(
    args: GpuAksClusterArgs,
) -> containerservice.ContainerServiceNetworkProfileArgs:
    services = ipaddress.ip_network(args.service_cidr)
    return containerservice.ContainerServiceNetworkProfileArgs(
        network_plugin=containerservice.NetworkPlugin.AZURE,
        network_plugin_mode=containerservice.NetworkPluginMode.OVERLAY,
        network_dataplane=containerservice.NetworkDataplane.CILIUM,
        network_policy=containerservice.NetworkPolicy.CILIUM,
        pod_cidr=args.pod_cidr,
        service_cidr=args.service_cidr,
        dns_service_ip=str(services.network_address + DNS_SERVICE_IP_OFFSET),
        outbound_type=containerservice.OutboundType(args.outbound_type),
        load_balancer_sku=containerservice.LoadBalancerSku.STANDARD,
    )


def _system_pool(args: GpuAksClusterArgs) -> containerservice.ManagedClusterAgentPoolProfileArgs:
    spec = args.system_pool
    size = catalog.lookup(spec.vm_size)
    return containerservice.ManagedClusterAgentPoolProfileArgs(
        name="system",
        mode=containerservice.AgentPoolMode.SYSTEM,
        type=containerservice.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
        os_type=containerservice.OSType.LINUX,
        vm_size=size.name,
        count=spec.min_count,
        enable_auto_scaling=True,
        min_count=spec.min_count,
        max_count=spec.max_count,
        availability_zones=list(spec.zones) if spec.zones and size.zonal else None,
        node_taints=[SYSTEM_POOL_TAINT],
        vnet_subnet_id=args.system_subnet_id,
        enable_node_public_ip=False,
        os_disk_type=_os_disk_type(size, spec.os_disk_gb),
        os_disk_size_gb=spec.os_disk_gb,
        # Temp disks and OS disk caches hold images and mounted secrets: encrypt them too.
        enable_encryption_at_host=size.encryption_at_host or None,
    )


def _defender_profile(
    monitoring: MonitoringTargets | None,
) -> containerservice.ManagedClusterSecurityProfileDefenderArgs | None:
    """The Defender for Containers sensor, reporting to the stack's Log Analytics workspace."""
    if monitoring is None:
        return None
    return containerservice.ManagedClusterSecurityProfileDefenderArgs(
        log_analytics_workspace_resource_id=monitoring.log_analytics_workspace_id,
        security_monitoring=containerservice.ManagedClusterSecurityProfileDefenderSecurityMonitoringArgs(
            enabled=True
        ),
    )


def _addon_profiles(
    monitoring: MonitoringTargets | None,
) -> dict[str, containerservice.ManagedClusterAddonProfileArgs]:
    # Add-on names and config keys as the AKS API spells them (azure-cli acs/_consts.py).
    addons = {
        "azureKeyvaultSecretsProvider": containerservice.ManagedClusterAddonProfileArgs(
            enabled=True,
            config={
                "enableSecretRotation": "true",
                "rotationPollInterval": SECRET_ROTATION_POLL_INTERVAL,
            },
        ),
        "azurepolicy": containerservice.ManagedClusterAddonProfileArgs(enabled=True),
    }
    if monitoring is not None:
        addons["omsagent"] = containerservice.ManagedClusterAddonProfileArgs(
            enabled=True,
            config={
                "logAnalyticsWorkspaceResourceID": monitoring.log_analytics_workspace_id,
                # Managed-identity auth for the agent; needs the collection rule declared above.
                "useAADAuth": "true",
            },
        )
    return addons


def _azure_monitor_profile(
    monitoring: MonitoringTargets | None,
) -> containerservice.ManagedClusterAzureMonitorProfileArgs | None:
    if monitoring is None or monitoring.azure_monitor_workspace_id is None:
        return containerservice.ManagedClusterAzureMonitorProfileArgs(
            metrics=containerservice.ManagedClusterAzureMonitorProfileMetricsArgs(enabled=False)
        )
    # GPU alerts join pool labels from kube_node_labels, which carries only allow-listed labels.
    prometheus = facts.load("azure_monitor")["managed_prometheus"]
    return containerservice.ManagedClusterAzureMonitorProfileArgs(
        metrics=containerservice.ManagedClusterAzureMonitorProfileMetricsArgs(
            enabled=True,
            kube_state_metrics=containerservice.ManagedClusterAzureMonitorProfileKubeStateMetricsArgs(
                metric_labels_allowlist=prometheus["kube_state_metrics_labels_allowlist"]
            ),
        )
    )


def _ingress_profile(app_routing: bool) -> containerservice.ManagedClusterIngressProfileArgs | None:
    """Application routing with no default controller: NGINX controllers come as CRs."""
    if not app_routing:
        return None
    return containerservice.ManagedClusterIngressProfileArgs(
        web_app_routing=containerservice.ManagedClusterIngressProfileWebAppRoutingArgs(
            enabled=True,
            nginx=containerservice.ManagedClusterIngressProfileNginxArgs(
                default_ingress_controller_type=containerservice.NginxIngressControllerType.NONE
            ),
        )
    )


def _os_disk_type(size: catalog.VmSize, os_disk_gb: int) -> containerservice.OSDiskType:
    """Ephemeral (faster, free, reimaged on upgrade) where the size's local disk can hold it."""
    if size.max_ephemeral_os_disk_gib >= os_disk_gb:
        return containerservice.OSDiskType.EPHEMERAL
    return containerservice.OSDiskType.MANAGED


@dataclass(frozen=True)
class UserPoolSpec:
    """What every user pool (GPU or CPU) declares: size, subnet, autoscaler, spot, taints."""

    context: ComponentContext
    cluster_name: pulumi.Input[str]
    pool_name: str
    size: catalog.VmSize
    subnet_id: pulumi.Input[str]
    min_count: int
    max_count: int
    autoscale: bool
    spot: bool
    zones: Sequence[str] | None
    taints: Sequence[str]
    labels: Mapping[str, str]
    os_disk_gb: int


def user_agent_pool(
    name: str,
    parent: pulumi.Resource,
    spec: UserPoolSpec,
    depends_on: Sequence[pulumi.Resource] = (),
    **extra: Any,
) -> containerservice.AgentPool:
    """A separate AgentPool (never inline: inline edits rescale every pool), no public IPs."""
    autoscaled = spec.autoscale
    return containerservice.AgentPool(
        name,
        agent_pool_name=spec.pool_name,
        resource_name_=spec.cluster_name,
        resource_group_name=spec.context.resource_group_name,
        mode=containerservice.AgentPoolMode.USER,
        type=containerservice.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
        os_type=containerservice.OSType.LINUX,
        # A100/H100 sizes are not offered on Azure Linux GPU nodes; Ubuntu covers them all.
        os_sku=containerservice.OSSKU.UBUNTU,
        vm_size=spec.size.name,
        vnet_subnet_id=spec.subnet_id,
        enable_node_public_ip=False,
        count=spec.min_count if autoscaled else spec.max_count,
        enable_auto_scaling=autoscaled,
        min_count=spec.min_count if autoscaled else None,
        max_count=spec.max_count if autoscaled else None,
        availability_zones=list(spec.zones) if spec.zones and spec.size.zonal else None,
        node_taints=list(spec.taints) or None,
        node_labels=dict(spec.labels),
        scale_set_priority=containerservice.ScaleSetPriority.SPOT if spec.spot else None,
        scale_set_eviction_policy=(
            containerservice.ScaleSetEvictionPolicy.DELETE if spec.spot else None
        ),
        spot_max_price=SPOT_MAX_PRICE_PAYG if spec.spot else None,
        os_disk_type=_os_disk_type(spec.size, spec.os_disk_gb),
        os_disk_size_gb=spec.os_disk_gb,
        enable_encryption_at_host=spec.size.encryption_at_host or None,
        tags=dict(spec.context.tags),
        # The cluster autoscaler owns the node count once it is on.
        opts=child_options(
            parent, depends_on=depends_on, ignore_changes=["count"] if autoscaled else []
        ),
        **extra,
    )


@dataclass(frozen=True)
class GpuNodePoolArgs:
    """One GPU pool: size from the catalog, taint, labels, autoscaler bounds, spot, MIG, driver."""

    context: ComponentContext
    cluster_name: pulumi.Input[str]
    pool_name: str
    vm_size: str
    subnet_id: pulumi.Input[str]
    max_count: int
    min_count: int = 0
    purpose: str = "inference"
    autoscale: bool = True
    spot: bool = False
    # "Install": AKS installs the driver; "None": the GPU Operator does.
    driver: str = "Install"
    mig_profile: str | None = None
    time_slicing_replicas: int | None = None
    zones: Sequence[str] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    os_disk_gb: int = 128
    # True when the cluster runs the GPU Operator: driver-Install pools then opt out of it.
    gpu_operator_in_cluster: bool = False
    # An On-demand Capacity Reservation Group the pool's nodes use (agentPool
    # capacityReservationGroupID); the cluster identity needs its role on the group first.
    capacity_reservation_group_id: pulumi.Input[str] | None = None
    # What the pool must wait for: the group's reservations (AKS associates a group only when
    # it holds one) and the cluster identity's role on it. Children do not inherit depends_on.
    depends_on: Sequence[pulumi.Resource] = ()


class GpuNodePool(pulumi.ComponentResource):
    """A tainted, autoscaled GPU node pool; its taints and labels drive the NVIDIA software."""

    pool_name: str
    size: catalog.VmSize
    driver: str
    spot: bool
    mig_profile: str | None
    time_slicing_replicas: int | None
    taints: list[str]
    labels: dict[str, str]
    pool_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:aks:GpuNodePool", name, None, opts)
        size = catalog.lookup(args.vm_size)
        if not size.is_gpu:
            raise ValueError(f"GpuNodePool {args.pool_name}: {size.name} has no GPU")
        if args.mig_profile and not size.mig:
            raise ValueError(
                f"GpuNodePool {args.pool_name}: {size.name} ({size.gpu_model}) does not support "
                f"MIG profile {args.mig_profile}"
            )
        if args.driver not in size.aks_gpu_drivers:
            allowed = ", ".join(size.aks_gpu_drivers) or "none: no AKS GPU pool on this size"
            raise ValueError(
                f"GpuNodePool {args.pool_name}: gpuProfile.driver {args.driver} is not usable on "
                f"{size.name} (catalog aks_gpu_drivers: {allowed})"
            )
        self.pool_name = args.pool_name
        self.size = size
        self.driver = args.driver
        self.spot = args.spot
        self.mig_profile = args.mig_profile
        self.time_slicing_replicas = args.time_slicing_replicas
        self.taints = [GPU_TAINT, *([SPOT_TAINT] if args.spot else [])]
        self.labels = _pool_labels(args, size)

        self.agent_pool = user_agent_pool(
            f"{name}-pool",
            self,
            UserPoolSpec(
                context=args.context,
                cluster_name=args.cluster_name,
                pool_name=args.pool_name,
                size=size,
                subnet_id=args.subnet_id,
                min_count=args.min_count,
                max_count=args.max_count,
                autoscale=args.autoscale,
                spot=args.spot,
                zones=args.zones,
                taints=self.taints,
                labels=self.labels,
                os_disk_gb=args.os_disk_gb,
            ),
            depends_on=args.depends_on,
            gpu_instance_profile=(
                containerservice.GPUInstanceProfile(args.mig_profile) if args.mig_profile else None
            ),
            gpu_profile=containerservice.GPUProfileArgs(
                driver=containerservice.GPUDriver(args.driver)
            ),
            capacity_reservation_group_id=args.capacity_reservation_group_id,
        )
        self.pool_id = self.agent_pool.id
        self.register_outputs({"poolId": self.pool_id, "taints": self.taints})


def _pool_labels(args: GpuNodePoolArgs, size: catalog.VmSize) -> dict[str, str]:
    model = (size.gpu_model or "unknown").lower().replace(" ", "-")
    labels = {
        **args.labels,
        ACCELERATOR_LABEL: (size.gpu_vendor or "nvidia").lower(),
        GPU_MODEL_LABEL: model,
        PURPOSE_LABEL: args.purpose,
        DRIVER_LABEL: "aks" if args.driver == "Install" else "gpu-operator",
    }
    if args.spot:
        labels[SPOT_LABEL[0]] = SPOT_LABEL[1]
    if args.driver == "Install" and args.gpu_operator_in_cluster:
        labels[GPU_OPERATOR_OPERANDS_LABEL] = "false"
    if args.driver == "None" and args.time_slicing_replicas:
        labels[DEVICE_PLUGIN_CONFIG_LABEL] = args.pool_name
    return labels
