"""`gpustack plan` end to end, in a subprocess, as users and CI run it."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from gpustack.report import render_markdown
from tests.conftest import FIXTURES, ROOT

CONTRACT_KEYS = {"project", "stack", "resources", "outputs", "policy", "cost", "capacity"}
RESOURCE_KEYS = {"urn", "type", "name", "parent", "inputs", "options"}


def gpustack(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpustack", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@cache
def plan_json(stack: str) -> tuple[int, dict]:
    result = gpustack("plan", "--stack", stack, "--format", "json")
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_plan_json_follows_the_contract(stack: str) -> None:
    code, document = plan_json(stack)
    assert code == 0
    assert set(document) >= CONTRACT_KEYS
    assert document["project"] == "azure-gpu-stacks" and document["stack"] == stack
    assert document["resources"], "a stack with no resources planned nothing"
    for resource in document["resources"]:
        assert set(resource) >= RESOURCE_KEYS
        assert resource["urn"].startswith(f"urn:pulumi:{stack}::azure-gpu-stacks::")
    types = {r["type"] for r in document["resources"]}
    assert "azure-native:network:VirtualNetwork" in types
    assert document["outputs"]["environment"] == stack


def test_plan_inputs_use_engine_camel_case_names() -> None:
    _, document = plan_json("dev")
    (vnet,) = [r for r in document["resources"] if r["type"].endswith(":VirtualNetwork")]
    assert vnet["inputs"]["addressSpace"]["addressPrefixes"] == ["10.40.0.0/16"]
    assert "address_space" not in vnet["inputs"]


def test_default_table_prints_a_tree_and_a_summary() -> None:
    result = gpustack("plan")
    assert result.returncode == 0, result.stderr
    assert "gpustack:network:GpuNetwork" in result.stdout
    assert "├─ azure-native:network:" in result.stdout
    # The summary is the last paragraph (wrapped to fit 100 columns).
    assert result.stdout.strip().split("\n\n")[-1].startswith("plan azure-gpu-stacks/dev:")


def test_markdown_renders_the_plan_for_a_pr_comment() -> None:
    # Rendered from the shared dev plan: planning the stack again would only repeat that work.
    text = render_markdown(plan_json("dev")[1])
    assert text.startswith("### gpustack plan: `azure-gpu-stacks` / `dev`")
    assert "| `azure-native:network:VirtualNetwork` | 1 |" in text


def test_out_writes_the_report_to_a_file_instead_of_stdout(tmp_path: Path) -> None:
    out = tmp_path / "plan.md"
    program = FIXTURES / "foreign_program"
    result = gpustack(
        "plan", "--program", str(program), "--format", "markdown", "--out", str(out), "--no-policy"
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("### gpustack plan: `foreign-inference` / `dev`")
    assert result.stdout == ""


def test_foreign_program_is_planned_with_its_own_config() -> None:
    program = FIXTURES / "foreign_program"
    result = gpustack("plan", "--program", str(program), "--format", "json", "--no-policy")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["project"] == "foreign-inference"
    names = {r["name"]: r for r in document["resources"]}
    assert set(names) >= {"infer-rg", "infersa", "infer-id"}
    assert names["infersa"]["options"]["protect"] is True
    assert names["infer-id"]["options"]["ignoreChanges"] == ["tags"]
    outputs = document["outputs"]
    assert outputs["blobEndpoint"].startswith("https://infersa")
    assert outputs["replicas"] == 1  # the project-level default from Pulumi.yaml
    assert outputs["apiKey"] == "[secret]"


def test_preview_leaves_computed_outputs_unknown() -> None:
    program = FIXTURES / "foreign_program"
    result = gpustack("plan", "--program", str(program), "-f", "json", "--preview", "--no-policy")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["outputs"]["blobEndpoint"] == "<computed>"
    assert document["outputs"]["tenantId"]  # invokes still answer during preview
    (identity,) = [r for r in document["resources"] if r["name"] == "infer-id"]
    assert identity["inputs"]["resourceGroupName"] == "<computed>"


def test_bad_config_exits_2_with_one_message_and_no_traceback(tmp_path: Path) -> None:
    program = tmp_path / "program"
    program.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (program / name).write_text((ROOT / name).read_text())
    for package in ("stacks", "components"):
        (program / package).symlink_to(ROOT / package)
    stack_file = (ROOT / "Pulumi.dev.yaml").read_text()
    stack_file = stack_file.replace("logRetentionDays: 30", "logRetentionDayz: 30")
    stack_file = stack_file.replace("monthlyAmountUsd: 1500", "monthlyAmountUsd: lots")
    stack_file = stack_file.replace("minCount: 0", "minCount: -2", 1)
    (program / "Pulumi.dev.yaml").write_text(stack_file)

    result = gpustack("plan", "--program", str(program))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: Invalid configuration in Pulumi.dev.yaml (3 problems)")
    expected = [
        "azure-gpu-stacks:monitoring.logRetentionDayz: unknown key",
        "azure-gpu-stacks:budget.monthlyAmountUsd: Input should be a valid number",
        "azure-gpu-stacks:aks.gpuPools[0].minCount: Input should be greater than or equal to 0"
        " (got -2)",
    ]
    for line in expected:
        assert line in result.stderr
    assert result.stdout == ""


def test_program_exception_names_the_programs_file_and_line() -> None:
    result = gpustack("plan", "--program", str(FIXTURES / "broken_program"), "--no-policy")
    assert result.returncode == 2
    assert "KeyError: 'large'" in result.stderr
    assert "at __main__.py:7" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_stack_file_lists_the_stacks() -> None:
    result = gpustack("plan", "--stack", "qa")
    assert result.returncode == 2
    assert "Pulumi.qa.yaml" in result.stderr and "dev, prod, staging" in result.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize(
    "args", [("catalog",), ("plan", "-s", "dev", "--no-policy", "--format", "json")]
)
def test_a_full_disk_on_stdout_is_an_error_not_a_bug(args: tuple[str, ...]) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "gpustack", *args],
            cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    assert done.returncode == 2
    assert "No space left on device" in done.stderr
    assert "internal error" not in done.stderr
    assert "Traceback" not in done.stderr
