"""docs/config.md is generated from the config models and must match them."""

from __future__ import annotations

from pathlib import Path

from stacks.config_reference import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "config.md"


def test_config_reference_is_current() -> None:
    assert DOC.read_text() == render(), (
        "docs/config.md is stale: run `make docs`"
    )


def test_reference_documents_every_section_with_resolved_types() -> None:
    text = render()
    for section in ("network", "aks.gpuPools[]", "aks.cpuPools[]", "vmPools[]", "budget"):
        assert f"## `azure-gpu-stacks:{section}`" in text
    assert "ForwardRef" not in text and "Annotated" not in text
    assert "| `monthlyAmountUsd` | float | **required** | `gt 0` |" in text
