"""`gpustack plan` on TypeScript programs (`runtime: nodejs`), end to end as users run it.

The TypeScript fixtures share one `node_modules` through the npm workspace in
tests/fixtures/programs; the first plan installs it with `npm install` (about a minute), later ones
find the install stamp and skip it. Node.js and npm are required: without them these tests
fail with a message, they are never skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from gpustack.engine import ProgramError, run_plan
from gpustack.hosts.nodejs import STAMP_NAME, install_dependencies
from gpustack.mocks import answers
from tests.conftest import FIXTURES, ROOT

PROGRAMS = FIXTURES / "programs"
STAGING_POLICY = ROOT / "policies" / "config" / "staging.json"
TWINS = [("ts_aks_gpu", "py_aks_gpu"), ("ts_storage_vault", "py_storage_vault")]


@pytest.fixture(autouse=True, scope="module")
def node_and_npm() -> None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"`{tool}` is not on PATH: planning TypeScript programs needs Node.js 20 or later "
                "and npm (CI has both); install them, these tests are not skipped"
            )


def gpustack(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`gpustack ARGS` in a fresh process, with `env` added to this one's environment."""
    return subprocess.run(
        [sys.executable, "-m", "gpustack", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **env},
        check=False,
    )


@cache
def plan(program: str, stack: str = "staging", *extra: str) -> tuple[int, dict[str, Any], str]:
    """Exit code, plan JSON and stderr of `gpustack plan` on one fixture program (once).

    The fixtures are other programs, so they get this project's policy config for `stack`
    only when asked for it, as here.
    """
    config = ("--policy-config", str(ROOT / "policies" / "config" / f"{stack}.json"))
    result = gpustack(
        "plan", "--program", str(PROGRAMS / program), "--stack", stack, "--format", "json",
        *config, *extra,
    )
    document = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, document, result.stderr


def by_name(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["type"], r["name"]): r for r in document["resources"]}


def mandatory(document: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (v["rule"], v["urn"].rsplit("::", 1)[-1])
        for v in document["policy"]["violations"]
        if v["level"] == "mandatory"
    )


def test_typescript_aks_program_plans_a_tainted_gpu_pool_that_scales_from_zero() -> None:
    code, document, stderr = plan("ts_aks_gpu")
    assert code == 0, stderr
    resources = by_name(document)
    assert set(resources) == {
        ("azure-native:resources:ResourceGroup", "rg"),
        ("azure-native:operationalinsights:Workspace", "logs"),
        ("azure-native:containerservice:ManagedCluster", "aks"),
        ("azure-native:containerservice:AgentPool", "gpu"),
        ("azure-native:monitor:DiagnosticSetting", "aks-diagnostics"),
        ("azure-native:consumption:Budget", "budget"),
    }
    pool = resources[("azure-native:containerservice:AgentPool", "gpu")]
    assert pool["inputs"]["vmSize"] == "Standard_NC24ads_A100_v4"
    assert pool["inputs"]["nodeTaints"] == ["sku=gpu:NoSchedule"]
    assert pool["inputs"]["enableAutoScaling"] is True
    assert (pool["inputs"]["minCount"], pool["inputs"]["maxCount"]) == (0, 2)
    assert pool["options"]["ignoreChanges"] == ["count"]
    # The program's own alias is kept; azure-native's type-only aliases (one per old API
    # version) are dropped before registration, as for Python programs.
    assert [alias["name"] for alias in pool["options"]["aliases"]] == ["gpu-a100"]
    assert all("aliases" not in r["options"] for r in resources.values() if r["name"] != "gpu")
    # The pool names its cluster by the cluster's output, resolved by the mocks.
    assert pool["inputs"]["resourceName"] == "aks-gpu-staging"
    assert document["outputs"] == {"clusterName": "aks-gpu-staging", "gpuPoolName": "gpua100"}
    assert document["capacity"]["gpus"] == {"min": 0, "max": 2}
    # The policy pack ran over the TypeScript program's resources: every mandatory rule passed,
    # and the only advisories are the monitoring extras this small fixture cluster leaves out.
    assert "gpustack-gpu-pool-tainted" in document["policy"]["rules"]
    violations = document["policy"]["violations"]
    assert {v["level"] for v in violations} <= {"advisory"}
    assert sorted(v["rule"] for v in violations) == [
        "gpustack-aks-container-insights", "gpustack-aks-defender-profile",
        "gpustack-aks-diagnostic-categories", "gpustack-aks-maintenance-window",
    ]


def test_typescript_storage_program_keeps_its_secret_config_secret() -> None:
    code, document, stderr = plan("ts_storage_vault")
    assert code == 0, stderr
    resources = by_name(document)
    secret = resources[("azure-native:keyvault:Secret", "registry-token")]
    assert secret["inputs"]["properties"]["value"] == "[secret]"
    vault = resources[("azure-native:keyvault:Vault", "vault")]
    # The tenant comes from an invoke (authorization.getClientConfig) answered by the mocks.
    assert vault["inputs"]["properties"]["tenantId"] == answers()["tenant"]
    assert document["outputs"]["vaultUri"] == "https://kv-data-staging.vault.azure.net/"


@pytest.mark.parametrize(("typescript", "python"), TWINS)
def test_typescript_and_python_twins_plan_the_same_resources(typescript: str, python: str) -> None:
    ts_code, ts_plan, ts_stderr = plan(typescript)
    py_code, py_plan, py_stderr = plan(python)
    assert (ts_code, py_code) == (0, 0), ts_stderr + py_stderr
    ts_resources, py_resources = by_name(ts_plan), by_name(py_plan)
    assert set(ts_resources) == set(py_resources)
    # Same order (constructor order, not RPC arrival), and every resource the same but for the
    # source line that declared it: URN, id, inputs, options (protect, ignoreChanges, aliases).
    assert [r["urn"] for r in ts_plan["resources"]] == [r["urn"] for r in py_plan["resources"]]
    for key, ts_resource in ts_resources.items():
        py_resource = py_resources[key]
        assert Path(ts_resource["source"]["file"]).name == "index.ts"
        assert Path(py_resource["source"]["file"]).name == "__main__.py"
        assert _without_source(ts_resource) == _without_source(py_resource), key
    for section in ("outputs", "policy", "cost", "capacity"):
        assert ts_plan[section] == py_plan[section], section
    # The pack judges the twins alike: the same verdicts, none of them mandatory.
    def verdicts(document: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        return sorted((v["rule"], v["level"], v["urn"], v["message"])
                      for v in document["policy"]["violations"])

    assert verdicts(ts_plan) == verdicts(py_plan)
    assert all(level == "advisory" for _, level, _, _ in verdicts(ts_plan))


def _without_source(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as the engine means it, minus the line that declared it.

    An alias without a parent means "the resource's own parent". The Node.js SDK spells that
    parent out in the alias spec (for older CLIs, says sdk/nodejs/runtime/resource.ts); the
    Python SDK leaves `parentUrn` empty for the engine to fill in. Both are filled in here.
    """
    view = {key: value for key, value in resource.items() if key != "source"}
    aliases = view["options"].get("aliases")
    if aliases:
        parent = resource["parent"] or ""
        filled = [
            {**alias, "parentUrn": alias.get("parentUrn") or parent}
            if not alias.get("noParent")
            else alias
            for alias in aliases
        ]
        view["options"] = {**view["options"], "aliases": filled}
    return view


def test_policy_refuses_a_typescript_program_opened_to_the_internet() -> None:
    code, document, stderr = plan(
        "ts_storage_vault", "public", "--policy-config", str(STAGING_POLICY)
    )
    assert code == 1, stderr
    assert mandatory(document) == [
        ("gpustack-keyvault-public-network-access", "vault"),
        ("gpustack-storage-public-network-access", "models"),
    ]


def test_exception_in_a_typescript_program_names_its_file_and_line() -> None:
    code, document, stderr = plan("ts_throws")
    assert code == 2
    assert document == {}
    assert "the program failed: Error: unknown pool size: large" in stderr
    assert "at index.ts:10" in stderr
    assert "throw new Error(`unknown pool size: ${name}`);" in stderr
    # Said once, without the SDK's own frames, colours or a Python traceback.
    assert stderr.count("unknown pool size: large") == 1
    assert "node_modules" not in stderr and "\x1b[" not in stderr and "Traceback" not in stderr


def test_typescript_compile_error_is_the_programs_fault_and_names_file_and_line() -> None:
    with pytest.raises(ProgramError) as raised:
        run_plan(PROGRAMS / "ts_type_error", "staging")
    assert raised.value.fault == "program"
    message = raised.value.detail
    assert message.startswith("TypeScript error TS2322: Type 'string' is not")
    assert '\n  at index.ts:8\n    maxCount: "two",' in message


def test_broken_npm_environment_is_the_environments_fault(tmp_path: Path) -> None:
    program = tmp_path / "broken_env"
    shutil.copytree(PROGRAMS / "ts_throws", program)
    # `npm install` (as Pulumi runs it) replaces a lockfile it cannot read, but not a
    # package.json: npm says EJSONPARSE, and no program line is to blame.
    (program / "package.json").write_text('{ "name": "broken-env", ')
    result = gpustack("plan", "--program", str(program), "--stack", "staging")
    assert result.returncode == 2
    assert "the program's environment is not usable" in result.stderr
    assert "the Node.js packages could not be installed: `npm install` failed in" in result.stderr
    assert "package.json" in result.stderr
    assert not (program / "node_modules" / STAMP_NAME).exists()
    with pytest.raises(ProgramError) as raised:
        install_dependencies(program)
    assert raised.value.fault == "environment"


def test_missing_node_is_the_environments_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProgramError) as raised:
        run_plan(PROGRAMS / "ts_throws", "staging")
    assert raised.value.fault == "environment"
    assert "`node` is not on PATH" in str(raised.value)
    assert "Node.js 20 or later" in str(raised.value)


def test_a_node_program_ending_its_own_process_names_the_line_and_shows_its_output() -> None:
    # Before: "the Node.js program exited with code 1 (raised outside the program's files)",
    # and the program's own last words were dropped; the Python host names `sys.exit`'s line.
    result = gpustack("plan", "--program", str(PROGRAMS / "js_exit"), "--no-policy")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "the program failed: the program called process.exit(1)\n  at checks.js:7\n" in (
        result.stderr
    )
    assert "    process.exit(1);\n  the program's stderr (end):\n    missing setting team" in (
        result.stderr
    )
    assert "raised outside" not in result.stderr


# --- bounded runs: the Node.js host stops a program as the Python host does ---------------------


def test_a_node_program_with_unbounded_output_is_stopped() -> None:
    result = gpustack("plan", "--program", str(PROGRAMS / "js_noisy"), "--no-policy")
    assert result.returncode == 2
    assert "wrote more than 8 MB to stdout and was stopped" in result.stderr
    assert str(PROGRAMS / "js_noisy") in result.stderr
    assert len(result.stderr) < 10_000
    assert result.stdout == ""


def test_a_node_program_running_too_long_is_stopped() -> None:
    # Starting Node and compiling the TypeScript alone takes longer than this.
    result = gpustack(
        "plan", "--program", str(PROGRAMS / "ts_throws"), "--stack", "staging", "--no-policy",
        GPUSTACK_PLAN_TIMEOUT="0.2",
    )  # fmt: skip
    assert result.returncode == 2
    assert "the program did not finish within 0.2 s and was stopped" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("program", ["ts_throws", "py_noisy"])
@pytest.mark.parametrize("value", ["soon", "-5", "nan", "0"])
def test_a_bad_plan_timeout_is_a_clear_error_for_every_runtime(program: str, value: str) -> None:
    stack = "staging" if program == "ts_throws" else "dev"
    result = gpustack(
        "plan", "--program", str(PROGRAMS / program), "--stack", stack, "--no-policy",
        GPUSTACK_PLAN_TIMEOUT=value,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"GPUSTACK_PLAN_TIMEOUT={value!r}: expected a positive number of seconds" in (
        result.stderr
    )
    assert "internal error" not in result.stderr
