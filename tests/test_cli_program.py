"""Which program `gpustack plan` plans when no --program is given: the one `pulumi preview`
would, found from the working directory upwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gpustack.cli import find_program
from tests.conftest import FIXTURES, ROOT


def test_program_is_found_in_the_working_directory_or_above(tmp_path: Path) -> None:
    project = tmp_path / "project"
    nested = project / "src" / "deep"
    nested.mkdir(parents=True)
    (project / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    assert find_program(project) == project.resolve()
    assert find_program(nested) == project.resolve()
    assert find_program(ROOT / "components") == ROOT
    assert find_program(FIXTURES / "foreign_program") == FIXTURES / "foreign_program"


def test_the_yml_spelling_counts_as_a_project(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yml").write_text("name: p\nruntime: python\n")
    assert find_program(tmp_path) == tmp_path.resolve()


def test_outside_any_project_plan_says_what_to_pass_and_exits_2(tmp_path: Path) -> None:
    assert find_program(tmp_path) is None, "a Pulumi.yaml above the temp dir would hide the case"
    result = subprocess.run(
        [sys.executable, "-m", "gpustack.cli", "plan", "--no-policy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: no Pulumi.yaml in ")
    assert "--program <project dir>" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_prices_without_a_subcommand_prints_refresh_usage_with_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpustack.cli", "prices"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("usage: gpustack prices refresh")
    for option in ("--from-csv", "--out", "--regions"):
        assert option in result.stderr
