"""Monthly cost of a plan: VMs, scale sets and AKS pools from the catalog's price snapshot,
services from data/service_prices.yaml, capacity-priced services from `CostAssumptions`.

Every line names its assumption; a resource that cannot be priced is listed in `unpriced`,
never counted as 0. Free and usage-only types are listed in the data file and priced 0 there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpustack import catalog, facts
from gpustack.inventory import (
    AGENT_POOL,
    CLUSTER,
    SCALE_SET,
    VM,
    ComputePool,
    Inventory,
    Resource,
    arm_default,
    compute_pools,
)

CURRENCY = "USD"


def _prices() -> dict[str, Any]:
    return facts.load("service_prices")


def hours_per_month() -> float:
    """Hours in a billing month (730), as the Azure pricing calculator counts them."""
    return float(_prices()["hours_per_month"])


@dataclass(frozen=True)
class Monthly:
    """USD per month at the minimum, expected and maximum scale."""

    min: float = 0.0
    expected: float = 0.0
    max: float = 0.0

    def __add__(self, other: Monthly) -> Monthly:
        return Monthly(self.min + other.min, self.expected + other.expected, self.max + other.max)

    @classmethod
    def flat(cls, amount: float) -> Monthly:
        """The same amount at every scale (a service that does not scale with nodes)."""
        return cls(amount, amount, amount)

    def to_json(self) -> dict[str, float]:
        """Rounded to cents."""
        return {k: round(getattr(self, k), 2) for k in ("min", "expected", "max")}


@dataclass(frozen=True)
class CostLine:
    """One priced item of a resource (a resource may have several, e.g. a cluster and its pools)."""

    urn: str
    type: str
    monthly: Monthly
    assumption: str

    def to_json(self) -> dict[str, Any]:
        """The line in the plan JSON contract."""
        return {
            "urn": self.urn,
            "type": self.type,
            "monthly": self.monthly.to_json(),
            "assumption": self.assumption,
        }


@dataclass(frozen=True)
class CostAssumptions:
    """Estimates for what a plan cannot show: data stored, logs ingested, Grafana users.

    The defaults equal the stack config defaults (`storage.estimatedCapacityGb`,
    `monitoring.estimatedLogIngestionGbPerDay`); `source` says where the values came from.
    """

    storage_capacity_gb: float = 1024.0
    log_ingestion_gb_per_day: float = 1.0
    grafana_active_users: int = 0
    source: str = "gpustack defaults"

    @classmethod
    def from_stack_config(cls, config: Mapping[str, Any], project: str) -> CostAssumptions:
        """Read the estimates from stack config (`<project>:storage`, `<project>:monitoring`)."""
        storage = _structured(config.get(f"{project}:storage"))
        monitoring = _structured(config.get(f"{project}:monitoring"))
        defaults = cls()
        read = {
            "estimatedCapacityGb" in storage,
            "estimatedLogIngestionGbPerDay" in monitoring,
        }
        source = {frozenset({True}): "stack config", frozenset({False}): "config default"}.get(
            frozenset(read), "stack config or its default"
        )
        return cls(
            storage_capacity_gb=float(
                storage.get("estimatedCapacityGb", defaults.storage_capacity_gb)
            ),
            log_ingestion_gb_per_day=float(
                monitoring.get("estimatedLogIngestionGbPerDay", defaults.log_ingestion_gb_per_day)
            ),
            source=source,
        )


def _structured(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, Mapping) else {}


@dataclass
class CostReport:
    """Lines, unpriced resources and the price snapshot's date."""

    lines: list[CostLine]
    unpriced: list[str]
    prices_as_of: str
    currency: str = CURRENCY
    # Why each unpriced URN could not be priced (for renderers; not part of the JSON contract).
    unpriced_reasons: dict[str, list[str]] = field(default_factory=dict)

    @property
    def monthly(self) -> Monthly:
        """Sum of all lines."""
        total = Monthly()
        for line in self.lines:
            total = total + line.monthly
        return total

    def warnings(self) -> list[str]:
        """What the totals leave out, one sentence each: every report format shows these."""
        if not self.unpriced:
            return []
        warnings = [
            f"{len(self.unpriced)} resource(s) could not be priced and are not in the monthly "
            "totals, which are therefore too low"
        ]
        for urn in self.unpriced:
            name = urn.rsplit("::", 1)[-1]
            reasons = "; ".join(
                reason.removeprefix(f"{name}: ")
                for reason in self.unpriced_reasons.get(urn) or ["no reason recorded"]
            )
            warnings.append(f"unpriced {name}: {reasons}")
        if any("in the snapshot" in r for rs in self.unpriced_reasons.values() for r in rs):
            covered = ", ".join(catalog.snapshot_regions())
            warnings.append(
                f"the VM price snapshot covers {covered}; add a region with `gpustack prices "
                "refresh --regions <regions>` (online) to price pools there"
            )
        return warnings

    def to_json(self) -> dict[str, Any]:
        """The `cost` section of the plan JSON (docs/plan-json.md)."""
        return {
            "currency": self.currency,
            "monthly": self.monthly.to_json(),
            "lines": [line.to_json() for line in self.lines],
            "unpriced": list(self.unpriced),
            "unpriced_reasons": {urn: list(self.unpriced_reasons[urn]) for urn in self.unpriced},
            "warnings": self.warnings(),
            "prices_as_of": self.prices_as_of,
        }


def prices_as_of() -> str:
    """Dates of the VM price snapshot and of the service price table."""
    return f"VMs {catalog.prices_as_of()}; services checked {_prices()['checked']}"


def estimate_monthly_cost(
    resources: Sequence[Mapping[str, Any]], *, assumptions: CostAssumptions | None = None
) -> CostReport:
    """Price every resource of a plan; what cannot be priced is listed in `unpriced`."""
    estimate = _Estimate(Inventory(resources), assumptions or CostAssumptions())
    for resource in estimate.inventory.resources:
        # Components and provider plugins are not Azure resources.
        if resource.custom and not resource.type.startswith("pulumi:providers:"):
            estimate.price(resource)
    return CostReport(
        lines=estimate.lines,
        unpriced=list(estimate.reasons),
        prices_as_of=prices_as_of(),
        unpriced_reasons=estimate.reasons,
    )


class _Unpriced(Exception):
    """A resource (or part of it) cannot be priced; the message says why."""


class _Estimate:
    def __init__(self, inventory: Inventory, assumptions: CostAssumptions) -> None:
        self.inventory = inventory
        self.assumptions = assumptions
        self.lines: list[CostLine] = []
        self.reasons: dict[str, list[str]] = {}
        self.pools: dict[str, list[ComputePool]] = {}
        for pool in compute_pools(inventory):
            self.pools.setdefault(pool.urn, []).append(pool)
        self.free_types = set(_prices()["free"]["types"])
        self.free_prefixes = tuple(_prices()["free"]["prefixes"])
        self.usage_only: dict[str, str] = _prices()["usage_only"]

    def price(self, resource: Resource) -> None:
        pricer = _PRICERS.get(resource.type)
        if pricer is not None:
            try:
                pricer(self, resource)
            except _Unpriced as reason:
                self.unpriced(resource, str(reason))
        elif resource.type in self.usage_only:
            note = self.usage_only[resource.type]
            self.add(resource, Monthly(), f"usage only, not estimated: {note}")
        elif resource.type in self.free_types or resource.type.startswith(self.free_prefixes):
            self.add(resource, Monthly(), "no charge for this resource type")
        else:
            self.unpriced(resource, f"no price known for {resource.type}")

    def add(self, resource: Resource, monthly: Monthly, assumption: str) -> None:
        self.lines.append(CostLine(resource.urn, resource.type, monthly, assumption))

    def unpriced(self, resource: Resource, reason: str) -> None:
        self.reasons.setdefault(resource.urn, []).append(reason)

    def service(self, key: str, resource: Resource) -> tuple[float, str]:
        """(USD in the entry's unit, a note on region and verification) for a price key."""
        entry = _prices()["prices"].get(key)
        if entry is None:
            raise _Unpriced(f"no price for {key} in service_prices.yaml")
        notes = []
        region = self.inventory.region_of(resource)
        if entry["region"] not in ("any", region):
            notes.append(f"list price for {entry['region']}")
        if not entry.get("verified", False):
            notes.append("unverified price")
        return float(entry["usd"]), (f" ({'; '.join(notes)})" if notes else "")

    def hourly_service(self, key: str, resource: Resource, what: str, count: float = 1) -> None:
        usd, note = self.service(key, resource)
        self.add(
            resource,
            Monthly.flat(usd * hours_per_month() * count),
            f"{what}: ${usd:g}/h x {hours_per_month():g} h{note}",
        )

    # --- compute pools ------------------------------------------------------------------

    def pool_lines(self, resource: Resource) -> None:
        for pool in self.pools.get(resource.urn, []):
            try:
                self.add(resource, _pool_monthly(pool), _pool_assumption(pool))
            except _Unpriced as reason:
                self.unpriced(resource, f"{pool.name}: {reason}")


def _pool_hourly(pool: ComputePool) -> float:
    if not pool.vm_size:
        raise _Unpriced("VM size unknown")
    size = pool.size
    if size is None:
        raise _Unpriced(f"{pool.vm_size} is not in the VM catalog")
    if pool.region is None:
        raise _Unpriced("region unknown")
    hourly = size.price(pool.region, spot=pool.spot)
    if hourly is None:
        kind = "spot" if pool.spot else "pay-as-you-go"
        raise _Unpriced(f"no {kind} price for {size.name} in {pool.region} in the snapshot")
    if not pool.counts_known:
        raise _Unpriced(f"node counts unknown ({pool.count_basis})")
    return hourly


def _pool_monthly(pool: ComputePool) -> Monthly:
    per_node = _pool_hourly(pool) * hours_per_month()
    assert pool.min is not None and pool.expected is not None and pool.max is not None
    return Monthly(per_node * pool.min, per_node * pool.expected, per_node * pool.max)


def _pool_assumption(pool: ComputePool) -> str:
    hourly = _pool_hourly(pool)
    kind = {"vm": "VM", "scaleSet": "scale set", "aksPool": "AKS pool"}[pool.kind]
    pricing = "spot" if pool.spot else "pay-as-you-go"
    text = (
        f"{kind} {pool.name}: {pool.min}/{pool.expected}/{pool.max} x {pool.vm_size} "
        f"{pricing} in {pool.region} at ${hourly:g}/h ({pool.count_basis}); compute only, "
        "OS disks not included"
    )
    if pool.notes:
        text += "; " + "; ".join(pool.notes)
    return text


# --- per-type pricers ---------------------------------------------------------------------


def _vm_or_scale_set(estimate: _Estimate, resource: Resource) -> None:
    estimate.pool_lines(resource)


def _managed_cluster(estimate: _Estimate, resource: Resource) -> None:
    tier = resource.get("sku.tier") or arm_default("managed_cluster_tier")
    try:
        estimate.hourly_service(f"aks.tier.{tier}", resource, f"AKS {tier} tier, per cluster-hour")
    except _Unpriced as reason:
        estimate.unpriced(resource, str(reason))
    estimate.pool_lines(resource)


def _storage_account(estimate: _Estimate, resource: Resource) -> None:
    sku = resource.get("sku.name")
    if not isinstance(sku, str) or "_" not in sku:
        raise _Unpriced("storage sku.name unknown")
    performance, redundancy = sku.split("_", 1)
    kind = resource.get("kind") or "StorageV2"
    if performance == "Standard" and kind in ("StorageV2", "BlobStorage", "BlockBlobStorage"):
        tier = resource.get("accessTier") or "Hot"
        key = f"storage.Standard.{tier}.{redundancy}"
    elif performance == "Premium" and kind == "BlockBlobStorage":
        key = f"storage.Premium.{redundancy}"
    else:
        raise _Unpriced(f"{kind} accounts with {sku} are not in the price table")
    usd, note = estimate.service(key, resource)
    gb = estimate.assumptions.storage_capacity_gb
    estimate.add(
        resource,
        Monthly.flat(usd * gb),
        f"{gb:g} GB stored ({estimate.assumptions.source}: storage.estimatedCapacityGb) at "
        f"${usd:g}/GB-month, {key.split('.', 1)[1]}{note}; transactions and egress not estimated",
    )


def _log_analytics(estimate: _Estimate, resource: Resource) -> None:
    sku = resource.get("sku.name")
    if sku != "PerGB2018":
        raise _Unpriced(f"Log Analytics sku {sku or 'not set'} is not in the price table")
    ingest_usd, ingest_note = estimate.service("loganalytics.PerGB2018.ingestion", resource)
    keep_usd, keep_note = estimate.service("loganalytics.PerGB2018.retention", resource)
    free_days = int(_prices()["prices"]["loganalytics.PerGB2018.retention"]["free_days"])
    per_day = estimate.assumptions.log_ingestion_gb_per_day
    days = hours_per_month() / 24
    retention = int(resource.get("retentionInDays") or free_days)
    # In steady state the workspace holds (retention - free days) days of data beyond the free
    # window, billed per GB-month.
    retained_gb = per_day * max(0, retention - free_days)
    amount = per_day * days * ingest_usd + retained_gb * keep_usd
    estimate.add(
        resource,
        Monthly.flat(amount),
        f"{per_day:g} GB/day ingested ({estimate.assumptions.source}: "
        f"monitoring.estimatedLogIngestionGbPerDay) x {days:.1f} days at ${ingest_usd:g}/GB"
        f"{ingest_note}; {retention} days retention, {free_days} free, then ${keep_usd:g}/GB-month"
        f"{keep_note}",
    )


def _grafana(estimate: _Estimate, resource: Resource) -> None:
    sku = resource.get("sku.name")
    usd, note = estimate.service(f"grafana.{sku}.instance", resource)
    amount = usd * hours_per_month()
    text = f"Managed Grafana {sku}: ${usd:g}/instance-hour{note}"
    users = estimate.assumptions.grafana_active_users
    user_entry = _prices()["prices"].get(f"grafana.{sku}.user")
    if user_entry is not None:
        user_usd, user_note = estimate.service(f"grafana.{sku}.user", resource)
        amount += users * user_usd
        text += f" + {users} active users x ${user_usd:g}/user-month{user_note}"
    estimate.add(resource, Monthly.flat(amount), text)


def _private_endpoint(estimate: _Estimate, resource: Resource) -> None:
    estimate.hourly_service(
        "network.PrivateEndpoint", resource, "private endpoint (data processed not estimated)"
    )


def _nat_gateway(estimate: _Estimate, resource: Resource) -> None:
    estimate.hourly_service(
        "network.NatGateway", resource, "NAT gateway (data processed not estimated)"
    )


def _public_ip(estimate: _Estimate, resource: Resource) -> None:
    sku = resource.get("sku.name")
    if sku != "Standard":
        raise _Unpriced(f"public IP sku {sku or 'not set'} is not in the price table")
    estimate.hourly_service("network.PublicIPAddress.Standard", resource, "Standard public IP")


def _bastion(estimate: _Estimate, resource: Resource) -> None:
    sku = resource.get("sku.name")
    if sku is None:
        raise _Unpriced("Bastion sku.name not set")
    text = f"Bastion {sku}"
    units = resource.get("scaleUnits")
    if isinstance(units, int | float) and units > 2:
        text += f" ({int(units)} scale units; units above 2 are billed extra, not estimated)"
    estimate.hourly_service(f"network.BastionHost.{sku}", resource, text)


def _registry(estimate: _Estimate, resource: Resource) -> None:
    sku = resource.get("sku.name")
    usd, note = estimate.service(f"containerregistry.{sku}", resource)
    days = hours_per_month() / 24
    estimate.add(
        resource,
        Monthly.flat(usd * days),
        f"registry {sku}: ${usd:g}/day x {days:.1f} days{note}; storage over the included "
        "amount and geo-replicas not estimated",
    )


def _registry_replication(estimate: _Estimate, resource: Resource) -> None:
    usd, note = estimate.service("containerregistry.Replication", resource)
    days = hours_per_month() / 24
    estimate.add(
        resource,
        Monthly.flat(usd * days),
        f"registry geo-replica: ${usd:g}/day x {days:.1f} days{note}",
    )


def _lustre(estimate: _Estimate, resource: Resource) -> None:
    sku = resource.get("sku.name")
    capacity = resource.get("storageCapacityTiB")
    if not isinstance(capacity, int | float):
        raise _Unpriced("storageCapacityTiB unknown")
    usd, note = estimate.service(f"storagecache.AmlFilesystem.{sku}", resource)
    hours = hours_per_month()
    estimate.add(
        resource,
        Monthly.flat(usd * float(capacity) * hours),
        f"Managed Lustre {sku}: {capacity:g} TiB x ${usd:g}/TiB-hour x {hours:g} h{note}",
    )


def _api_management(estimate: _Estimate, resource: Resource) -> None:
    sku = resource.get("sku.name")
    if sku == "Consumption":
        estimate.add(resource, Monthly(), "API Management Consumption: billed per call")
        return
    units = resource.get("sku.capacity") or 1
    usd, note = estimate.service(f"apimanagement.{sku}", resource)
    estimate.add(
        resource,
        Monthly.flat(usd * float(units)),
        f"API Management {sku}: {units:g} unit(s) x ${usd:g}/unit-month{note}",
    )


def _private_zone(estimate: _Estimate, resource: Resource) -> None:
    usd, note = estimate.service("privatedns.PrivateZone", resource)
    text = f"private DNS zone: ${usd:g}/zone-month{note}; queries not estimated"
    estimate.add(resource, Monthly.flat(usd), text)


def _vm_extension(estimate: _Estimate, resource: Resource) -> None:
    """Extensions the price table lists by publisher/type; any other stays unpriced."""
    extension = f"{resource.get('publisher')}/{resource.get('type')}"
    key = f"vmextension.{extension}"
    if key not in _prices()["prices"]:
        raise _Unpriced(f"no price known for VM extension {extension}")
    usd, note = estimate.service(key, resource)
    why = _prices()["prices"][key].get("note")
    estimate.add(
        resource,
        Monthly.flat(usd),
        f"VM extension {extension}: ${usd:g}/month{note}" + (f"; {why}" if why else ""),
    )


def _capacity_reservation(estimate: _Estimate, resource: Resource) -> None:
    """Reserved slots bill like VMs; slots a pool's VMs fill are already in the pool's line."""
    from gpustack.capacity import capacity_reservations  # capacity owns the reservation maths

    pools = [pool for pools in estimate.pools.values() for pool in pools]
    for row in capacity_reservations(estimate.inventory, pools):
        if row["urn"] != resource.urn:
            continue
        if row["idle_monthly"] is None:
            raise _Unpriced(f"no price or node counts for {row['vm_size']} in {row['region']}")
        idle, users = row["idle_monthly"], ", ".join(row["pools"]) or "any pool"
        estimate.add(
            resource,
            Monthly(idle["min"], idle["expected"], idle["max"]),
            f"capacity reservation {row['quantity']} x {row['vm_size']} at "
            f"${row['payg_per_hour']:g}/h; only slots no VM of {users} fills are billed here "
            "(the rest is in the pools' lines)",
        )


_PRICERS: dict[str, Callable[[_Estimate, Resource], None]] = {
    "azure-native:compute:CapacityReservation": _capacity_reservation,
    # A group holds reservations and bills nothing itself.
    "azure-native:compute:CapacityReservationGroup": lambda estimate, resource: estimate.add(
        resource, Monthly(), "no charge for the group; its reservations bill"
    ),
    VM: _vm_or_scale_set,
    SCALE_SET: _vm_or_scale_set,
    AGENT_POOL: _vm_or_scale_set,
    CLUSTER: _managed_cluster,
    "azure-native:storage:StorageAccount": _storage_account,
    "azure-native:operationalinsights:Workspace": _log_analytics,
    "azure-native:dashboard:Grafana": _grafana,
    "azure-native:network:PrivateEndpoint": _private_endpoint,
    "azure-native:network:NatGateway": _nat_gateway,
    "azure-native:network:PublicIPAddress": _public_ip,
    "azure-native:network:BastionHost": _bastion,
    "azure-native:containerregistry:Registry": _registry,
    "azure-native:apimanagement:ApiManagementService": _api_management,
    "azure-native:containerregistry:Replication": _registry_replication,
    "azure-native:storagecache:AmlFilesystem": _lustre,
    "azure-native:privatedns:PrivateZone": _private_zone,
    "azure-native:compute:VirtualMachineExtension": _vm_extension,
}


__all__ = [
    "CostAssumptions",
    "CostLine",
    "CostReport",
    "Monthly",
    "estimate_monthly_cost",
    "hours_per_month",
    "prices_as_of",
]
