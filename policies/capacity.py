"""Capacity rules: On-demand Capacity Reservations only on sizes Azure can reserve, and
production training pools whose minimum is held by a reservation.

Which series support reservations is the catalog's `capacity_reservation` fact, copied from
https://learn.microsoft.com/azure/virtual-machines/capacity-reservation-overview.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from policies.rulebook import (
    ADVISORY,
    ENVIRONMENT_SETTING,
    MANDATORY,
    Report,
    Resource,
    Rule,
    Stack,
    StackReport,
    dig,
    kind_of,
    resource_rule,
    size_facts,
    stack_rule,
)

RESERVATION = "compute:CapacityReservation"
VM = "compute:VirtualMachine"
SCALE_SET = "compute:VirtualMachineScaleSet"
AGENT_POOL = "containerservice:AgentPool"
OVERVIEW = "https://learn.microsoft.com/azure/virtual-machines/capacity-reservation-overview"


@resource_rule(
    Rule(
        id="gpustack-capacity-reservation-supported-size",
        area="gpu",
        title="Capacity reservations name a VM size Azure can reserve",
        why="On-demand Capacity Reservation supports only listed series (no ND-series, no "
        "NCads H100 v5); a reservation on another size fails at deployment, and pools counting "
        "on it get no capacity.",
        fix="Reserve a supported size (NCasT4_v3, NC A100 v4, NVadsA10 v5, NVads V710 v5, D/E/F) "
        "or drop the reservation and secure ND capacity another way (quota, support request).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(OVERVIEW,),
    ),
    RESERVATION,
)
def capacity_reservation_supported_size(reservation: Resource, report: Report) -> None:
    size_name = reservation.get("sku", "name")
    if not isinstance(size_name, str):
        return
    size = size_facts(size_name)
    if size is None:
        report(f"sku.name {size_name!r} is not in the catalog; its reservation support is unknown")
        return
    if not size.capacity_reservation:
        report(f"sku.name {size.name} ({size.series}) does not support On-demand Capacity "
               "Reservation")  # fmt: skip


def _reservation_group_id(resource: Resource) -> Any:
    if resource.is_a(AGENT_POOL):
        return resource.get("capacityReservationGroupID")
    if resource.is_a(SCALE_SET):
        return resource.get(
            "virtualMachineProfile", "capacityReservation", "capacityReservationGroup", "id"
        )
    return resource.get("capacityReservation", "capacityReservationGroup", "id")


def _purpose(resource: Resource) -> Any:
    if resource.is_a(AGENT_POOL):
        return dig(resource.get("nodeLabels"), "purpose")
    return dig(resource.get("tags"), "purpose")


@stack_rule(
    Rule(
        id="gpustack-capacity-prod-training-minimum-reserved",
        area="gpu",
        title="Production training pools hold their minimum in a capacity reservation",
        why="A training job that needs its minimum nodes back after a scale-in or a node repair "
        "may find no GPU capacity in the region; a reservation keeps that minimum available.",
        fix="Add a capacityReservations entry reserving the pool's minCount of its size and list "
        "the pool under it, or set minCount to 0 when the pool may wait for capacity.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=(
            OVERVIEW,
            "https://learn.microsoft.com/azure/aks/use-capacity-reservation-groups",
        ),
        settings=ENVIRONMENT_SETTING,
    )
)
def capacity_prod_training_minimum_reserved(stack: Stack, report: StackReport) -> None:
    if stack.config.get("environment") != "prod":
        return
    reserved: dict[str, int] = {}
    for reservation in stack.of(RESERVATION):
        size = reservation.get("sku", "name")
        capacity = reservation.get("sku", "capacity")
        if isinstance(size, str) and isinstance(capacity, int | float):
            reserved[size.lower()] = reserved.get(size.lower(), 0) + int(capacity)
    # Node minimums as the planner reads them (autoscale settings, AKS autoscaler bounds).
    minimums = {pool.urn: (pool.min, pool.vm_size) for pool in _compute_pools(stack)}
    for pool in stack.of(VM, SCALE_SET, AGENT_POOL):
        minimum, size_name = minimums.get(pool.urn, (None, None))
        if _purpose(pool) != "training" or not minimum:
            continue
        kind = kind_of(pool.type).split(":")[-1]
        if _reservation_group_id(pool) is None:
            size = size_facts(size_name) if isinstance(size_name, str) else None
            hint = (
                "; its size cannot be reserved, so set minCount to 0 or move to a reservable size"
                if size is not None and not size.capacity_reservation
                else ""
            )
            report(f"{kind} {pool.name} ({size_name}) is a training pool with minimum "
                   f"{minimum} and uses no capacity reservation group{hint}", pool.urn)  # fmt: skip
        elif isinstance(size_name, str) and reserved.get(size_name.lower(), 0) < minimum:
            report(f"{pool.name} keeps {minimum} {size_name} nodes but the stack reserves "
                   f"{reserved.get(size_name.lower(), 0)}", pool.urn)  # fmt: skip


def _compute_pools(stack: Stack) -> list[Any]:
    from policies.gpu import _compute_pools as pools

    return pools(stack)


POLICIES = [capacity_reservation_supported_size, capacity_prod_training_minimum_reserved]
