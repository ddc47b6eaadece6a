"""The coverage matrix agrees with the rules, covers every type our stacks declare, and the
committed docs/policy-coverage.md is what the generator prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gpustack.engine import Plan
from policies import RULES, all_policies, coverage
from policies.rulebook import Rule
from tests.conftest import ROOT

all_policies()
MATRIX = coverage.load()


def test_every_row_names_a_rule_that_mirrors_its_id() -> None:
    rows = [row for row in MATRIX.rows if row.rule]
    assert len(rows) > 100
    wrong = [f"{row.type}: {row.id} -> {row.rule}" for row in rows
             if row.rule not in RULES or row.id not in RULES[row.rule].mirrors]
    assert not wrong


def test_every_mirrored_id_has_a_row() -> None:
    listed = {row.id for row in MATRIX.rows}
    missing = sorted(f"{rule.id}: {m}" for rule in RULES.values() for m in rule.mirrors
                     if m not in listed)
    assert not missing


def test_ids_are_catalogue_ids_and_reasons_are_given() -> None:
    for row in MATRIX.rows:
        assert row.id.startswith(("Azure.", "CKV_AZURE_", "CKV2_AZURE_")), row
        if row.rule is None:
            assert row.not_applicable and len(row.not_applicable) > 10, row


def test_every_type_our_stacks_declare_has_a_section(
    dev_plan: Plan, staging_plan: Plan, prod_plan: Plan
) -> None:
    declared = {r.type for plan in (dev_plan, staging_plan, prod_plan)
                for r in plan.custom_resources() if r.type.startswith("azure-native:")}
    assert declared, "the plans declare no azure-native resources"
    missing = sorted(declared - set(MATRIX.types()))
    assert not missing, f"no section in policies/coverage/*.yaml for {missing}"


def test_committed_matrix_is_the_generator_output() -> None:
    result = subprocess.run([sys.executable, "-m", "policies.coverage"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    committed = (ROOT / "docs" / "policy-coverage.md").read_text(encoding="utf-8")
    assert committed == result.stdout, "run `make docs` and commit docs/policy-coverage.md"


def test_problems_names_a_rule_that_does_not_mirror_its_row(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        "source: {psrule: here}\n"
        "types:\n"
        "  azure-native:storage:StorageAccount:\n"
        "    - {id: Azure.Storage.MinTLS, rule: gpustack-storage-https-only}\n"
        "    - {id: CKV_AZURE_33, not_applicable: queues are not declared}\n",
        encoding="utf-8",
    )
    matrix = coverage.load(tmp_path)
    rule = RULES["gpustack-storage-https-only"]
    found = coverage.problems(matrix, {rule.id: rule})
    assert "Azure.Storage.MinTLS: gpustack-storage-https-only does not list it" in found[0]
    assert any("mirrors Azure.Storage.SecureTransfer, which no coverage row lists" in f
               for f in found)
    ghost = Rule(**{**rule.__dict__, "id": "gpustack-ghost", "mirrors": ()})
    assert "rule gpustack-storage-https-only does not exist" in coverage.problems(
        matrix, {ghost.id: ghost})[0]


def test_a_row_with_both_or_neither_answer_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        "source: {psrule: here}\ntypes:\n  t:\n    - {id: Azure.X.Y}\n", encoding="utf-8")
    with pytest.raises(coverage.CoverageError, match="exactly one of `rule` or `not_applicable`"):
        coverage.load(tmp_path)


def test_rule_table_in_the_docs_is_generated_from_the_rules() -> None:
    text = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    assert coverage.with_rule_table(text) == text, "run `make docs`"
    assert coverage.rule_table().count("\n| `gpustack-") == len(RULES)
