"""The GPU VM and scale set pools of an environment: one `GpuVmPool` per `vmPools` entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pulumi

from components import (
    AutoscaleRules,
    ComponentContext,
    GpuNetwork,
    GpuVmPool,
    GpuVmPoolArgs,
    ModelStorage,
    PoolImage,
    VmPoolMonitoring,
    VmPoolMonitoringArgs,
    VmPoolTarget,
)
from components.capacity_reservation import GpuCapacityReservation
from components.conventions import IdentityRef
from components.monitoring import VmCollection
from stacks.config import StackConfig, VmPoolConfig

# The workload identity (components/identity.py) that reads the containers nodes mount.
NODE_IDENTITY = "nodes"


def build_vm_pools(
    cfg: StackConfig,
    context: ComponentContext,
    net: GpuNetwork,
    storage: ModelStorage | None,
    identities: Mapping[str, IdentityRef],
    collection: VmCollection | None = None,
    reservations: Mapping[str, GpuCapacityReservation] | None = None,
) -> dict[str, GpuVmPool]:
    """Every configured pool on the GPU subnet, its nodes running as the node identity.

    With `collection`, the pools run the Azure Monitor Agent, their syslog goes to the
    workspace and their identity may remote-write the nodes' DCGM metrics
    (components/monitoring.py).
    """
    node_identity = identities.get(NODE_IDENTITY)
    groups = reservations or {}
    group_of = {
        pool: groups[group.name]
        for group in cfg.capacity_reservations
        if group.name in groups
        for pool in group.vm_pools
    }
    pools = {
        pool.name: GpuVmPool(
            pool.name,
            replace(
                pool_args(cfg, pool, context, net.subnet_ids["gpu"], storage, node_identity),
                capacity_reservation_group_id=(
                    group_of[pool.name].group_id if pool.name in group_of else None
                ),
                # A VM naming the group fails unless its reservation already exists.
                depends_on=(
                    tuple(group_of[pool.name].reservations) if pool.name in group_of else ()
                ),
                # The syslog rule below is associated with every pool: it needs the agent.
                monitoring_agent=collection is not None,
            ),
        )
        for pool in cfg.vm_pools
    }
    if pools and collection is not None:
        VmPoolMonitoring(
            "vm-pools-monitoring",
            VmPoolMonitoringArgs(
                context=context,
                collection=collection,
                targets=[
                    VmPoolTarget(name, pool.resource_id, pool.identity, pool.monitoring_agent)
                    for name, pool in pools.items()
                ],
            ),
        )
    if pools:
        pulumi.export("vmPools", {name: _summary(pool) for name, pool in pools.items()})
    return pools


def pool_args(
    cfg: StackConfig,
    pool: VmPoolConfig,
    context: ComponentContext,
    subnet_id: pulumi.Input[str],
    storage: ModelStorage | None,
    identity: IdentityRef | None,
) -> GpuVmPoolArgs:
    """The component arguments for one validated `vmPools` entry."""
    rules = pool.autoscale_rules
    image = pool.image
    mounts = (
        storage.mount_target(pool.mount_containers, identity)
        if storage is not None and pool.mount_containers
        else None
    )
    return GpuVmPoolArgs(
        context=context,
        vm_size=pool.vm_size,
        subnet_id=subnet_id,
        ssh_public_key=pool.ssh_public_key,
        identity=identity,
        storage=mounts,
        kind=pool.kind,
        purpose=pool.purpose,
        min_count=pool.min_count,
        max_count=pool.max_count,
        initial_count=pool.initial_count,
        spot=pool.spot,
        image=(
            PoolImage(
                image.publisher,
                image.offer,
                image.sku,
                image.version,
                image.gpu_driver_preinstalled,
            )
            if image is not None
            else None
        ),
        proximity_placement_group=pool.proximity_placement_group,
        admin_username=pool.admin_username,
        os_disk_gb=pool.os_disk_gb,
        ephemeral_os_disk=pool.ephemeral_os_disk,
        autoscale=(
            AutoscaleRules(
                scale_out_cpu_percent=rules.scale_out_cpu_percent,
                scale_in_cpu_percent=rules.scale_in_cpu_percent,
                window_minutes=rules.window_minutes,
                cooldown_minutes=rules.cooldown_minutes,
            )
            if rules.enabled
            else None
        ),
        blob_cache=cfg.storage.cache,
        blob_hierarchical_namespace=cfg.storage.hierarchical_namespace,
    )


def _summary(pool: GpuVmPool) -> dict[str, Any]:
    return {
        "kind": pool.kind,
        "vmSize": pool.size.name,
        "resourceId": pool.resource_id,
        "identityPrincipalId": pool.identity_principal_id,
        "gpusPerNode": pool.gpus_per_node,
        "gpuCount": pool.gpu_count,
        "capacity": pool.capacity.as_dict(),
    }
