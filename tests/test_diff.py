"""`gpustack diff`: added/removed/changed resources, stateful replacements, cost delta."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from plan_builders import agent_pool, cluster, plan_document, resource, storage_account

from gpustack import cli
from gpustack.cost import estimate_monthly_cost
from gpustack.diff import diff_plans, render_diff_markdown


def _documents(*changes) -> tuple[dict, dict]:
    resources = [
        cluster(tier="Free"),
        agent_pool("t4", "Standard_NC4as_T4_v3", 0, 2),
        storage_account(),
        resource("azure-native:keyvault:Vault", "vault", {"vaultName": "kv-one"}),
    ]
    base = plan_document(resources)
    head = copy.deepcopy(base)
    for change in changes:
        change(head["resources"])
    for document in (base, head):
        document["cost"] = estimate_monthly_cost(document["resources"]).to_json()
    return base, head


def _by_name(name: str):
    def pick(resources: list[dict]) -> dict:
        return next(r for r in resources if r["name"] == name)

    return pick


def test_identical_plans_have_no_changes() -> None:
    base, head = _documents()
    diff = diff_plans(base, head)
    assert (diff.added, diff.removed, diff.changed, diff.replacements) == ([], [], [], [])
    assert diff.cost["delta"] == {"min": 0, "expected": 0, "max": 0}


def test_storage_account_rename_is_a_replacement_with_data_loss() -> None:
    def rename(resources: list[dict]) -> None:
        _by_name("models")(resources)["inputs"]["accountName"] = "stmodels2"

    diff = diff_plans(*_documents(rename))

    assert [c["keys"] for c in diff.changed] == [["accountName"]]
    [replacement] = diff.replacements
    assert replacement.type == "azure-native:storage:StorageAccount"
    assert replacement.stateful
    assert "accountName" in replacement.reasons[0]
    assert "data loss" in render_diff_markdown(diff)


def test_location_change_replaces_any_resource() -> None:
    def move(resources: list[dict]) -> None:
        _by_name("aks")(resources)["inputs"]["location"] = "westus3"

    [replacement] = diff_plans(*_documents(move)).replacements
    assert replacement.type == "azure-native:containerservice:ManagedCluster"
    assert replacement.stateful


def test_redundancy_change_is_in_place_but_premium_is_a_replacement() -> None:
    def to_zrs(resources: list[dict]) -> None:
        _by_name("models")(resources)["inputs"]["sku"] = {"name": "Standard_ZRS"}

    def to_premium(resources: list[dict]) -> None:
        _by_name("models")(resources)["inputs"]["sku"] = {"name": "Premium_LRS"}

    assert diff_plans(*_documents(to_zrs)).replacements == []
    assert len(diff_plans(*_documents(to_premium)).replacements) == 1


def test_scaling_a_pool_is_a_change_with_a_cost_delta_not_a_replacement() -> None:
    def grow(resources: list[dict]) -> None:
        _by_name("t4")(resources)["inputs"]["maxCount"] = 6.0

    base, head = _documents(grow)
    diff = diff_plans(base, head)

    assert diff.replacements == []
    assert [c["name"] for c in diff.changed] == ["t4"]
    expected = head["cost"]["monthly"]["max"] - base["cost"]["monthly"]["max"]
    assert expected > 0
    assert diff.cost["delta"]["max"] == pytest.approx(expected)
    assert diff.cost["delta"]["min"] == 0
    assert [c["urn"].rsplit("::", 1)[-1] for c in diff.cost["by_resource"]] == ["t4"]


def test_vm_size_change_replaces_an_aks_pool_without_data_loss() -> None:
    def resize(resources: list[dict]) -> None:
        _by_name("t4")(resources)["inputs"]["vmSize"] = "Standard_NC8as_T4_v3"

    [replacement] = diff_plans(*_documents(resize)).replacements
    assert not replacement.stateful


def test_changed_urn_of_a_stateful_resource_is_flagged() -> None:
    def rename_logically(resources: list[dict]) -> None:
        vault = _by_name("vault")(resources)
        vault["urn"] = vault["urn"].replace("::vault", "::secrets")
        vault["name"] = "secrets"

    diff = diff_plans(*_documents(rename_logically))
    assert [r["name"] for r in diff.added] == ["secrets"]
    assert [r["name"] for r in diff.removed] == ["vault"]
    [replacement] = diff.replacements
    assert replacement.stateful and "alias" in replacement.reasons[0]


def test_program_replace_on_changes_option_counts() -> None:
    def tag(resources: list[dict]) -> None:
        vault = _by_name("vault")(resources)
        vault["inputs"]["tags"] = {"team": "ml"}
        vault["options"] = {"replaceOnChanges": ["tags"]}

    [replacement] = diff_plans(*_documents(tag)).replacements
    assert "replaceOnChanges" in replacement.reasons[0]


def test_diff_command_writes_markdown_and_rejects_non_plans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def rename(resources: list[dict]) -> None:
        _by_name("models")(resources)["inputs"]["accountName"] = "stmodels2"

    base, head = _documents(rename)
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    (tmp_path / "junk.json").write_text("[1, 2]")

    code = cli.main(
        ["diff", str(tmp_path / "base.json"), str(tmp_path / "head.json"), "--format", "markdown"]
    )
    assert code == 0
    assert "Replacements (1 with data loss)" in capsys.readouterr().out
    assert cli.main(["diff", str(tmp_path / "junk.json"), str(tmp_path / "head.json")]) == 2
