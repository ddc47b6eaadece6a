"""Pulumi component resources for GPU stacks on Azure, one component per module."""

from components.conventions import ComponentContext, child_options, stateful_options
from components.diagnostics import send_diagnostics
from components.network import GpuNetwork, GpuNetworkArgs, SubnetSpec

__all__ = [
    "ComponentContext",
    "GpuNetwork",
    "GpuNetworkArgs",
    "SubnetSpec",
    "child_options",
    "send_diagnostics",
    "stateful_options",
]
