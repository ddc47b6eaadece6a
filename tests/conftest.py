"""Shared fixtures: each environment is planned once per test session (plans are expensive)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from gpustack.engine import Plan, run_plan

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROGRAMS = FIXTURES / "programs"
ENVIRONMENTS = ("dev", "staging", "prod")

_plans: dict[str, Plan] = {}
_previews: dict[str, Plan] = {}


def planned(stack: str) -> Plan:
    """This project's plan for `stack`, computed once per session."""
    if stack not in _plans:
        _plans[stack] = run_plan(ROOT, stack, in_process=True)
    return _plans[stack]


def previewed(stack: str) -> Plan:
    """This project's `--preview` plan for `stack` through `gpustack plan`'s out-of-process
    path, computed once per session."""
    if stack not in _previews:
        _previews[stack] = run_plan(ROOT, stack, preview=True)
    return _previews[stack]


@functools.cache
def program_plan(program: str, preview: bool = False) -> Plan:
    """A fixture program's `dev` plan through `gpustack plan`'s out-of-process path, computed
    once per session and mode (tests/fixtures/programs/<program>)."""
    return run_plan(PROGRAMS / program, "dev", preview=preview)


@functools.cache
def bootstrap_plan() -> Plan:
    """The state-backend bootstrap program's plan (its one stack, `state`), once per session."""
    return run_plan(ROOT / "bootstrap", "state")


@pytest.fixture(params=ENVIRONMENTS)
def env_plan(request: pytest.FixtureRequest) -> Plan:
    """The plan of each environment in turn."""
    return planned(request.param)


@pytest.fixture
def dev_plan() -> Plan:
    return planned("dev")


@pytest.fixture
def staging_plan() -> Plan:
    return planned("staging")


@pytest.fixture
def prod_plan() -> Plan:
    return planned("prod")
