"""Pulumi component resources for GPU stacks on Azure, one component per module."""

from components.conventions import ComponentContext, child_options, stateful_options
from components.network import GpuNetwork, GpuNetworkArgs, SubnetSpec

__all__ = [
    "ComponentContext",
    "GpuNetwork",
    "GpuNetworkArgs",
    "SubnetSpec",
    "child_options",
    "stateful_options",
]
