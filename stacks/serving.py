"""Serving and supply chain of an environment: the registry, the inference entry point,
CPU pools for data preparation, and the optional high-throughput training file system."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components import (
    ApiConsumer,
    ComponentContext,
    ContainerRegistry,
    ContainerRegistryArgs,
    CpuNodePool,
    CpuNodePoolArgs,
    CpuVmPool,
    GpuAksCluster,
    GpuNetwork,
    InferenceGateway,
    InferenceGatewayArgs,
    ModelStorage,
    SampleModel,
    TrainingFileSystem,
    TrainingFileSystemArgs,
)
from components.conventions import IdentityRef, PrivateEndpointTarget
from gpustack import catalog
from stacks.config import InferenceConfig, StackConfig
from stacks.vm_pools import NODE_IDENTITY, pool_args

SAMPLE_MODEL = "sample"


@dataclass(frozen=True)
class Serving:
    """What the section declared; None where the environment leaves it out."""

    registry: ContainerRegistry | None
    gateway: InferenceGateway | None
    cpu_node_pools: dict[str, CpuNodePool]
    cpu_scale_sets: dict[str, CpuVmPool]
    training_storage: TrainingFileSystem | None


def build_serving(
    cfg: StackConfig,
    context: ComponentContext,
    net: GpuNetwork,
    storage: ModelStorage,
    identities: Mapping[str, IdentityRef],
    cluster: GpuAksCluster | None,
    private_endpoints: PrivateEndpointTarget,
) -> Serving:
    """Declare the registry, the inference gateway, CPU pools and Lustre as `cfg` asks."""
    node_identity = identities.get(NODE_IDENTITY)
    scale_sets = {
        pool.name: CpuVmPool(
            pool.name,
            pool_args(cfg, pool, context, net.subnet_ids["gpu"], storage, node_identity),
        )
        for pool in cfg.cpu_scale_sets
    }
    node_pools = _cpu_node_pools(cfg, context, net, cluster)

    registry = None
    if cfg.registry.enabled:
        # Exactly the identities that pull: AKS nodes (kubelet) and VM/scale set nodes.
        pullers: dict[str, IdentityRef] = {}
        if cluster is not None:
            pullers["aks-kubelet"] = cluster.kubelet_identity
        if (cfg.vm_pools or cfg.cpu_scale_sets) and node_identity is not None:
            pullers["vm-nodes"] = node_identity
        registry = ContainerRegistry(
            "registry",
            ContainerRegistryArgs(
                context=context,
                private_endpoints=private_endpoints,
                pull_identities=pullers,
                geo_replica_location=cfg.registry.geo_replica_location,
                untagged_retention_days=cfg.registry.untagged_retention_days,
                zone_redundant=cfg.registry.zone_redundant,
            ),
        )
        pulumi.export("registryLoginServer", registry.login_server)

    gateway = None
    inference = cfg.inference
    if inference is not None and inference.enabled and cluster is not None and registry:
        gateway = _gateway(cfg, inference, context, net, storage, cluster, registry)

    lustre = None
    if cfg.training_storage.enabled and cfg.training_storage.subnet is not None:
        spec = cfg.training_storage
        # Subnet writes on one VNet go one at a time: after the network's and the gateway's.
        after: list[pulumi.Resource] = [net, *([gateway.subnet.subnet] if gateway else [])]
        lustre = TrainingFileSystem(
            "training",
            TrainingFileSystemArgs(
                context=context,
                vnet_name=net.vnet_name,
                subnet_cidr=spec.subnet,
                sku=spec.sku,
                capacity_tib=spec.capacity_tib,
                zone=spec.zone,
                maintenance_day=spec.maintenance_day,
                maintenance_hour_utc=spec.maintenance_hour_utc,
                subnet_depends_on=after,
            ),
        )
        pulumi.export(
            "trainingStorage",
            {
                "kind": spec.kind,
                "sku": spec.sku,
                "capacityTiB": lustre.capacity_tib,
                "aggregateThroughputMBps": lustre.aggregate_mbps,
                "mgsAddress": lustre.mgs_address,
                "mountCommand": lustre.mount_command,
            },
        )

    if node_pools or scale_sets:
        pulumi.export(
            "cpuPools",
            {
                "aks": {name: _pool_summary(p.size.name) for name, p in node_pools.items()},
                "scaleSets": {name: _pool_summary(p.size.name) for name, p in scale_sets.items()},
            },
        )
    return Serving(registry, gateway, node_pools, scale_sets, lustre)


def _cpu_node_pools(
    cfg: StackConfig, context: ComponentContext, net: GpuNetwork, cluster: GpuAksCluster | None
) -> dict[str, CpuNodePool]:
    if cluster is None or cfg.aks is None:
        return {}
    return {
        pool.name: CpuNodePool(
            f"aks-{pool.name}",
            CpuNodePoolArgs(
                context=context,
                cluster_name=cluster.cluster_name,
                pool_name=pool.name,
                vm_size=pool.vm_size,
                # The workload subnet, beside the GPU pools it prepares data for.
                subnet_id=net.subnet_ids["gpu"],
                min_count=pool.min_count,
                max_count=pool.max_count,
                purpose=pool.purpose,
                spot=pool.spot,
                zones=tuple(pool.zones) if pool.zones else None,
                labels=dict(pool.labels),
                os_disk_gb=pool.os_disk_gb,
            ),
        )
        for pool in cfg.aks.cpu_pools
    }


def default_ingress_ip(system_subnet: str) -> str:
    """The system subnet's last usable address: Azure hands node addresses out from the start."""
    return str(ipaddress.ip_network(system_subnet).broadcast_address - 1)


def _gateway(
    cfg: StackConfig,
    inference: InferenceConfig,
    context: ComponentContext,
    net: GpuNetwork,
    storage: ModelStorage,
    cluster: GpuAksCluster,
    registry: ContainerRegistry,
) -> InferenceGateway:
    assert cfg.aks is not None and inference.apim_subnet is not None
    pools = cfg.aks.gpu_pools
    wanted = inference.sample_gpu_pool
    # The configured pool, else the first inference pool, else the first GPU pool.
    candidates = (
        [p for p in pools if p.name == wanted]
        if wanted
        else [*(p for p in pools if p.purpose == "inference"), *pools]
    )
    pool = candidates[0]
    gateway = InferenceGateway(
        "inference",
        InferenceGatewayArgs(
            context=context,
            provider=cluster.kubernetes_provider,
            vnet_name=net.vnet_name,
            apim_subnet_cidr=inference.apim_subnet,
            ingress_ip=inference.ingress_ip or default_ingress_ip(cfg.network.system_subnet),
            ingress_subnet_name=net.subnets["system"].name,
            publisher_email=inference.publisher_email or cfg.monitoring.alert_emails[0],
            publisher_name=inference.publisher_name,
            sample=SampleModel(
                name=SAMPLE_MODEL,
                image=registry.image(inference.sample_image),
                gpu_pool=pool.name,
                gpu_pool_spot=pool.spot,
                port=inference.sample_port,
                min_replicas=inference.sample_min_replicas,
                max_replicas=inference.sample_max_replicas,
                target_cpu_percent=inference.sample_target_cpu_percent,
            ),
            models=storage.mount_target(["models"]),
            models_container_id=storage.container_ids["models"],
            storage_resource_group_name=storage.resource_group_name,
            kubelet_identity=cluster.kubelet_identity,
            apim_sku=inference.apim_sku,
            apim_units=inference.apim_units,
            apim_virtual_network=inference.apim_virtual_network,
            consumers=[
                ApiConsumer(c.name, c.calls, c.renewal_period_seconds) for c in inference.consumers
            ],
            nat_gateway_id=net.nat_gateway_id,
            hierarchical_namespace=cfg.storage.hierarchical_namespace,
            subnet_depends_on=[net],
        ),
        # The models volume is an image pull and a mount away: the registry and data first.
        opts=pulumi.ResourceOptions(depends_on=[registry, storage]),
    )
    pulumi.export(
        "inferenceGateway",
        {
            "gatewayUrl": gateway.gateway_url,
            "gatewayPrivateIps": gateway.gateway_private_ips,
            "ingressIp": gateway.ingress_ip,
            "apiPath": "models",
            "consumers": [c.name for c in inference.consumers],
        },
    )
    return gateway


def _pool_summary(vm_size: str) -> dict[str, Any]:
    size = catalog.lookup(vm_size)
    return {"vmSize": size.name, "vcpus": size.vcpus, "memoryGib": size.memory_gib}
