"""Typed look-ups over the dated, sourced facts in `gpustack/data/*.yaml`.

Each data file names its sources and the date they were checked; this module only reads them.
An unknown key raises `KeyError` naming the file and listing the keys it does know.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

from gpustack import yaml_loader

DATA_DIR = Path(__file__).parent / "data"

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Azure region *names* as ARM spells them (`eastus`, `westeurope`, `southcentralus`).
_REGION = re.compile(r"^[a-z][a-z0-9]+$")
_REGION_PLACEHOLDER = "{region}"


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The parsed data file `gpustack/data/<name>.yaml`, read once per process."""
    path = DATA_DIR / f"{name}.yaml"
    data = yaml_loader.read(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _entry(file: str, section: str, key: str, what: str) -> dict[str, Any]:
    table: dict[str, Any] = load(file)[section]
    if key not in table:
        known = ", ".join(sorted(table))
        raise KeyError(
            f"unknown {what} {key!r} (gpustack/data/{file}.yaml, section {section!r}); "
            f"known: {known}"
        )
    entry: dict[str, Any] = table[key]
    return entry


# --- Private Link DNS ---------------------------------------------------------------------


def private_dns_zone(key: str, region: str | None = None) -> list[str]:
    """Private DNS zone names for a private-endpoint target, `{region}` filled in.

    `region` is the Azure region name (`eastus`); it is required for regional zones
    (`prometheus`, `aks`) and ignored otherwise.
    """
    zones: list[str] = _entry("private_dns_zones", "zones", key, "private DNS zone key")["zones"]
    if not any(_REGION_PLACEHOLDER in zone for zone in zones):
        return list(zones)
    if region is None:
        raise ValueError(
            f"private DNS zone {key!r} is regional ({zones[0]}): pass region=, the Azure region "
            "name such as 'eastus'"
        )
    if not _REGION.match(region):
        raise ValueError(
            f"region {region!r} is not an Azure region name: use the lowercase name such as "
            "'eastus' or 'westeurope', not the display name"
        )
    return [zone.replace(_REGION_PLACEHOLDER, region) for zone in zones]


def private_dns_group_id(key: str) -> str:
    """The private endpoint group id (sub-resource) for a target, e.g. `blob`, `registry`."""
    group_id: str = _entry("private_dns_zones", "zones", key, "private DNS zone key")["group_id"]
    return group_id


# --- Azure RBAC ---------------------------------------------------------------------------


def role_definition_id(key: str) -> str:
    """The bare GUID of a built-in role definition, e.g. `acr_pull` -> `7f951dda-...`."""
    role_id: str = _entry("role_definitions", "roles", key, "role key")["id"]
    return role_id


def role_definition_resource_id(subscription_id: str, key: str) -> str:
    """The ARM id a role assignment's `roleDefinitionId` takes, scoped to a subscription."""
    if not _GUID.match(subscription_id.lower()):
        raise ValueError(f"subscription_id {subscription_id!r} is not a GUID")
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{role_definition_id(key)}"
    )


def privileged_role_ids() -> frozenset[str]:
    """GUIDs of the roles Microsoft classes as privileged administrator roles."""
    roles: dict[str, Any] = load("role_definitions")["roles"]
    return frozenset(role["id"] for role in roles.values() if role["privileged"])


# --- AKS ----------------------------------------------------------------------------------


def supported_kubernetes_versions() -> list[str]:
    """AKS-supported Kubernetes minor versions (N-2 window) as of the data file's `as_of`."""
    return list(load("aks_versions")["supported_minor_versions"])


def default_kubernetes_version() -> str:
    """The minor version AKS picks when none is given (N-1)."""
    version: str = load("aks_versions")["default_minor_version"]
    return version


def aks_upgrade_channels() -> frozenset[str]:
    """Valid `autoUpgradeProfile.upgradeChannel` values."""
    return frozenset(load("aks_versions")["auto_upgrade_channels"]["values"])


def aks_node_os_upgrade_channels() -> frozenset[str]:
    """Valid `autoUpgradeProfile.nodeOSUpgradeChannel` values."""
    return frozenset(load("aks_versions")["node_os_upgrade_channels"]["values"])


# --- GPU telemetry ------------------------------------------------------------------------


def dcgm_metric_names() -> frozenset[str]:
    """DCGM exporter metric names the toolkit's alerts and dashboards may use."""
    return frozenset(load("dcgm_metrics")["metrics"])


def dcgm_exporter_port() -> int:
    """The port dcgm-exporter listens on by default."""
    port: int = load("dcgm_metrics")["exporter"]["default_port"]
    return port


# --- BlobFuse2 ----------------------------------------------------------------------------


def blobfuse2_required_keys() -> dict[str, list[str]]:
    """Keys BlobFuse2 requires, by config section (`top_level`, `azstorage`, `file_cache`)."""
    required: dict[str, Any] = load("blobfuse2")["required_keys"]
    return {
        section: copy.copy(keys) for section, keys in required.items() if isinstance(keys, list)
    }



# --- Azure Managed Lustre -----------------------------------------------------------------


def lustre_sku(sku: str) -> dict[str, int]:
    """MB/s per TiB and the capacities (min_tib, max_tib, increment_tib) a Lustre SKU takes."""
    skus: dict[str, Any] = load("serving")["managed_lustre"]["skus"]
    if sku not in skus:
        known = ", ".join(sorted(skus))
        raise KeyError(f"unknown Lustre SKU {sku!r} (gpustack/data/serving.yaml); known: {known}")
    return dict(skus[sku])


def lustre_aggregate_mbps(sku: str, capacity_tib: int) -> int:
    """Expected aggregate throughput (MB/s) of a file system: capacity x MB/s per TiB."""
    return capacity_tib * lustre_sku(sku)["mbps_per_tib"]


def lustre_subnet_prefix(capacity_tib: int) -> int:
    """The largest subnet prefix length Microsoft recommends for a file system this size.

    Above the table's last row (400 TiB) this toolkit asks for one step more, a /22.
    """
    rows: list[dict[str, int]] = load("serving")["managed_lustre"]["subnet_prefix_by_capacity"]
    for row in rows:
        if capacity_tib <= row["max_tib"]:
            return row["prefix"]
    return rows[-1]["prefix"] - 1
