"""The Python language host: run a program in its own virtualenv with gpustack's exec shim.

Which interpreter, as Pulumi's `pulumi-language-python` picks it:
- `runtime.options.virtualenv` in `Pulumi.yaml` (relative to the project directory): that
  virtualenv's Python. When it does not exist it is created from the project's
  `requirements.txt` (`python -m venv`, then `pip install -r requirements.txt`), as `pulumi
  install` does, and a stamp file records the requirements' hash: the next plan reuses it, and
  a changed `requirements.txt` is installed again into it. A virtualenv that gpustack did not
  create (no stamp) is used as it is, as `pulumi up` does.
- `runtime.options.toolchain: uv` (pulumi `sdk/python/toolchain/uv.go`): the `virtualenv`
  option, else `.venv` next to the nearest `uv.lock`, else next to the nearest
  `pyproject.toml`, else in the project directory. A missing one is made with `uv sync` (a
  `uv.lock` or `pyproject.toml` above) or `uv venv` and `uv pip install -r requirements.txt`
  (gpustack does not run `uv init`, which would rewrite the project), when `uv` is on PATH.
- `toolchain: poetry`: the virtualenv `poetry env info --path` names; gpustack does not
  install it (`poetry install`, or `pulumi install`, does).
- pip and no `virtualenv` option: the interpreter running gpustack (its SDK versions, not the
  program's), like Pulumi's fallback to the `python3` on PATH.
- a named virtualenv that does not exist and no `requirements.txt` to build it from: the
  interpreter running gpustack, with a note saying so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from gpustack.hosts import ProgramError, ProgramRun, ProgramRunError
from gpustack.hosts.process import (
    OUTPUT_SHOWN_CHARS,
    Outcome,
    require_tool,
    run_bounded,
    start,
    timeout_seconds,
    wait_bounded,
)
from gpustack.project import StackProject

SHIM = Path(__file__).with_name("python_exec.py")
STANDBY_FLAG = "--standby"
"""`python_exec.STANDBY_FLAG` (the shim imports nothing from gpustack, nor this from it: loading
the shim here would delay the start it exists to hasten)."""
STAMP = ".gpustack-requirements.sha256"
INSTALL_TIMEOUT_S = 1800.0


def run_program(
    project: StackProject,
    monitor_address: str,
    engine_address: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    preview: bool,
    env: Mapping[str, str],
) -> ProgramRun:
    """Run a Python program as `pulumi-language-python` would; see `gpustack.hosts.run_program`."""
    timeout = timeout_seconds(env)
    notes: list[str] = []
    python = interpreter(project, notes)
    child_env = _child_env(project, python, env)
    config_env = {
        "PULUMI_CONFIG": json.dumps(dict(config)),
        "PULUMI_CONFIG_SECRET_KEYS": json.dumps(list(secret_keys)),
    }
    with tempfile.TemporaryDirectory(prefix="gpustack-plan-") as scratch:
        result_file = Path(scratch) / "result.json"
        arguments = [
            "--monitor", monitor_address,
            "--engine", engine_address,
            "--project", project.name,
            "--stack", project.stack,
            "--dry_run", "true" if preview else "false",
            "--pwd", str(project.program_dir),
            "--result", str(result_file),
        ]  # fmt: skip
        cache = sdk_bytecode_cache(env)
        if cache is not None:
            arguments += ["--sdk-cache", str(cache)]
        arguments.append(str(project.main))
        child = _take_standby(python, project.program_dir, child_env, arguments, config_env)
        if child is not None:
            outcome = wait_bounded(child, timeout)
        else:
            command = [str(python), str(SHIM), *arguments]
            run_env = {**child_env, **config_env}
            outcome = run_bounded(command, run_env, project.program_dir, timeout)
        result = _read_result(result_file)
    try:
        return _judge(project, python, outcome, timeout, result, notes)
    except ProgramRunError:
        raise
    except ProgramError as error:
        # Which interpreter ran it often explains the failure (a missing module).
        for note in notes:
            error.detail += f"\n  {note}"
        raise


def _child_env(project: StackProject, python: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The program's environment, but for its config: `env` and its virtualenv activated."""
    child_env = dict(env)
    child_env["PYTHONUNBUFFERED"] = "1"
    if python != Path(sys.executable) and project.runtime_options.get("virtualenv"):
        venv = python.parent.parent
        child_env["VIRTUAL_ENV"] = str(venv)
        child_env["PATH"] = f"{python.parent}{os.pathsep}{child_env.get('PATH', '')}"
    return child_env


# --- the interpreter started ahead -------------------------------------------------------------


@dataclass
class _Standby:
    python: Path
    program_dir: Path
    env: dict[str, str]
    child: subprocess.Popen[bytes]


_standby: _Standby | None = None


def prelaunch(project: StackProject, env: Mapping[str, str]) -> bool:
    """Start `project`'s interpreter now, loading the Pulumi SDK while gpustack loads itself.

    The `gpustack` console script calls this before importing the rest of gpustack (about a
    fifth of a second that the two processes then spend side by side). The interpreter runs
    no program code until `run_program` hands it the run's arguments; when the run differs
    (another interpreter, directory or environment) or never comes, it is discarded and ends
    without running anything. Only an interpreter that exists and needs no install is started
    ahead: creating a virtualenv stays `run_program`'s, with its messages. True when started.
    """
    global _standby
    discard_standby()
    python = ready_interpreter(project)
    if python is None:
        return False
    child_env = _child_env(project, python, env)
    try:
        child = start([str(python), str(SHIM), STANDBY_FLAG], child_env, project.program_dir, True)
    except ProgramError:
        return False  # run_program reports it, when the plan gets that far
    _standby = _Standby(python, project.program_dir, child_env, child)
    return True


def discard_standby() -> None:
    """End the interpreter started ahead, if any, before it runs anything."""
    global _standby
    standby, _standby = _standby, None
    if standby is not None:
        with contextlib.suppress(OSError):
            standby.child.stdin.close()  # type: ignore[union-attr]
        standby.child.kill()
        standby.child.wait()


def _take_standby(
    python: Path,
    program_dir: Path,
    child_env: Mapping[str, str],
    arguments: list[str],
    config_env: Mapping[str, str],
) -> subprocess.Popen[bytes] | None:
    """The interpreter started ahead, told to run with `arguments`, when it is this run's."""
    global _standby
    standby = _standby
    if standby is None:
        return None
    if (standby.python, standby.program_dir, standby.env) != (python, program_dir, child_env):
        discard_standby()
        return None
    _standby = None
    order = json.dumps({"argv": arguments, "env": dict(config_env)}) + "\n"
    try:
        assert standby.child.stdin is not None
        standby.child.stdin.write(order.encode("utf-8"))
        standby.child.stdin.close()
    except OSError:  # it ended early (a broken interpreter): start it the usual way instead
        standby.child.kill()
        standby.child.wait()
        return None
    return standby.child


def sdk_bytecode_cache(env: Mapping[str, str]) -> Path | None:
    """Where the program's process caches provider SDKs compiled with deferred annotations.

    `$GPUSTACK_CACHE_DIR`, else `$XDG_CACHE_HOME/gpustack`, else `~/.cache/gpustack`; None
    (load SDKs as Python does) when `GPUSTACK_SDK_ANNOTATIONS=eager`. See `sdk_loader.py`.
    """
    if env.get("GPUSTACK_SDK_ANNOTATIONS", "").strip().lower() == "eager":
        return None
    if env.get("GPUSTACK_CACHE_DIR"):
        root = Path(env["GPUSTACK_CACHE_DIR"])
    elif env.get("XDG_CACHE_HOME"):
        root = Path(env["XDG_CACHE_HOME"]) / "gpustack"
    else:
        try:
            root = Path.home() / ".cache" / "gpustack"
        except RuntimeError:  # no home directory: load SDKs as Python does
            return None
    return root / "python-sdk"


# --- interpreter and virtualenv ----------------------------------------------------------------


def interpreter(project: StackProject, notes: list[str]) -> Path:
    """The Python that runs `project`, creating its virtualenv when needed (see module doc)."""
    toolchain = str(project.runtime_options.get("toolchain") or "pip")
    if toolchain == "uv":
        return _uv_interpreter(project)
    if toolchain == "poetry":
        return _poetry_interpreter(project)
    if toolchain != "pip":
        raise ProgramError(
            f"runtime.options.toolchain in {project.program_dir / 'Pulumi.yaml'} is "
            f"{toolchain!r}; Pulumi's Python toolchains are pip, poetry and uv",
            fault="environment",
        )
    option = project.runtime_options.get("virtualenv")
    if not option:
        return Path(sys.executable)
    venv = (project.program_dir / str(option)).resolve()
    python = _venv_python(venv)
    requirements = project.program_dir / "requirements.txt"
    if python.exists():
        stamp = venv / STAMP
        stale = stamp.exists() and requirements.exists()
        if stale and stamp.read_text().strip() != _digest(requirements):
            with _locked(venv):
                _install(project, venv, python, requirements)
        return python
    if not requirements.exists():
        notes.append(
            f"note: virtualenv {option!r} named in Pulumi.yaml does not exist and there is no "
            f"requirements.txt to create it from; running with {sys.executable}"
        )
        return Path(sys.executable)
    with _locked(venv):
        if not python.exists():
            _create(project, venv, requirements)
    return python


def ready_interpreter(project: StackProject) -> Path | None:
    """The Python `interpreter` would pick, when it exists and needs no install; else None."""
    toolchain = str(project.runtime_options.get("toolchain") or "pip")
    option = project.runtime_options.get("virtualenv")
    if toolchain == "uv":
        python = _venv_python(_uv_venv(project)[0])
        return python if python.exists() else None
    if toolchain != "pip":
        return None  # poetry asks `poetry env info`; an unknown toolchain is an error to report
    if not option:
        return Path(sys.executable)
    venv = (project.program_dir / str(option)).resolve()
    python = _venv_python(venv)
    stamp, requirements = venv / STAMP, project.program_dir / "requirements.txt"
    if not python.exists():
        return None
    if stamp.exists() and requirements.exists() and stamp.read_text().strip() != _digest(
        requirements
    ):
        return None  # to be reinstalled first
    return python


def _venv_python(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _digest(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


@contextlib.contextmanager
def _locked(venv: Path) -> Iterator[None]:
    """One creator at a time for one virtualenv (parallel test workers, two plans at once)."""
    import fcntl

    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / f"{venv.name}.gpustack-lock"
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _uv_venv(project: StackProject) -> tuple[Path, Path | None]:
    """The uv toolchain's virtualenv, and uv's project root (where uv.lock, else
    pyproject.toml, is) when there is one."""
    option = project.runtime_options.get("virtualenv")
    home = _search_up(project.program_dir, "uv.lock") or _search_up(
        project.program_dir, "pyproject.toml"
    )
    if option:
        return (project.program_dir / str(option)).resolve(), home
    return (home or project.program_dir) / ".venv", home


def _uv_interpreter(project: StackProject) -> Path:
    venv, home = _uv_venv(project)
    python = _venv_python(venv)
    if python.exists():
        return python
    uv = require_tool(
        "uv",
        f"the uv toolchain's virtualenv {venv} does not exist and `uv` is not on PATH: "
        "install uv, or create the virtualenv with `pulumi install`",
    )
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    with _locked(venv):
        if python.exists():
            return python
        requirements = project.program_dir / "requirements.txt"
        if home is not None:
            _step(project, [uv, "sync"], "uv sync", venv, env)
        else:
            _step(project, [uv, "venv", "--quiet", str(venv)], "creating the virtualenv", venv, env)
            if requirements.exists():
                install = [uv, "pip", "install", "--python", str(python), "-r", str(requirements)]
                _step(project, install, f"installing {requirements.name}", venv, env)
    return python


def _poetry_interpreter(project: StackProject) -> Path:
    poetry = require_tool(
        "poetry",
        f"{project.program_dir / 'Pulumi.yaml'} uses the poetry toolchain and `poetry` is not "
        "on PATH: install poetry and run `poetry install` (or `pulumi install`)",
    )
    try:
        done = subprocess.run(
            [poetry, "env", "info", "--path"],
            cwd=project.program_dir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ProgramError(f"`poetry env info` failed: {error}", fault="environment") from None
    venv = Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None
    if venv is None or not _venv_python(venv).exists():
        raise ProgramError(
            f"poetry has no virtualenv for {project.program_dir}: run `poetry install` (or "
            "`pulumi install`) there first",
            fault="environment",
        )
    return _venv_python(venv)


def _search_up(start: Path, name: str) -> Path | None:
    """The closest directory at or above `start` holding `name` (Pulumi's `searchup`)."""
    for directory in (start.resolve(), *start.resolve().parents):
        if (directory / name).exists():
            return directory
    return None


def _create(project: StackProject, venv: Path, requirements: Path) -> None:
    base = os.environ.get("PULUMI_PYTHON_CMD") or sys.executable
    _step(project, [base, "-m", "venv", str(venv)], "creating the virtualenv", venv)
    _install(project, venv, _venv_python(venv), requirements)


def _install(project: StackProject, venv: Path, python: Path, requirements: Path) -> None:
    command = [
        str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "-r", str(requirements),
    ]  # fmt: skip
    _step(project, command, f"installing {requirements.name}", venv)
    (venv / STAMP).write_text(_digest(requirements) + "\n")


def _step(
    project: StackProject,
    command: list[str],
    what: str,
    venv: Path,
    env: Mapping[str, str] | None = None,
) -> None:
    print(f"gpustack: {what} for {venv} ...", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(
            command,
            cwd=project.program_dir,
            env=None if env is None else dict(env),
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(venv, ignore_errors=True)
        raise ProgramError(f"{what} for {venv} failed: {error}", fault="environment") from None
    if done.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        tail = (done.stderr or done.stdout).strip()[-OUTPUT_SHOWN_CHARS:]
        raise ProgramError(
            f"{what} for {venv} failed (exit {done.returncode}):\n{tail}", fault="environment"
        )


# --- the child process -------------------------------------------------------------------------


def _read_result(path: Path) -> dict[str, object] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


# --- verdict -----------------------------------------------------------------------------------


def _judge(
    project: StackProject,
    python: Path,
    outcome: Outcome,
    timeout: float,
    result: dict[str, object] | None,
    notes: list[str],
) -> ProgramRun:
    stopped = outcome.stopped_error(project.main, timeout)
    if stopped is not None:
        raise stopped
    output = outcome.excerpt()
    if result is None:
        # The shim never got to report: the interpreter could not run it (environment), or the
        # shim itself broke (planner).
        shim_broke = SHIM.name in outcome.stderr.text()
        raise ProgramError(
            f"the program's Python ({python}) exited with code {outcome.returncode} before "
            f"reporting a result{output}",
            fault="planner" if shim_broke else "environment",
        )
    if result.get("status") == "ok" and outcome.returncode == 0:
        order = result.get("order")
        return ProgramRun(
            constructor_order=[str(u) for u in order] if isinstance(order, list) else None,
            stdout=outcome.stdout.text(),
            stderr=outcome.stderr.text(),
            notes=notes,
        )
    raise failure_from_result(project, result, output)


def failure_from_result(
    project: StackProject, result: Mapping[str, object], output: str = ""
) -> ProgramError:
    """The `ProgramError` for a failure the shim reported (see `python_exec.describe_failure`)."""
    fault = str(result.get("fault") or "program")
    message = f"{result.get('type')}: {result.get('message')}"
    if result.get("type") == "RunError" or result.get("type") == "SystemExit":
        message = str(result.get("message"))
    if result.get("file"):
        message += f"\n  at {result['file']}:{result['line']}"
        if result.get("code"):
            message += f"\n    {result['code']}"
    elif fault == "program":
        message += (
            f"\n  (raised outside the program's files in {project.program_dir}; "
            "set GPUSTACK_DEBUG=1 for the traceback)"
        )
    if os.environ.get("GPUSTACK_DEBUG") and result.get("traceback"):
        message += "\n" + str(result["traceback"]).rstrip()
    if result.get("type") == "RunError":
        return ProgramRunError(message + output)
    return ProgramError(
        message + output,
        fault="environment" if fault == "environment" else "program",
    )
