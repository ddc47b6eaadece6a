"""The project's dated VM price snapshot: build it, refresh it, write it, read it.

The snapshot (data/prices.json) holds USD per hour, Linux pay-as-you-go and spot, for the
catalog's sizes in every region its source lists them. It is rebuilt offline from a dump of the
Azure Retail Prices API (the SkyPilot catalog CSV) or refreshed online from the API itself. Each
price row names its source (a key of `sources`, which records the URL and the date the prices
were published or fetched), so a merged or partly refreshed snapshot stays traceable.
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
CURRENCY = "USD"
UNIT = "per hour, Linux pay-as-you-go"
CSV_SOURCE = (
    "Azure Retail Prices API (https://prices.azure.com/api/retail/prices) via the SkyPilot "
    "catalog (skypilot-org/skypilot-catalog, catalogs/v6/azure/vms.csv)"
)
# The SkyPilot dump records no date; its prices match those Azure published during 2025.
CSV_AS_OF = "2025 (SkyPilot dump; exact date not recorded)"
# When this project took the dump (../shared/data/azure_vm_prices.csv) and built the snapshot.
CSV_RETRIEVED = "2026-11-25"
CSV_SOURCE_KEY = "skypilot-csv"
API_SOURCE_KEY = "azure-retail-api"
_REQUEST_TIMEOUT_S = 30
_MAX_PAGES = 50


class PriceRefreshError(RuntimeError):
    """The Azure Retail Prices API could not be read; the snapshot was not changed."""


def build_snapshot_from_csv(
    path: str | Path,
    sizes: Iterable[str] | None = None,
    regions: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Build a snapshot from a SkyPilot-format CSV dump: catalog sizes, all regions by default."""
    wanted_sizes = set(sizes) if sizes is not None else set(_catalog_size_names())
    wanted_regions = {r.lower() for r in regions} if regions is not None else None
    prices: dict[str, dict[str, dict[str, float | str | None]]] = {}
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
            if size not in wanted_sizes or (
                wanted_regions is not None and region not in wanted_regions
            ):
                continue
            payg = _parse_price(row["Price"], csv_path, line_no, "Price")
            if payg is None:
                continue  # an empty cell means no price was listed there: omit the region
            spot = _parse_price(row["SpotPrice"], csv_path, line_no, "SpotPrice")
            # The dump repeats the pay-as-you-go price when it found no spot meter.
            if spot is not None and spot == payg:
                spot = None
            entry: dict[str, float | str | None] = {
                "payg": payg,
                "spot": spot,
                "source": CSV_SOURCE_KEY,
            }
            previous = prices.setdefault(size, {}).get(region)
            if previous is not None and previous != entry:
                raise ValueError(
                    f"{csv_path}:{line_no}: {size} in {region} has two different prices "
                    f"({previous} and {entry}); deduplicate the dump before building"
                )
            prices[size][region] = entry
    source = {"name": CSV_SOURCE, "as_of": CSV_AS_OF, "retrieved": CSV_RETRIEVED}
    return _snapshot({CSV_SOURCE_KEY: source}, CSV_SOURCE_KEY, prices)


def refresh_from_retail_api(
    sizes: Iterable[str] | None = None,
    regions: Iterable[str] | None = None,
    today: str | None = None,
) -> dict[str, Any]:
    """Fetch current prices for `sizes` from the Azure Retail Prices API, in every region it
    lists (or only `regions`); `today` overrides the recorded fetch date (tests)."""
    size_list = sorted(set(sizes) if sizes is not None else _catalog_size_names())
    wanted_regions = {r.lower() for r in regions} if regions is not None else None
    prices: dict[str, dict[str, dict[str, float | str | None]]] = {}
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
            if not region or (wanted_regions is not None and region not in wanted_regions):
                continue
            if not _is_linux_meter(item):
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
            prices.setdefault(size, {})[region] = {
                "payg": payg_price,
                "spot": spot_price,
                "source": API_SOURCE_KEY,
            }
    where = ", ".join(sorted(wanted_regions)) if wanted_regions is not None else "any region"
    if not prices:
        raise PriceRefreshError(
            f"the Azure Retail Prices API returned no Linux prices for {len(size_list)} size(s) "
            f"in {where}; the snapshot was left untouched"
        )
    fetched = today or dt.datetime.now(dt.UTC).date().isoformat()
    source = {"name": f"Azure Retail Prices API ({RETAIL_PRICES_URL})", "as_of": fetched,
              "retrieved": fetched}  # fmt: skip
    return _snapshot({API_SOURCE_KEY: source}, API_SOURCE_KEY, prices)


def write_snapshot(snapshot: Mapping[str, Any], path: str | Path = SNAPSHOT_PATH) -> Path:
    """Write `snapshot` to `path` atomically, so a failure never leaves a partial file."""
    _validate_snapshot(snapshot, source="the snapshot to write")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = snapshot_text(snapshot)
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


def snapshot_text(snapshot: Mapping[str, Any]) -> str:
    """The snapshot as written to disk: indented, but one line per size and region price row,
    which keeps a file covering every region small and its diffs readable."""
    head = {key: value for key, value in snapshot.items() if key != "prices"}
    lines = json.dumps(head, indent=2).rstrip("}").rstrip().splitlines()
    lines[-1] += ","
    lines.append('  "prices": {')
    sizes = list(snapshot["prices"].items())
    for index, (size, regions) in enumerate(sizes):
        lines.append(f"    {json.dumps(size)}: {{")
        rows = list(regions.items())
        for row_index, (region, entry) in enumerate(rows):
            comma = "," if row_index < len(rows) - 1 else ""
            lines.append(f"      {json.dumps(region)}: {json.dumps(entry)}{comma}")
        lines.append("    }" + ("," if index < len(sizes) - 1 else ""))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def row_source(snapshot: Mapping[str, Any], entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `sources` record (name, as_of, retrieved) a price row came from."""
    return snapshot["sources"][entry["source"]]


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
        default=None,
        help="comma-separated Azure regions to keep (default: every region the source lists)",
    )
    # `gpustack prices` alone prints refresh's own usage, so it can never leave an option out.
    parser.set_defaults(prices_usage=refresh.format_usage())


def run_prices(args: argparse.Namespace) -> int:
    """Run a `prices` subcommand; return the process exit code."""
    if getattr(args, "prices_command", None) != "refresh":
        usage = getattr(args, "prices_usage", "usage: gpustack prices refresh\n")
        print(usage, end="", file=sys.stderr)
        return 2
    regions: list[str] | None = None
    if args.regions is not None:
        regions = [r.strip().lower() for r in str(args.regions).split(",") if r.strip()]
        if not regions:
            print(
                "error: --regions needs at least one region, e.g. eastus,westus3", file=sys.stderr
            )
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
    sources: Mapping[str, Mapping[str, str]],
    main_source: str,
    prices: Mapping[str, Mapping[str, Mapping[str, float | str | None]]],
) -> dict[str, Any]:
    """Sizes and regions sorted, so the same input always gives the same bytes."""
    ordered = {
        size: {region: dict(prices[size][region]) for region in sorted(prices[size])}
        for size in sorted(prices)
    }
    regions = sorted({region for per_region in prices.values() for region in per_region})
    return {
        "source": sources[main_source]["name"],
        "as_of": sources[main_source]["as_of"],
        "retrieved": sources[main_source]["retrieved"],
        "currency": CURRENCY,
        "unit": UNIT,
        "sources": {key: dict(value) for key, value in sorted(sources.items())},
        "regions": regions,
        "prices": ordered,
    }


def _validate_snapshot(snapshot: Mapping[str, Any], source: str) -> None:
    for key in ("source", "as_of", "currency", "unit", "prices"):
        if key not in snapshot:
            raise ValueError(f"{source}: missing key {key!r}")
    row_sources = snapshot.get("sources") or {}
    for key, record in row_sources.items():
        if not isinstance(record, Mapping) or not {"name", "as_of"} <= set(record):
            raise ValueError(f"{source}: sources.{key} needs a name and an as_of date")
    for size, regions in snapshot["prices"].items():
        for region, entry in regions.items():
            if "source" in entry and entry["source"] not in row_sources:
                raise ValueError(
                    f"{source}: {size} in {region}: source {entry['source']!r} is not a key of "
                    "`sources`"
                )
            payg, spot = entry.get("payg"), entry.get("spot")
            if not isinstance(payg, int | float) or payg <= 0:
                raise ValueError(f"{source}: {size} in {region}: payg must be a positive number")
            if spot is not None and (not isinstance(spot, int | float) or spot <= 0):
                raise ValueError(f"{source}: {size} in {region}: spot must be null or positive")
