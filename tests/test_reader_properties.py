"""Property-based: whatever a stack file, quota file or plan file holds, the readers answer with
a value or with their own error type, never with an exception a user would see as a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpustack.capacity import QuotaFileError, load_quota_usage, parse_quota_usage
from gpustack.diff import (
    PlanFileError,
    diff_plans,
    load_plan,
    render_diff_json,
    render_diff_markdown,
    render_diff_table,
)
from stacks.config import PROJECT, ConfigError, validate_stack_values
from tests.conftest import ROOT

PREFIX = f"{PROJECT}:"
# Load-bound CI machines: no per-example deadline; enough examples to find the odd shapes.
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12,
)


def _prod() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    return {key[len(PREFIX) :]: value for key, value in config.items() if key.startswith(PREFIX)}


PROD = _prod()
SECTIONS = [*sorted(PROD), "storage", "vault", "registry", "nonsense"]


@SETTINGS
@given(section=st.sampled_from(SECTIONS), value=json_values)
def test_any_value_in_any_section_is_a_config_or_a_config_error(section: str, value: Any) -> None:
    raw = {**PROD, section: value}
    try:
        validate_stack_values({PREFIX + k: v for k, v in raw.items()}, "Pulumi.prod.yaml")
    except ConfigError as error:
        assert error.problems
        assert all(problem.startswith(PREFIX) for problem in error.problems), error.problems


@SETTINGS
@given(
    section=st.sampled_from(sorted(k for k, v in PROD.items() if isinstance(v, dict))),
    key=st.text(min_size=1, max_size=20),
    value=json_values,
)
def test_any_key_inside_a_section_is_a_config_or_a_config_error(
    section: str, key: str, value: Any
) -> None:
    raw = {**PROD, section: {**PROD[section], key: value}}
    try:
        validate_stack_values({PREFIX + k: v for k, v in raw.items()}, "Pulumi.prod.yaml")
    except ConfigError as error:
        assert error.problems


quota_rows = st.fixed_dictionaries(
    {"name": st.fixed_dictionaries({"value": st.text(max_size=12)}) | json_values},
    optional={"currentValue": json_values, "limit": json_values, "localName": json_values},
)


@SETTINGS
@given(raw=st.lists(quota_rows, max_size=5) | json_values)
def test_quota_rows_are_whole_non_negative_counts_or_a_quota_file_error(raw: Any) -> None:
    try:
        rows = parse_quota_usage(raw, "usage.json")
    except QuotaFileError as error:
        assert str(error).startswith("usage.json")
        return
    for row in rows:
        assert isinstance(row.current, int) and row.current >= 0
        assert isinstance(row.limit, int) and row.limit >= 0


@SETTINGS
@given(content=st.binary(max_size=200))
def test_any_bytes_as_a_quota_file_are_read_or_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "usage.json"
    path.write_bytes(content)
    try:
        load_quota_usage(path)
    except QuotaFileError as error:
        assert str(path) in str(error)


resources = st.lists(
    st.fixed_dictionaries(
        {"urn": st.sampled_from(["u1", "u2", "u3"]), "type": st.sampled_from(["t:a", "t:b"]),
         "name": st.text(max_size=5)},
        optional={"inputs": json_values, "options": json_values, "custom": json_values},
    ),
    max_size=4,
)
plans = st.fixed_dictionaries(
    {"resources": resources | json_values},
    optional={"cost": json_values, "project": json_values, "stack": json_values},
)


@SETTINGS
@given(base=plans, head=plans)
def test_any_plan_documents_are_diffed_or_refused(tmp_path: Path, base: Any, head: Any) -> None:
    paths = []
    for name, document in (("base.json", base), ("head.json", head)):
        path = tmp_path / name
        path.write_text(json.dumps(document))
        paths.append(path)
    try:
        loaded = [load_plan(path) for path in paths]
    except PlanFileError as error:
        assert "base.json" in str(error) or "head.json" in str(error)
        return
    diff = diff_plans(*loaded)
    for render in (render_diff_table, render_diff_markdown, render_diff_json):
        assert render(diff)


@SETTINGS
@given(content=st.binary(max_size=200))
def test_any_bytes_as_a_plan_file_are_read_or_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(content)
    try:
        load_plan(path)
    except PlanFileError as error:
        assert str(path) in str(error)
