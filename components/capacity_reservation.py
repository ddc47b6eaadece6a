"""`GpuCapacityReservation`: an On-demand Capacity Reservation Group and its reservations.

A reservation holds VM capacity in a region or zone so a pool can always scale to it; it bills
at the size's pay-as-you-go rate whether a VM uses it or not. VMs, scale sets
(`virtualMachineProfile.capacityReservation`) and AKS node pools (`capacityReservationGroupID`)
use it by naming the group. Facts (supported sizes, limits, what AKS needs) come from
gpustack/data/capacity_reservations.yaml and the catalog's `capacity_reservation` per series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, compute

from components.conventions import ComponentContext, child_options
from components.identity import assign_role
from gpustack import catalog, facts

TOKEN = "gpustack:compute:GpuCapacityReservation"


def reservation_facts() -> dict[str, object]:
    """gpustack/data/capacity_reservations.yaml."""
    return facts.load("capacity_reservations")


@dataclass(frozen=True)
class ReservedCapacity:
    """`quantity` VMs of `vm_size`, in `zone` when the group is zonal."""

    vm_size: str
    quantity: int
    zone: str | None = None


@dataclass(frozen=True)
class GpuCapacityReservationArgs:
    """The group (one region, optional zones) and the capacity reserved in it."""

    context: ComponentContext
    reservations: Sequence[ReservedCapacity]
    # Zones the group may reserve in; empty is a regional group (Azure picks the zone).
    zones: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


def check_reservations(name: str, args: GpuCapacityReservationArgs) -> None:
    """Refuse what Azure would reject: unsupported sizes, duplicates, zones outside the group."""
    if not args.reservations:
        raise ValueError(f"capacity reservation {name}: reserve at least one VM size")
    seen: set[tuple[str, str | None]] = set()
    for reserved in args.reservations:
        size = catalog.lookup(reserved.vm_size)
        if not size.capacity_reservation:
            raise ValueError(
                f"capacity reservation {name}: {size.name} ({size.series}) is not on Azure's "
                "supported list for On-demand Capacity Reservation "
                f"({reservation_facts()['source']})"
            )
        if reserved.quantity < 1:
            raise ValueError(f"capacity reservation {name}: {size.name} quantity must be >= 1")
        if args.zones and reserved.zone not in args.zones:
            raise ValueError(
                f"capacity reservation {name}: {size.name} needs a zone from the group's zones "
                f"({', '.join(args.zones)})"
            )
        if not args.zones and reserved.zone is not None:
            raise ValueError(
                f"capacity reservation {name}: {size.name} names zone {reserved.zone} but the "
                "group is regional; list the zones on the group"
            )
        key = (size.name, reserved.zone)
        if key in seen:
            raise ValueError(
                f"capacity reservation {name}: a group holds one reservation per size per zone; "
                f"{size.name} appears twice"
                + (f" in zone {reserved.zone}" if reserved.zone else "")
            )
        seen.add(key)


class GpuCapacityReservation(pulumi.ComponentResource):
    """A capacity reservation group with one reservation per size (and zone)."""

    group: compute.CapacityReservationGroup
    group_id: pulumi.Output[str]
    reservations: list[compute.CapacityReservation]
    # VM size -> reserved quantity across zones.
    reserved: dict[str, int]

    def __init__(
        self,
        name: str,
        args: GpuCapacityReservationArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TOKEN, name, None, opts)
        check_reservations(name, args)
        context = args.context
        tags = {**context.tags, **args.tags}
        self.group = compute.CapacityReservationGroup(
            f"{name}-crg",
            resource_group_name=context.resource_group_name,
            location=context.location,
            zones=list(args.zones) or None,
            tags=tags,
            opts=child_options(self),
        )
        self.group_id = self.group.id
        self.reservations = []
        self.reserved = {}
        for reserved in args.reservations:
            size = catalog.lookup(reserved.vm_size)
            suffix = size.name.lower().replace("standard_", "").replace("_", "-")
            logical = f"{name}-{suffix}" + (f"-z{reserved.zone}" if reserved.zone else "")
            self.reservations.append(
                compute.CapacityReservation(
                    logical,
                    capacity_reservation_group_name=self.group.name,
                    resource_group_name=context.resource_group_name,
                    location=context.location,
                    sku=compute.SkuArgs(name=size.name, capacity=reserved.quantity),
                    zones=[reserved.zone] if reserved.zone else None,
                    tags=tags,
                    opts=child_options(self),
                )
            )
            self.reserved[size.name] = self.reserved.get(size.name, 0) + reserved.quantity
        self.register_outputs({"groupId": self.group_id, "reserved": self.reserved})

    def grant_aks_identity(
        self, name: str, principal_id: pulumi.Input[str]
    ) -> authorization.RoleAssignment:
        """The role AKS's user-assigned cluster identity needs before a pool names the group.

        AKS documents Contributor on the group's resource group; it is scoped to the group
        itself here (see `aks.scope_used` in capacity_reservations.yaml).
        """
        role = str(reservation_facts()["aks"]["role"])  # type: ignore[index]
        return assign_role(self, f"{name}-aks-crg", principal_id=principal_id, role=role,
                           scope=self.group_id)  # fmt: skip
