"""Cost rules: cheap dev GPU pools, bounded autoscaling, a budget, and an estimate under it."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from policies.rulebook import (
    ADVISORY,
    MANDATORY,
    Report,
    Resource,
    Rule,
    Stack,
    StackReport,
    dig,
    environment_scope,
    in_scope,
    is_gpu_size,
    is_list,
    items,
    node_pools,
    number,
    one_of,
    policy_fact,
    resource_rule,
    stack_rule,
    vm_profile,
    vm_size,
)

CLUSTER = "containerservice:ManagedCluster"
AGENT_POOL = "containerservice:AgentPool"
VM = "compute:VirtualMachine"
SCALE_SET = "compute:VirtualMachineScaleSet"
AUTOSCALE = "monitor:AutoscaleSetting"
BUDGET = "consumption:Budget"
CONTACTS = ("contactEmails", "contactGroups", "contactRoles")

BUDGET_SETTING = {
    "monthlyBudgetUsd": {
        "type": "number",
        "minimum": 0,
        "default": 0,
        "description": "The environment's monthly budget in USD; 0 means none is configured.",
    }
}


def _spot_vm(resource: Resource) -> bool:
    return one_of(vm_profile(resource, "priority"), "Spot", "Low")


@resource_rule(
    Rule(
        id="gpustack-cost-dev-gpu-spot-or-zero",
        area="cost",
        title="Dev GPU pools run on spot capacity or scale to zero",
        why="Dev GPUs sit idle most of the day; spot prices are a fraction of pay-as-you-go and "
        "a pool at zero costs nothing between experiments.",
        fix="In dev, set scale_set_priority='Spot' (AKS) or priority='Spot' (VMs), or autoscale "
        "the pool from min_count=0.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/aks/spot-node-pool",
            "https://learn.microsoft.com/azure/virtual-machines/spot-vms",
        ),
        settings=environment_scope("dev"),
    ),
    VM,
    SCALE_SET,
    AGENT_POOL,
    CLUSTER,
)
def cost_dev_gpu_spot_or_zero(resource: Resource, report: Report) -> None:
    if not in_scope(resource.config):
        return
    if resource.is_a(VM, SCALE_SET):
        size = vm_size(resource)
        if not is_gpu_size(size) or _spot_vm(resource):
            return
        if resource.is_a(SCALE_SET) and number(resource.get("sku", "capacity")) == 0:
            return
        what = "VM" if resource.is_a(VM) else "scale set (capacity above 0)"
        report(f"{what} {resource.name} runs {size} at pay-as-you-go prices; use Spot"
               + ("" if resource.is_a(VM) else " or start at capacity 0"))
        return
    for pool in node_pools(resource):
        if pool.is_system or not is_gpu_size(pool.size) or pool.spot:
            continue
        if pool.autoscaled and number(pool.get("minCount")) == 0:
            continue
        report(f"{pool.label} ({pool.size}) is neither Spot nor autoscaled from 0")


@resource_rule(
    Rule(
        id="gpustack-cost-autoscale-bounded",
        area="cost",
        title="Every autoscaled pool has a maximum",
        why="An autoscaler without an upper bound turns a stuck job or a retry loop into an "
        "open-ended bill and a quota outage.",
        fix="Set max_count (AKS) or capacity.maximum (autoscale profiles), at or above the "
        "minimum.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/aks/cluster-autoscaler",
            "https://learn.microsoft.com/azure/azure-monitor/autoscale/autoscale-overview",
        ),
    ),
    AGENT_POOL,
    CLUSTER,
    AUTOSCALE,
)
def cost_autoscale_bounded(resource: Resource, report: Report) -> None:
    if resource.is_a(AUTOSCALE):
        for profile in items(resource.get("profiles")):
            name = dig(profile, "name")
            low = number(dig(profile, "capacity", "minimum"))
            high = number(dig(profile, "capacity", "maximum"))
            if high is None:
                report(f"profile {name!r} has no capacity.maximum")
            elif low is not None and high < low:
                report(f"profile {name!r} has maximum {high:g} below minimum {low:g}")
        return
    for pool in node_pools(resource):
        if not pool.autoscaled:
            continue
        low, high = number(pool.get("minCount")), number(pool.get("maxCount"))
        if high is None:
            report(f"{pool.label} enables autoscaling without maxCount")
        elif low is not None and high < low:
            report(f"{pool.label} has maxCount {high:g} below minCount {low:g}")


# Packages whose resources bill an Azure subscription (azure-native, and the classic provider).
AZURE_PACKAGES = ("azure-native:", "azure:")


@stack_rule(
    Rule(
        id="gpustack-cost-budget-exists",
        area="cost",
        title="The stack declares a budget within the environment's limit",
        why="A Consumption budget is what alerts the team before a forgotten GPU pool spends "
        "the quarter's money.",
        fix="Declare a consumption.Budget (budget.monthlyAmountUsd in Pulumi.<env>.yaml) no "
        "larger than monthlyBudgetUsd in policies/config/<env>.json.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/cost-management-billing/costs/tutorial-acm-create-budgets",),
        settings=BUDGET_SETTING,
    )
)
def cost_budget_exists(stack: Stack, report: StackReport) -> None:
    budgets = stack.of(BUDGET)
    if not budgets and not any(r.type.startswith(AZURE_PACKAGES) for r in stack.resources):
        # Kubernetes objects in a cluster another stack owns, random values: nothing here
        # bills an Azure subscription, so there is nothing for a budget to watch.
        stack.not_applicable("the stack declares no Azure resources")
    if not budgets:
        report("the stack declares no consumption.Budget", None)
        return
    limit = stack.config["monthlyBudgetUsd"]
    for budget in budgets:
        amount = number(budget.get("amount"))
        if limit and amount is not None and amount > limit:
            report(f"budget {budget.name} is {amount:,.0f} USD, above the environment's limit "
                   f"of {limit:,.0f} USD", budget.urn)


@resource_rule(
    Rule(
        id="gpustack-cost-budget-alerts",
        area="cost",
        title="Budgets notify someone",
        why="A budget without an enabled notification and a recipient records overspend but "
        "tells nobody.",
        fix="Add notifications with enabled=True, a threshold and contact_emails, "
        "contact_groups (action groups) or contact_roles.",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/cost-management-billing/costs/tutorial-acm-create-budgets",),
    ),
    BUDGET,
)
def cost_budget_alerts(budget: Resource, report: Report) -> None:
    notifications = budget.get("notifications") or {}
    for name in notifications:
        notification = notifications[name]
        # Count recipients without reading them: action group ids are unknown during preview.
        recipients = sum(
            len(value) if is_list(value) else 0
            for value in (dig(notification, key) for key in CONTACTS)
        )
        if dig(notification, "enabled") is not False and recipients:
            return
    report("no notification is enabled with a recipient")


@stack_rule(
    Rule(
        id="gpustack-cost-estimate-under-budget",
        area="cost",
        title="The stack's monthly cost estimate is under its budget",
        why="Catching an over-budget design in the pull request is cheaper than catching it on "
        "the invoice.",
        fix="Lower pool sizes or maxima, use spot, or raise the budget (Pulumi.<env>.yaml and "
        "policies/config/<env>.json) with the owner's agreement.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/cost-management-billing/costs/cost-mgt-best-practices",),
        settings={
            **BUDGET_SETTING,
            "compare": {
                "type": "string",
                "enum": ["min", "expected", "max"],
                "default": "expected",
                "description": "Which estimate must stay under the budget.",
            },
        },
    )
)
def cost_estimate_under_budget(stack: Stack, report: StackReport) -> None:
    try:
        from gpustack.cost import estimate_monthly_cost
    except ImportError as error:
        stack.not_applicable(f"gpustack.cost.estimate_monthly_cost is unavailable ({error})")
        return
    budget = stack.config["monthlyBudgetUsd"]
    if not budget:
        declared = [number(b.get("amount")) for b in stack.of(BUDGET)]
        budget = min((amount for amount in declared if amount), default=0)
    if not budget:
        stack.not_applicable("no budget: set monthlyBudgetUsd or declare a consumption.Budget")
        return
    estimate = estimate_monthly_cost(_with_group_locations(stack))
    basis = stack.config["compare"]
    monthly = getattr(estimate.monthly, basis)
    if monthly > budget:
        unpriced = len(estimate.unpriced)
        note = f" ({unpriced} resources could not be priced)" if unpriced else ""
        report(f"the {basis} estimate is {monthly:,.0f} USD per month, above the budget of "
               f"{budget:,.0f} USD{note}", None)


def _with_group_locations(stack: Stack) -> list[dict[str, Any]]:
    """Plain resource views; a resource without `location` takes its resource group's.

    The analyzer sees inputs only (no ARM ids), so an auto-named group is found through the
    `resourceGroupName` property dependency, where azure-native takes the default location from.
    """
    views = [resource.plain_view() for resource in stack.resources]
    locations = {view["urn"]: view["inputs"].get("location") for view in views}
    for view in views:
        if isinstance(view["inputs"].get("location"), str):
            continue
        for urn in view["propertyDependencies"].get("resourceGroupName", []):
            if isinstance(locations.get(urn), str):
                view["inputs"] = {**view["inputs"], "location": locations[urn]}
                break
    return views


@resource_rule(
    Rule(
        id="gpustack-cost-spot-eviction-delete",
        area="cost",
        title="Spot capacity is deleted on eviction, not deallocated",
        why="A deallocated spot VM keeps its disks billed and its cores counted against quota, "
        "so the pool cannot scale back up elsewhere.",
        fix="Set eviction_policy='Delete' (VMs, scale sets) or scale_set_eviction_policy="
        "'Delete' (AKS spot pools).",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-machines/spot-vms#eviction-policy",),
    ),
    VM,
    SCALE_SET,
    AGENT_POOL,
    CLUSTER,
)
def cost_spot_eviction_delete(resource: Resource, report: Report) -> None:
    if resource.is_a(VM, SCALE_SET):
        if _spot_vm(resource):
            policy = vm_profile(resource, "evictionPolicy")
            if not one_of(policy, "Delete"):
                shown = "not set (Azure's default is Deallocate)" if policy is None else policy
                report(f"evictionPolicy is {shown}; set eviction_policy='Delete'")
        return
    for pool in node_pools(resource):
        policy = pool.get("scaleSetEvictionPolicy")
        # AKS spot pools default to Delete.
        if pool.spot and policy is not None and not one_of(policy, "Delete"):
            report(f"{pool.label} sets scaleSetEvictionPolicy {policy}; use 'Delete'")



DISK = "compute:Disk"


def _billing_sizes(sku: str) -> list[int] | None:
    """The billed sizes for a disk SKU; None for per-GiB billing (Premium SSD v2)."""
    sizes = policy_fact("disk_billing_sizes")
    name = sku.lower()
    if name.startswith("premiumv2"):
        return None
    if name.startswith("ultrassd"):
        step = 1024
        return [*sizes["ultra_steps"], *range(step, sizes["ultra_tib_step_up_to_gib"] + 1, step)]
    if name.startswith("standard_"):  # Standard_LRS: HDD
        return list(sizes["hdd"])
    return list(sizes["ssd"])


@resource_rule(
    Rule(
        id="gpustack-cost-disk-size-aligned",
        area="cost",
        title="Managed disk sizes match a billing increment",
        why="Disks are billed at the next size increment: a 130 GiB disk costs as much as a "
        "256 GiB one.",
        fix="Set disk_size_gb to a billed size (32, 64, 128, 256, 512 GiB...) or within 5 GiB "
        "below one.",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-machines/disks-types",),
        mirrors=("Azure.VM.DiskSizeAlignment",),
    ),
    DISK,
)
def cost_disk_size_aligned(disk: Resource, report: Report) -> None:
    size = number(disk.get("diskSizeGB"))
    if size is None:
        return  # sized by the image or source disk
    billed = _billing_sizes(str(disk.get("sku", "name") or "Premium_LRS"))
    if billed is None:
        return
    tolerance = policy_fact("disk_billing_sizes")["tolerance_gib"]
    next_size = next((b for b in billed if b >= size), None)
    if next_size is not None and next_size - size > tolerance:
        report(f"diskSizeGB is {size:g}, billed as {next_size:g} GiB; use {next_size:g} or "
               f"the size below it")

POLICIES = [
    cost_dev_gpu_spot_or_zero,
    cost_autoscale_bounded,
    cost_budget_exists,
    cost_budget_alerts,
    cost_estimate_under_budget,
    cost_spot_eviction_delete,
    cost_disk_size_aligned,
]

