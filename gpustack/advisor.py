"""`gpustack catalog advise`: which sizes and regions can host N GPUs of a model, at what cost.

For each catalog size with whole GPUs of the wanted model (and InfiniBand when asked), and each
region the price snapshot prices it in (or each region asked for), it works out the nodes
needed, the vCPUs the quota must allow, the monthly cost at pay-as-you-go and spot, and how far
one InfiniBand domain (a single placement group) reaches. With `--quota-from` files
(`az vm list-usage --location <region> -o json`) it marks the regions the subscription can use
today. Every number comes from the catalog, the dated price snapshot and the data files.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpustack import catalog, facts
from gpustack import prices as price_snapshot
from gpustack.capacity import (
    REGIONAL_CORES,
    SPOT_CORES,
    QuotaFileError,
    QuotaUsage,
    load_quota_usage,
)


class AdviceError(ValueError):
    """The request cannot be answered (bad arguments, nothing matches); exit code 2."""


@dataclass(frozen=True)
class Placement:
    """One size in one region that can host the GPUs."""

    vm_size: str
    region: str
    gpu_model: str
    gpus_per_node: int
    nodes: int
    gpus: int
    vcpus: int
    quota_family: str
    infiniband: str | None
    # GPUs one InfiniBand domain (a single placement group) holds; None without InfiniBand.
    infiniband_domain_gpus: int | None
    infiniband_domain_gpus_on_request: int | None
    fits_one_infiniband_domain: bool | None
    payg_per_hour: float | None
    spot_per_hour: float | None
    payg_per_month: float | None
    spot_per_month: float | None
    price_source: str | None
    prices_as_of: str | None
    # With quota files: True/False when the region's usage is known, else None.
    quota_ok: bool | None
    quota_note: str | None
    unverified: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        data = asdict(self)
        data["unverified"] = list(self.unverified)
        return data


def advise(
    gpus: int,
    gpu_model: str,
    *,
    spot: bool = False,
    infiniband: bool = False,
    regions: Sequence[str] = (),
    quota: Mapping[str, Sequence[QuotaUsage]] | None = None,
) -> list[Placement]:
    """Every (size, region) that can host `gpus` GPUs of `gpu_model`, cheapest first."""
    if gpus < 1:
        raise AdviceError(f"--gpus must be at least 1, got {gpus}")
    wanted = gpu_model.strip().lower()
    models = sorted({s.gpu_model for s in catalog.all_sizes() if s.gpu_model})
    sizes = [
        s
        for s in catalog.all_sizes()
        if s.has_whole_gpus
        and s.gpu_model is not None
        and _model_matches(s.gpu_model, wanted)
        and (not infiniband or s.has_infiniband)
    ]
    if not sizes:
        ib = " with InfiniBand" if infiniband else ""
        raise AdviceError(
            f"no catalog size has whole {gpu_model} GPUs{ib}; GPU models: {', '.join(models)}"
        )
    hours = _hours_per_month()
    ib_facts = facts.load("policy_facts")["infiniband"]
    snapshot = price_snapshot.load_prices()
    asked = [r.strip().lower() for r in regions if r.strip()]
    placements: list[Placement] = []
    for size in sizes:
        nodes = math.ceil(gpus / size.gpu_count)
        priced = sorted(size.prices)
        for region in asked or priced:
            price = size.prices.get(region)
            entry = snapshot["prices"].get(size.name, {}).get(region)
            record = price_snapshot.row_source(snapshot, entry) if entry else None
            if spot and price is not None and price.spot is None:
                continue  # no spot meter: this size cannot run spot here
            domain = ib_facts["single_placement_group_limit"] * size.gpu_count
            domain_more = ib_facts["single_placement_group_limit_on_request"] * size.gpu_count
            family = SPOT_CORES if spot else size.quota_family
            vcpus = nodes * size.vcpus
            ok, note = _quota_check(quota, region, family, vcpus, spot)
            placements.append(
                Placement(
                    vm_size=size.name,
                    region=region,
                    gpu_model=size.gpu_model or "",
                    gpus_per_node=size.gpu_count,
                    nodes=nodes,
                    gpus=nodes * size.gpu_count,
                    vcpus=vcpus,
                    quota_family=family,
                    infiniband=size.infiniband,
                    infiniband_domain_gpus=domain if size.has_infiniband else None,
                    infiniband_domain_gpus_on_request=domain_more if size.has_infiniband else None,
                    fits_one_infiniband_domain=(
                        nodes * size.gpu_count <= domain if size.has_infiniband else None
                    ),
                    payg_per_hour=price.payg if price else None,
                    spot_per_hour=price.spot if price else None,
                    payg_per_month=_monthly(price.payg, nodes, hours) if price else None,
                    spot_per_month=(
                        _monthly(price.spot, nodes, hours) if price and price.spot else None
                    ),
                    price_source=record["name"] if record else None,
                    prices_as_of=record["as_of"] if record else None,
                    quota_ok=ok,
                    quota_note=note,
                    unverified=tuple(
                        f for f in size.unverified if f in {"quota_family", "gpu_count"}
                    ),
                )
            )
    if not placements:
        raise AdviceError(
            f"no priced region offers {gpu_model}"
            + (" spot capacity" if spot else "")
            + " in the price snapshot; widen --region or refresh prices"
        )
    return sorted(placements, key=lambda p: _sort_key(p, spot))


def _model_matches(model: str, wanted: str) -> bool:
    # "H100" matches "H100" and "H100 NVL", not "H200".
    return model.lower() == wanted or model.lower().split()[0] == wanted


def _hours_per_month() -> float:
    return float(facts.load("service_prices")["hours_per_month"])


def _monthly(per_hour: float, nodes: int, hours: float) -> float:
    return round(per_hour * nodes * hours, 2)


def _sort_key(p: Placement, spot: bool) -> tuple[Any, ...]:
    cost = p.spot_per_month if spot else p.payg_per_month
    return (cost is None, cost if cost is not None else 0.0, p.vm_size, p.region)


def _quota_check(
    quota: Mapping[str, Sequence[QuotaUsage]] | None,
    region: str,
    family: str,
    vcpus: int,
    spot: bool,
) -> tuple[bool | None, str | None]:
    if quota is None:
        return None, None
    usage = quota.get(region)
    if usage is None:
        return None, "no list-usage file for this region"
    rows = {catalog.quota_family_key(u.name): u for u in usage}
    needed = [family] if spot else [family, REGIONAL_CORES]
    for name in needed:
        row = rows.get(catalog.quota_family_key(name))
        if row is None:
            return False, f"{name} is not in the usage file (size not offered to you here?)"
        free = row.limit - row.current
        if free < vcpus:
            return False, f"{row.name}: {free} vCPUs free, {vcpus} needed"
    return True, None


# ---------------------------------------------------------------------------- CLI


def add_advise_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `catalog advise` options to `parser`."""
    parser.add_argument("--gpus", type=int, required=True, help="GPUs to host")
    parser.add_argument(
        "--gpu-model", required=True, metavar="MODEL", help="GPU model, e.g. H100, A100, MI300X"
    )
    parser.add_argument("--spot", action="store_true", help="price and quota for spot capacity")
    parser.add_argument("--ib", action="store_true", help="only sizes with InfiniBand")
    parser.add_argument(
        "--region",
        action="extend",
        nargs="+",
        default=[],
        metavar="REGION",
        help="only these regions (one or more, repeatable); default: every priced region",
    )
    parser.add_argument(
        "--quota-from",
        action="append",
        default=[],
        metavar="[REGION=]PATH",
        help="`az vm list-usage --location REGION -o json` output; REGION= may be left out "
        "with exactly one --region (repeatable)",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")


def run_advise(args: argparse.Namespace) -> int:
    """Print placements for `args`; exit 2 on any error."""
    try:
        quota = _read_quota(list(args.quota_from), list(args.region))
        found = advise(
            args.gpus,
            args.gpu_model,
            spot=args.spot,
            infiniband=args.ib,
            regions=args.region,
            quota=quota,
        )
    except (AdviceError, QuotaFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps([p.as_dict() for p in found], indent=2))
    else:
        print(advice_table(found, args.gpus, spot=args.spot, quota=quota is not None))
    return 0


def _read_quota(specs: Sequence[str], regions: Sequence[str]) -> dict[str, list[QuotaUsage]] | None:
    if not specs:
        return None
    quota: dict[str, list[QuotaUsage]] = {}
    for spec in specs:
        region, sep, path = spec.partition("=")
        if not sep:
            if len(regions) != 1:
                raise AdviceError(
                    f"--quota-from {spec}: a list-usage file covers one region; write "
                    "REGION=PATH, or give exactly one --region"
                )
            region, path = regions[0], spec
        quota[region.strip().lower()] = load_quota_usage(Path(path))
    return quota


def advice_table(
    found: Sequence[Placement], gpus: int, *, spot: bool = False, quota: bool = False
) -> str:
    """A fixed-width table of placements with the price dates and notes under it."""
    header = [
        "SIZE", "REGION", "NODES", "GPUs", "vCPUs", "QUOTA FAMILY", "IB DOMAIN GPUs",
        "PAYG $/month", "SPOT $/month",
    ]  # fmt: skip
    if quota:
        header.append("QUOTA")
    body = []
    for p in found:
        row = [
            p.vm_size,
            p.region,
            str(p.nodes),
            str(p.gpus),
            str(p.vcpus),
            p.quota_family + ("*" if "quota_family" in p.unverified else ""),
            _domain_cell(p),
            _money(p.payg_per_month),
            _money(p.spot_per_month),
        ]
        if quota:
            row.append({True: "ok", False: "short", None: "unknown"}[p.quota_ok])
        body.append(row)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    right = {2, 3, 4, 6, 7, 8}
    lines = [
        "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)
        ).rstrip()
        for r in [header, ["-" * w for w in widths], *body]
    ]
    lines.append("")
    lines.append(
        f"{gpus} GPUs wanted; monthly = nodes x hourly price x {_hours_per_month():g} h"
        + ("; sorted by spot cost" if spot else "; sorted by pay-as-you-go cost")
        + "."
    )
    dates = sorted({f"{p.price_source} as of {p.prices_as_of}" for p in found if p.price_source})
    lines += [f"Prices: {d}." for d in dates]
    if any(p.payg_per_month is None for p in found):
        lines.append("'-' : no offline price for that size in that region (refresh prices).")
    if any(p.unverified for p in found):
        lines.append("* quota family name not confirmed by a source; check `az vm list-usage`.")
    if any(p.fits_one_infiniband_domain is False for p in found):
        lines.append(
            "! more GPUs than one InfiniBand domain (single placement group) holds; split the job "
            "or request the larger placement group."
        )
    for p in found:
        if p.quota_note:
            lines.append(f"quota {p.vm_size} {p.region}: {p.quota_note}")
    return "\n".join(lines)


def _domain_cell(p: Placement) -> str:
    if p.infiniband_domain_gpus is None:
        return "-"
    mark = "" if p.fits_one_infiniband_domain else "!"
    return f"{p.infiniband_domain_gpus}{mark}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"
