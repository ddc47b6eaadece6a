"""Cost rules: cheap dev GPU pools, bounded autoscaling, budgets and the estimate under them."""

from __future__ import annotations

import pytest
from pulumi_policy.policy import _NotApplicableError

from policies import cost
from tests.policy_runs import Declared, check_resource, check_stack

CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
VM = "azure-native:compute:VirtualMachine"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
AUTOSCALE = "azure-native:monitor:AutoscaleSetting"
BUDGET = "azure-native:consumption:Budget"
GROUP = "azure-native:resources:ResourceGroup"

T4 = "Standard_NC4as_T4_v3"
DEV = {"environment": "dev"}


def test_dev_gpu_pools_are_spot_or_scale_to_zero() -> None:
    spot = {"vmSize": T4, "scaleSetPriority": "Spot", "count": 1}
    from_zero = {"vmSize": T4, "enableAutoScaling": True, "minCount": 0, "maxCount": 2}
    always_on = {"vmSize": T4, "enableAutoScaling": True, "minCount": 1, "maxCount": 2}
    for good in (spot, from_zero):
        assert check_resource(cost.cost_dev_gpu_spot_or_zero, AGENT_POOL, good, config=DEV) == []
    (message,) = check_resource(cost.cost_dev_gpu_spot_or_zero, AGENT_POOL, always_on,
                                config=DEV)
    assert "neither Spot nor autoscaled from 0" in message
    # Outside dev the same pool is fine; CPU pools never count.
    assert check_resource(cost.cost_dev_gpu_spot_or_zero, AGENT_POOL, always_on) == []
    cpu = {**always_on, "vmSize": "Standard_D4s_v5"}
    assert check_resource(cost.cost_dev_gpu_spot_or_zero, AGENT_POOL, cpu, config=DEV) == []


def test_dev_gpu_vms_and_scale_sets_are_spot() -> None:
    regular_vm = {"hardwareProfile": {"vmSize": T4}, "priority": "Regular"}
    (message,) = check_resource(cost.cost_dev_gpu_spot_or_zero, VM, regular_vm, config=DEV)
    assert "pay-as-you-go" in message
    spot_vm = {**regular_vm, "priority": "Spot"}
    assert check_resource(cost.cost_dev_gpu_spot_or_zero, VM, spot_vm, config=DEV) == []
    parked = {"sku": {"name": T4, "capacity": 0}}
    assert check_resource(cost.cost_dev_gpu_spot_or_zero, SCALE_SET, parked, config=DEV) == []


def test_autoscaled_pools_and_autoscale_profiles_have_a_maximum() -> None:
    bounded = {"vmSize": T4, "enableAutoScaling": True, "minCount": 0, "maxCount": 4}
    assert check_resource(cost.cost_autoscale_bounded, AGENT_POOL, bounded) == []
    unbounded = {"vmSize": T4, "enableAutoScaling": True, "minCount": 0}
    (message,) = check_resource(cost.cost_autoscale_bounded, AGENT_POOL, unbounded)
    assert "without maxCount" in message
    inverted = {"profiles": [{"name": "p", "capacity": {"minimum": "4", "maximum": "2",
                                                        "default": "2"}}]}
    (message,) = check_resource(cost.cost_autoscale_bounded, AUTOSCALE, inverted)
    assert "maximum 2 below minimum 4" in message


def test_a_budget_exists_within_the_environment_limit() -> None:
    budget = Declared(BUDGET, "monthly", {"amount": 1500, "timeGrain": "Monthly"})
    assert check_stack(cost.cost_budget_exists, [budget], config={"monthlyBudgetUsd": 1500}) == []
    group = Declared("azure-native:resources:ResourceGroup", "rg", {"location": "eastus"})
    ((message, urn),) = check_stack(cost.cost_budget_exists, [group])
    assert "declares no consumption.Budget" in message and urn is None
    ((message, urn),) = check_stack(cost.cost_budget_exists, [budget],
                                    config={"monthlyBudgetUsd": 1000})
    assert "above the environment's limit of 1,000 USD" in message and urn == budget.urn


def test_a_stack_with_no_azure_resources_needs_no_budget() -> None:
    # Before: a program that only deploys into a cluster (Kubernetes objects) failed the plan
    # with "the stack declares no consumption.Budget" (exit 1), though it bills nothing.
    deployment = Declared("kubernetes:apps/v1:Deployment", "web", {"spec": {"replicas": 2}})
    with pytest.raises(_NotApplicableError):
        check_stack(cost.cost_budget_exists, [deployment])
    with pytest.raises(_NotApplicableError):
        check_stack(cost.cost_budget_exists, [])


def test_budgets_notify_someone() -> None:
    notified = {"amount": 100, "notifications": {
        "actual80": {"enabled": True, "threshold": 80, "operator": "GreaterThan",
                     "contactEmails": ["ml-platform@example.com"]}}}
    assert check_resource(cost.cost_budget_alerts, BUDGET, notified) == []
    silent = {"amount": 100, "notifications": {
        "actual80": {"enabled": True, "threshold": 80, "operator": "GreaterThan"}}}
    (message,) = check_resource(cost.cost_budget_alerts, BUDGET, silent)
    assert "no notification is enabled with a recipient" in message


def _priced_stack() -> list[Declared]:
    group = Declared(GROUP, "rg", {"location": "eastus"})
    scale_set = Declared(SCALE_SET, "infer", {
        "resourceGroupName": "rg-abc", "sku": {"name": T4, "capacity": 2}},
        deps={"resourceGroupName": ["rg"]})
    return [group, scale_set]


def test_monthly_estimate_stays_under_the_budget() -> None:
    resources = _priced_stack()
    # Two T4 VMs in eastus cost a few hundred USD a month at pay-as-you-go prices.
    assert check_stack(cost.cost_estimate_under_budget, resources,
                       config={"monthlyBudgetUsd": 5000}) == []
    ((message, urn),) = check_stack(cost.cost_estimate_under_budget, resources,
                                    config={"monthlyBudgetUsd": 100})
    assert "expected estimate is" in message and "above the budget of 100 USD" in message
    assert urn is None


def test_estimate_rule_is_not_applicable_without_a_budget() -> None:
    with pytest.raises(_NotApplicableError) as raised:
        check_stack(cost.cost_estimate_under_budget, _priced_stack())
    assert "no budget" in (raised.value.reason or "")


def test_spot_capacity_is_deleted_on_eviction() -> None:
    deleting = {"hardwareProfile": {"vmSize": T4}, "priority": "Spot", "evictionPolicy": "Delete"}
    assert check_resource(cost.cost_spot_eviction_delete, VM, deleting) == []
    (message,) = check_resource(cost.cost_spot_eviction_delete, VM,
                                {"hardwareProfile": {"vmSize": T4}, "priority": "Spot"})
    assert "default is Deallocate" in message
    pool = {"vmSize": T4, "scaleSetPriority": "Spot", "scaleSetEvictionPolicy": "Deallocate"}
    assert check_resource(cost.cost_spot_eviction_delete, AGENT_POOL, pool)


def test_every_cost_rule_is_tested() -> None:
    assert {p.name for p in cost.POLICIES} == {
        "gpustack-cost-dev-gpu-spot-or-zero", "gpustack-cost-autoscale-bounded",
        "gpustack-cost-budget-exists", "gpustack-cost-budget-alerts",
        "gpustack-cost-estimate-under-budget", "gpustack-cost-spot-eviction-delete",
        "gpustack-cost-disk-size-aligned",
    }


def test_disk_sizes_match_a_billing_increment() -> None:
    disk = "azure-native:compute:Disk"
    policy = cost.cost_disk_size_aligned
    for props in ({"diskSizeGB": 256, "sku": {"name": "Premium_LRS"}},
                  {"diskSizeGB": 1020, "sku": {"name": "StandardSSD_ZRS"}},
                  {"diskSizeGB": 130, "sku": {"name": "PremiumV2_LRS"}},
                  {"creationData": {"createOption": "FromImage"}}):
        assert check_resource(policy, disk, props) == [], props
    (message,) = check_resource(policy, disk, {"diskSizeGB": 130, "sku": {"name": "Premium_LRS"}})
    assert "diskSizeGB is 130, billed as 256 GiB" in message
    (message,) = check_resource(policy, disk, {"diskSizeGB": 16, "sku": {"name": "Standard_LRS"}})
    assert "billed as 32 GiB" in message
    (message,) = check_resource(policy, disk, {"diskSizeGB": 1500, "sku": {"name": "UltraSSD_LRS"}})
    assert "billed as 2048 GiB" in message
