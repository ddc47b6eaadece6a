"""The benchmarks' floors register what the plan registers, so their ratios compare like work."""

from __future__ import annotations

from benchmarks.__main__ import register_bare, register_typed
from gpustack.engine import capture
from tests.conftest import planned


def registered(resources: list) -> dict[tuple[str, str], dict]:
    return {(r.type, r.name): dict(r.inputs) for r in resources if r.custom}


def test_the_floors_register_the_plans_resources_with_the_plans_inputs() -> None:
    plan = planned("prod")
    expected = {
        (r.type, r.name): dict(r.inputs)
        for r in plan.resources
        if r.custom and not r.type.startswith("pulumi:providers:")
    }
    typed = register_typed(plan.resources)
    # Nearly all through their SDK classes: only Kubernetes custom resources have none.
    assert typed.typed_count >= len(expected) - 2  # type: ignore[attr-defined]
    assert registered(capture(typed)) == expected
    assert registered(capture(register_bare(plan.resources))) == expected
