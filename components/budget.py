"""`SpendBudget`: a monthly Consumption budget for one stack, alerting the stack's action group.

Scope: the subscription, filtered to the stack's resource groups. A budget on the core resource
group alone would miss the largest bill, the GPU VMs AKS puts in its node resource group
(MC_...); the filter also keeps stacks that share a subscription from counting each other.
Action groups as budget contacts are accepted at subscription and resource-group scope only.
Creating a subscription-scope budget needs Cost Management Contributor on the subscription.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import authorization, consumption

from components.conventions import ComponentContext, child_options
from gpustack import facts


def _budget_facts() -> dict[str, Any]:
    data: dict[str, Any] = facts.load("azure_monitor")["budget"]
    return data


@dataclass(frozen=True)
class SpendBudgetArgs:
    """Amount, thresholds and who hears about them."""

    context: ComponentContext
    monthly_amount: float
    action_group_id: pulumi.Input[str]
    resource_group_names: Sequence[pulumi.Input[str]]
    start_date: str
    actual_percents: Sequence[float] = (50, 80, 100)
    forecast_percent: float | None = 100
    contact_emails: Sequence[str] = field(default_factory=tuple)
    # None: the subscription the stack deploys to (from the provider's client config).
    subscription_id: pulumi.Input[str] | None = None


class SpendBudget(pulumi.ComponentResource):
    """A budget that notifies the action group at each actual and forecast threshold."""

    budget_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: SpendBudgetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:budget:SpendBudget", name, None, opts)
        limits = _budget_facts()
        if not args.resource_group_names:
            raise ValueError("a stack budget needs the stack's resource group names to filter on")
        subscription = args.subscription_id or (
            authorization.get_client_config_output().subscription_id
        )
        notifications = {
            f"Actual_GreaterThanOrEqualTo_{_percent_key(percent)}_Percent": budget_notification(
                percent, consumption.ThresholdType.ACTUAL, args, limits
            )
            for percent in args.actual_percents
        }
        if args.forecast_percent is not None:
            key = f"Forecasted_GreaterThanOrEqualTo_{_percent_key(args.forecast_percent)}_Percent"
            notifications[key] = budget_notification(
                args.forecast_percent, consumption.ThresholdType.FORECASTED, args, limits
            )
        if len(notifications) > limits["max_notifications"]:
            raise ValueError(
                f"{len(notifications)} budget notifications; at most {limits['max_notifications']}"
            )
        self.budget = consumption.Budget(
            f"{name}-monthly",
            scope=pulumi.Output.concat("/subscriptions/", subscription),
            amount=args.monthly_amount,
            category=consumption.CategoryType.COST,
            time_grain=consumption.TimeGrainType.MONTHLY,
            time_period=consumption.BudgetTimePeriodArgs(start_date=f"{args.start_date}T00:00:00Z"),
            filter=consumption.BudgetFilterArgs(
                dimensions=consumption.BudgetComparisonExpressionArgs(
                    name=limits["resource_group_dimension"],
                    operator=consumption.BudgetOperatorType.IN_,
                    values=list(args.resource_group_names),
                )
            ),
            notifications=notifications,
            opts=child_options(self),
        )
        self.budget_id = self.budget.id
        self.register_outputs({"budgetId": self.budget_id})


def _percent_key(percent: float) -> str:
    """A threshold as it appears in a notification's name: 80, or 12_5 for 12.5 (no '.')."""
    return format(percent, "g").replace(".", "_")


def budget_notification(
    percent: float,
    kind: consumption.ThresholdType,
    args: SpendBudgetArgs,
    limits: dict[str, Any],
) -> consumption.NotificationArgs:
    """One threshold: the action group is the contact; emails are a fallback if it is deleted."""
    if not limits["threshold_min"] < percent <= limits["threshold_max"]:
        raise ValueError(
            f"budget threshold {percent}% is outside {limits['threshold_min']}.."
            f"{limits['threshold_max']}%"
        )
    return consumption.NotificationArgs(
        enabled=True,
        operator=consumption.OperatorType.GREATER_THAN_OR_EQUAL_TO,
        threshold=percent,
        threshold_type=kind,
        contact_groups=[args.action_group_id],
        contact_emails=list(args.contact_emails),
        locale=consumption.CultureCode.EN_US,
    )
