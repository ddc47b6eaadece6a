"""GPU capacity, InfiniBand domains and vCPU quota of a plan, with an optional quota preflight
against `az vm list-usage --location <region> -o json`.

Quota rules (https://learn.microsoft.com/azure/virtual-machines/quotas and
https://learn.microsoft.com/azure/virtual-machines/spot-vms): regular VMs count against their
size's family quota and the regional total (`cores`); spot VMs count only against the regional
low-priority quota (`lowPriorityCores`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpustack import catalog, facts
from gpustack.inventory import ComputePool, Inventory, compute_pools

# Usage names as `az vm list-usage` returns them in `name.value`.
REGIONAL_CORES = "cores"
SPOT_CORES = "lowPriorityCores"
RESERVATION = "azure-native:compute:CapacityReservation"
RESERVATION_GROUP = "azure-native:compute:CapacityReservationGroup"
# Where each pool type names its capacity reservation group: (top-level input, dotted path).
_GROUP_REFERENCE = {
    "azure-native:containerservice:AgentPool": (
        "capacityReservationGroupID",
        "capacityReservationGroupID",
    ),
    "azure-native:compute:VirtualMachineScaleSet": (
        "virtualMachineProfile",
        "virtualMachineProfile.capacityReservation.capacityReservationGroup.id",
    ),
    "azure-native:compute:VirtualMachine": (
        "capacityReservation",
        "capacityReservation.capacityReservationGroup.id",
    ),
}


class QuotaFileError(ValueError):
    """The `--quota-from` file is not the JSON of `az vm list-usage`."""


@dataclass(frozen=True)
class QuotaUsage:
    """One row of `az vm list-usage`: a quota name, what is in use and the limit."""

    name: str
    description: str
    current: int
    limit: int


def load_quota_usage(path: Path | str) -> list[QuotaUsage]:
    """Read `az vm list-usage --location <region> -o json` output from a file."""
    source = Path(path)
    if source.is_dir():
        raise QuotaFileError(f"{source} is a directory; give the JSON file")
    try:
        raw = json.loads(source.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except FileNotFoundError:
        raise QuotaFileError(f"cannot read {source}: no such file") from None
    except UnicodeDecodeError:
        raise QuotaFileError(f"{source} is not a UTF-8 text file; expected JSON") from None
    except OSError as error:
        raise QuotaFileError(f"cannot read {source}: {error.strerror}") from None
    except (json.JSONDecodeError, ValueError, RecursionError) as error:
        raise QuotaFileError(f"{source} is not JSON ({error})") from None
    return parse_quota_usage(raw, str(source))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_quota_usage(raw: Any, where: str = "quota usage") -> list[QuotaUsage]:
    """Validate list-usage rows (`name.value`, `name.localizedValue`, `currentValue`, `limit`):
    counts are whole numbers of vCPUs, 0 or more."""
    if not isinstance(raw, list):
        raise QuotaFileError(
            f"{where}: expected a JSON list as printed by "
            "`az vm list-usage --location <region> -o json`"
        )
    rows = []
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, Mapping) or not isinstance(name.get("value"), str):
            raise QuotaFileError(f"{where}[{index}]: missing name.value")
        assert isinstance(item, Mapping)
        counts = []
        for key in ("currentValue", "limit"):
            counts.append(_vcpu_count(item.get(key), f"{where}[{index}] ({name['value']}).{key}"))
        description = name.get("localizedValue") or item.get("localName") or name["value"]
        rows.append(QuotaUsage(name["value"], str(description), counts[0], counts[1]))
    return rows


def _vcpu_count(value: Any, where: str) -> int:
    """A whole, non-negative vCPU count; az prints them as numbers or as digit strings."""
    if isinstance(value, bool) or value is None:
        raise QuotaFileError(f"{where}: must be a whole number of vCPUs, got {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int):
        count = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        count = int(value)
    else:
        raise QuotaFileError(f"{where}: must be a whole number of vCPUs, got {value!r}")
    if count < 0:
        raise QuotaFileError(f"{where}: must be 0 or more, got {count}")
    return count


def plan_capacity(
    resources: Sequence[Mapping[str, Any]],
    quota_usage: Sequence[QuotaUsage] | None = None,
    quota_region: str | None = None,
) -> dict[str, Any]:
    """GPUs, VRAM, InfiniBand domains and quota needs; shortfalls against `quota_usage` are errors.

    `quota_usage` covers one region (list-usage is per region): `quota_region`, or the plan's
    only region when it has one.
    """
    inventory = Inventory(resources)
    pools = compute_pools(inventory)
    errors: list[str] = []
    warnings: list[str] = []
    domains = _infiniband_domains(pools, warnings)
    domain_of = {urn_name: d["id"] for d in domains for urn_name in d["pool_keys"]}
    pool_rows = [_pool_row(pool, domain_of.get(_pool_key(pool))) for pool in pools]
    reservations = capacity_reservations(inventory, pools)
    _add_reserved(pool_rows, reservations)
    for pool in pools:
        if pool.vm_size and pool.size is None:
            warnings.append(f"{pool.name}: {pool.vm_size} is not in the VM catalog; not counted")
        elif not pool.counts_known:
            warnings.append(f"{pool.name}: node counts unknown ({pool.count_basis}); not counted")
        warnings.extend(f"{pool.name}: {note}" for note in pool.notes)

    quota = _quota_needs(pools)
    if quota_usage is not None:
        region = _usage_region(quota, quota_region, errors)
        if region is not None:
            _check_quota(quota, region, quota_usage, errors, warnings)

    counted = [row for row in pool_rows if row["gpus"]["max"] is not None]
    by_model: dict[str, dict[str, int]] = {}
    for row in counted:
        if row["gpu_model"]:
            model = by_model.setdefault(row["gpu_model"], {"min": 0, "max": 0})
            model["min"] += row["gpus"]["min"]
            model["max"] += row["gpus"]["max"]
    return {
        "gpus": _total(counted, "gpus"),
        "vram_gb": _total(counted, "vram_gb"),
        "gpus_by_model": by_model,
        "pools": pool_rows,
        "infiniband_domains": [{k: v for k, v in d.items() if k != "pool_keys"} for d in domains],
        "quota": quota,
        "reservations": reservations,
        "spot_vcpus_max": sum(q["vcpus_max"] for q in quota if q["family"] == SPOT_CORES),
        "errors": errors,
        "warnings": warnings,
    }


def capacity_reservations(
    inventory: Inventory, pools: Sequence[ComputePool]
) -> list[dict[str, Any]]:
    """Each capacity reservation: what it holds, the pools drawing on it, and what it bills.

    A reservation bills at the size's pay-as-you-go rate whether or not a VM uses it; a VM
    using a slot is billed instead of the slot (capacity_reservations.yaml, `billing`). So the
    plan's extra cost is the idle slots: quantity minus the pools' nodes, at min, expected and
    max scale.
    """
    groups = inventory.of_type(RESERVATION_GROUP)
    hours = float(facts.load("service_prices")["hours_per_month"])
    rows = []
    for reservation in inventory.of_type(RESERVATION):
        group = inventory.referenced(
            reservation,
            "capacityReservationGroupName",
            groups,
            name_inputs=("capacityReservationGroupName",),
        )
        size_name = reservation.get("sku.name")
        quantity = reservation.get("sku.capacity")
        region = inventory.region_of(reservation)
        size = _catalog_size(size_name)
        users = [
            pool
            for pool in pools
            if group is not None
            and pool.vm_size is not None
            and size is not None
            and pool.vm_size.lower() == size.name.lower()
            and _group_of(inventory, pool, groups) is group
        ]
        quantity = int(quantity) if isinstance(quantity, int | float) else None
        price = size.price(region) if size is not None and region else None
        row: dict[str, Any] = {
            "urn": reservation.urn,
            "group": group.name if group is not None else None,
            "vm_size": size.name if size is not None else size_name,
            "quantity": quantity,
            "zones": reservation.get("zones"),
            "region": region,
            "reserved_gpus": quantity * size.gpu_count if size and quantity else None,
            "pools": [pool.name for pool in users],
            "payg_per_hour": price,
            "monthly_if_idle": round(price * quantity * hours, 2) if price and quantity else None,
            "idle_monthly": None,
        }
        if price is not None and quantity is not None and all(p.counts_known for p in users):
            row["idle_monthly"] = {
                scale: round(
                    price * hours * max(0, quantity - sum(getattr(p, scale) for p in users)), 2
                )
                for scale in ("min", "expected", "max")
            }
        rows.append(row)
    return rows


def _catalog_size(name: Any) -> catalog.VmSize | None:
    if not isinstance(name, str):
        return None
    try:
        return catalog.lookup(name)
    except catalog.UnknownVmSizeError:
        return None


def _group_of(inventory: Inventory, pool: ComputePool, groups: Sequence[Any]) -> Any:
    resource = inventory.by_urn.get(pool.urn)
    reference = _GROUP_REFERENCE.get(pool.type) if resource is not None else None
    if resource is None or reference is None:
        return None
    top, path = reference
    wanted = set(resource.property_dependencies.get(top, ()))
    named = resource.get(path)
    if named is None and not wanted:
        return None
    for group in groups:
        if group.urn in wanted and named is not None:
            return group
        if isinstance(named, str) and group.id and group.id.lower() == named.lower():
            return group
    return None


def _add_reserved(
    pool_rows: list[dict[str, Any]], reservations: Sequence[Mapping[str, Any]]
) -> None:
    """Reserved GPUs next to each pool's maximum (a shared reservation shows on each pool)."""
    for row in pool_rows:
        held = [r for r in reservations if row["name"] in r["pools"] and r["reserved_gpus"]]
        row["reserved_gpus"] = sum(r["reserved_gpus"] for r in held) if held else 0


def _pool_key(pool: ComputePool) -> tuple[str, str]:
    return (pool.urn, pool.name)


def _pool_row(pool: ComputePool, domain: str | None) -> dict[str, Any]:
    size = pool.size
    gpus_per_node = size.gpu_count if size else 0
    vram_per_node = size.total_vram_gb if size else 0.0
    counted = size is not None and pool.counts_known

    def scaled(per_node: float) -> dict[str, Any]:
        if not counted:
            return {"min": None, "max": None}
        return {"min": per_node * pool.min, "max": per_node * pool.max}  # type: ignore[operator]

    return {
        "urn": pool.urn,
        "name": pool.name,
        "kind": pool.kind,
        "vm_size": pool.vm_size,
        "gpu_model": size.gpu_model if size else None,
        "region": pool.region,
        "min": pool.min,
        "max": pool.max,
        "gpus": scaled(gpus_per_node),
        "vram_gb": scaled(vram_per_node),
        "spot": pool.spot,
        "infiniband_domain": domain,
        # Catalog facts about the size no source confirmed (vm_sizes.yaml `unverified`).
        "unverified": list(size.unverified) if size else [],
    }


def _total(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, float]:
    return {
        "min": sum(row[key]["min"] for row in rows),
        "max": sum(row[key]["max"] for row in rows),
    }


def _infiniband_domains(pools: Sequence[ComputePool], warnings: list[str]) -> list[dict[str, Any]]:
    """Groups of pools whose nodes can reach each other over RDMA.

    InfiniBand connects VMs of one scale set in a single placement group, or of one availability
    set (DESIGN.md; https://learn.microsoft.com/azure/virtual-machines/setup-infiniband). Each
    AKS node pool is one scale set, so a pool is its own domain; pools never share one.
    """
    domains: dict[str, dict[str, Any]] = {}
    for pool in pools:
        size = pool.size
        if size is None or not size.has_infiniband:
            continue
        if pool.kind == "vm":
            if pool.availability_set is None:
                warnings.append(
                    f"{pool.name}: {size.name} has InfiniBand but a lone VM has no RDMA peer; "
                    "put VMs in one availability set or use a scale set"
                )
                continue
            domain_id = pool.availability_set
        else:
            if pool.kind == "scaleSet" and pool.single_placement_group is False:
                warnings.append(
                    f"{pool.name}: singlePlacementGroup is false, so InfiniBand reaches only "
                    "within each placement group, not across the scale set"
                )
            domain_id = f"{pool.urn}#{pool.name}" if pool.kind == "aksPool" else pool.urn
        domain = domains.setdefault(
            domain_id,
            {
                "id": domain_id,
                "fabric": size.infiniband,
                "pools": [],
                "pool_keys": [],
                "max_nodes": 0,
                "max_gpus": 0,
            },
        )
        limit = facts.load("policy_facts")["infiniband"]["single_placement_group_limit"]
        if pool.kind != "vm" and pool.max is not None and pool.max > limit:
            # One placement group holds `limit` VMs (more only through a support request):
            # beyond it the pool is several InfiniBand islands, not one domain.
            warnings.append(
                f"{pool.name}: up to {pool.max} {size.name} nodes, but InfiniBand spans one "
                f"placement group of at most {limit} VMs; the pool is not one RDMA domain"
            )
        domain["pools"].append(pool.name)
        domain["pool_keys"].append(_pool_key(pool))
        if pool.max is not None:
            domain["max_nodes"] += pool.max
            domain["max_gpus"] += pool.max * size.gpu_count
    return list(domains.values())


def _quota_needs(pools: Sequence[ComputePool]) -> list[dict[str, Any]]:
    """vCPUs each quota (family, regional total, regional spot) needs at min and max scale."""
    needs: dict[tuple[str, str], dict[str, Any]] = {}

    def add(region: str, family: str, description: str, vcpus_min: int, vcpus_max: int) -> None:
        key = (region, catalog.quota_family_key(family))
        row = needs.setdefault(
            key,
            {
                "family": family,
                "description": description,
                "region": region,
                "vcpus_min": 0,
                "vcpus_max": 0,
                "current": None,
                "limit": None,
                "shortfall": None,
            },
        )
        row["vcpus_min"] += vcpus_min
        row["vcpus_max"] += vcpus_max

    for pool in pools:
        size = pool.size
        if size is None or not pool.counts_known or pool.region is None:
            continue
        low, high = size.vcpus * pool.min, size.vcpus * pool.max  # type: ignore[operator]
        if pool.spot:
            add(pool.region, SPOT_CORES, "Total Regional Low-priority vCPUs", low, high)
        else:
            add(pool.region, size.quota_family, f"{size.series} series vCPUs", low, high)
            add(pool.region, REGIONAL_CORES, "Total Regional vCPUs", low, high)
    return sorted(
        needs.values(),
        key=lambda r: (r["region"], r["family"] in (REGIONAL_CORES, SPOT_CORES), r["family"]),
    )


def _usage_region(
    quota: Sequence[Mapping[str, Any]], quota_region: str | None, errors: list[str]
) -> str | None:
    if quota_region:
        return quota_region.lower()
    regions = sorted({row["region"] for row in quota})
    if len(regions) > 1:
        errors.append(
            f"quota: the plan uses {', '.join(regions)} and a list-usage file covers one region; "
            "say which with --quota-region"
        )
        return None
    return regions[0] if regions else None


def _check_quota(
    quota: Sequence[dict[str, Any]],
    region: str,
    usage: Sequence[QuotaUsage],
    errors: list[str],
    warnings: list[str],
) -> None:
    rows = {catalog.quota_family_key(u.name): u for u in usage}
    for need in quota:
        if need["region"] != region:
            continue
        found = rows.get(catalog.quota_family_key(need["family"]))
        if found is None:
            warnings.append(
                f"quota: {need['family']} is not in the list-usage file for {region}; the size "
                "may not be offered there (check `az vm list-skus --location "
                f"{region} --size <size>`)"
            )
            continue
        # Azure's spelling wins in the report.
        need["family"], need["description"] = found.name, found.description
        need["current"], need["limit"] = found.current, found.limit
        shortfall = found.current + need["vcpus_max"] - found.limit
        need["shortfall"] = max(shortfall, 0)
        if shortfall > 0:
            errors.append(
                f"quota: {found.description} ({found.name}) in {region}: the plan needs "
                f"{need['vcpus_max']} vCPUs at max scale, {found.current} are in use and the "
                f"limit is {found.limit}: short by {shortfall}. Request an increase "
                "(https://learn.microsoft.com/azure/quotas/per-vm-quota-requests) or lower "
                "maxCount."
            )


def unverified_lines(capacity: Mapping[str, Any]) -> list[str]:
    """One line per VM size whose catalog facts include unconfirmed ones, so a plan never
    presents a guess as a fact."""
    seen: dict[str, list[str]] = {}
    for row in capacity.get("pools", []):
        if row.get("unverified") and row["vm_size"]:
            seen.setdefault(row["vm_size"], row["unverified"])
    return [
        f"unverified catalog facts for {size}: {', '.join(fields)} (see vm_sizes.yaml)"
        for size, fields in sorted(seen.items())
    ]


def reservation_lines(capacity: Mapping[str, Any]) -> list[str]:
    """Report lines for the capacity reservations: reserved vs maximum GPUs per pool and the
    monthly bill of idle reserved slots (reservations bill whether used or not)."""
    lines = []
    pools = {row["name"]: row for row in capacity.get("pools", [])}
    for r in capacity.get("reservations", []):
        users = ", ".join(
            f"{name} reserved {r['reserved_gpus']} of max {pools[name]['gpus']['max']} GPUs"
            for name in r["pools"]
            if name in pools
        ) or "no pool uses it"
        full = "unpriced" if r["monthly_if_idle"] is None else f"${r['monthly_if_idle']:,.2f}"
        idle = r["idle_monthly"]
        idle_text = (
            "idle cost unknown"
            if idle is None
            else f"idle slots cost ${idle['min']:,.2f} / ${idle['expected']:,.2f} / "
            f"${idle['max']:,.2f} a month at min / expected / max scale"
        )
        lines.append(
            f"capacity reservation {r['group']}: {r['quantity']} x {r['vm_size']} in "
            f"{r['region']} ({users}); {full} a month if unused, {idle_text}"
        )
    return lines


__all__ = [
    "QuotaFileError",
    "QuotaUsage",
    "load_quota_usage",
    "parse_quota_usage",
    "plan_capacity",
    "reservation_lines",
    "unverified_lines",
]
