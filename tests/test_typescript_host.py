"""The Node.js language host's parts: config, install root and stamp, failure messages."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gpustack.hosts import ProgramError, ProgramRunError, nodejs
from tests.conftest import FIXTURES

PROGRAMS = FIXTURES / "programs"

# What @pulumi/pulumi's cmd/run logs for an exception thrown by the program (colours included).
THROWN = (
    "Running program '/work/app' failed with an unhandled exception:\n"
    "\x1b[31mError: unknown pool size: large\x1b[39m\n"
    "    at poolSize (/work/app/index.ts:10:15)\n"
    "    at Object.<anonymous> (/work/app/index.ts:16:22)\n"
    "    at Module._compile (node:internal/modules/cjs/loader:1554:14)\n"
    "    at Object.require.extensions.<computed> [as .ts] "
    "(/work/node_modules/ts-node/src/index.ts:1618:43)"
)
# ts-node's TSError for a type error, in tsc's plain and `pretty` formats.
TS_PLAIN = (
    "TSError: \u2a2f Unable to compile TypeScript:\n"
    "index.ts(8,5): error TS2322: Type 'string' is not assignable to type 'number'.\n"
)
TS_PRETTY = (
    "TSError: \u2a2f Unable to compile TypeScript:\n"
    "\x1b[96mindex.ts\x1b[0m:\x1b[93m8\x1b[0m:\x1b[93m5\x1b[0m - \x1b[91merror\x1b[0m"
    "\x1b[90m TS2322: \x1b[0mType 'string' is not assignable to type 'number'.\n"
)


def write_program(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.ts").write_text(source)
    return directory


def write_lockfile(directory: Path, name: str) -> None:
    """An npm v3 lockfile for a package `name` 1.0.0 with no dependencies locked."""
    lock = {
        "name": name,
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {"": {"name": name, "version": "1.0.0"}},
    }
    (directory / "package-lock.json").write_text(json.dumps(lock))


def test_config_reaches_node_with_the_config_namespace_in_the_key() -> None:
    config = {"proj:gpuMaxCount": "2", "azure-native:location": "eastus"}
    assert json.loads(nodejs.node_config(config)) == {
        "azure-native:config:location": "eastus",
        "proj:config:gpuMaxCount": "2",
    }


def test_fixture_programs_install_once_in_their_npm_workspace_root() -> None:
    for program in ("ts_aks_gpu", "ts_storage_vault", "ts_throws", "ts_type_error"):
        assert nodejs.install_root(PROGRAMS / program) == PROGRAMS.resolve()


def test_a_program_outside_a_workspace_installs_in_its_own_directory(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "outer", "workspaces": ["packages/*"]}')
    program = tmp_path / "app"
    program.mkdir()
    (program / "package.json").write_text('{"name": "app"}')
    assert nodejs.install_root(program) == program.resolve()
    member = tmp_path / "packages" / "infra"
    member.mkdir(parents=True)
    (member / "package.json").write_text('{"name": "infra"}')
    assert nodejs.install_root(member) == tmp_path.resolve()


def test_a_directory_without_package_json_is_the_environments_fault(tmp_path: Path) -> None:
    with pytest.raises(ProgramError) as raised:
        nodejs.install_root(tmp_path)
    assert raised.value.fault == "environment"
    assert "no package.json" in str(raised.value)


def test_install_runs_once_until_a_manifest_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("npm") is None:
        pytest.fail("npm is not on PATH: the Node.js host tests need Node.js 20+ and npm")
    (tmp_path / "package.json").write_text('{"name": "empty", "version": "1.0.0"}')
    write_lockfile(tmp_path, "empty")
    calls: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(command: list[str], **kwargs: Any) -> Any:
        calls.append(command)
        return real_run(command, **kwargs)

    monkeypatch.setattr(nodejs.subprocess, "run", recording_run)
    notes: list[str] = []
    nodejs.install_dependencies(tmp_path, notes=notes)
    assert [command[1] for command in calls] == ["install"]
    assert (tmp_path / "node_modules" / nodejs.STAMP_NAME).exists()
    assert notes and "npm install" in notes[0]

    nodejs.install_dependencies(tmp_path)
    assert len(calls) == 1, "an unchanged program was installed again"

    (tmp_path / "package.json").write_text('{"name": "empty", "version": "1.0.0", "x": 1}')
    nodejs.install_dependencies(tmp_path)
    assert len(calls) == 2, "a changed package.json did not reinstall"


def test_a_lockfile_that_lags_package_json_installs_as_pulumi_install_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dependency added to package.json without `npm install`: Pulumi runs `npm install`,
    # which brings the lockfile up to date; `npm ci` refused it (EUSAGE) and failed the plan.
    if shutil.which("npm") is None:
        pytest.fail("npm is not on PATH: the Node.js host tests need Node.js 20+ and npm")
    helper = tmp_path / "naming"
    helper.mkdir()
    (helper / "package.json").write_text('{"name": "naming", "version": "1.0.0"}')
    program = tmp_path / "app"
    program.mkdir()
    write_lockfile(program, "app")
    (program / "package.json").write_text(
        '{"name": "app", "version": "1.0.0", "dependencies": {"naming": "file:../naming"}}'
    )
    nodejs.install_dependencies(program)
    assert (program / "node_modules" / "naming" / "package.json").exists()
    assert "naming" in json.loads((program / "package-lock.json").read_text())["packages"][""][
        "dependencies"
    ]
    # The stamp holds the lockfile as npm left it: the next plan installs nothing.
    calls: list[list[str]] = []
    monkeypatch.setattr(nodejs.subprocess, "run", lambda command, **_: calls.append(command))
    nodejs.install_dependencies(program)
    assert calls == []


def test_a_typescript_error_under_main_names_the_file_from_the_program_directory(
    tmp_path: Path,
) -> None:
    # `main: src/` runs Node in src/, and TypeScript names files relative to it: the message
    # said "at cosmos.ts:8" with no source line, a file that is not in the program directory.
    program = write_program(tmp_path / "app", "")
    (program / "src").mkdir()
    (program / "src" / "cosmos.ts").write_text("\n" * 7 + '    maxCount: "two",\n')
    logged = TS_PLAIN.replace("index.ts(8,5)", "cosmos.ts(8,5)")
    error = nodejs.describe_failure(program, 32, [logged], "", work_dir=program / "src")
    assert error.detail.endswith('\n  at src/cosmos.ts:8\n    maxCount: "two",')


def test_thrown_error_names_the_programs_file_and_line(tmp_path: Path) -> None:
    program = write_program(tmp_path / "app", "\n" * 9 + "        throw new Error('x');\n")
    text = THROWN.replace("/work/app", str(program)).replace("/work/node", str(tmp_path / "node"))
    error = nodejs.describe_failure(program, 32, [text], "")
    assert error.fault == "program"
    assert error.detail == (
        "Error: unknown pool size: large\n  at index.ts:10\n    throw new Error('x');"
    )


@pytest.mark.parametrize("logged", [TS_PLAIN, TS_PRETTY], ids=["plain", "pretty"])
def test_typescript_diagnostics_name_the_programs_file_and_line(
    tmp_path: Path, logged: str
) -> None:
    program = write_program(tmp_path / "app", "\n" * 7 + '    maxCount: "two",\n')
    error = nodejs.describe_failure(program, 32, [logged], "")
    assert error.fault == "program"
    assert error.detail == (
        "TypeScript error TS2322: Type 'string' is not assignable to type "
        "'number'.\n  at index.ts:8\n    maxCount: \"two\","
    )


def test_error_raised_inside_a_package_says_so(tmp_path: Path) -> None:
    logged = (
        "Running program '/p' failed with an unhandled exception:\n"
        "Error: boom\n    at f (/elsewhere/node_modules/lib/index.js:3:9)"
    )
    error = nodejs.describe_failure(tmp_path, 1, [logged], "")
    assert error.fault == "program"
    assert error.detail.startswith("Error: boom\n  (raised outside the program's files")


@pytest.mark.parametrize(
    "logged",
    [
        "Running program '/p' failed with an unhandled exception:\n"
        "Error: Cannot find module '@pulumi/kubernetes'\nRequire stack:\n- /p/index.ts",
        "TSError: \u2a2f Unable to compile TypeScript:\nindex.ts(2,23): error TS2307: "
        "Cannot find module '@pulumi/kubernetes' or its corresponding type declarations.",
    ],
    ids=["node", "typescript"],
)
def test_a_package_missing_from_package_json_is_the_environments_fault(
    tmp_path: Path, logged: str
) -> None:
    error = nodejs.describe_failure(tmp_path, 32, [logged], "")
    assert error.fault == "environment"
    assert error.detail.startswith("the package '@pulumi/kubernetes' is not installed for")


def test_a_missing_file_of_the_program_is_the_programs_fault(tmp_path: Path) -> None:
    logged = (
        "Running program '/p' failed with an unhandled exception:\n"
        f"Error: Cannot find module './pools'\n    at Object.<anonymous> ({tmp_path}/index.ts:3:1)"
    )
    error = nodejs.describe_failure(tmp_path, 32, [logged], "")
    assert error.fault == "program"
    assert "at index.ts:3" in error.detail


def test_run_error_is_shown_as_the_program_wrote_it(tmp_path: Path) -> None:
    error = nodejs.describe_failure(tmp_path, 32, ["gpuMaxCount must be at most 8"], "")
    assert isinstance(error, ProgramRunError)
    assert str(error) == "gpuMaxCount must be at most 8"


def test_npm_reason_keeps_npms_explanation_not_its_usage_text() -> None:
    output = "\n".join(
        [
            "npm error code EUSAGE",
            "npm error",
            "npm error The `npm ci` command can only install with an existing package-lock.json",
            "npm error",
            "npm error Clean install a project",
            "npm error",
            "npm error Usage:",
            "npm error npm ci",
        ]
    )
    assert nodejs._npm_reason(output) == (
        "  code EUSAGE\n  The `npm ci` command can only install with an existing package-lock.json"
    )


def test_unsupported_package_manager_is_refused(tmp_path: Path) -> None:
    project = nodejs.StackProject(
        "p", tmp_path, tmp_path, "dev", tmp_path / "Pulumi.dev.yaml", {}, [], "nodejs",
        {"packagemanager": "pnpm"},
    )  # fmt: skip
    with pytest.raises(ProgramError, match="npm only"):
        nodejs.runtime_options(project)
