"""Spend guardrails: a budget per stack, thresholds from config, alerts to the action group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.budget import SpendBudget, SpendBudgetArgs
from components.conventions import ComponentContext
from gpustack import facts
from gpustack.engine import Plan, PlannedResource, capture
from stacks.config import PROJECT, ConfigError, StackConfig, parse_config

ROOT = Path(__file__).resolve().parent.parent
BUDGET = "azure-native:consumption:Budget"
ACTION_GROUP_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag"
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"


def stack_config(plan: Plan) -> StackConfig:
    """The validated config of the plan's stack file."""
    raw = yaml.safe_load((ROOT / f"Pulumi.{plan.stack}.yaml").read_text())["config"]
    prefix = f"{PROJECT}:"
    values = {k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}
    return parse_config(values, f"Pulumi.{plan.stack}.yaml")


def _budget(**overrides: Any) -> PlannedResource:
    args: dict[str, Any] = {
        "context": ComponentContext("rg-gpu-test-core", "eastus"),
        "monthly_amount": 2500.0,
        "action_group_id": ACTION_GROUP_ID,
        "resource_group_names": ["rg-gpu-test-core"],
        "start_date": "2026-12-01",
        "subscription_id": SUBSCRIPTION,
    } | overrides
    resources = capture(lambda: SpendBudget("budget", SpendBudgetArgs(**args)))
    (budget,) = [r for r in resources if r.type == BUDGET]
    return budget


def _problems(budget: dict[str, Any]) -> list[str]:
    raw = {"environment": "dev", "location": "eastus", "budget": budget}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "Pulumi.test.yaml")
    return caught.value.problems


# --- the shared environment plans ------------------------------------------------------------


def test_budget_notifications_reach_the_action_group(env_plan: Plan) -> None:
    (action_group,) = env_plan.by_type("azure-native:monitor:ActionGroup")
    (budget,) = env_plan.by_type(BUDGET)
    notifications = budget.inputs["notifications"]
    assert notifications
    for notification in notifications.values():
        assert notification["contactGroups"] == [action_group.id]
        assert notification["enabled"] is True


def test_budget_amount_and_thresholds_come_from_config(env_plan: Plan) -> None:
    cfg = stack_config(env_plan)
    (budget,) = env_plan.by_type(BUDGET)
    assert budget.inputs["amount"] == cfg.budget.monthly_amount_usd
    assert budget.inputs["timeGrain"] == "Monthly"
    by_type: dict[str, set[float]] = {}
    for notification in budget.inputs["notifications"].values():
        by_type.setdefault(notification["thresholdType"], set()).add(notification["threshold"])
    assert by_type["Actual"] == set(cfg.budget.actual_alert_percents)
    assert by_type.get("Forecasted") == {cfg.budget.forecast_alert_percent}
    assert budget.inputs["timePeriod"]["startDate"].startswith(cfg.budget.start_date)


def test_budget_counts_the_stack_groups_including_the_aks_node_group(env_plan: Plan) -> None:
    cfg = stack_config(env_plan)
    (budget,) = env_plan.by_type(BUDGET)
    assert budget.inputs["scope"].count("/") == 2  # /subscriptions/<id>: the subscription
    dimension = budget.inputs["filter"]["dimensions"]
    assert dimension["name"] == facts.load("azure_monitor")["budget"]["resource_group_dimension"]
    core = f"rg-{cfg.name_prefix}-{cfg.environment}-core"
    assert core in dimension["values"]
    for cluster in env_plan.by_type("azure-native:containerservice:ManagedCluster"):
        assert cluster.outputs["nodeResourceGroup"] in dimension["values"]


def test_thresholds_differ_per_environment(dev_plan: Plan, prod_plan: Plan) -> None:
    def thresholds(plan: Plan) -> list[float]:
        (budget,) = plan.by_type(BUDGET)
        return sorted(n["threshold"] for n in budget.inputs["notifications"].values())

    assert thresholds(dev_plan) != thresholds(prod_plan)


# --- the component -----------------------------------------------------------------------------


def test_budget_scope_is_the_given_subscription() -> None:
    assert _budget().inputs["scope"] == f"/subscriptions/{SUBSCRIPTION}"


def test_forecast_alert_can_be_turned_off() -> None:
    budget = _budget(actual_percents=(90,), forecast_percent=None)
    kinds = [n["thresholdType"] for n in budget.inputs["notifications"].values()]
    assert kinds == ["Actual"]


def test_a_budget_without_groups_to_filter_on_is_refused() -> None:
    with pytest.raises(Exception, match="resource group names"):
        _budget(resource_group_names=[])


# --- config ------------------------------------------------------------------------------------


def test_too_many_notifications_is_a_config_error() -> None:
    limit = facts.load("azure_monitor")["budget"]["max_notifications"]
    percents = list(range(10, 10 * (limit + 1), 10))
    (problem,) = _problems({"monthlyAmountUsd": 100, "actualAlertPercents": percents})
    assert f"at most {limit}" in problem
    assert problem.startswith(f"{PROJECT}:budget")


def test_repeated_thresholds_are_a_config_error() -> None:
    (problem,) = _problems({"monthlyAmountUsd": 100, "actualAlertPercents": [80, 80]})
    assert "repeated" in problem


def test_start_date_must_be_a_real_first_of_month() -> None:
    (problem,) = _problems({"monthlyAmountUsd": 100, "startDate": "2026-13-01"})
    assert "not a calendar date" in problem
    (problem,) = _problems({"monthlyAmountUsd": 100, "startDate": "2016-01-01"})
    assert "2017-06-01" in problem
