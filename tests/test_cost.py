"""Monthly cost: catalog prices for pools (spot at spot), service prices, unpriced never 0."""

from __future__ import annotations

import pytest
from plan_builders import (
    agent_pool,
    autoscale,
    cluster,
    resource,
    scale_set,
    storage_account,
    vm,
)

from gpustack import catalog, facts
from gpustack.cost import CostAssumptions, estimate_monthly_cost, hours_per_month
from gpustack.engine import Plan
from stacks.config import MonitoringConfig, StorageConfig

HOURS = 730  # the issue asks for 730-hour months


def _payg(size: str) -> float:
    price = catalog.lookup(size).price("eastus")
    assert price is not None
    return price


def _spot(size: str) -> float:
    price = catalog.lookup(size).price("eastus", spot=True)
    assert price is not None
    return price


def _service(key: str) -> float:
    return float(facts.load("service_prices")["prices"][key]["usd"])


def test_month_has_730_hours() -> None:
    assert hours_per_month() == HOURS


def test_known_config_costs_what_the_catalog_says() -> None:
    resources = [
        cluster(),  # Standard tier, system pool D4s_v5 2..3 starting at 2
        agent_pool("t4", "Standard_NC4as_T4_v3", 1, 4),
        vm("devbox", "Standard_NC8as_T4_v3"),
    ]
    report = estimate_monthly_cost(resources)

    system, t4, devbox = (
        _payg("Standard_D4s_v5"),
        _payg("Standard_NC4as_T4_v3"),
        _payg("Standard_NC8as_T4_v3"),
    )
    tier = _service("aks.tier.Standard")
    expected_min = HOURS * (tier + 2 * system + 1 * t4 + devbox)
    expected_max = HOURS * (tier + 3 * system + 4 * t4 + devbox)
    assert report.monthly.min == pytest.approx(expected_min)
    assert report.monthly.expected == pytest.approx(expected_min)
    assert report.monthly.max == pytest.approx(expected_max)
    assert report.unpriced == []


def test_spot_pool_is_priced_at_the_spot_price() -> None:
    size = "Standard_NC4as_T4_v3"
    # The pool takes its region from the cluster (AgentPool has no location of its own).
    spot_pool, regular_pool = agent_pool("t4", size, 0, 3, spot=True), agent_pool("t4", size, 0, 3)
    spot = estimate_monthly_cost([cluster(tier="Free"), spot_pool])
    regular = estimate_monthly_cost([cluster(tier="Free"), regular_pool])

    def pool_max(report, pool):
        return sum(line.monthly.max for line in report.lines if line.urn == pool["urn"])

    assert pool_max(spot, spot_pool) == pytest.approx(3 * HOURS * _spot(size))
    assert pool_max(regular, regular_pool) == pytest.approx(3 * HOURS * _payg(size))


def test_pool_without_a_region_is_unpriced() -> None:
    pool = agent_pool("t4", "Standard_NC4as_T4_v3", 0, 3)
    report = estimate_monthly_cost([pool])
    assert report.unpriced == [pool["urn"]]
    assert "region unknown" in report.unpriced_reasons[pool["urn"]][0]


def test_spot_vm_and_spot_scale_set_use_spot_prices() -> None:
    size = "Standard_NC4as_T4_v3"
    report = estimate_monthly_cost([vm("a", size, spot=True), scale_set("b", size, 2, spot=True)])
    assert report.monthly.expected == pytest.approx(3 * HOURS * _spot(size))


def test_autoscale_setting_sets_min_and_max_of_its_scale_set() -> None:
    size = "Standard_ND96asr_v4"
    target = scale_set("train", size, 2)
    report = estimate_monthly_cost([target, autoscale("train-autoscale", target, 0, 4, 1)])

    per_node = HOURS * _payg(size)
    assert report.monthly.min == pytest.approx(0)
    assert report.monthly.expected == pytest.approx(2 * per_node)  # the declared capacity
    assert report.monthly.max == pytest.approx(4 * per_node)


def test_disabled_autoscale_setting_leaves_the_capacity_fixed_and_says_so() -> None:
    size = "Standard_ND96asr_v4"
    target = scale_set("train", size, 2)
    report = estimate_monthly_cost([target, autoscale("a", target, 0, 4, 1, enabled=False)])

    assert report.monthly.min == report.monthly.max == pytest.approx(2 * HOURS * _payg(size))
    assert "disabled" in report.lines[0].assumption


def test_what_cannot_be_priced_is_listed_not_counted() -> None:
    lustre = resource(
        "azure-native:storagecache:AmlFilesystem",
        "scratch",
        {"location": "eastus", "storageCapacityTiB": 16.0},
    )
    odd_vm = vm("odd", "Standard_Z99_v9")
    priced = vm("ok", "Standard_NC4as_T4_v3")
    report = estimate_monthly_cost([lustre, odd_vm, priced])

    assert report.unpriced == [lustre["urn"], odd_vm["urn"]]
    assert {line.urn for line in report.lines} == {priced["urn"]}
    assert report.monthly.max == pytest.approx(HOURS * _payg("Standard_NC4as_T4_v3"))
    assert "not in the VM catalog" in report.unpriced_reasons[odd_vm["urn"]][0]


def test_free_types_get_an_explicit_zero_line_and_components_none() -> None:
    group = resource("azure-native:resources:ResourceGroup", "core", {"location": "eastus"})
    component = {**resource("gpustack:network:GpuNetwork", "net", {}), "custom": False}
    report = estimate_monthly_cost([group, component])

    assert [(line.urn, line.monthly.max) for line in report.lines] == [(group["urn"], 0.0)]
    assert report.unpriced == []


def test_the_monitoring_agent_extension_is_free_and_other_extensions_stay_unpriced() -> None:
    agent = facts.load("azure_monitor")["monitoring_agent"]
    extension = "azure-native:compute:VirtualMachineExtension"
    ama = resource(extension, "box-monitoring-agent", {
        "location": "eastus", "publisher": agent["publisher"], "type": agent["types"]["linux"]})
    driver = resource(extension, "box-nvidia-driver", {
        "location": "eastus", "publisher": "Microsoft.HpcCompute", "type": "NvidiaGpuDriverLinux"})
    report = estimate_monthly_cost([ama, driver])

    entry = facts.load("service_prices")["prices"][
        f"vmextension.{agent['publisher']}/{agent['types']['linux']}"]
    assert entry["usd"] == 0.0 and entry["source"].startswith("https://learn.microsoft.com/")
    (line,) = report.lines
    assert (line.urn, line.monthly.max) == (ama["urn"], 0.0)
    assert "workspace" in line.assumption
    assert report.unpriced == [driver["urn"]]
    assert "Microsoft.HpcCompute/NvidiaGpuDriverLinux" in report.unpriced_reasons[driver["urn"]][0]


def test_storage_and_logs_scale_with_the_config_estimates() -> None:
    workspace = resource(
        "azure-native:operationalinsights:Workspace",
        "logs",
        {"location": "eastus", "sku": {"name": "PerGB2018"}, "retentionInDays": 31.0},
    )
    resources = [storage_account(sku="Standard_LRS"), workspace]
    small = estimate_monthly_cost(resources, assumptions=CostAssumptions(100, 1.0))
    large = estimate_monthly_cost(resources, assumptions=CostAssumptions(300, 3.0))

    gb_month = _service("storage.Standard.Hot.LRS")
    per_gb = _service("loganalytics.PerGB2018.ingestion")
    assert small.lines[0].monthly.max == pytest.approx(100 * gb_month)
    assert large.lines[0].monthly.max == pytest.approx(300 * gb_month)
    # 31 retention days are free, so only ingestion is billed.
    assert small.lines[1].monthly.max == pytest.approx(1.0 * HOURS / 24 * per_gb)
    assert large.lines[1].monthly.max == pytest.approx(3.0 * HOURS / 24 * per_gb)


def test_cost_json_has_exactly_the_documented_keys() -> None:
    document = estimate_monthly_cost([vm("a", "Standard_NC4as_T4_v3")]).to_json()

    assert set(document) == {
        "currency", "monthly", "lines", "unpriced", "unpriced_reasons", "warnings", "prices_as_of"
    }  # fmt: skip
    assert document["currency"] == "USD"
    assert set(document["monthly"]) == {"min", "expected", "max"}
    assert set(document["lines"][0]) == {"urn", "type", "monthly", "assumption"}


def test_default_assumptions_match_the_stack_config_defaults() -> None:
    defaults = CostAssumptions()
    assert defaults.storage_capacity_gb == StorageConfig().estimated_capacity_gb
    assert (
        defaults.log_ingestion_gb_per_day == MonitoringConfig().estimated_log_ingestion_gb_per_day
    )


def test_assumptions_are_read_from_stack_config() -> None:
    config = {
        "p:storage": '{"estimatedCapacityGb": 5000}',
        "p:monitoring": '{"estimatedLogIngestionGbPerDay": 12.5}',
    }
    assumptions = CostAssumptions.from_stack_config(config, "p")
    assert (assumptions.storage_capacity_gb, assumptions.log_ingestion_gb_per_day) == (5000, 12.5)
    assert assumptions.source == "stack config"


def test_every_planned_resource_is_priced_or_listed(env_plan: Plan) -> None:
    views = [{**r.analyzer_view(), "id": r.id, "custom": r.custom} for r in env_plan.resources]
    report = estimate_monthly_cost(views)

    azure = {r.urn for r in env_plan.custom_resources()}
    accounted = {line.urn for line in report.lines} | set(report.unpriced)
    assert azure <= accounted
    assert report.monthly.max == pytest.approx(sum(line.monthly.max for line in report.lines))
    assert report.monthly.min <= report.monthly.expected <= report.monthly.max


def test_pool_outside_the_snapshot_is_unpriced_with_a_warning_naming_the_region() -> None:
    pool = vm("box", "Standard_NC4as_T4_v3")
    pool["inputs"]["location"] = "westeurope"
    report = estimate_monthly_cost([pool])
    assert report.unpriced == [pool["urn"]]
    document = report.to_json()
    assert "westeurope" in document["unpriced_reasons"][pool["urn"]][0]
    warnings = document["warnings"]
    assert warnings[0].startswith("1 resource(s) could not be priced and are not in the monthly")
    assert any("westeurope" in w for w in warnings)
    assert any("eastus" in w and "gpustack prices refresh" in w for w in warnings)


def test_fully_priced_plan_has_no_cost_warnings() -> None:
    assert estimate_monthly_cost([vm("a", "Standard_NC4as_T4_v3")]).to_json()["warnings"] == []
