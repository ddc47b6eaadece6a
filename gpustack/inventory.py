"""Read any plan's resources the way Azure will: known values, regions, references, VM pools.

Works from resource types and camelCase inputs only (`{"urn", "type", "name", "inputs"}`, plus
`id`, `parent` and `propertyDependencies` when the plan has them), so the cost, capacity and
diagram reports cover any Pulumi program's azure-native resources, not only this project's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime.rpc import UNKNOWN

from gpustack import catalog, facts

# Unknown values: the SDK's preview sentinel, and the plan JSON's rendering of it.
UNKNOWN_VALUES = frozenset({UNKNOWN, "<computed>"})

VM = "azure-native:compute:VirtualMachine"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
AUTOSCALE = "azure-native:monitor:AutoscaleSetting"
CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
RESOURCE_GROUP = "azure-native:resources:ResourceGroup"


def is_known(value: Any) -> bool:
    """False for a missing value or an unknown (computed) one."""
    return value is not None and not (isinstance(value, str) and value in UNKNOWN_VALUES)


def value_at(inputs: Mapping[str, Any], path: str) -> Any:
    """The known value at a dotted camelCase path (`sku.name`), else None."""
    current: Any = inputs
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current if is_known(current) else None


def region_name(location: str) -> str:
    """ARM's region name for a display name or a name: "East US" -> "eastus"."""
    return "".join(location.split()).lower()


def arm_default(key: str) -> Any:
    """A documented default from data/arm_defaults.yaml."""
    return facts.load("arm_defaults")[key]["value"]


@dataclass(frozen=True)
class Resource:
    """One planned resource, reduced to what the reports read."""

    urn: str
    type: str
    name: str
    inputs: Mapping[str, Any]
    id: str | None = None
    parent: str | None = None
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # False for component resources, which Azure never sees.
    custom: bool = True

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Resource:
        """Accept plan-JSON resources, `PlannedResource.analyzer_view()` or minimal dicts."""
        resource_id = raw.get("id")
        return cls(
            urn=str(raw["urn"]),
            type=str(raw["type"]),
            name=str(raw.get("name") or raw["urn"].rsplit("::", 1)[-1]),
            inputs=raw.get("inputs") or {},
            id=resource_id if isinstance(resource_id, str) and is_known(resource_id) else None,
            parent=raw.get("parent"),
            property_dependencies=raw.get("propertyDependencies") or {},
            custom=bool(raw.get("custom", True)),
        )

    def get(self, path: str) -> Any:
        """The known input at a dotted path, else None."""
        return value_at(self.inputs, path)


class Inventory:
    """The resources of one plan, with look-ups across them."""

    def __init__(self, resources: Iterable[Mapping[str, Any] | Resource]) -> None:
        self.resources = [
            r if isinstance(r, Resource) else Resource.from_mapping(r) for r in resources
        ]
        self.by_urn = {r.urn: r for r in self.resources}
        self._by_id = {r.id.lower(): r for r in self.resources if r.id}

    def of_type(self, *tokens: str) -> list[Resource]:
        """Resources of the given types, in plan order."""
        return [r for r in self.resources if r.type in tokens]

    def by_id(self, arm_id: str) -> Resource | None:
        """The resource with this ARM id (ARM compares ids case-insensitively)."""
        return self._by_id.get(arm_id.lower())

    def region_of(self, resource: Resource) -> str | None:
        """The `location` input, else its resource group's (the provider's default), else None."""
        location = resource.get("location")
        if isinstance(location, str) and location:
            return region_name(location)
        group_name = resource.get("resourceGroupName")
        for group in self.of_type(RESOURCE_GROUP):
            if group_name is not None and group_name in (
                group.get("resourceGroupName"),
                _id_leaf(group.id),
            ):
                group_location = group.get("location")
                return region_name(group_location) if isinstance(group_location, str) else None
        return None

    def referenced(
        self,
        resource: Resource,
        key: str,
        candidates: Sequence[Resource],
        name_inputs: Sequence[str] = (),
    ) -> Resource | None:
        """The candidate that `resource`'s input `key` points at, by dependency, id or name."""
        wanted = set(resource.property_dependencies.get(key, ()))
        for candidate in candidates:
            if candidate.urn in wanted:
                return candidate
        reference = resource.get(key)
        if not isinstance(reference, str):
            return None
        leaf = _id_leaf(reference)
        for candidate in candidates:
            if candidate.id and candidate.id.lower() == reference.lower():
                return candidate
        for candidate in candidates:
            names = {candidate.get(n) for n in name_inputs} | {_id_leaf(candidate.id)}
            if reference in names or (leaf is not None and leaf in names):
                return candidate
        return None


def _id_leaf(arm_id: str | None) -> str | None:
    if not arm_id:
        return None
    return arm_id.rstrip("/").rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- compute pools


@dataclass(frozen=True)
class ComputePool:
    """VMs that scale together: a VM, a scale set, or an AKS node pool (inline or separate)."""

    urn: str
    type: str
    name: str
    kind: str  # "vm" | "scaleSet" | "aksPool"
    vm_size: str | None
    region: str | None
    min: int | None
    expected: int | None
    max: int | None
    spot: bool
    count_basis: str
    cluster_urn: str | None = None
    single_placement_group: bool | None = None
    availability_set: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> catalog.VmSize | None:
        """The catalog entry for the size, or None when the catalog does not know it."""
        return _size(self.vm_size) if self.vm_size else None

    @property
    def counts_known(self) -> bool:
        """True when min, expected and max node counts are all known."""
        return None not in (self.min, self.expected, self.max)


@functools.cache
def _size(name: str) -> catalog.VmSize | None:
    try:
        return catalog.lookup(name)
    except catalog.UnknownVmSizeError:
        return None


def compute_pools(inventory: Inventory) -> list[ComputePool]:
    """Every pool of VMs in the plan, with its node counts and region."""
    pools: list[ComputePool] = []
    autoscales = inventory.of_type(AUTOSCALE)
    clusters = inventory.of_type(CLUSTER)
    for resource in inventory.resources:
        if resource.type == VM:
            pools.append(_vm_pool(inventory, resource))
        elif resource.type == SCALE_SET:
            pools.append(_scale_set_pool(inventory, resource, autoscales))
        elif resource.type == CLUSTER:
            region = inventory.region_of(resource)
            for profile in resource.get("agentPoolProfiles") or []:
                if isinstance(profile, Mapping):
                    pools.append(_aks_pool(resource, profile, region, resource.urn, inline=True))
        elif resource.type == AGENT_POOL:
            cluster = inventory.referenced(resource, "resourceName", clusters, ["resourceName"])
            if cluster is None and len(clusters) == 1:
                cluster = clusters[0]
            region = inventory.region_of(cluster) if cluster else inventory.region_of(resource)
            pools.append(
                _aks_pool(resource, resource.inputs, region, cluster.urn if cluster else None)
            )
    return pools


def _vm_pool(inventory: Inventory, vm: Resource) -> ComputePool:
    availability_set = vm.get("availabilitySet.id")
    return ComputePool(
        urn=vm.urn,
        type=vm.type,
        name=vm.name,
        kind="vm",
        vm_size=vm.get("hardwareProfile.vmSize"),
        region=inventory.region_of(vm),
        min=1,
        expected=1,
        max=1,
        spot=vm.get("priority") in arm_default("spot_priorities"),
        count_basis="one VM",
        availability_set=availability_set if isinstance(availability_set, str) else None,
    )


def _scale_set_pool(
    inventory: Inventory, scale_set: Resource, autoscales: Sequence[Resource]
) -> ComputePool:
    capacity = _count(scale_set.get("sku.capacity"))
    low = high = expected = capacity
    basis = f"capacity {capacity}" if capacity is not None else "capacity not set"
    notes: list[str] = []
    for setting in autoscales:
        target = inventory.referenced(setting, "targetResourceUri", [scale_set], ["vmScaleSetName"])
        if target is None:
            continue
        enabled = setting.get("enabled")
        if not (arm_default("autoscale_setting_enabled") if enabled is None else enabled):
            notes.append(f"autoscale setting {setting.name} is disabled (enabled: false)")
            continue
        bounds = _autoscale_bounds(setting)
        if bounds is None:
            notes.append(f"autoscale setting {setting.name} has no known capacity")
            continue
        low, high, default = bounds
        start = capacity if capacity is not None else default
        expected = min(max(start, low), high) if start is not None else low
        basis = (
            f"autoscale {setting.name}: {low}..{high}, expected {expected} "
            f"({'capacity' if capacity is not None else 'autoscale default'})"
        )
        break
    placement = scale_set.get("singlePlacementGroup")
    return ComputePool(
        urn=scale_set.urn,
        type=scale_set.type,
        name=scale_set.name,
        kind="scaleSet",
        vm_size=scale_set.get("sku.name"),
        region=inventory.region_of(scale_set),
        min=low,
        expected=expected,
        max=high,
        spot=scale_set.get("virtualMachineProfile.priority") in arm_default("spot_priorities"),
        count_basis=basis,
        single_placement_group=placement if isinstance(placement, bool) else None,
        notes=tuple(notes),
    )


def _autoscale_bounds(setting: Resource) -> tuple[int, int, int | None] | None:
    """(lowest minimum, highest maximum, first default) across the setting's profiles."""
    lows, highs, defaults = [], [], []
    for profile in setting.get("profiles") or []:
        capacity = profile.get("capacity") if isinstance(profile, Mapping) else None
        if not isinstance(capacity, Mapping):
            continue
        low, high = _count(capacity.get("minimum")), _count(capacity.get("maximum"))
        if low is None or high is None:
            continue
        lows.append(low)
        highs.append(high)
        defaults.append(_count(capacity.get("default")))
    if not lows:
        return None
    return min(lows), max(highs), defaults[0]


def _aks_pool(
    owner: Resource,
    profile: Mapping[str, Any],
    region: str | None,
    cluster_urn: str | None,
    inline: bool = False,
) -> ComputePool:
    def get(key: str) -> Any:
        return value_at(profile, key)

    pool_name = get("name") if inline else (get("agentPoolName") or owner.name)
    # Unset means Azure's default; an unknown (computed) count stays unknown.
    count = _count(get("count")) if "count" in profile else arm_default("agent_pool_count")
    if get("enableAutoScaling"):
        low, high = _count(get("minCount")), _count(get("maxCount"))
        if low is not None and high is not None:
            expected = min(max(count, low), high) if count is not None else low
            basis = f"autoscaler {low}..{high}, expected {expected} (initial count)"
        else:
            expected = count
            basis = "autoscaler bounds unknown"
    else:
        low = high = expected = count
        basis = f"fixed count {count}" if count is not None else "count unknown"
    priority = get("scaleSetPriority") or arm_default("scale_set_priority")
    return ComputePool(
        urn=owner.urn,
        type=owner.type,
        name=str(pool_name) if pool_name else owner.name,
        kind="aksPool",
        vm_size=get("vmSize"),
        region=region,
        min=low,
        expected=expected,
        max=high,
        spot=priority == "Spot",
        count_basis=basis,
        cluster_urn=cluster_urn,
        # Each AKS node pool is one scale set; RDMA reaches only within it.
        single_placement_group=None,
    )


def _count(value: Any) -> int | None:
    """A node count from an input: numbers arrive as floats, autoscale counts as strings."""
    if isinstance(value, bool) or not is_known(value):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None
