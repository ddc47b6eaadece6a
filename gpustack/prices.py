"""The project's dated VM price snapshot: build it, refresh it, write it, read it.

The snapshot (data/prices.json) holds USD per hour, Linux pay-as-you-go and spot, for the
catalog's sizes in a few regions. It is rebuilt offline from a dump of the Azure Retail Prices
API (the SkyPilot catalog CSV) or refreshed online from the API itself.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import json
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
SNAPSHOT_PATH = Path(__file__).parent / "data" / "prices.json"
# US regions where the GPU sizes we plan with are commonly offered; keep the snapshot small.
DEFAULT_REGIONS: tuple[str, ...] = ("eastus", "eastus2", "southcentralus", "westus2", "westus3")
CURRENCY = "USD"
UNIT = "per hour, Linux pay-as-you-go"
CSV_SOURCE = (
    "Azure Retail Prices API (https://prices.azure.com/api/retail/prices) via the SkyPilot "
    "catalog (skypilot-org/skypilot-catalog, catalogs/v6/azure/vms.csv)"
)
# The SkyPilot dump records no date; its prices match those Azure published during 2025.
CSV_AS_OF = "2025 (SkyPilot dump; exact date not recorded)"
_REQUEST_TIMEOUT_S = 30
_MAX_PAGES = 50


class PriceRefreshError(RuntimeError):
    """The Azure Retail Prices API could not be read; the snapshot was not changed."""


def build_snapshot_from_csv(
    path: str | Path,
    sizes: Iterable[str] | None = None,
    regions: Iterable[str] = DEFAULT_REGIONS,
) -> dict[str, Any]:
    """Build a snapshot from a SkyPilot-format CSV dump, for catalog sizes in `regions` only."""
    wanted_sizes = set(sizes) if sizes is not None else set(_catalog_size_names())
    region_order = list(regions)
    wanted_regions = set(region_order)
    prices: dict[str, dict[str, dict[str, float | None]]] = {}
    csv_path = Path(path)
    try:
        handle = csv_path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read price dump {csv_path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = {"InstanceType", "Price", "SpotPrice", "Region"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{csv_path} is not a SkyPilot Azure price dump: missing column(s) "
                f"{', '.join(sorted(missing))}"
            )
        for line_no, row in enumerate(reader, start=2):
            size, region = row["InstanceType"].strip(), row["Region"].strip().lower()
            if size not in wanted_sizes or region not in wanted_regions:
                continue
            payg = _parse_price(row["Price"], csv_path, line_no, "Price")
            if payg is None:
                continue  # an empty cell means no price was listed there: omit the region
            spot = _parse_price(row["SpotPrice"], csv_path, line_no, "SpotPrice")
            # The dump repeats the pay-as-you-go price when it found no spot meter.
            if spot is not None and spot == payg:
                spot = None
            entry = {"payg": payg, "spot": spot}
            previous = prices.setdefault(size, {}).get(region)
            if previous is not None and previous != entry:
                raise ValueError(
                    f"{csv_path}:{line_no}: {size} in {region} has two different prices "
                    f"({previous} and {entry}); deduplicate the dump before building"
                )
            prices[size][region] = entry
    return _snapshot(CSV_SOURCE, CSV_AS_OF, prices, region_order)


def refresh_from_retail_api(
    sizes: Iterable[str] | None = None,
    regions: Iterable[str] = DEFAULT_REGIONS,
) -> dict[str, Any]:
    """Fetch current prices for `sizes` in `regions` from the Azure Retail Prices API."""
    size_list = sorted(set(sizes) if sizes is not None else _catalog_size_names())
    region_order = list(regions)
    wanted_regions = set(region_order)
    prices: dict[str, dict[str, dict[str, float | None]]] = {}
    for size in size_list:
        # One query per size keeps every page small; regions are filtered here, not in OData.
        odata = (
            "serviceName eq 'Virtual Machines' and priceType eq 'Consumption' "
            f"and armSkuName eq '{size}'"
        )
        payg: dict[str, float] = {}
        spot: dict[str, float] = {}
        for item in _fetch_items(odata):
            region = str(item.get("armRegionName", "")).lower()
            if region not in wanted_regions or not _is_linux_meter(item):
                continue
            try:
                price = float(item.get("retailPrice", item.get("unitPrice", 0.0)))
            except (TypeError, ValueError):
                continue  # a meter without a usable price tells us nothing
            if price <= 0:
                continue
            sku_name = str(item.get("skuName", ""))
            bucket = spot if sku_name.endswith(" Spot") else payg
            bucket[region] = min(price, bucket.get(region, price))
        for region, payg_price in payg.items():
            spot_price = spot.get(region)
            if spot_price is not None and spot_price >= payg_price:
                spot_price = None
            prices.setdefault(size, {})[region] = {"payg": payg_price, "spot": spot_price}
    if not prices:
        raise PriceRefreshError(
            f"the Azure Retail Prices API returned no Linux prices for {len(size_list)} size(s) "
            f"in {', '.join(region_order)}; the snapshot was left untouched"
        )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return _snapshot(f"Azure Retail Prices API ({RETAIL_PRICES_URL})", today, prices, region_order)


def write_snapshot(snapshot: Mapping[str, Any], path: str | Path = SNAPSHOT_PATH) -> Path:
    """Write `snapshot` to `path` atomically, so a failure never leaves a partial file."""
    _validate_snapshot(snapshot, source="the snapshot to write")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(snapshot, indent=2, sort_keys=False) + "\n"
    # mkstemp creates the file 0600; the snapshot is package data everyone must read, so keep
    # the old file's mode, or give a new one the usual 0644.
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if target.resolve() == SNAPSHOT_PATH.resolve():
        load_prices.cache_clear()
    return target


@functools.cache
def load_prices() -> dict[str, Any]:
    """Read the package's price snapshot (data/prices.json) once."""
    try:
        snapshot = json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the price snapshot {SNAPSHOT_PATH}: {exc}") from exc
    _validate_snapshot(snapshot, source=str(SNAPSHOT_PATH))
    return snapshot


def add_prices_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `prices` subcommands (`refresh`) to `parser`."""
    commands = parser.add_subparsers(dest="prices_command", metavar="COMMAND")
    refresh = commands.add_parser(
        "refresh",
        help="rebuild the price snapshot (online from the Azure Retail Prices API, or --from-csv)",
        description=(
            "Rebuild the project's price snapshot for the catalog's sizes. Without --from-csv "
            "it queries the Azure Retail Prices API; offline, the snapshot is left untouched."
        ),
    )
    refresh.add_argument(
        "--from-csv",
        metavar="PATH",
        type=Path,
        help="build offline from a SkyPilot-format Azure price dump instead of the API",
    )
    refresh.add_argument(
        "--out",
        metavar="PATH",
        type=Path,
        default=SNAPSHOT_PATH,
        help=f"where to write the snapshot (default: {SNAPSHOT_PATH})",
    )
    refresh.add_argument(
        "--regions",
        metavar="LIST",
        default=",".join(DEFAULT_REGIONS),
        help="comma-separated Azure regions to keep (default: %(default)s)",
    )
    # `gpustack prices` alone prints refresh's own usage, so it can never leave an option out.
    parser.set_defaults(prices_usage=refresh.format_usage())


def run_prices(args: argparse.Namespace) -> int:
    """Run a `prices` subcommand; return the process exit code."""
    if getattr(args, "prices_command", None) != "refresh":
        usage = getattr(args, "prices_usage", "usage: gpustack prices refresh\n")
        print(usage, end="", file=sys.stderr)
        return 2
    regions = [r.strip().lower() for r in str(args.regions).split(",") if r.strip()]
    if not regions:
        print("error: --regions needs at least one region, e.g. eastus,westus3", file=sys.stderr)
        return 2
    try:
        if args.from_csv is not None:
            snapshot = build_snapshot_from_csv(args.from_csv, regions=regions)
        else:
            snapshot = refresh_from_retail_api(regions=regions)
    except (PriceRefreshError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        out = write_snapshot(snapshot, args.out)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    priced = len(snapshot["prices"])
    print(f"wrote {out}: {priced} priced size(s), as of {snapshot['as_of']}")
    return 0


def _catalog_size_names() -> list[str]:
    # Imported here because catalog.py imports this module; size_names() reads only the YAML,
    # so a missing or broken snapshot can still be rebuilt.
    from gpustack import catalog

    return catalog.size_names()


def _parse_price(cell: str | None, path: Path, line_no: int, column: str) -> float | None:
    text = (cell or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}:{line_no}: {column} {text!r} is not a number") from None
    if value <= 0:
        return None
    return value


def _is_linux_meter(item: Mapping[str, Any]) -> bool:
    product = str(item.get("productName", ""))
    sku_name = str(item.get("skuName", ""))
    # Windows meters carry " Windows" or, on some H100 series, " Win" in the product name.
    if " Windows" in product or product.endswith(" Win") or "Cloud Services" in product:
        return False
    return not sku_name.endswith(" Low Priority")


def _fetch_items(odata_filter: str) -> Iterable[Mapping[str, Any]]:
    query = urllib.parse.urlencode({"currencyCode": CURRENCY, "$filter": odata_filter})
    url: str | None = f"{RETAIL_PRICES_URL}?{query}"
    items: list[Mapping[str, Any]] = []
    pages = 0
    while url:
        pages += 1
        if pages > _MAX_PAGES:
            raise PriceRefreshError(
                f"the Azure Retail Prices API kept paging past {_MAX_PAGES} pages for "
                f"[{odata_filter}]; the snapshot was left untouched"
            )
        try:
            with urllib.request.urlopen(url, timeout=_REQUEST_TIMEOUT_S) as response:
                page = json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PriceRefreshError(
                f"could not read the Azure Retail Prices API ({RETAIL_PRICES_URL}): {reason}. "
                "The price snapshot was left untouched; retry with network access, or rebuild "
                "offline with `gpustack prices refresh --from-csv PATH`"
            ) from exc
        if not isinstance(page, dict):
            raise PriceRefreshError(
                f"the Azure Retail Prices API answered {RETAIL_PRICES_URL} with something other "
                "than a JSON object; the snapshot was left untouched"
            )
        items.extend(page.get("Items") or [])
        url = page.get("NextPageLink")
    return items


def _snapshot(
    source: str,
    as_of: str,
    prices: Mapping[str, Mapping[str, Mapping[str, float | None]]],
    region_order: list[str],
) -> dict[str, Any]:
    ordered = {
        size: {
            region: dict(prices[size][region]) for region in region_order if region in prices[size]
        }
        for size in sorted(prices)
    }
    return {
        "source": source,
        "as_of": as_of,
        "currency": CURRENCY,
        "unit": UNIT,
        "regions": region_order,
        "prices": ordered,
    }


def _validate_snapshot(snapshot: Mapping[str, Any], source: str) -> None:
    for key in ("source", "as_of", "currency", "unit", "prices"):
        if key not in snapshot:
            raise ValueError(f"{source}: missing key {key!r}")
    for size, regions in snapshot["prices"].items():
        for region, entry in regions.items():
            payg, spot = entry.get("payg"), entry.get("spot")
            if not isinstance(payg, int | float) or payg <= 0:
                raise ValueError(f"{source}: {size} in {region}: payg must be a positive number")
            if spot is not None and (not isinstance(spot, int | float) or spot <= 0):
                raise ValueError(f"{source}: {size} in {region}: spot must be null or positive")
