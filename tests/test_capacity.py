"""GPU capacity, InfiniBand domains and the quota preflight against `az vm list-usage`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES, planned
from plan_builders import agent_pool, autoscale, cluster, scale_set, vm

from gpustack import catalog, cli
from gpustack.capacity import (
    QuotaFileError,
    load_quota_usage,
    parse_quota_usage,
    plan_capacity,
)

USAGE = FIXTURES / "list_usage_eastus.json"


def _usage_row(name: str) -> dict:
    rows = json.loads(USAGE.read_text())
    return next(row for row in rows if row["name"]["value"] == name)


def _training_plan() -> list[dict]:
    nd = scale_set("train", "Standard_ND96asr_v4", 1)
    return [
        cluster(tier="Standard"),
        agent_pool("t4", "Standard_NC4as_T4_v3", 1, 10),
        nd,
        autoscale("train-autoscale", nd, 0, 4, 1),
    ]


def test_gpus_and_vram_span_min_to_max_scale() -> None:
    capacity = plan_capacity(_training_plan())

    nd, t4 = catalog.lookup("Standard_ND96asr_v4"), catalog.lookup("Standard_NC4as_T4_v3")
    assert capacity["gpus"] == {
        "min": 1 * t4.gpu_count,
        "max": 10 * t4.gpu_count + 4 * nd.gpu_count,
    }
    assert capacity["vram_gb"] == {
        "min": t4.total_vram_gb,
        "max": 10 * t4.total_vram_gb + 4 * nd.total_vram_gb,
    }
    assert capacity["gpus_by_model"] == {
        "T4": {"min": 1, "max": 10},
        "A100": {"min": 0, "max": 4 * nd.gpu_count},
    }


def test_each_infiniband_pool_is_its_own_rdma_domain() -> None:
    resources = [*_training_plan(), agent_pool("ndaks", "Standard_ND96asr_v4", 0, 2)]
    capacity = plan_capacity(resources)

    domains = {tuple(d["pools"]): d for d in capacity["infiniband_domains"]}
    assert set(domains) == {("train",), ("ndaks",)}
    assert domains[("train",)]["max_gpus"] == 4 * 8
    by_name = {p["name"]: p for p in capacity["pools"]}
    assert by_name["t4"]["infiniband_domain"] is None
    assert by_name["train"]["infiniband_domain"] != by_name["ndaks"]["infiniband_domain"]


def test_lone_infiniband_vm_is_warned_about() -> None:
    capacity = plan_capacity([vm("box", "Standard_ND96asr_v4")])
    assert capacity["infiniband_domains"] == []
    assert any("no RDMA peer" in w for w in capacity["warnings"])


def test_quota_needs_per_family_and_regional_total() -> None:
    capacity = plan_capacity(_training_plan())
    needs = {q["family"]: q["vcpus_max"] for q in capacity["quota"]}

    assert needs["standardNDASv4_A100Family"] == 4 * 96
    assert needs["standardNCASv3_T4Family"] == 10 * 4
    assert needs["standardDSv5Family"] == 3 * 4
    assert needs["cores"] == 4 * 96 + 10 * 4 + 3 * 4
    assert capacity["spot_vcpus_max"] == 0


def test_spot_pools_count_against_regional_spot_quota_only() -> None:
    capacity = plan_capacity(
        [
            cluster(tier="Free"),
            agent_pool("t4spot", "Standard_NC4as_T4_v3", 0, 6, spot=True),
        ]
    )
    needs = {q["family"]: q["vcpus_max"] for q in capacity["quota"]}

    assert capacity["spot_vcpus_max"] == needs["lowPriorityCores"] == 6 * 4
    assert "standardNCASv3_T4Family" not in needs
    assert needs["cores"] == 3 * 4  # the regular system pool only


def test_quota_shortfall_from_list_usage_is_an_error() -> None:
    capacity = plan_capacity(_training_plan(), load_quota_usage(USAGE))

    row = _usage_row("standardNDASv4_A100Family")
    short = row["currentValue"] + 4 * 96 - row["limit"]
    assert short > 0
    quota = {q["family"]: q for q in capacity["quota"]}
    nd = quota["standardNDASv4_A100Family"]
    assert (nd["limit"], nd["current"], nd["shortfall"]) == (
        row["limit"],
        row["currentValue"],
        short,
    )
    assert quota["standardNCASv3_T4Family"]["shortfall"] == 0
    # The regional total is short too: 52 in use + 436 needed > 350.
    cores = _usage_row("cores")
    cores_short = cores["currentValue"] + quota["cores"]["vcpus_max"] - cores["limit"]
    assert quota["cores"]["shortfall"] == cores_short > 0
    assert len(capacity["errors"]) == 2
    assert any(f"short by {short}." in e and "NDASv4" in e for e in capacity["errors"])


def test_quota_fits_when_the_limit_allows() -> None:
    rows = json.loads(USAGE.read_text())
    for row in rows:
        row["limit"] = 10_000
    capacity = plan_capacity(_training_plan(), parse_quota_usage(rows))
    assert capacity["errors"] == []
    assert all(q["shortfall"] == 0 for q in capacity["quota"])


def test_family_names_match_whatever_case_azure_uses() -> None:
    rows = [
        {
            "name": {"value": "StandardNDASv4_A100Family", "localizedValue": "ND"},
            "currentValue": 0,
            "limit": 1,
        }
    ]
    capacity = plan_capacity(_training_plan(), parse_quota_usage(rows))
    assert any("StandardNDASv4_A100Family" in e for e in capacity["errors"])


@pytest.mark.parametrize(
    "content",
    ['{"value": []}', "not json", '[{"name": {"value": "cores"}, "limit": 5}]'],
)
def test_malformed_usage_files_are_rejected(tmp_path: Path, content: str) -> None:
    path = tmp_path / "usage.json"
    path.write_text(content)
    with pytest.raises(QuotaFileError):
        load_quota_usage(path)


def test_bad_quota_file_exits_2_before_planning(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    path.write_text("{}")
    assert cli.main(["plan", "--quota-from", str(path)]) == cli.EXIT_ERROR


def test_prod_quota_shortfall_fails_the_plan_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "plan_stack", lambda *_: planned("prod"))
    code = cli.main(["plan", "-s", "prod", "-f", "json", "--quota-from", str(USAGE)])

    document = json.loads(capsys.readouterr().out)
    assert document["capacity"]["errors"]
    assert code == cli.EXIT_POLICY


def test_infiniband_aks_pool_beyond_one_placement_group_is_warned_about() -> None:
    capacity = plan_capacity([cluster(), agent_pool("ndbig", "Standard_ND96asr_v4", 0, 150)])
    assert any("ndbig" in w and "not one RDMA domain" in w for w in capacity["warnings"])
    small = plan_capacity([cluster(), agent_pool("nd", "Standard_ND96asr_v4", 0, 100)])
    assert not any("RDMA domain" in w for w in small["warnings"])
