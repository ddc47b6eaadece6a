"""What a person reads: the table report in a 100-column terminal and the PR-comment markdown."""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import pytest

from gpustack.engine import Plan
from gpustack.estimates import plan_estimates
from gpustack.report import (
    COMPUTED,
    ELLIPSIS,
    LEGEND,
    SECRET,
    UNKNOWN_TEXT,
    WIDTH,
    plan_document,
    render_markdown,
    render_table,
)
from tests.conftest import ENVIRONMENTS, planned, previewed

NGINX = "kubernetes:approuting.kubernetes.azure.com/v1alpha1:NginxIngressController"
# The kinds of `[...]` marker the tree prints, as the legend names them.
MARKER_KINDS = {
    "[protected]": re.compile(r"\[protected\]"),
    "[retained]": re.compile(r"\[retained\]"),
    "[ignores P]": re.compile(r"\[ignores [^\]\s]+\]"),
    "[replaces on P]": re.compile(r"\[replaces on [^\]\s]+\]"),
    "[deletes first]": re.compile(r"\[deletes first\]"),
}


@functools.cache
def document(stack: str) -> dict[str, Any]:
    plan = planned(stack)
    result = plan_document(plan)
    result.update(plan_estimates(plan))
    return result


def preview_plan() -> Plan:
    # Unknowns only exist under --preview; the session shares one dev preview plan.
    return previewed("dev")


def legend_section(text: str) -> str:
    return text.split("\nLegend:\n", 1)[1].split("\n\n", 1)[0] if "\nLegend:\n" in text else ""


def body(text: str) -> str:
    return text.split("\nLegend:\n", 1)[0]


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_table_fits_a_100_column_terminal(stack: str) -> None:
    text = render_table(document(stack))
    too_wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert too_wide == []
    assert text.endswith("\n") and "\t" not in text


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_every_marker_in_the_table_is_explained_in_its_legend(stack: str) -> None:
    text = render_table(document(stack))
    shown, legend = body(text), legend_section(text)
    for kind, pattern in MARKER_KINDS.items():
        used = bool(pattern.search(shown))
        explained = f"  {kind} " in legend
        assert used == explained, (kind, used, explained)
    assert (ELLIPSIS in shown) == (f"  {ELLIPSIS} " in legend)
    assert (SECRET in shown) == (f"  {SECRET} " in legend)


def test_prod_table_marks_protected_retained_and_ignored_properties() -> None:
    text = render_table(document("prod"))
    vnet = next(line for line in text.splitlines() if "network-vnet " in line + " ")
    assert "[ignores subnets]" in vnet
    account = next(line for line in text.splitlines() if " modelsst " in line + " ")
    assert "[protected] [retained]" in account
    legend = legend_section(text)
    assert "retainOnDelete" in legend and "ignoreChanges" in legend and "protect:" in legend


def test_name_column_stays_aligned_past_long_type_names() -> None:
    doc = document("prod")
    assert any(r["type"] == NGINX for r in doc["resources"]), "prod should declare the NGINX type"
    lines = render_table(doc).splitlines()
    header = lines[0]
    column = header.index("NAME")
    rows = lines[2 : lines.index("")]
    by_name = {r["name"] for r in doc["resources"]}
    for row in rows:
        assert row[column - 2 : column] == "  ", row
        name = row[column:].split("  ")[0]
        assert row[column] != " " or not name, row
    nginx = next(row for row in rows if "NginxIngressController" in row)
    assert nginx[column:].startswith("inference-nginx")
    # Shortened names are still recognisable: their head and tail come from a real name.
    for row in rows:
        name = row[column:].split("  ")[0].strip()
        if ELLIPSIS in name:
            head, tail = name.split(ELLIPSIS)
            assert any(n.startswith(head) and n.endswith(tail) for n in by_name), name
        elif name and not name.startswith("["):
            assert name in by_name, name


def test_outputs_are_an_indented_tree_with_long_values_shortened() -> None:
    doc = document("prod")
    text = render_table(doc)
    outputs = text.split("\nOutputs:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    vm_pool = doc["outputs"]["vmPools"]["ndtrain"]
    assert "  vmPools" in outputs and "    ndtrain" in outputs
    (resource_id,) = [line for line in outputs if line.startswith("      resourceId ")]
    full = vm_pool["resourceId"]
    assert len(full) > WIDTH and ELLIPSIS in resource_id
    head, tail = resource_id.split()[1].split(ELLIPSIS)
    assert full.startswith(head) and full.endswith(tail)
    # Leaves of one tree share a value column.
    starts = {len(line) - len(line.split()[-1]) for line in outputs if line.startswith("  aks")
              and len(line.split()) == 2}
    assert len(starts) == 1, starts


def test_preview_shows_unknown_outputs_as_known_after_deploy_never_null_or_empty() -> None:
    plan = preview_plan()
    doc = plan_document(plan)
    outputs = doc["outputs"]
    # The vault's URI is nested in an input object (properties): still unknown in a preview.
    assert outputs["keyVaultUri"] == COMPUTED
    assert outputs["aksOidcIssuerUrl"] == COMPUTED
    text = render_table(doc)
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    section = text.split("\nOutputs:\n", 1)[1].split("\n\n", 1)[0]
    assert COMPUTED not in body(text)
    for line in section.splitlines():
        value = line.split(None, 1)[1] if len(line.split(None, 1)) == 2 else None
        assert value not in ("null", '""'), line
    key_line = next(line for line in section.splitlines() if line.split()[0] == "keyVaultUri")
    assert key_line.endswith(UNKNOWN_TEXT)
    assert f"  {UNKNOWN_TEXT}  " in legend_section(text)
    markdown = render_markdown(doc)
    assert f"- `keyVaultUri`: *{UNKNOWN_TEXT}*" in markdown
    assert COMPUTED not in markdown.split("<summary>Legend</summary>")[0]
    assert ": `null`" not in markdown and ': `""`' not in markdown


def test_markdown_explains_markers_and_shortens_long_values() -> None:
    doc = document("prod")
    text = render_markdown(doc)
    row = "| `modelsst` | `azure-native:storage:StorageAccount` | `[protected]` `[retained]` |"
    assert row in text
    legend = text.split("<summary>Legend</summary>", 1)[1]
    for marker in ("[protected]", "[retained]", "[ignores P]", ELLIPSIS, SECRET):
        assert f"- `{marker}` — {LEGEND[marker]}" in legend
    subnet_line = next(line for line in text.splitlines() if line.startswith("  - `system`: `"))
    value = subnet_line.split(": ", 1)[1].strip("`")
    assert ELLIPSIS in value and len(value) <= 80
    assert "Quota in use and limits were not checked: pass `--quota-from`." in text


def test_markdown_table_cells_escape_pipes() -> None:
    doc = copy.deepcopy(document("dev"))
    doc["policy"] = {
        "pack": "p",
        "rules": ["r"],
        "violations": [
            {"rule": "r", "level": "mandatory", "urn": None, "message": "a | b\nc"},
        ],
    }
    text = render_markdown(doc)
    assert "| mandatory | `r` | `stack` | a \\| b c |" in text
    assert f"- mandatory: {LEGEND['[mandatory]']}" in text
    table = render_table(doc)
    assert "  [mandatory] r on stack: a | b" in table
    assert "  [mandatory] " in legend_section(table)


def test_reports_are_deterministic() -> None:
    doc = document("staging")
    assert render_table(doc) == render_table(copy.deepcopy(doc))
    assert render_markdown(doc) == render_markdown(copy.deepcopy(doc))
