"""Wire the components of one environment together, in the order Azure builds them."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import resources

from components import ComponentContext, GpuNetwork, GpuNetworkArgs, SubnetSpec
from stacks.config import StackConfig


def resource_group_name(cfg: StackConfig, purpose: str) -> str:
    """Deterministic, readable group names: rg-<prefix>-<env>-<purpose>."""
    return f"rg-{cfg.name_prefix}-{cfg.environment}-{purpose}"


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

    # --- monitoring: workspaces first, every other component sends diagnostics there (issue 6)

    # --- network (foundation; NAT gateway, peering, Bastion and subnet sizing: issue 5)
    subnets = {
        "system": SubnetSpec(cfg.network.system_subnet),
        "gpu": SubnetSpec(cfg.network.gpu_subnet),
        "endpoints": SubnetSpec(cfg.network.private_endpoint_subnet, private_endpoints=True),
    }
    subnets.update({name: SubnetSpec(cidr) for name, cidr in cfg.network.extra_subnets.items()})
    net = GpuNetwork(
        "network",
        GpuNetworkArgs(context=context, address_space=cfg.network.address_space, subnets=subnets),
    )

    # --- identities, Key Vault, model storage and private endpoints (issue 5)

    # --- GPU VM and scale set pools (issue 3)

    # --- AKS, GPU node pools, NVIDIA software, teams (issue 4)

    # --- alerts, action group and budget (issue 6)

    pulumi.export("environment", cfg.environment)
    pulumi.export("resourceGroupName", group.name)
    pulumi.export("vnetId", net.vnet_id)
    pulumi.export("subnetIds", net.subnet_ids)
