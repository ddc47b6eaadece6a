"""Stack config for On-demand Capacity Reservation Groups (`capacityReservations`).

Kept apart from stacks/config.py so reservations evolve without touching the big model file;
config.py declares the field and calls `check_capacity_reservations` from a validator, so every
problem is reported like the rest: key path and stack file.

    azure-gpu-stacks:capacityReservations:
      - name: t4serve
        zones: ["1"]
        reservations:
          - vmSize: Standard_NC4as_T4_v3
            quantity: 1
            zone: "1"
        aksGpuPools: [t4infer]
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gpustack import catalog
from stacks.config_yaml import refuse_boolean_numbers


def _zone_text(value: Any) -> Any:
    """An availability zone "1", "2" or "3"; the numbers 1, 2 and 3 are read as that text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Zone = Annotated[Literal["1", "2", "3"], BeforeValidator(_zone_text)]
_Name = Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")]


class _ReservationModel(BaseModel):
    # The same strictness as stacks.config.ConfigModel (camelCase keys, no unknown keys).
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        return refuse_boolean_numbers(cls, value, info)


def _reservable_size(name: str) -> str:
    size = catalog.lookup(name)
    if not size.capacity_reservation:
        raise ValueError(
            f"{size.name} ({size.series}) cannot be reserved: Azure's On-demand Capacity "
            "Reservation does not support this series (ND-series and NCads H100 v5 are on its "
            "unsupported list); see gpustack/data/capacity_reservations.yaml"
        )
    return size.name


ReservableSize = Annotated[str, AfterValidator(_reservable_size)]


class ReservedSizeConfig(_ReservationModel):
    """`quantity` VMs of `vmSize` held in the group (in `zone` for a zonal group)."""

    vm_size: ReservableSize
    quantity: int = Field(ge=1, le=1000)
    zone: Zone | None = None


class CapacityReservationConfig(_ReservationModel):
    """One capacity reservation group and the pools that draw on it."""

    name: _Name
    # Zones the group reserves in; none is a regional group.
    zones: list[Zone] = Field(default_factory=list)
    reservations: list[ReservedSizeConfig] = Field(min_length=1)
    # `vmPools` entries (VMs and scale sets) and `aks.gpuPools` entries that use the group.
    vm_pools: list[str] = Field(default_factory=list)
    aks_gpu_pools: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _group_rules(self) -> CapacityReservationConfig:
        seen: set[tuple[str, str | None]] = set()
        for reserved in self.reservations:
            if self.zones and reserved.zone not in self.zones:
                raise ValueError(
                    f"reservation {reserved.vm_size} needs zone: one of the group's zones "
                    f"({', '.join(self.zones)})"
                )
            if not self.zones and reserved.zone is not None:
                raise ValueError(
                    f"reservation {reserved.vm_size} names zone {reserved.zone}, but the group "
                    "lists no zones; add zones to the group or drop the reservation's zone"
                )
            key = (catalog.lookup(reserved.vm_size).name, reserved.zone)
            if key in seen:
                raise ValueError(
                    f"{reserved.vm_size} is reserved twice in one zone; a group holds one "
                    "reservation per size per zone (raise quantity instead)"
                )
            seen.add(key)
        return self

    def reserved_quantity(self, vm_size: str) -> int:
        """VMs of `vm_size` the group holds, over all its zones."""
        name = catalog.lookup(vm_size).name
        return sum(r.quantity for r in self.reservations if catalog.lookup(r.vm_size).name == name)


def check_capacity_reservations(cfg: Any) -> None:
    """Cross-checks against the rest of the stack (`cfg` is a stacks.config.StackConfig)."""
    groups: list[CapacityReservationConfig] = list(cfg.capacity_reservations)
    names = [g.name for g in groups]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"capacityReservations names must be unique; repeated: {', '.join(repeated)}"
        )
    vm_pools = {pool.name: pool for pool in cfg.vm_pools}
    aks = cfg.aks if cfg.aks is not None and cfg.aks.enabled else None
    aks_pools = {pool.name: pool for pool in aks.gpu_pools} if aks is not None else {}
    claimed: dict[str, str] = {}
    for group in groups:
        where = f"capacityReservations {group.name}"
        for kind, wanted, known in (
            ("vmPools", group.vm_pools, vm_pools),
            ("aksGpuPools", group.aks_gpu_pools, aks_pools),
        ):
            for pool_name in wanted:
                pool = known.get(pool_name)
                if pool is None:
                    raise ValueError(
                        f"{where}: {kind} names {pool_name!r}, which is not a configured "
                        f"{'vmPools' if kind == 'vmPools' else 'aks.gpuPools'} entry "
                        f"({', '.join(known) or 'none'})"
                    )
                key = f"{kind}/{pool_name}"
                if key in claimed:
                    raise ValueError(
                        f"{where}: {kind} {pool_name} already uses capacityReservations "
                        f"{claimed[key]}; a pool draws on one group"
                    )
                claimed[key] = group.name
                _check_pool(where, kind, pool, group)


def _check_pool(where: str, kind: str, pool: Any, group: CapacityReservationConfig) -> None:
    size = catalog.lookup(pool.vm_size)
    if group.reserved_quantity(size.name) == 0:
        raise ValueError(
            f"{where}: {kind} {pool.name} runs {size.name}, which the group does not reserve"
        )
    # Deployment types the overview lists as unsupported with reservations.
    if pool.spot:
        raise ValueError(f"{where}: {kind} {pool.name} is a spot pool; spot VMs cannot use "
                         "capacity reservations")  # fmt: skip
    if getattr(pool, "proximity_placement_group", False):
        raise ValueError(
            f"{where}: vmPools {pool.name} sets proximityPlacementGroup, which capacity "
            "reservations do not support"
        )
    zones = getattr(pool, "zones", None) or []
    if group.zones and zones and not set(zones) <= set(group.zones):
        raise ValueError(
            f"{where}: {kind} {pool.name} runs in zones {', '.join(zones)} but the group "
            f"reserves only in {', '.join(group.zones)}"
        )
