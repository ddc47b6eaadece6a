"""`gpustack catalog advise`: expected values are computed here from the catalog rows and the
price snapshot, never written down as totals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gpustack import advisor, catalog, cli, facts
from gpustack.capacity import load_quota_usage

FIXTURES = Path(__file__).parent / "fixtures"
USAGE = FIXTURES / "list_usage_eastus.json"
HOURS = float(facts.load("service_prices")["hours_per_month"])
IB = facts.load("policy_facts")["infiniband"]


def test_every_h100_size_and_priced_region_is_listed_with_its_arithmetic() -> None:
    found = advisor.advise(20, "H100")
    expected_sizes = {
        s.name
        for s in catalog.all_sizes()
        if s.gpu_model and s.gpu_model.split()[0] == "H100" and s.has_whole_gpus
    }
    assert {p.vm_size for p in found} == {s for s in expected_sizes if catalog.lookup(s).prices}
    for p in found:
        size = catalog.lookup(p.vm_size)
        nodes = math.ceil(20 / size.gpu_count)
        assert (p.nodes, p.gpus, p.vcpus) == (nodes, nodes * size.gpu_count, nodes * size.vcpus)
        assert p.quota_family == size.quota_family
        price = size.prices[p.region]
        assert p.payg_per_month == pytest.approx(price.payg * nodes * HOURS, abs=0.01)
        if price.spot is not None:
            assert p.spot_per_month == pytest.approx(price.spot * nodes * HOURS, abs=0.01)
        assert catalog.prices_as_of().startswith(p.prices_as_of or "-")
    costs = [p.payg_per_month for p in found]
    assert costs == sorted(costs)


def test_infiniband_domain_limit_comes_from_the_placement_group_fact() -> None:
    found = advisor.advise(1000, "A100", infiniband=True)
    assert found and all(p.infiniband for p in found)
    for p in found:
        size = catalog.lookup(p.vm_size)
        assert p.infiniband_domain_gpus == IB["single_placement_group_limit"] * size.gpu_count
        assert p.fits_one_infiniband_domain is (p.gpus <= p.infiniband_domain_gpus)
    # 1000 A100s on 8-GPU VMs need 125 VMs: more than one placement group of 100.
    assert any(p.fits_one_infiniband_domain is False for p in found)


def test_spot_uses_the_regional_spot_quota_and_skips_regions_without_a_spot_meter() -> None:
    found = advisor.advise(4, "T4", spot=True)
    spot_quota = facts.load("vm_pools")["spot"]["quota_family"]
    assert found and all(p.quota_family == spot_quota for p in found)
    assert all(p.spot_per_month is not None for p in found)
    costs = [p.spot_per_month for p in found]
    assert costs == sorted(costs)


def test_quota_file_marks_which_regions_the_subscription_can_use() -> None:
    usage = load_quota_usage(USAGE)
    found = advisor.advise(1, "T4", regions=["eastus", "westus2"], quota={"eastus": usage})
    rows = {catalog.quota_family_key(u.name): u for u in usage}
    for p in found:
        if p.region != "eastus":
            assert p.quota_ok is None and "no list-usage file" in (p.quota_note or "")
            continue
        family = rows.get(catalog.quota_family_key(p.quota_family))
        total = rows[catalog.quota_family_key("cores")]
        if family is None:
            assert p.quota_ok is False
            continue
        fits = (family.limit - family.current >= p.vcpus) and (
            total.limit - total.current >= p.vcpus
        )
        assert p.quota_ok is fits, p


def test_fractional_gpus_never_count_as_whole_gpus() -> None:
    found = advisor.advise(1, "A10")
    assert found
    assert all(catalog.lookup(p.vm_size).gpu_partition == 1 for p in found)


def test_unpriced_region_is_listed_without_a_price() -> None:
    with pytest.raises(advisor.AdviceError, match="no priced region"):
        advisor.advise(8, "H200")
    (p,) = advisor.advise(8, "H200", regions=["eastus"])
    assert p.payg_per_month is None and p.prices_as_of is None
    assert "'-' : no offline price" in advisor.advice_table([p], 8)


def test_output_is_deterministic_and_json_is_plain_data(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["catalog", "advise", "--gpus", "16", "--gpu-model", "A100", "--format", "json"]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == first
    rows = json.loads(first)
    assert rows and {"vm_size", "region", "nodes", "payg_per_month", "prices_as_of"} <= set(rows[0])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpus", "0", "--gpu-model", "H100"], "at least 1"),
        (["--gpus", "8", "--gpu-model", "B300"], "GPU models:"),
        (["--gpus", "8", "--gpu-model", "T4", "--ib"], "with InfiniBand"),
        (["--gpus", "8", "--gpu-model", "T4", "--quota-from", str(USAGE)], "exactly one --region"),
        (
            [
                "--gpus",
                "8",
                "--gpu-model",
                "T4",
                "--quota-from",
                f"eastus={FIXTURES / 'nope.json'}",
            ],
            "cannot read",
        ),
    ],
)
def test_errors_exit_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["catalog", "advise", *argv]) == 2
    assert message in capsys.readouterr().err


def test_regions_may_be_listed_after_one_flag_or_repeated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["catalog", "advise", "--gpus", "1", "--gpu-model", "T4", "--format", "json"]
    assert cli.main([*base, "--region", "eastus", "westus2"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert cli.main([*base, "--region", "eastus", "--region", "westus2"]) == 0
    assert json.loads(capsys.readouterr().out) == listed
    assert {row["region"] for row in listed} == {"eastus", "westus2"}
