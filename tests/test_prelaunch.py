"""The program's interpreter started ahead by the console script (`gpustack.console`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpustack.console import prelaunch_for
from gpustack.engine import run_plan
from gpustack.hosts import python as python_host
from gpustack.hosts import python_exec
from gpustack.report import plan_document, render_json
from tests.conftest import PROGRAMS, program_plan

MARKER_PROGRAM = """
import os, pathlib
pathlib.Path(os.environ["GPUSTACK_TEST_MARKER"]).write_text("the program ran")
import pulumi
pulumi.export("ran", True)
"""


@pytest.fixture(autouse=True)
def no_standby_left() -> Iterator[None]:
    yield
    python_host.discard_standby()


def standby_child() -> subprocess.Popen[bytes]:
    standby = python_host._standby
    assert standby is not None, "no interpreter was started ahead"
    return standby.child


def plan_json(program: Path) -> str:
    return render_json(plan_document(run_plan(program, "dev")))


def marker_program(directory: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory.mkdir()
    (directory / "Pulumi.yaml").write_text("name: marker\nruntime: python\n")
    (directory / "Pulumi.dev.yaml").write_text("config: {}\n")
    (directory / "__main__.py").write_text(MARKER_PROGRAM)
    monkeypatch.setenv("GPUSTACK_TEST_MARKER", str(marker))
    return directory


def test_the_plan_runs_in_the_interpreter_started_ahead() -> None:
    assert prelaunch_for(["plan", "--program", str(PROGRAMS / "py_foreign"), "--no-policy"])
    child = standby_child()
    assert plan_json(PROGRAMS / "py_foreign") == render_json(
        plan_document(program_plan("py_foreign"))
    )
    assert python_host._standby is None
    assert child.returncode == 0  # it ran the program to its end (a discarded one is killed)


def test_an_interpreter_started_for_another_program_is_discarded_unused() -> None:
    assert prelaunch_for(["plan", "--program", str(PROGRAMS / "mock_azure")])
    child = standby_child()
    assert plan_json(PROGRAMS / "py_foreign") == render_json(
        plan_document(program_plan("py_foreign"))
    )
    assert child.returncode is not None and child.returncode < 0  # killed, never told to run


def test_an_environment_changed_since_the_start_discards_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert prelaunch_for(["plan", "--program", str(PROGRAMS / "py_foreign")])
    child = standby_child()
    monkeypatch.setenv("GPUSTACK_TEST_CHANGED_AFTER_START", "1")
    assert plan_json(PROGRAMS / "py_foreign") == render_json(
        plan_document(program_plan("py_foreign"))
    )
    assert child.returncode is not None and child.returncode < 0


def test_no_program_code_runs_until_the_plan_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "marker"
    program = marker_program(tmp_path / "program", marker, monkeypatch)
    assert prelaunch_for(["plan", "--program", str(program)])
    child = standby_child()
    # The plan refused before its program runs (a bad option, an unreadable file): stdin closes.
    assert child.stdin is not None
    child.stdin.close()
    python_host._standby = None
    assert child.wait(timeout=60) == 0
    assert not marker.exists()
    assert child.stdout is not None and child.stdout.read() == b""

    assert prelaunch_for(["plan", "--program", str(program)])
    run_plan(program, "dev")
    assert marker.read_text() == "the program ran"


@pytest.mark.parametrize(
    "argv",
    [
        ["diff", "a.json", "b.json"],
        ["plan", "--help"],
        ["plan", "--program", str(PROGRAMS / "ts_foreign")],  # Node.js: no Python to start
        ["plan", "--program", "/nonexistent/project"],
        ["plan", "--program"],  # malformed: the CLI's own parser reports it
    ],
)
def test_nothing_is_started_ahead_where_the_plan_would_not_use_it(argv: list[str]) -> None:
    assert not prelaunch_for(argv)
    assert python_host._standby is None


def test_a_virtualenv_still_to_be_built_is_left_to_the_plan(tmp_path: Path) -> None:
    program = tmp_path / "program"
    program.mkdir()
    (program / "Pulumi.yaml").write_text(
        "name: p\nruntime:\n  name: python\n  options:\n    virtualenv: venv\n"
    )
    (program / "requirements.txt").write_text("pulumi\n")
    (program / "__main__.py").write_text("")
    assert not prelaunch_for(["plan", "--program", str(program)])
    assert not (program / "venv").exists()  # nothing was installed ahead of the plan


def test_the_console_script_plans_with_exit_codes_as_before(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "gpustack", "plan", "--no-policy", "-f", "json"]
    good = subprocess.run(
        [*command, "--program", str(PROGRAMS / "py_foreign")],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    expected = json.loads(render_json(plan_document(program_plan("py_foreign"))))
    assert json.loads(good.stdout)["resources"] == expected["resources"]
    failing = subprocess.run(
        [*command, "--program", str(PROGRAMS / "py_lambda_error")],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert failing.returncode == 2
    assert "at __main__.py:8" in failing.stderr
    refused = subprocess.run(
        [*command, "--program", str(PROGRAMS / "py_foreign"), "--out", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--out" in refused.stderr


def test_the_standby_flag_is_the_shims() -> None:
    assert python_host.STANDBY_FLAG == python_exec.STANDBY_FLAG


def test_the_console_script_keeps_grpc_cores_info_lines_off_stderr() -> None:
    # grpcio printed "I... chttp2_transport.cc] ... Got goaway [2] ..." under a failed plan now
    # and then; a user who wants gRPC's own logs still gets them.
    from gpustack.console import quiet_grpc_core

    environ: dict[str, str] = {}
    quiet_grpc_core(environ)
    assert environ == {"GRPC_VERBOSITY": "ERROR"}
    environ = {"GRPC_VERBOSITY": "debug"}
    quiet_grpc_core(environ)
    assert environ == {"GRPC_VERBOSITY": "debug"}
