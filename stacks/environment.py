"""Wire the components of one environment together, in the order Azure builds them."""

from __future__ import annotations

from dataclasses import replace

import pulumi
from pulumi_azure_native import resources

from components import (
    BASTION_SUBNET_NAME,
    AlertThresholds,
    BastionSpec,
    ComponentContext,
    GpuAlerts,
    GpuAlertsArgs,
    GpuMonitoring,
    GpuMonitoringArgs,
    GpuNetwork,
    GpuNetworkArgs,
    ModelStorage,
    ModelStorageArgs,
    NatGatewaySpec,
    PrivateLink,
    PrivateLinkArgs,
    SecretsVault,
    SecretsVaultArgs,
    SpendBudget,
    SpendBudgetArgs,
    SubnetSpec,
    WatchedPool,
    WorkloadIdentities,
    WorkloadIdentitiesArgs,
    default_grants,
    with_zones,
)
from components.capacity_reservation import (
    GpuCapacityReservation,
    GpuCapacityReservationArgs,
    ReservedCapacity,
)
from components.conventions import PrivateEndpointTarget
from components.monitoring import DASHBOARD_PATH, dashboard_import_command
from stacks.aks import build_aks
from stacks.config import StackConfig
from stacks.serving import build_serving
from stacks.vm_pools import build_vm_pools


def resource_group_name(cfg: StackConfig, purpose: str) -> str:
    """Deterministic, readable group names: rg-<prefix>-<env>-<purpose>."""
    return f"rg-{cfg.name_prefix}-{cfg.environment}-{purpose}"


def build_capacity_reservations(
    cfg: StackConfig, context: ComponentContext
) -> dict[str, GpuCapacityReservation]:
    """One `GpuCapacityReservation` per `capacityReservations` entry, keyed by its name."""
    groups = {
        group.name: GpuCapacityReservation(
            f"crg-{group.name}",
            GpuCapacityReservationArgs(
                context=context,
                zones=tuple(group.zones),
                reservations=[
                    ReservedCapacity(r.vm_size, r.quantity, r.zone) for r in group.reservations
                ],
            ),
        )
        for group in cfg.capacity_reservations
    }
    if groups:
        pulumi.export(
            "capacityReservationGroups",
            {name: {"id": g.group_id, "reserved": g.reserved} for name, g in groups.items()},
        )
    return groups


def build(cfg: StackConfig) -> None:
    """Declare every resource of the environment described by `cfg` and export its outputs."""
    tags = cfg.all_tags
    group = resources.ResourceGroup(
        "core",
        resource_group_name=resource_group_name(cfg, "core"),
        location=cfg.location,
        tags=tags,
    )
    context = ComponentContext(
        resource_group_name=group.name,
        location=cfg.location,
        tags=tags,
        protect=cfg.protect,
    )

    # --- monitoring: workspaces first, every other component sends diagnostics there
    monitoring = GpuMonitoring(
        "monitoring",
        GpuMonitoringArgs(
            context=context,
            retention_days=cfg.monitoring.log_retention_days,
            grafana=cfg.monitoring.grafana,
            grafana_admin_group_object_id=cfg.monitoring.grafana_admin_group_object_id,
            grafana_public_network_access=cfg.monitoring.grafana_public_network_access,
        ),
    )
    context = replace(context, diagnostics=monitoring.log_analytics_workspace_id)

    # --- network (foundation; NAT gateway, peering, Bastion, subnet sizing)
    nat = cfg.network.nat_gateway
    subnets = {
        "system": SubnetSpec(cfg.network.system_subnet, nat_egress=nat),
        "gpu": SubnetSpec(cfg.network.gpu_subnet, nat_egress=nat),
        "endpoints": SubnetSpec(cfg.network.private_endpoint_subnet, private_endpoints=True),
    }
    subnets.update({name: SubnetSpec(cidr) for name, cidr in cfg.network.extra_subnets.items()})
    if cfg.network.bastion:
        subnets["bastion"] = SubnetSpec(
            cfg.network.bastion_subnet, service_name=BASTION_SUBNET_NAME
        )
    net = GpuNetwork(
        "network",
        GpuNetworkArgs(
            context=context,
            address_space=cfg.network.address_space,
            subnets=subnets,
            nat_gateway=NatGatewaySpec(tuple(cfg.network.nat_public_ip_zones)) if nat else None,
            hub_vnet_id=cfg.network.hub_vnet_id,
            bastion=BastionSpec(cfg.network.bastion_sku) if cfg.network.bastion else None,
        ),
    )

    # --- identities, Key Vault, model storage and private endpoints
    # Endpoints go in the endpoints subnet; each private DNS zone is created once and reused.
    private_endpoints = PrivateEndpointTarget(
        subnet_id=net.subnet_ids["endpoints"], vnet_id=net.vnet_id
    )
    vault = SecretsVault(
        "secrets",
        SecretsVaultArgs(
            context=context,
            private_endpoints=private_endpoints,
            soft_delete_retention_days=cfg.vault.soft_delete_retention_days,
            trusted_services_bypass=cfg.storage.customer_managed_key,
            allowed_ip_ranges=cfg.network.allow_operator_ips,
        ),
    )
    private_endpoints = with_zones(private_endpoints, vault.private_dns_zone_ids)
    storage = ModelStorage(
        "models",
        ModelStorageArgs(
            context=context,
            private_endpoints=private_endpoints,
            containers=cfg.storage.containers,
            replication=cfg.storage.replication,
            hierarchical_namespace=cfg.storage.hierarchical_namespace,
            soft_delete_days=cfg.storage.soft_delete_days,
            checkpoints_cool_after_days=cfg.storage.checkpoints_cool_after_days,
            delete_old_versions_after_days=cfg.storage.delete_old_versions_after_days,
            customer_managed_key=vault.ref if cfg.storage.customer_managed_key else None,
            allowed_ip_ranges=cfg.network.allow_operator_ips,
        ),
    )
    # Later endpoints (ACR, Azure Monitor) reuse these zones: AMPLS shares the blob zone.
    private_endpoints = with_zones(private_endpoints, storage.private_dns_zone_ids)
    identities = WorkloadIdentities(
        "identities",
        WorkloadIdentitiesArgs(
            context=context,
            container_ids=storage.container_ids,
            vault_id=vault.id,
            grants=default_grants(cfg.storage.containers),
        ),
    )
    pulumi.export("storageAccountName", storage.account_name)
    pulumi.export("keyVaultUri", vault.uri)
    pulumi.export("identityClientIds", {w: r.client_id for w, r in identities.refs.items()})

    # --- GPU VM and scale set pools
    # Nodes run as the "nodes" workload identity, which reads the containers BlobFuse2 mounts;
    # build_vm_pools also sends their syslog and DCGM metrics to the monitoring workspaces.
    # --- capacity reservations: groups first, so pools can name them (stacks/config_reservations)
    reservations = build_capacity_reservations(cfg, context)
    vm_pools = build_vm_pools(
        cfg, context, net, storage, identities.refs, monitoring.vm_collection, reservations
    )

    # --- AKS, GPU node pools, NVIDIA software, teams
    # The cluster (None without AKS) gives the alerts and the budget its id, name and node group.
    cluster = build_aks(
        cfg,
        context,
        net,
        monitoring=monitoring.targets,
        storage=storage,
        vault=vault,
        reservations=reservations,
    )

    # --- registry, inference entry point, CPU pools, training storage
    # The registry's endpoint reuses the zones above; AcrPull goes to the kubelet and VM node
    # identities only. The gateway's and Lustre's own subnets are written after the network's.
    build_serving(cfg, context, net, storage, identities.refs, cluster, private_endpoints)

    # --- alerts, action group and budget
    alert_cfg = cfg.monitoring
    aks_pools = cfg.aks.gpu_pools if cfg.aks is not None and cfg.aks.enabled else []
    watched = [WatchedPool(p.name, "aks", p.max_count, spot=p.spot) for p in aks_pools] + [
        # The VM or scale set id and its autoscale setting add the Azure metric alerts.
        WatchedPool(
            p.name,
            "vm",
            p.max_count,
            spot=p.spot,
            scale_set=p.kind == "scaleSet",
            resource_id=vm_pools[p.name].resource_id,
            autoscale_setting_id=vm_pools[p.name].autoscale_setting_id,
        )
        for p in cfg.vm_pools
    ]
    alerts = GpuAlerts(
        "alerts",
        GpuAlertsArgs(
            context=context,
            monitoring=monitoring.targets,
            short_name=f"{cfg.name_prefix}-{cfg.environment}"[:12],
            emails=alert_cfg.alert_emails,
            webhooks=alert_cfg.alert_webhooks,
            thresholds=AlertThresholds(
                gpu_idle_percent=alert_cfg.gpu_idle_percent,
                gpu_idle_minutes=alert_cfg.gpu_idle_minutes,
                gpu_memory_full_percent=alert_cfg.gpu_memory_full_percent,
                gpu_memory_full_minutes=alert_cfg.gpu_memory_full_minutes,
                node_not_ready_minutes=alert_cfg.node_not_ready_minutes,
                capacity_pressure_minutes=alert_cfg.capacity_pressure_minutes,
                cache_disk_full_percent=alert_cfg.cache_disk_full_percent,
                cache_mount_paths=tuple(alert_cfg.cache_mount_paths),
            ),
            pools=watched,
            cluster_id=cluster.cluster_id if cluster is not None else None,
            cluster_name=cluster.cluster_name if cluster is not None else None,
        ),
    )
    stack_groups: list[pulumi.Input[str]] = [group.name]
    if cluster is not None:
        # The GPU nodes bill to AKS's node group (cost data may lower-case it: list both).
        node_group = cluster.node_resource_group
        stack_groups += [node_group, node_group.apply(str.lower)]
    budget = SpendBudget(
        "budget",
        SpendBudgetArgs(
            context=context,
            monthly_amount=cfg.budget.monthly_amount_usd,
            action_group_id=alerts.action_group_id,
            resource_group_names=stack_groups,
            start_date=cfg.budget.start_date,
            actual_percents=tuple(cfg.budget.actual_alert_percents),
            forecast_percent=cfg.budget.forecast_alert_percent,
            contact_emails=tuple(alert_cfg.alert_emails),
        ),
    )
    if monitoring.grafana_id is not None and not alert_cfg.grafana_public_network_access:
        # Grafana without a public endpoint is reached through the spoke VNet.
        PrivateLink(
            "grafana",
            PrivateLinkArgs(
                context=context,
                private_endpoints=private_endpoints,
                resource_id=monitoring.grafana_id,
                target="grafana",
            ),
        )
    pulumi.export("logAnalyticsWorkspaceId", monitoring.log_analytics_workspace_id)
    pulumi.export("azureMonitorWorkspaceId", monitoring.azure_monitor_workspace_id)
    pulumi.export("gpuVmRemoteWriteUrl", monitoring.vm_collection.remote_write_url)
    pulumi.export("actionGroupId", alerts.action_group_id)
    pulumi.export("budgetId", budget.budget_id)
    if monitoring.grafana_name is not None:
        pulumi.export("grafanaEndpoint", monitoring.grafana_endpoint)
        # ARM cannot create dashboards inside Managed Grafana: import the repository's JSON.
        pulumi.export(
            "grafanaDashboardImport",
            pulumi.Output.all(monitoring.grafana_name, group.name).apply(
                lambda names: dashboard_import_command(names[0], names[1], DASHBOARD_PATH)
            ),
        )

    pulumi.export("environment", cfg.environment)
    pulumi.export("resourceGroupName", group.name)
    pulumi.export("vnetId", net.vnet_id)
    pulumi.export("subnetIds", net.subnet_ids)
