"""The gpustack-azure policy pack: guardrails for any Pulumi program's azure-native resources.

Rules live in modules by area; `rulebook` holds their shared metadata and property access.
"""

from __future__ import annotations

from pulumi_policy import Policy

from policies import (
    capacity,
    cost,
    gpu,
    machine_learning,
    network,
    platform_services,
    reliability,
    security,
    tagging,
)
from policies.rulebook import PACK_NAME, RULES, Rule

__all__ = ["PACK_NAME", "RULES", "Rule", "all_policies"]


def all_policies() -> list[Policy]:
    """Every policy of the pack, by area."""
    return [
        *security.POLICIES,
        *network.POLICIES,
        *reliability.POLICIES,
        *gpu.POLICIES,
        *cost.POLICIES,
        *tagging.POLICIES,
        *platform_services.POLICIES,
        *machine_learning.POLICIES,
        *capacity.POLICIES,
    ]
