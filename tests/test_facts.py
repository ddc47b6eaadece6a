"""The sourced facts in gpustack/data and their loaders in gpustack.facts."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any

import pytest

from gpustack import facts

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SUB = "00000000-1111-2222-3333-444444444444"


def _assert_sourced(where: str, entry: dict[str, Any], inherited_source: str | None = None) -> None:
    source = entry.get("source", inherited_source)
    assert isinstance(source, str), f"{where}: no source"
    assert source.startswith("https://"), f"{where}: source {source!r} is not a URL"
    has_date = isinstance(entry.get("verified"), dt.date)
    assert has_date or entry.get("unverified"), f"{where}: neither verified date nor unverified"


# --- Private DNS zones ----------------------------------------------------------------------

ZONES = facts.load("private_dns_zones")["zones"]


def test_every_zone_entry_names_its_source_and_date() -> None:
    for key, entry in ZONES.items():
        _assert_sourced(f"private_dns_zones.{key}", entry)
        assert entry["group_id"], key
        assert re.match(r"^Microsoft\.[A-Za-z]+/[A-Za-z]+$", entry["resource_type"]), key


def test_every_private_dns_zone_name_starts_with_privatelink() -> None:
    for key, entry in ZONES.items():
        assert entry["zones"], key
        for zone in entry["zones"]:
            assert zone.startswith("privatelink."), f"{key}: {zone}"


def test_region_placeholders_are_filled() -> None:
    for key in ZONES:
        for zone in facts.private_dns_zone(key, region="swedencentral"):
            assert "{" not in zone and "}" not in zone, f"{key}: {zone}"
    assert facts.private_dns_zone("prometheus", "eastus") == [
        "privatelink.eastus.prometheus.monitor.azure.com"
    ]
    assert facts.private_dns_zone("aks", "westeurope") == ["privatelink.westeurope.azmk8s.io"]


def test_regional_zone_without_region_is_refused() -> None:
    with pytest.raises(ValueError, match="region="):
        facts.private_dns_zone("prometheus")


def test_region_display_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not an Azure region name"):
        facts.private_dns_zone("aks", "East US")


def test_global_zone_ignores_region() -> None:
    assert facts.private_dns_zone("blob") == ["privatelink.blob.core.windows.net"]
    assert facts.private_dns_zone("blob", "eastus") == ["privatelink.blob.core.windows.net"]


def test_zone_list_is_a_copy() -> None:
    facts.private_dns_zone("vault").append("mutated")
    assert facts.private_dns_zone("vault") == ["privatelink.vaultcore.azure.net"]


@pytest.mark.parametrize(
    ("key", "group_id"),
    [
        ("blob", "blob"),
        ("dfs", "dfs"),
        ("vault", "vault"),
        ("acr", "registry"),
        ("azure_monitor", "azuremonitor"),
        ("prometheus", "prometheusMetrics"),
        ("aks", "management"),
        ("grafana", "grafana"),
        ("apim", "gateway"),
    ],
)
def test_group_ids_are_the_private_link_sub_resources(key: str, group_id: str) -> None:
    assert facts.private_dns_group_id(key) == group_id


def test_ampls_needs_all_azure_monitor_zones_and_shares_the_blob_zone() -> None:
    zones = facts.private_dns_zone("azure_monitor")
    for zone in (
        "privatelink.monitor.azure.com",
        "privatelink.oms.opinsights.azure.com",
        "privatelink.ods.opinsights.azure.com",
        "privatelink.agentsvc.azure-automation.net",
    ):
        assert zone in zones
    assert set(facts.private_dns_zone("blob")) <= set(zones)


def test_unknown_zone_key_lists_known_keys() -> None:
    with pytest.raises(KeyError) as caught:
        facts.private_dns_zone("blobs")
    message = str(caught.value)
    assert "'blobs'" in message
    assert "private_dns_zones.yaml" in message
    for known in ("blob", "dfs", "vault", "acr", "prometheus"):
        assert known in message


# --- Role definitions -----------------------------------------------------------------------

ROLES = facts.load("role_definitions")["roles"]


def test_every_role_id_is_a_lowercase_guid_and_unique() -> None:
    ids = [role["id"] for role in ROLES.values()]
    for key, role in ROLES.items():
        assert GUID.match(role["id"]), f"{key}: {role['id']}"
        _assert_sourced(f"role_definitions.{key}", role)
        assert isinstance(role["privileged"], bool), key
        assert role["grants"] and "\n" not in role["grants"].strip(), key
    assert len(ids) == len(set(ids))
    names = [role["name"] for role in ROLES.values()]
    assert len(names) == len(set(names))


def test_privileged_roles_are_exactly_owner_contributor_and_user_access_administrator() -> None:
    by_name = {role["name"]: role["id"] for role in ROLES.values()}
    expected = {by_name["Owner"], by_name["Contributor"], by_name["User Access Administrator"]}
    assert facts.privileged_role_ids() == expected


def test_role_definition_id_is_the_bare_guid() -> None:
    assert facts.role_definition_id("acr_pull") == "7f951dda-4ed3-4680-a7ca-43fe172d538d"
    assert facts.role_definition_id("owner") == "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"


def test_role_definition_resource_id_is_subscription_scoped() -> None:
    assert facts.role_definition_resource_id(SUB, "storage_blob_data_reader") == (
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
    )


def test_role_definition_resource_id_refuses_a_non_guid_subscription() -> None:
    with pytest.raises(ValueError, match="not a GUID"):
        facts.role_definition_resource_id("my-subscription", "reader")


def test_unknown_role_key_lists_known_keys() -> None:
    with pytest.raises(KeyError) as caught:
        facts.role_definition_id("AcrPull")
    message = str(caught.value)
    assert "'AcrPull'" in message
    assert "acr_pull" in message and "owner" in message


def test_every_role_the_brief_needs_is_present() -> None:
    needed = {
        "Storage Blob Data Reader", "Storage Blob Data Contributor", "Storage Blob Data Owner",
        "Key Vault Secrets User", "Key Vault Crypto Service Encryption User",
        "Key Vault Administrator", "AcrPull", "AcrPush", "Monitoring Metrics Publisher",
        "Monitoring Reader", "Monitoring Data Reader", "Grafana Admin", "Grafana Viewer",
        "Network Contributor", "Managed Identity Operator", "Virtual Machine Contributor",
        "Azure Kubernetes Service RBAC Cluster Admin", "Azure Kubernetes Service RBAC Writer",
        "Azure Kubernetes Service Cluster User Role", "Owner", "Contributor",
        "User Access Administrator", "Reader",
    }  # fmt: skip
    assert needed <= {role["name"] for role in ROLES.values()}


# --- AKS versions ---------------------------------------------------------------------------

AKS = facts.load("aks_versions")


def _month_start(value: str) -> dt.date:
    return dt.date.fromisoformat(f"{value[:7]}-01")


def _end_of_life(value: str) -> dt.date:
    # The page: a bare month means the last day of that month.
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    start = _month_start(value)
    return start.replace(day=calendar.monthrange(start.year, start.month)[1])


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def test_supported_versions_are_the_n_minus_2_window_at_as_of() -> None:
    as_of = _month_start(AKS["as_of"])
    ga = sorted(
        (v for v, row in AKS["calendar"].items() if _month_start(row["aks_ga"]) <= as_of),
        key=_minor,
    )
    assert facts.supported_kubernetes_versions() == ga[-3:]
    for version in facts.supported_kubernetes_versions():
        assert _end_of_life(AKS["calendar"][version]["end_of_life"]) >= as_of, version


def test_default_version_is_n_minus_1_and_supported() -> None:
    supported = sorted(facts.supported_kubernetes_versions(), key=_minor)
    assert facts.default_kubernetes_version() == supported[-2]


def test_supported_versions_are_minor_versions() -> None:
    for version in facts.supported_kubernetes_versions():
        assert re.match(r"^1\.\d+$", version), version


def test_upgrade_channels_match_the_aks_api_values() -> None:
    assert facts.aks_upgrade_channels() == {"none", "patch", "stable", "rapid", "node-image"}
    assert facts.aks_node_os_upgrade_channels() == {
        "None", "Unmanaged", "SecurityPatch", "NodeImage"
    }  # fmt: skip
    assert AKS["auto_upgrade_channels"]["default"] in facts.aks_upgrade_channels()
    assert AKS["node_os_upgrade_channels"]["default"] in facts.aks_node_os_upgrade_channels()
    _assert_sourced("auto_upgrade_channels", AKS["auto_upgrade_channels"])
    _assert_sourced("node_os_upgrade_channels", AKS["node_os_upgrade_channels"])


# --- DCGM -----------------------------------------------------------------------------------

DCGM = facts.load("dcgm_metrics")


def test_dcgm_metric_names_start_with_dcgm_fi() -> None:
    names = facts.dcgm_metric_names()
    assert names
    for name in names:
        assert re.match(r"^DCGM_FI_(DEV|PROF)_[A-Z0-9_]+$", name), name


def test_dcgm_metrics_have_a_prometheus_type_unit_and_date() -> None:
    for name, metric in DCGM["metrics"].items():
        assert metric["type"] in {"gauge", "counter"}, name
        assert metric["unit"], name
        assert isinstance(metric["in_default_counters"], bool), name
        _assert_sourced(f"dcgm_metrics.{name}", metric, DCGM["source"])


def test_dcgm_metrics_used_by_alerts_are_known() -> None:
    needed = {
        "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "DCGM_FI_DEV_MEM_COPY_UTIL",
    }  # fmt: skip
    assert needed <= facts.dcgm_metric_names()


def test_ecc_counters_are_not_in_the_default_csv() -> None:
    # Alerts on ECC must ship their own collector CSV; this pins that knowledge.
    metrics = DCGM["metrics"]
    assert metrics["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"]["in_default_counters"] is False
    assert metrics["DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"]["in_default_counters"] is False
    assert metrics["DCGM_FI_DEV_XID_ERRORS"]["type"] == "gauge"


def test_dcgm_exporter_port_and_labels() -> None:
    assert facts.dcgm_exporter_port() == 9400
    for label in ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "pod"):
        assert label in DCGM["labels"], label


# --- BlobFuse2 ------------------------------------------------------------------------------

BLOBFUSE = facts.load("blobfuse2")


def test_blobfuse2_required_keys() -> None:
    required = facts.blobfuse2_required_keys()
    assert required["top_level"] == ["components"]
    assert {"account-name", "container", "mode"} <= set(required["azstorage"])
    assert required["file_cache"] == ["path"]
    assert "source" not in required


def test_blobfuse2_required_keys_is_a_copy() -> None:
    facts.blobfuse2_required_keys()["azstorage"].append("mutated")
    assert "mutated" not in facts.blobfuse2_required_keys()["azstorage"]


def test_block_cache_pipeline_follows_the_priority_order() -> None:
    components = BLOBFUSE["components"]
    order = components["priority_order"]
    for pipeline in (components["block_cache_pipeline"], components["file_cache_pipeline"]):
        assert pipeline[0] == "libfuse" and pipeline[-1] == "azstorage"
        positions = [order.index(component) for component in pipeline]
        assert positions == sorted(positions), pipeline


def test_required_keys_exist_in_their_sections() -> None:
    sections = BLOBFUSE["sections"]
    for section, keys in facts.blobfuse2_required_keys().items():
        if section == "top_level":
            continue
        for key in keys:
            assert key in sections[section], f"{section}.{key}"
    for section, keys in BLOBFUSE["required_by_gpustack"].items():
        for key in keys:
            assert key in sections[section], f"{section}.{key}"


def test_block_cache_cli_flags_map_to_block_cache_keys() -> None:
    block_cache = BLOBFUSE["sections"]["block_cache"]
    for flag, key in BLOBFUSE["block_cache_cli_flags"].items():
        assert flag.startswith("--block-cache"), flag
        if flag != "--block-cache":
            assert key in block_cache, f"{flag} -> {key}"
    options = BLOBFUSE["blob_csi_driver"]["block_cache_mount_options"]
    for option in options:
        flag = option.split("=", 1)[0]
        if flag.startswith("--"):
            assert flag in BLOBFUSE["block_cache_cli_flags"], flag
