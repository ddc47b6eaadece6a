"""Typed lookups over the VM size catalog (data/vm_sizes.yaml) joined with the price snapshot.

Every fact comes from the data files, with its source and date there; this module only reads,
checks and presents them.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import sys
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from gpustack import prices as price_snapshot
from gpustack import yaml_loader

CATALOG_PATH = Path(__file__).parent / "data" / "vm_sizes.yaml"


@dataclass(frozen=True)
class RegionPrice:
    """USD per hour, Linux, in one region; `spot` is None where Azure has no spot meter."""

    payg: float
    spot: float | None


@dataclass(frozen=True)
class VmSize:
    """One Azure VM size with its hardware facts, quota family, sources and prices."""

    name: str
    series: str
    vcpus: int
    memory_gib: float
    gpu_model: str | None
    gpu_count: int
    gpu_memory_gb: float
    infiniband: str | None
    nvme_disks: int
    nvme_disk_gib: int
    temp_disk_gib: int
    max_ephemeral_os_disk_gib: int
    quota_family: str
    mig: bool
    driver: str | None
    gen2_required: bool
    accelerated_networking: bool
    encryption_at_host: bool
    zonal: bool
    sources: tuple[str, ...]
    prices: Mapping[str, RegionPrice] = field(
        default_factory=lambda: types.MappingProxyType({}), hash=False
    )
    premium_storage: bool = True
    # "NVIDIA", "AMD" or None: picks the driver extension, image and Kubernetes device plugin.
    gpu_vendor: str | None = None
    # 1 for whole GPUs; N when the VM gets 1/N of one GPU (vGPU partitions).
    gpu_partition: int = 1
    architecture: str = "x64"
    # On the On-demand Capacity Reservation supported list.
    capacity_reservation: bool = False
    # AKS gpuProfile.driver values usable on the size; empty means no AKS GPU pool.
    aks_gpu_drivers: tuple[str, ...] = ()
    preview: bool = False
    # Names of the fields above that no source could confirm (see the YAML comments).
    unverified: tuple[str, ...] = ()
    verified: str = ""

    @property
    def is_gpu(self) -> bool:
        """True when the size has at least one GPU."""
        return self.gpu_count > 0

    @property
    def gpu_fraction(self) -> float:
        """GPUs the VM gets, counting a 1/N partition as 1/N (0 for CPU sizes)."""
        return self.gpu_count / self.gpu_partition

    @property
    def has_whole_gpus(self) -> bool:
        """True when every GPU of the size is a whole, unshared device."""
        return self.is_gpu and self.gpu_partition == 1

    @property
    def has_infiniband(self) -> bool:
        """True when the size has an InfiniBand (RDMA) back-end network."""
        return self.infiniband is not None

    @property
    def total_vram_gb(self) -> float:
        """GPU memory across all GPUs of the size, in GB."""
        return self.gpu_count * self.gpu_memory_gb

    @property
    def nvme_total_gib(self) -> int:
        """Local NVMe capacity across all devices (0 when none, or per-disk size unknown)."""
        return self.nvme_disks * self.nvme_disk_gib

    def price(self, region: str, spot: bool = False) -> float | None:
        """USD per hour in `region` (pay-as-you-go, or spot), or None when not priced there."""
        regional = self.prices.get(region.lower())
        if regional is None:
            return None
        return regional.spot if spot else regional.payg


class UnknownVmSizeError(ValueError):
    """A VM size name the catalog does not know; the message lists every supported size."""

    def __init__(self, name: str, supported: Iterable[str]) -> None:
        self.size = name
        self.supported = tuple(supported)
        not_offered = not_offered_reason(name)
        if not_offered is not None:
            hint = f" It is not offered here: {not_offered}."
        else:
            close = difflib.get_close_matches(name, self.supported, n=1, cutoff=0.75)
            hint = f" Did you mean {close[0]}?" if close else ""
        super().__init__(
            f"unknown VM size {name!r}.{hint} Supported sizes: {', '.join(self.supported)}. "
            f"To add a size, give its facts and sources in {CATALOG_PATH.name}."
        )


def not_offered_reason(name: str) -> str | None:
    """Why a retired or non-Linux size is not in the catalog (with its source), else None."""
    for series, entry in (_raw_catalog().get("not_offered") or {}).items():
        if name.strip().lower() in {str(s).lower() for s in entry["sizes"]}:
            return f"{series} {entry['reason']} (source: {entry['source']})"
    return None


def not_offered_series() -> dict[str, dict[str, Any]]:
    """Series the catalog leaves out on purpose (retired, Windows-only), with reason and source."""
    return {k: dict(v) for k, v in (_raw_catalog().get("not_offered") or {}).items()}


def lookup(name: str) -> VmSize:
    """Return the catalog entry for an Azure size name such as "Standard_NC4as_T4_v3"."""
    sizes = _catalog()
    found = sizes.get(name.strip().lower())
    if found is None:
        raise UnknownVmSizeError(name, (size.name for size in sizes.values()))
    return found


def all_sizes() -> list[VmSize]:
    """Every catalog size, in file order (GPU series first, then CPU)."""
    return list(_catalog().values())


def size_names() -> list[str]:
    """Catalog size names, read from the YAML alone (no prices), e.g. to build a snapshot."""
    return [str(name) for name in _raw_catalog()["sizes"]]


def prices_as_of() -> str:
    """When the snapshot's prices were published, and when the snapshot was taken if that is
    another date (data/prices.json `as_of`, `retrieved`)."""
    snapshot = price_snapshot.load_prices()
    as_of, retrieved = str(snapshot["as_of"]), snapshot.get("retrieved")
    return as_of if not retrieved or retrieved == as_of else f"{as_of}, retrieved {retrieved}"


def has_prices(region: str) -> bool:
    """True when the offline price snapshot holds at least one price in `region`."""
    wanted = region.strip().lower()
    return any(
        wanted in per_region for per_region in price_snapshot.load_prices()["prices"].values()
    )


def snapshot_regions() -> list[str]:
    """Regions the price snapshot covers."""
    snapshot = price_snapshot.load_prices()
    regions = list(snapshot.get("regions") or [])
    for per_region in snapshot["prices"].values():
        regions.extend(r for r in per_region if r not in regions)
    return regions


def quota_family_key(family: str) -> str:
    """Normalise a quota family name for comparison (Azure spells them with varying case/spaces)."""
    return "".join(family.split()).lower()


def catalog_rows(
    region: str | None = None,
    gpu: str | None = None,
    infiniband: bool | None = None,
) -> list[VmSize]:
    """Sizes priced in `region`, whose GPU model contains `gpu`, with or without InfiniBand."""
    rows = all_sizes()
    if region is not None:
        rows = [s for s in rows if s.price(region) is not None]
    if gpu is not None:
        wanted = gpu.strip().lower()
        rows = [s for s in rows if s.gpu_model is not None and wanted in s.gpu_model.lower()]
    if infiniband is not None:
        rows = [s for s in rows if s.has_infiniband == infiniband]
    return rows


def catalog_json(sizes: Iterable[VmSize], region: str | None = None) -> list[dict[str, Any]]:
    """Plain-data view of `sizes` for JSON output; `region` keeps only that region's price."""
    out: list[dict[str, Any]] = []
    for size in sizes:
        regional = {
            r: {"payg": p.payg, "spot": p.spot}
            for r, p in size.prices.items()
            if region is None or r == region.lower()
        }
        out.append(
            {
                "name": size.name,
                "series": size.series,
                "vcpus": size.vcpus,
                "memory_gib": size.memory_gib,
                "gpu_model": size.gpu_model,
                "gpu_count": size.gpu_count,
                "gpu_memory_gb": size.gpu_memory_gb,
                "total_vram_gb": size.total_vram_gb,
                "infiniband": size.infiniband,
                "nvme_disks": size.nvme_disks,
                "nvme_disk_gib": size.nvme_disk_gib,
                "temp_disk_gib": size.temp_disk_gib,
                "max_ephemeral_os_disk_gib": size.max_ephemeral_os_disk_gib,
                "quota_family": size.quota_family,
                "mig": size.mig,
                "driver": size.driver,
                "gen2_required": size.gen2_required,
                "accelerated_networking": size.accelerated_networking,
                "encryption_at_host": size.encryption_at_host,
                "premium_storage": size.premium_storage,
                "zonal": size.zonal,
                "gpu_vendor": size.gpu_vendor,
                "gpu_partition": size.gpu_partition,
                "architecture": size.architecture,
                "capacity_reservation": size.capacity_reservation,
                "aks_gpu_drivers": list(size.aks_gpu_drivers),
                "preview": size.preview,
                "verified": size.verified,
                "unverified": list(size.unverified),
                "prices": regional,
                "prices_as_of": prices_as_of(),
                "sources": list(size.sources),
            }
        )
    return out


def catalog_table(sizes: Iterable[VmSize], region: str | None = None) -> str:
    """A fixed-width table of `sizes`; prices for `region`, else the lowest snapshot price."""
    rows = list(sizes)
    price_label = region.lower() if region else "lowest"
    header = (
        "SIZE", "vCPU", "MEM GiB", "GPU", "GB/GPU", "INFINIBAND", "NVMe GiB",
        "QUOTA FAMILY", "MIG", "DRIVER", f"PAYG $/h ({price_label})", "SPOT $/h",
    )  # fmt: skip
    body = [
        (
            s.name,
            str(s.vcpus),
            _number(s.memory_gib),
            _mark(s, "gpu_count", _gpu_cell(s)),
            _number(s.gpu_memory_gb) if s.is_gpu else "-",
            s.infiniband or "-",
            _mark(s, "nvme_disks", _mark(s, "nvme_disk_gib", _nvme_cell(s))),
            _mark(s, "quota_family", s.quota_family),
            _mark(s, "mig", "yes" if s.mig else "no"),
            _mark(s, "driver", s.driver or "-"),
            *_price_cells(s, region),
        )
        for s in rows
    ]
    right_aligned = {1, 2, 4, 10, 11}
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(line: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in right_aligned else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        return "  ".join(cells).rstrip()

    lines = [render(header), render(tuple("-" * w for w in widths))]
    lines.extend(render(line) for line in body)
    if not body:
        lines.append("(no sizes match)")
    snapshot = price_snapshot.load_prices()
    lines.append("")
    lines.append(
        f"Prices: {snapshot['currency']} {snapshot['unit']}; snapshot as of {snapshot['as_of']}; "
        "'-' means no price in the snapshot."
    )
    lines.append(f"Source: {snapshot['source']}.")
    if any(s.unverified for s in rows):
        lines.append(
            "* marks a fact no source confirmed (see `unverified` in --format json and the "
            f"comments in {CATALOG_PATH.name}); treat it as a guess to check."
        )
    return "\n".join(lines)


def add_catalog_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `catalog` options to `parser`."""
    parser.add_argument(
        "--region", help="only sizes priced in this Azure region (e.g. eastus); prices for it"
    )
    parser.add_argument("--gpu", metavar="MODEL", help="only sizes whose GPU model contains MODEL")
    parser.add_argument(
        "--infiniband",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="only sizes with (--infiniband) or without (--no-infiniband) InfiniBand",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    # `gpustack catalog advise ...`: a subcommand here keeps gpustack/cli.py unchanged.
    from gpustack import advisor  # advisor imports this module

    commands = parser.add_subparsers(dest="catalog_command", metavar="COMMAND")
    advise = commands.add_parser(
        "advise",
        help="sizes and regions that can host N GPUs of a model, with cost and quota",
        description=(
            "List the catalog sizes and snapshot regions that can host --gpus GPUs of "
            "--gpu-model: nodes, quota family and vCPUs, monthly pay-as-you-go and spot cost, "
            "and the InfiniBand domain limit; --quota-from marks regions usable today."
        ),
    )
    advisor.add_advise_arguments(advise)
    advise.set_defaults(handler=advisor.run_advise)


def run_catalog(args: argparse.Namespace) -> int:
    """Print the catalog filtered by `args`; return the process exit code."""
    region = args.region.strip().lower() if getattr(args, "region", None) else None
    if region is not None and region not in snapshot_regions():
        print(
            f"error: the price snapshot has no prices for region {region!r}; it covers "
            f"{', '.join(snapshot_regions())}. Add it with "
            f"`gpustack prices refresh --regions {','.join([*snapshot_regions(), region])}`.",
            file=sys.stderr,
        )
        return 2
    rows = catalog_rows(
        region=region, gpu=getattr(args, "gpu", None), infiniband=getattr(args, "infiniband", None)
    )
    if getattr(args, "format", "table") == "json":
        print(json.dumps(catalog_json(rows, region=region), indent=2))
    else:
        print(catalog_table(rows, region=region))
    return 0


# ---------------------------------------------------------------------------- loading and checks

_SIZE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "series": str,
    "vcpus": int,
    "memory_gib": (int, float),
    "gpu_model": (str, type(None)),
    "gpu_count": int,
    "gpu_memory_gb": (int, float),
    "infiniband": (str, type(None)),
    "nvme_disks": int,
    "nvme_disk_gib": int,
    "temp_disk_gib": int,
    "max_ephemeral_os_disk_gib": int,
    "quota_family": str,
    "mig": bool,
    "driver": (str, type(None)),
    "gen2_required": bool,
    "accelerated_networking": bool,
    "encryption_at_host": bool,
    "premium_storage": bool,
    "zonal": bool,
    "capacity_reservation": bool,
    "gpu_vendor": (str, type(None)),
    "gpu_partition": int,
    "architecture": str,
    "aks_gpu_drivers": list,
    "preview": bool,
    "sources": list,
}
# Fields a series may leave out, and the value they then take.
_OPTIONAL_DEFAULTS: dict[str, Any] = {
    "gpu_partition": 1,
    "architecture": "x64",
    "aks_gpu_drivers": [],
    "preview": False,
}
_VENDOR_DRIVERS = {"NVIDIA": {"CUDA", "GRID"}, "AMD": {"ROCm"}}
# Keys the YAML may carry besides the fields: documentation and cross-checks.
_EXTRA_KEYS = {"ephemeral_os_disk", "unverified", "verified"}
_FIELD_NAMES = {f.name for f in fields(VmSize)}


@functools.cache
def _raw_catalog() -> dict[str, Any]:
    try:
        raw = yaml_loader.read(CATALOG_PATH)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the VM size catalog {CATALOG_PATH}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("sizes"), dict):
        raise ValueError(f"{CATALOG_PATH}: expected top-level 'series' and 'sizes' mappings")
    return raw


@functools.cache
def _catalog() -> dict[str, VmSize]:
    raw = _raw_catalog()
    series_map: dict[str, dict[str, Any]] = raw.get("series") or {}
    default_verified = str(raw.get("verified", ""))
    snapshot = price_snapshot.load_prices()
    sizes: dict[str, VmSize] = {}
    for name, own in raw["sizes"].items():
        sizes[name.lower()] = _build_size(name, own or {}, series_map, default_verified, snapshot)
    for priced in snapshot["prices"]:
        if priced.lower() not in sizes:
            raise ValueError(
                f"{price_snapshot.SNAPSHOT_PATH}: prices {priced!r}, which is not in "
                f"{CATALOG_PATH.name}; add the size to the catalog or rebuild the snapshot"
            )
    return sizes


def _build_size(
    name: str,
    own: Mapping[str, Any],
    series_map: Mapping[str, Mapping[str, Any]],
    default_verified: str,
    snapshot: Mapping[str, Any],
) -> VmSize:
    where = f"{CATALOG_PATH.name}: sizes.{name}"
    series_name = own.get("series")
    if series_name not in series_map:
        raise ValueError(f"{where}.series: {series_name!r} is not defined under 'series'")
    merged: dict[str, Any] = {**_OPTIONAL_DEFAULTS, **series_map[series_name], **own}
    # A size adds to its series' list of unverified facts rather than replacing it.
    unverified = [*series_map[series_name].get("unverified", []), *own.get("unverified", [])]
    unknown = set(merged) - set(_SIZE_FIELDS) - _EXTRA_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key, expected in _SIZE_FIELDS.items():
        if key not in merged:
            raise ValueError(f"{where}: missing {key!r} (set it on the size or its series)")
        value = merged[key]
        # bool is an int subclass; a count written as `true` is a typo, not a number.
        if isinstance(value, bool) and expected in (int, (int, float)):
            raise ValueError(f"{where}.{key}: expected a number, got {value!r}")
        if not isinstance(value, expected):
            raise ValueError(f"{where}.{key}: unexpected value {value!r}")
    bad_unverified = set(unverified) - _FIELD_NAMES
    if bad_unverified:
        raise ValueError(f"{where}.unverified: not field names: {sorted(bad_unverified)}")
    vendor, driver = merged["gpu_vendor"], merged["driver"]
    if (vendor is None) != (driver is None) or (
        vendor is not None and driver not in _VENDOR_DRIVERS.get(vendor, set())
    ):
        raise ValueError(f"{where}: driver {driver!r} does not fit gpu_vendor {vendor!r}")
    if merged["gpu_partition"] < 1 or (merged["gpu_partition"] > 1 and merged["gpu_count"] != 1):
        raise ValueError(f"{where}.gpu_partition: a partitioned GPU is one GPU split N ways")
    if set(merged["aks_gpu_drivers"]) - {"Install", "None"}:
        raise ValueError(f"{where}.aks_gpu_drivers: only Install and None are AKS driver values")
    if merged.get("ephemeral_os_disk") is False and merged["max_ephemeral_os_disk_gib"] != 0:
        raise ValueError(f"{where}: ephemeral OS disks unsupported, so max size must be 0")
    regional = snapshot["prices"].get(name, {})
    return VmSize(
        name=name,
        series=series_name,
        vcpus=merged["vcpus"],
        memory_gib=float(merged["memory_gib"]),
        gpu_model=merged["gpu_model"],
        gpu_count=merged["gpu_count"],
        gpu_memory_gb=float(merged["gpu_memory_gb"]),
        infiniband=merged["infiniband"],
        nvme_disks=merged["nvme_disks"],
        nvme_disk_gib=merged["nvme_disk_gib"],
        temp_disk_gib=merged["temp_disk_gib"],
        max_ephemeral_os_disk_gib=merged["max_ephemeral_os_disk_gib"],
        quota_family=merged["quota_family"],
        mig=merged["mig"],
        driver=merged["driver"],
        gen2_required=merged["gen2_required"],
        accelerated_networking=merged["accelerated_networking"],
        encryption_at_host=merged["encryption_at_host"],
        zonal=merged["zonal"],
        sources=tuple(str(url) for url in merged["sources"]),
        prices=types.MappingProxyType(
            {
                region.lower(): RegionPrice(payg=float(p["payg"]), spot=_optional_float(p["spot"]))
                for region, p in regional.items()
            }
        ),
        premium_storage=merged["premium_storage"],
        gpu_vendor=merged["gpu_vendor"],
        gpu_partition=merged["gpu_partition"],
        architecture=merged["architecture"],
        capacity_reservation=merged["capacity_reservation"],
        aks_gpu_drivers=tuple(str(d) for d in merged["aks_gpu_drivers"]),
        preview=merged["preview"],
        unverified=tuple(dict.fromkeys(unverified)),
        verified=str(merged.get("verified", default_verified)),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _gpu_cell(size: VmSize) -> str:
    if not size.gpu_model:
        return "-"
    if size.gpu_partition > 1:
        return f"1/{size.gpu_partition} {size.gpu_model}"
    return f"{size.gpu_count}x {size.gpu_model}"


def _mark(size: VmSize, field_name: str, cell: str) -> str:
    """Append `*` to a cell whose fact is unverified (once, however many fields it shows)."""
    if field_name in size.unverified and not cell.endswith("*"):
        return f"{cell}*"
    return cell


def _nvme_cell(size: VmSize) -> str:
    if size.nvme_disks == 0:
        return "-"
    per_disk = str(size.nvme_disk_gib) if size.nvme_disk_gib else "?"
    return f"{size.nvme_disks}x{per_disk}"


def _price_cells(size: VmSize, region: str | None) -> tuple[str, str]:
    if region is not None:
        regional = size.prices.get(region.lower())
    else:
        regional = min(size.prices.values(), key=lambda p: p.payg, default=None)
    if regional is None:
        return "-", "-"
    spot = _money(regional.spot) if regional.spot is not None else "-"
    return _money(regional.payg), spot


def _money(value: float) -> str:
    # Spot prices of small sizes are fractions of a cent; keep four significant decimals there.
    return f"{value:.3f}" if value >= 1 else f"{value:.4f}"
