"""`CpuVmPool`: a CPU VM scale set for preprocessing and data ingestion beside the GPU pools.

It is a `GpuVmPool` with a D/E-series size: the same secure defaults (no public IP, SSH keys
only, a user-assigned identity, encryption at host, managed boot diagnostics, spot and CPU
autoscale), the node bootstrap without its GPU parts (no driver extension, DCGM or GPU health
check), and the same BlobFuse2 mounts.
"""

from __future__ import annotations

from components.gpu_pool import GpuVmPool, GpuVmPoolArgs
from gpustack.catalog import VmSize

TOKEN = "gpustack:compute:CpuVmPool"

# The arguments are GpuVmPool's: vm_size takes a CPU size here.
CpuVmPoolArgs = GpuVmPoolArgs


class CpuVmPool(GpuVmPool):
    """CPU VMs on the workload subnet for data preparation, with the GPU pools' secure defaults."""

    token = TOKEN

    def _check_size(self, name: str, size: VmSize) -> None:
        if size.is_gpu:
            raise ValueError(
                f"pool {name}: {size.name} is a GPU size; CpuVmPool takes a CPU size (D/E series)"
            )
