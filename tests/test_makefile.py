"""`make plan FORMAT=json > plan.json` gives valid JSON on the first run: the install steps
that run before the report write to stderr, never to stdout."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import ROOT


def _install_recipe() -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$(INSTALLED):"))
    recipe: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        if recipe and recipe[-1].endswith("\\"):
            recipe[-1] = recipe[-1][:-1] + line.strip()
        else:
            recipe.append(line.strip())
    return recipe


def test_install_steps_are_silent_on_stdout() -> None:
    recipe = _install_recipe()
    assert recipe, "no recipe for $(INSTALLED)"
    for command in recipe:
        # make echoes a command unless it starts with @; the command's output must go to stderr.
        assert command.startswith("@"), command
        assert command.endswith(">&2") or command.startswith("@touch "), command


def test_make_plan_prints_only_the_report_command() -> None:
    # With the venv installed, `make -n plan` lists what make would run: one silent command.
    # As from a shell: not as a sub-make of `make test`, which prints directory lines.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}}
    result = subprocess.run(
        ["make", "-n", "plan", "FORMAT=json"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if line.strip()]
    assert commands[-1].endswith("gpustack plan --stack dev --format json"), commands
    assert not any("directory" in line for line in commands), commands
