"""Pulumi component resources for GPU stacks on Azure, one component per module."""

from components.aks import (
    GpuAksCluster,
    GpuAksClusterArgs,
    GpuNodePool,
    GpuNodePoolArgs,
    MaintenanceWindow,
    SystemPoolSpec,
)
from components.alerts import AlertThresholds, GpuAlerts, GpuAlertsArgs, WatchedPool
from components.budget import SpendBudget, SpendBudgetArgs
from components.conventions import ComponentContext, child_options, stateful_options
from components.cpu_node_pool import CpuNodePool, CpuNodePoolArgs
from components.cpu_pool import CpuVmPool, CpuVmPoolArgs
from components.diagnostics import send_diagnostics
from components.gpu_pool import (
    AutoscaleRules,
    GpuVmPool,
    GpuVmPoolArgs,
    PoolCapacity,
    PoolImage,
    ScaleCapacity,
    pool_capacity,
)
from components.gpu_software import NvidiaGpuSoftware, NvidiaGpuSoftwareArgs
from components.identity import (
    AccessGrant,
    WorkloadIdentities,
    WorkloadIdentitiesArgs,
    assign_role,
    default_grants,
)
from components.inference import (
    ApiConsumer,
    InferenceGateway,
    InferenceGatewayArgs,
    SampleModel,
    rate_limit_policy,
)
from components.monitoring import (
    GpuMonitoring,
    GpuMonitoringArgs,
    VmPoolMonitoring,
    VmPoolMonitoringArgs,
    VmPoolTarget,
    vm_prometheus_agent_config,
)
from components.network import (
    BASTION_SUBNET_NAME,
    BastionSpec,
    GpuNetwork,
    GpuNetworkArgs,
    NatGatewaySpec,
    SubnetSpec,
)
from components.private_link import PrivateLink, PrivateLinkArgs, with_zones
from components.registry import ContainerRegistry, ContainerRegistryArgs
from components.storage import (
    BlobCache,
    BlobCsiVolume,
    ModelStorage,
    ModelStorageArgs,
    blob_csi_volume,
    csi_mount_options,
    render_blobfuse2_config,
)
from components.teams import GpuTeam, GpuTeamArgs
from components.training_storage import HsmTarget, TrainingFileSystem, TrainingFileSystemArgs
from components.vault import KeyVaultRef, SecretsVault, SecretsVaultArgs

__all__ = [
    "BASTION_SUBNET_NAME",
    "AccessGrant",
    "AlertThresholds",
    "ApiConsumer",
    "AutoscaleRules",
    "BastionSpec",
    "BlobCache",
    "BlobCsiVolume",
    "ComponentContext",
    "ContainerRegistry",
    "ContainerRegistryArgs",
    "CpuNodePool",
    "CpuNodePoolArgs",
    "CpuVmPool",
    "CpuVmPoolArgs",
    "GpuAksCluster",
    "GpuAksClusterArgs",
    "GpuAlerts",
    "GpuAlertsArgs",
    "GpuMonitoring",
    "GpuMonitoringArgs",
    "GpuNetwork",
    "GpuNetworkArgs",
    "GpuNodePool",
    "GpuNodePoolArgs",
    "GpuTeam",
    "GpuTeamArgs",
    "GpuVmPool",
    "GpuVmPoolArgs",
    "HsmTarget",
    "InferenceGateway",
    "InferenceGatewayArgs",
    "KeyVaultRef",
    "MaintenanceWindow",
    "ModelStorage",
    "ModelStorageArgs",
    "NatGatewaySpec",
    "NvidiaGpuSoftware",
    "NvidiaGpuSoftwareArgs",
    "PoolCapacity",
    "PoolImage",
    "PrivateLink",
    "PrivateLinkArgs",
    "SampleModel",
    "ScaleCapacity",
    "SecretsVault",
    "SecretsVaultArgs",
    "SpendBudget",
    "SpendBudgetArgs",
    "SubnetSpec",
    "SystemPoolSpec",
    "TrainingFileSystem",
    "TrainingFileSystemArgs",
    "VmPoolMonitoring",
    "VmPoolMonitoringArgs",
    "VmPoolTarget",
    "WatchedPool",
    "WorkloadIdentities",
    "WorkloadIdentitiesArgs",
    "assign_role",
    "blob_csi_volume",
    "child_options",
    "csi_mount_options",
    "default_grants",
    "pool_capacity",
    "rate_limit_policy",
    "render_blobfuse2_config",
    "send_diagnostics",
    "stateful_options",
    "vm_prometheus_agent_config",
    "with_zones",
]
