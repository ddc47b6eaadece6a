"""The plan document's `cost` and `capacity` sections, computed from a finished plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gpustack.capacity import QuotaUsage, plan_capacity
from gpustack.cost import CostAssumptions, estimate_monthly_cost
from gpustack.engine import Plan


def plan_estimates(
    plan: Plan,
    quota_usage: Sequence[QuotaUsage] | None = None,
    quota_region: str | None = None,
) -> dict[str, Any]:
    """`{"cost": ..., "capacity": ...}` for `plan`; estimates come from its stack config."""
    resources = [resource.analyzer_view() for resource in plan.resources]
    for view, resource in zip(resources, plan.resources, strict=True):
        view["id"] = resource.id
        view["custom"] = resource.custom
    assumptions = CostAssumptions.from_stack_config(plan.config, plan.project)
    return {
        "cost": estimate_monthly_cost(resources, assumptions=assumptions).to_json(),
        "capacity": plan_capacity(resources, quota_usage, quota_region),
    }
