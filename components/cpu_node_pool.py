"""`CpuNodePool`: an autoscaled AKS CPU pool for preprocessing and data ingestion.

Unlike the GPU pools it carries no `sku=gpu:NoSchedule` taint: CPU work lands here by its
node selector (the `purpose` label), and GPU pods never do, because GPU pools are tainted and
these nodes have no `nvidia.com/gpu`. Spot pools get AKS's own spot taint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import containerservice

from components.aks import (
    PURPOSE_LABEL,
    SPOT_LABEL,
    SPOT_MAX_PRICE_PAYG,
    SPOT_TAINT,
    _os_disk_type,
)
from components.conventions import ComponentContext, child_options
from gpustack import catalog

# Label CPU pools carry so data-prep pods can select them.
WORKLOAD_LABEL = "workload-class"


@dataclass(frozen=True)
class CpuNodePoolArgs:
    """One CPU pool: a D/E-series size from the catalog, autoscaler bounds, spot, zones."""

    context: ComponentContext
    cluster_name: pulumi.Input[str]
    pool_name: str
    vm_size: str
    subnet_id: pulumi.Input[str]
    max_count: int
    min_count: int = 0
    purpose: str = "preprocessing"
    spot: bool = False
    zones: Sequence[str] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    os_disk_gb: int = 128


class CpuNodePool(pulumi.ComponentResource):
    """An untainted, autoscaled CPU pool (a separate AgentPool, like the GPU pools)."""

    pool_name: str
    size: catalog.VmSize
    taints: list[str]
    labels: dict[str, str]
    pool_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: CpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:aks:CpuNodePool", name, None, opts)
        size = catalog.lookup(args.vm_size)
        if size.is_gpu:
            raise ValueError(f"CpuNodePool {args.pool_name}: {size.name} is a GPU size")
        if not 0 <= args.min_count <= args.max_count:
            raise ValueError(
                f"CpuNodePool {args.pool_name}: need 0 <= min_count ({args.min_count}) <= "
                f"max_count ({args.max_count})"
            )
        self.pool_name = args.pool_name
        self.size = size
        # No GPU taint; spot nodes get the taint AKS adds itself, declared so inputs match.
        self.taints = [SPOT_TAINT] if args.spot else []
        self.labels = {**args.labels, PURPOSE_LABEL: args.purpose, WORKLOAD_LABEL: "cpu"}
        if args.spot:
            self.labels[SPOT_LABEL[0]] = SPOT_LABEL[1]

        self.agent_pool = containerservice.AgentPool(
            f"{name}-pool",
            agent_pool_name=args.pool_name,
            resource_name_=args.cluster_name,
            resource_group_name=args.context.resource_group_name,
            mode=containerservice.AgentPoolMode.USER,
            type=containerservice.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
            os_type=containerservice.OSType.LINUX,
            os_sku=containerservice.OSSKU.UBUNTU,
            vm_size=size.name,
            vnet_subnet_id=args.subnet_id,
            enable_node_public_ip=False,
            count=args.min_count,
            enable_auto_scaling=True,
            min_count=args.min_count,
            max_count=args.max_count,
            availability_zones=list(args.zones) if args.zones and size.zonal else None,
            node_taints=list(self.taints) or None,
            node_labels=dict(self.labels),
            scale_set_priority=containerservice.ScaleSetPriority.SPOT if args.spot else None,
            scale_set_eviction_policy=(
                containerservice.ScaleSetEvictionPolicy.DELETE if args.spot else None
            ),
            spot_max_price=SPOT_MAX_PRICE_PAYG if args.spot else None,
            os_disk_type=_os_disk_type(size, args.os_disk_gb),
            os_disk_size_gb=args.os_disk_gb,
            tags=dict(args.context.tags),
            # The cluster autoscaler owns the node count.
            opts=child_options(self, ignore_changes=["count"]),
        )
        self.pool_id = self.agent_pool.id
        self.register_outputs({"poolId": self.pool_id, "taints": self.taints})
