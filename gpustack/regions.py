"""Azure region names as ARM spells them, from the sourced list in data/azure_regions.yaml."""

from __future__ import annotations

import difflib

from gpustack import facts


def azure_regions() -> list[str]:
    """Azure public-cloud region names (data/azure_regions.yaml, with its source and date)."""
    return list(facts.load("azure_regions")["regions"])


def availability_zone_regions() -> frozenset[str]:
    """Regions with availability zones (data/azure_regions.yaml, with its source and date)."""
    return frozenset(facts.load("azure_regions")["availability_zone_regions"]["regions"])


def check_region(value: str) -> str:
    """An Azure region name as ARM spells it (gpustack/data/azure_regions.yaml).

    Returns `value`; a ValueError suggests the closest known name.
    """
    regions = azure_regions()
    if value in regions:
        return value
    spelled = value.replace(" ", "").lower()
    if spelled in regions:
        raise ValueError(f"write the region name as ARM spells it: {spelled!r}, not {value!r}")
    close = difflib.get_close_matches(spelled, regions, n=1, cutoff=0.75)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{value!r} is not an Azure region name.{hint} Known regions (gpustack/data/"
        f"azure_regions.yaml): {', '.join(regions)}"
    )


__all__ = ["availability_zone_regions", "azure_regions", "check_region"]
