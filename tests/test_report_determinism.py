"""Same input, same bytes: every report format, across processes with different hash seeds.

String hashing is randomised per process, so anything that iterates a set or orders by hash
changes between two runs of the CLI but never within one test process: only subprocesses
with different PYTHONHASHSEED values catch it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpustack.estimates import plan_estimates
from gpustack.report import plan_document
from tests.conftest import FIXTURES, ROOT, planned

FORMATS = ("table", "json", "markdown", "mermaid", "sarif")


def _start(args: list[str], seed: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONHASHSEED": str(seed)},
    )


def _twice(args: list[str]) -> tuple[tuple[int, bytes, bytes], tuple[int, bytes, bytes]]:
    """Run `args` in two processes at once, with different hash seeds."""
    first, second = _start(args, 1), _start(args, 2)
    outputs = []
    for process in (first, second):
        out, err = process.communicate(timeout=600)
        outputs.append((process.returncode, out, err))
    return outputs[0], outputs[1]


@pytest.mark.parametrize("report_format", FORMATS)
def test_plan_gives_the_same_bytes_twice(report_format: str) -> None:
    program = FIXTURES / "foreign_program"
    args = ["-m", "gpustack", "plan", "--program", str(program), "-f", report_format]
    (code_1, out_1, err_1), (code_2, out_2, err_2) = _twice(args)
    assert code_1 == code_2, (err_1, err_2)
    assert code_1 in (0, 1), err_1.decode()
    assert out_1, err_1.decode()
    assert out_1 == out_2
    assert err_1 == err_2


_RENDER = """
import json, sys
from pathlib import Path
from gpustack.diagram import render_mermaid
from gpustack.report import render_json, render_markdown, render_table
from gpustack.sarif import render_sarif
document = json.loads(Path(sys.argv[1]).read_text())
for render in (render_table, render_json, render_markdown, render_mermaid):
    sys.stdout.write(render(document))
sys.stdout.write(render_sarif(document, program_dir=Path(sys.argv[2])))
"""


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_reports_of_one_plan_are_the_same_bytes_in_any_process(
    stack: str, tmp_path: Path
) -> None:
    plan = planned(stack)
    document = plan_document(plan)
    document.update(plan_estimates(plan))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    (code_1, out_1, err_1), (code_2, out_2, _) = _twice(["-c", _RENDER, str(path), str(ROOT)])
    assert code_1 == code_2 == 0, err_1.decode()
    assert out_1 and out_1 == out_2
