"""The AKS part of an environment: cluster, GPU pools, NVIDIA software and teams."""

from __future__ import annotations

import pulumi

from components import (
    ComponentContext,
    GpuAksCluster,
    GpuAksClusterArgs,
    GpuNetwork,
    GpuNodePool,
    GpuNodePoolArgs,
    GpuTeam,
    GpuTeamArgs,
    MaintenanceWindow,
    ModelStorage,
    NvidiaGpuSoftware,
    NvidiaGpuSoftwareArgs,
    SecretsVault,
    SystemPoolSpec,
)
from components.amd_gpu_software import AmdGpuSoftware, AmdGpuSoftwareArgs
from components.capacity_reservation import GpuCapacityReservation
from components.conventions import MonitoringTargets
from gpustack import facts
from stacks.config import MaintenanceWindowConfig, StackConfig


def build_aks(
    cfg: StackConfig,
    context: ComponentContext,
    net: GpuNetwork,
    monitoring: MonitoringTargets | None,
    storage: ModelStorage | None,
    vault: SecretsVault | None,
    reservations: dict[str, GpuCapacityReservation] | None = None,
) -> GpuAksCluster | None:
    """The AKS cluster, its GPU pools, the NVIDIA software on them and the teams sharing them."""
    aks = cfg.aks
    if aks is None or not aks.enabled:
        return None
    cluster_name = f"aks-{cfg.name_prefix}-{cfg.environment}"
    cluster = GpuAksCluster(
        "aks",
        GpuAksClusterArgs(
            context=context,
            cluster_name=cluster_name,
            system_subnet_id=net.subnet_ids["system"],
            node_subnet_ids=[net.subnet_ids["system"], net.subnet_ids["gpu"]],
            system_pool=SystemPoolSpec(
                vm_size=aks.system_pool.vm_size,
                min_count=aks.system_pool.min_count,
                max_count=aks.system_pool.max_count,
                zones=tuple(aks.system_pool.zones),
                os_disk_gb=aks.system_pool.os_disk_gb,
            ),
            private_cluster=aks.private_cluster,
            authorized_ip_ranges=tuple(aks.authorized_ip_ranges),
            admin_group_object_ids=tuple(aks.admin_group_object_ids),
            kubernetes_version=aks.kubernetes_version,
            tier=aks.tier,
            auto_upgrade_channel=aks.auto_upgrade_channel,
            node_os_upgrade_channel=aks.node_os_upgrade_channel,
            maintenance_window=_window(aks.maintenance_window),
            node_os_maintenance_window=_window(
                aks.node_os_maintenance_window or aks.maintenance_window
            ),
            pod_cidr=aks.pod_cidr,
            service_cidr=aks.service_cidr,
            # The node subnets egress through the NAT gateway when the network has one.
            outbound_type="userAssignedNATGateway" if cfg.network.nat_gateway else "loadBalancer",
            # A user-assigned control-plane identity holds its subnet roles before the cluster.
            control_plane_identity="UserAssigned",
            monitoring=monitoring,
            # The inference gateway's internal NGINX comes from this add-on.
            app_routing=cfg.inference is not None and cfg.inference.enabled,
        ),
    )
    # Pools naming a capacity reservation group wait for the cluster identity's role on it.
    groups = reservations or {}
    group_of = {
        pool: groups[group.name]
        for group in cfg.capacity_reservations
        if group.name in groups
        for pool in group.aks_gpu_pools
    }
    grants = {
        group_name: group.grant_aks_identity(f"aks-{group_name}", cluster.identity.principal_id)
        for group_name, group in groups.items()
        if cluster.identity is not None and group in group_of.values()
    }
    grant_of = {
        pool: grants[name] for name, group in groups.items() if name in grants
        for pool, used in group_of.items() if used is group
    }  # fmt: skip
    pools = [
        GpuNodePool(
            f"aks-{pool.name}",
            GpuNodePoolArgs(
                context=context,
                cluster_name=cluster.cluster_name,
                pool_name=pool.name,
                vm_size=pool.vm_size,
                subnet_id=net.subnet_ids["gpu"],
                min_count=pool.min_count,
                max_count=pool.max_count,
                purpose=pool.purpose,
                autoscale=pool.autoscale,
                spot=pool.spot,
                driver=pool.driver,
                mig_profile=pool.mig_profile,
                time_slicing_replicas=pool.time_slicing_replicas,
                zones=tuple(pool.zones) if pool.zones else None,
                labels=dict(pool.labels),
                os_disk_gb=pool.os_disk_gb,
                gpu_operator_in_cluster=aks.gpu_operator,
                capacity_reservation_group_id=(
                    group_of[pool.name].group_id if pool.name in group_of else None
                ),
                depends_on=(
                    (*group_of[pool.name].reservations, grant_of[pool.name])
                    if pool.name in grant_of
                    else ()
                ),
            ),
        )
        for pool in aks.gpu_pools
    ]
    if pools:
        NvidiaGpuSoftware(
            "nvidia",
            NvidiaGpuSoftwareArgs(
                context=context,
                provider=cluster.kubernetes_provider,
                pools=pools,
                device_plugin_version=aks.device_plugin_version,
                dcgm_exporter_image_tag=aks.dcgm_exporter_image_tag,
                gpu_operator_version=aks.gpu_operator_version,
                network_operator_version=aks.network_operator_version,
                doca_driver_version=aks.doca_driver_version,
                rdma_shared_device_plugin_version=aks.rdma_shared_device_plugin_version,
                monitoring=monitoring,
            ),
        )
    if any(pool.size.gpu_vendor == "AMD" for pool in pools):
        AmdGpuSoftware(
            "amd",
            AmdGpuSoftwareArgs(
                context=context,
                provider=cluster.kubernetes_provider,
                pools=pools,
                device_plugin_version=str(facts.load("amd_gpu")["device_plugin"]["tag"]),
            ),
        )
    for team in aks.teams:
        GpuTeam(
            f"team-{team.name}",
            GpuTeamArgs(
                context=context,
                provider=cluster.kubernetes_provider,
                namespace=team.name,
                oidc_issuer_url=cluster.oidc_issuer_url,
                gpu_quota=team.gpu_quota,
                read_containers=tuple(team.read_containers),
                write_containers=tuple(team.write_containers),
                key_vault_secrets=team.key_vault_secrets,
                service_account=team.service_account,
                default_cpu_request=team.default_cpu_request,
                default_memory_request=team.default_memory_request,
                default_memory_limit=team.default_memory_limit,
                storage_account_id=storage.account_id if storage else None,
                vault_id=vault.id if vault else None,
            ),
            # Container-scoped roles need the containers to exist first.
            opts=pulumi.ResourceOptions(depends_on=[r for r in (storage, vault) if r]),
        )
    pulumi.export("aksClusterName", cluster.cluster_name)
    pulumi.export("aksClusterId", cluster.cluster_id)
    pulumi.export("aksOidcIssuerUrl", cluster.oidc_issuer_url)
    pulumi.export(
        "aksKubeletIdentity",
        {
            "objectId": cluster.kubelet_identity.principal_id,
            "clientId": cluster.kubelet_identity.client_id,
            "resourceId": cluster.kubelet_identity.id,
        },
    )
    pulumi.export("aksKubeconfig", cluster.kubeconfig)
    return cluster


def _window(window: MaintenanceWindowConfig) -> MaintenanceWindow:
    return MaintenanceWindow(window.day_of_week, window.start_hour, window.duration_hours)
