"""`CpuNodePool`: an autoscaled AKS CPU pool for preprocessing and data ingestion.

Unlike the GPU pools it carries no `sku=gpu:NoSchedule` taint: CPU work lands here by its
node selector (the `purpose` label), and GPU pods never do, because GPU pools are tainted and
these nodes have no `nvidia.com/gpu`. Spot pools get AKS's own spot taint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components.aks import PURPOSE_LABEL, SPOT_LABEL, SPOT_TAINT, UserPoolSpec, user_agent_pool
from components.conventions import ComponentContext
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
                autoscale=True,
                spot=args.spot,
                zones=args.zones,
                taints=self.taints,
                labels=self.labels,
                os_disk_gb=args.os_disk_gb,
            ),
        )
        self.pool_id = self.agent_pool.id
        self.register_outputs({"poolId": self.pool_id, "taints": self.taints})
