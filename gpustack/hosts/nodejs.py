"""The Node.js language host: run a JavaScript or TypeScript Pulumi program as Pulumi does.

It follows `pulumi-language-nodejs` (pulumi/pulumi, sdk/nodejs/cmd/pulumi-language-nodejs/main.go
and sdk/nodejs/npm/):

1. Install the program's packages with `npm install` (as `pulumi install` does), in the
   npm workspace root that holds the program (so several programs share one `node_modules`) or
   in the program's own directory. A stamp in `node_modules` records the manifests it was
   installed from, so an unchanged program is never installed twice.
2. Find `@pulumi/pulumi/cmd/run` with Node's own module resolution from the program directory,
   and run it with the monitor and engine addresses, project, stack and flags as command-line
   arguments and the stack config in `PULUMI_CONFIG` / `PULUMI_CONFIG_SECRET_KEYS`. TypeScript
   runs through the SDK's ts-node support (`PULUMI_NODEJS_TYPESCRIPT`), type-checked by default.

The SDK reports a program's failure through the engine's `Log` RPC and exits with code 32. A
small proxy in front of the engine keeps those messages, so a failure names the program's own
file and line, and says whether the program or its Node.js environment is at fault.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

from gpustack.hosts import ProgramError, ProgramRun, ProgramRunError
from gpustack.hosts.process import require_tool, run_bounded, timeout_seconds
from gpustack.project import StackProject

# The SDK module pulumi-language-nodejs runs (`defaultRunPath` in its main.go).
RUN_MODULE = "@pulumi/pulumi/cmd/run"
# Any value above 1 lets the SDK register resources concurrently, as `pulumi preview` does.
PARALLEL = 16
# `pulumi.getOrganization()` answers this on backends without organizations (DIY backends).
ORGANIZATION = "organization"
# Loaded with `node --require` before the SDK's entry point: constructor order, no type aliases.
PRELOAD = Path(__file__).with_name("nodejs_preload.js")
# Where the install stamp lives, inside node_modules so that deleting it forces a reinstall.
STAMP_NAME = ".gpustack-install.json"
INSTALL_TIMEOUT_S = 1800
MINIMUM_NODE_MAJOR = 20

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SELF_REFERENCE = re.compile(r"^\s*<ref \*\d+>\s*")
# "index.ts(12,5): error TS2322: ..." (plain) or "index.ts:12:5 - error TS2322: ..." (pretty).
_TS_DIAGNOSTIC = re.compile(
    r"(?P<file>[^\s()]+\.[cm]?tsx?)(?:\((?P<line>\d+),(?P<col>\d+)\)|:(?P<line2>\d+):(?P<col2>\d+))"
    r"(?::| -) error (?P<code>TS\d+): (?P<text>.+)"
)
_MISSING_MODULE = re.compile(r"Cannot find module '(?P<module>[^']+)'")
# A stack frame: "at fn (/abs/file.ts:12:11)" or "at /abs/file.ts:12:11".
_STACK_FRAME = re.compile(
    r"^\s*at (?:.*?\()?(?P<file>(?:file://)?/[^():]+):(?P<line>\d+):(?P<col>\d+)\)?$"
)


def environment_error(message: str) -> ProgramError:
    """The program could not run because its Node.js environment is broken, not its code."""
    return ProgramError(message, fault="environment")


@dataclass(frozen=True)
class NodeRuntimeOptions:
    """`runtime.options` of a nodejs project, as pulumi-language-nodejs reads them."""

    typescript: bool = True
    tsconfig: str | None = None
    nodeargs: list[str] = field(default_factory=list)


def run_program(
    project: StackProject,
    monitor_address: str,
    engine_address: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    preview: bool,
    env: Mapping[str, str],
) -> ProgramRun:
    """Run the project's Node.js program against the monitor and engine at these addresses.

    Raises `ProgramError` with fault "program" when the program fails (the message names the
    program's file and line) and "environment" when Node.js, npm or the program's packages
    are missing or broken.
    """
    program_dir = project.program_dir
    options = runtime_options(project)
    base_env = dict(env)
    timeout = timeout_seconds(base_env)
    node = _require_tool("node", base_env)
    _require_node_version(node, base_env)
    notes: list[str] = []
    install_dependencies(program_dir, base_env, notes)
    run_path = locate_run_module(node, program_dir, base_env)
    work_dir, entry = _entry_point(program_dir, project.main)

    with EngineLogTap(engine_address) as tap, tempfile.TemporaryDirectory() as scratch:
        order_file = Path(scratch) / "order.json"
        exit_file = Path(scratch) / "exit.json"
        args = [
            node,
            *options.nodeargs,
            "--require", str(PRELOAD),
            run_path,
            "--monitor", monitor_address,
            "--engine", tap.address,
            "--organization", ORGANIZATION,
            "--project", project.name,
            "--stack", project.stack,
            "--root-directory", str(program_dir),
            "--pwd", str(work_dir),
            *(["--dry-run"] if preview else []),
            "--parallel", str(PARALLEL),
            entry,
        ]  # fmt: skip
        run_env = dict(base_env)
        run_env["PULUMI_CONFIG"] = node_config(config)
        run_env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(sorted(secret_keys))
        if options.typescript:
            run_env["PULUMI_NODEJS_TYPESCRIPT"] = "true"
        if options.tsconfig:
            run_env["PULUMI_NODEJS_TSCONFIG_PATH"] = options.tsconfig
        run_env["GPUSTACK_NODE_RUN_PATH"] = run_path
        run_env["GPUSTACK_NODE_ORDER_FILE"] = str(order_file)
        run_env["GPUSTACK_NODE_EXIT_FILE"] = str(exit_file)
        outcome = run_bounded(args, run_env, work_dir, timeout)
        errors = tap.errors()
        order = _read_order(order_file)
        program_exit = _read_exit(exit_file)

    stopped = outcome.stopped_error(project.main, timeout)
    if stopped is not None:
        raise stopped
    stderr = outcome.stderr.text(limit=None)
    # The SDK reports errors through the engine's log; what the process printed is the
    # program's own (console.log, console.error), shown with a failure as the Python host does.
    output = outcome.excerpt()
    if program_exit is not None:
        # The program ended the process itself: never a plan, whatever the code (the Python
        # host treats `sys.exit(0)` alike); the SDK's own report of it names no line.
        code, file, line = program_exit
        location = _program_location(program_dir, file, line)
        raise ProgramError(f"the program called process.exit({code}){location}{output}")
    if outcome.returncode != 0 or errors:
        # A nonzero exit, or an error the SDK logged with exit code 0 (`pulumi.log.error`).
        failure = describe_failure(
            program_dir, outcome.returncode or 1, errors, stderr, work_dir=work_dir
        )
        if errors:  # else the message was read from stderr itself
            failure.detail += output
        raise failure
    return ProgramRun(
        constructor_order=order,
        stdout=outcome.stdout.text(),
        stderr=outcome.stderr.text(),
        notes=notes,
    )


def _read_order(order_file: Path) -> list[str] | None:
    """The URNs in constructor order, as the preload wrote them; None keeps arrival order."""
    try:
        order = json.loads(order_file.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(order, list) or not all(isinstance(urn, str) for urn in order):
        return None
    return order


def _read_exit(exit_file: Path) -> tuple[str, str, int] | None:
    """(code, file, line) of the program's own `process.exit` call, as the preload wrote it."""
    try:
        recorded = json.loads(exit_file.read_text())
        code = "" if recorded["code"] is None else json.dumps(recorded["code"])
        return code, str(recorded["file"]), int(recorded["line"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def runtime_options(project: StackProject) -> NodeRuntimeOptions:
    """`runtime.options` of the project file, checked: typescript, tsconfig, nodeargs."""
    raw = project.runtime_options
    where = project.program_dir / "Pulumi.yaml"
    manager = str(raw.get("packagemanager", "auto"))
    if manager not in ("auto", "npm"):
        raise environment_error(
            f"{where}: runtime.options.packagemanager is {manager!r}; gpustack plan installs "
            "Node.js programs with npm only (allowed: npm, auto)"
        )
    typescript = raw.get("typescript", True)
    if not isinstance(typescript, bool):
        raise ProgramError(f"{where}: runtime.options.typescript must be true or false")
    try:
        nodeargs = shlex.split(str(raw.get("nodeargs") or ""))
    except ValueError as error:
        raise ProgramError(f"{where}: runtime.options.nodeargs: {error}") from None
    return NodeRuntimeOptions(
        typescript=typescript,
        tsconfig=str(raw["tsconfig"]) if raw.get("tsconfig") else None,
        nodeargs=nodeargs,
    )


def node_config(config: Mapping[str, str]) -> str:
    """`PULUMI_CONFIG` as pulumi-language-nodejs builds it: keys as `<namespace>:config:<name>`."""
    transformed: dict[str, str] = {}
    for key, value in config.items():
        namespace, _, name = key.partition(":")
        transformed[f"{namespace}:config:{name}" if name else key] = value
    return json.dumps(transformed, sort_keys=True)


# --- installing packages -----------------------------------------------------------------------


def install_root(program_dir: Path) -> Path:
    """Where npm installs for this program: the npm workspace root that lists it, or its package.

    The same search as Pulumi's `npm.FindWorkspaceRoot` (sdk/nodejs/npm/workspaces.go).
    """
    package_dir = _search_up(program_dir, "package.json")
    if package_dir is None:
        raise environment_error(
            f"{program_dir}: no package.json here or above; a Node.js Pulumi program declares "
            "@pulumi/pulumi in package.json (run `npm init -y && npm install @pulumi/pulumi`)"
        )
    current = package_dir
    while True:
        manifest = current / "package.json"
        if manifest.exists() and _workspace_globs_match(current, package_dir):
            return current
        if current.parent == current:
            return package_dir
        current = current.parent


def install_dependencies(
    program_dir: Path, env: Mapping[str, str] | None = None, notes: list[str] | None = None
) -> Path:
    """Install the program's packages unless the stamp says they are current; return the root.

    Installing takes a while (about a minute for @pulumi/azure-native), so it is announced on
    stderr as it starts; its duration goes to `notes`.
    """
    env = dict(env or os.environ)
    root = install_root(program_dir)
    wanted = _manifest_digest(root, program_dir)
    stamp = root / "node_modules" / STAMP_NAME
    with _install_lock(root):
        if _stamp_matches(stamp, wanted):
            return root
        npm = _require_tool("npm", env)
        # `npm install`, as Pulumi installs (sdk/nodejs/npm/npm.go `installCmd`): it keeps a
        # tree that is already right, and brings a lockfile that lags package.json up to date
        # where `npm ci` would refuse it (EUSAGE) and delete node_modules first. Install scripts
        # are skipped: planning needs no provider plugin binaries (which they would download).
        command = [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
        ]
        shown = " ".join(command[1:2])
        print(f"gpustack: installing Node.js packages in {root} (npm {shown})", file=sys.stderr)
        started = time.monotonic()
        try:
            completed = subprocess.run(
                command,
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise environment_error(
                f"npm {shown} in {root} did not finish within {INSTALL_TIMEOUT_S} s"
            ) from None
        if completed.returncode != 0:
            detail = _npm_reason(_strip_ansi(completed.stderr or completed.stdout))
            raise environment_error(
                f"the Node.js packages could not be installed: `npm {shown}` failed in {root} "
                f"(exit {completed.returncode}); fix package.json or package-lock.json there, "
                f"then plan again.\n{detail}"
            )
        stamp.parent.mkdir(parents=True, exist_ok=True)
        # npm may have written the lockfile: the stamp records the manifests as installed.
        installed = _manifest_digest(root, program_dir)
        stamp.write_text(json.dumps({"command": f"npm {shown}", "sha256": installed}) + "\n")
        elapsed = time.monotonic() - started
        if notes is not None:
            notes.append(f"gpustack: npm {shown} in {root} took {elapsed:.0f} s")
    return root


def locate_run_module(node: str, program_dir: Path, env: Mapping[str, str]) -> str:
    """`require.resolve("@pulumi/pulumi/cmd/run")` from the program directory, as Pulumi does."""
    completed = subprocess.run(
        [node, "-e", f"console.log(require.resolve({json.dumps(RUN_MODULE)}))"],
        cwd=program_dir,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0 or not completed.stdout.strip():
        raise environment_error(
            f"@pulumi/pulumi is not installed for "
            f"{program_dir} (Node cannot resolve {RUN_MODULE}); add @pulumi/pulumi to the "
            "dependencies in package.json"
        )
    return completed.stdout.strip().splitlines()[-1]


def _manifest_digest(root: Path, program_dir: Path) -> str:
    digest = hashlib.sha256()
    manifests = [root / "package.json", root / "package-lock.json", root / "npm-shrinkwrap.json"]
    manifests += sorted(_workspace_manifests(root))
    manifests.append(_search_up(program_dir, "package.json") or program_dir)
    for path in sorted(set(manifests)):
        if path.is_file():
            digest.update(
                str(path.relative_to(root) if path.is_relative_to(root) else path).encode()
            )
            digest.update(b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _stamp_matches(stamp: Path, wanted: str) -> bool:
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and recorded.get("sha256") == wanted


@contextlib.contextmanager
def _install_lock(root: Path) -> Iterator[None]:
    """One install per root at a time, across processes (pytest workers, parallel plans)."""
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"gpustack-npm-{key}.lock"
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _workspace_patterns(root: Path) -> list[str]:
    try:
        manifest = json.loads((root / "package.json").read_text())
    except (OSError, ValueError):
        return []
    workspaces = manifest.get("workspaces") if isinstance(manifest, dict) else None
    if isinstance(workspaces, dict):  # yarn's extended form
        workspaces = workspaces.get("packages")
    return [w for w in workspaces or [] if isinstance(w, str)]


def _workspace_manifests(root: Path) -> list[Path]:
    return [
        Path(found)
        for pattern in _workspace_patterns(root)
        for found in glob.glob(str(root / pattern / "package.json"))
    ]


def _workspace_globs_match(root: Path, package_dir: Path) -> bool:
    target = (package_dir / "package.json").resolve()
    return any(manifest.resolve() == target for manifest in _workspace_manifests(root))


def _search_up(start: Path, name: str) -> Path | None:
    current = start.resolve()
    while True:
        if (current / name).exists():
            return current
        if current.parent == current:
            return None
        current = current.parent


# --- running -----------------------------------------------------------------------------------


def _require_tool(name: str, env: Mapping[str, str]) -> str:
    return require_tool(
        name,
        f"`{name}` is not on PATH; "
        f"gpustack plan runs `runtime: nodejs` programs with Node.js {MINIMUM_NODE_MAJOR} or "
        "later and npm (https://nodejs.org/en/download)",
        env.get("PATH"),
    )


def _require_node_version(node: str, env: Mapping[str, str]) -> None:
    completed = subprocess.run(
        [node, "--version"], env=dict(env), capture_output=True, text=True, check=False
    )
    match = re.match(r"v(\d+)\.", completed.stdout.strip())
    if completed.returncode != 0 or match is None:
        raise environment_error(
            f"`{node} --version` failed ({_tail(completed.stderr, 3) or completed.returncode})"
        )
    if int(match.group(1)) < MINIMUM_NODE_MAJOR:
        raise environment_error(
            f"{node} is {completed.stdout.strip()}; "
            f"the Pulumi Node.js SDK needs Node.js {MINIMUM_NODE_MAJOR} or later"
        )


def _entry_point(program_dir: Path, main: Path) -> tuple[Path, str]:
    """The directory to run in and the entry point, as the Pulumi CLI derives them from `main`."""
    target = main.resolve()
    if target.is_dir():
        return target, "."
    return program_dir, os.path.relpath(target, program_dir)


# --- failures ----------------------------------------------------------------------------------


def describe_failure(
    program_dir: Path,
    exit_code: int,
    errors: list[str],
    stderr: str,
    work_dir: Path | None = None,
) -> ProgramError:
    """The error for a failed run: the program's file and line where Node reported one.

    `work_dir` is where Node ran (`main`'s directory): TypeScript names files relative to it.
    """
    text = _strip_ansi("\n".join(errors) if errors else stderr)
    missing = _MISSING_MODULE.search(text)
    if missing is not None and not missing.group("module").startswith((".", "/")):
        return environment_error(
            f"the package {missing.group('module')!r} is not installed for {program_dir}: "
            "declare it in package.json's dependencies (gpustack installs them with npm)"
            f"\n{_tail(text, 6)}"
        )
    diagnostic = _TS_DIAGNOSTIC.search(text)
    if diagnostic is not None:
        line = diagnostic.group("line") or diagnostic.group("line2")
        location = _program_location(
            program_dir, diagnostic.group("file"), int(line), base=work_dir
        )
        return ProgramError(
            f"TypeScript error {diagnostic.group('code')}: "
            f"{diagnostic.group('text').strip()}{location}"
        )
    stack_frames = any(_STACK_FRAME.match(line) for line in text.splitlines())
    if errors and not text.lstrip().startswith("Running program ") and not stack_frames:
        # The SDK logs a pulumi.RunError (or a ResourceError that hides its stack) as its bare
        # message, meant for the user as it is.
        return ProgramRunError(text.strip())
    headline = _headline(text) or f"the Node.js program exited with code {exit_code}"
    frame = _first_program_frame(program_dir, text)
    if frame is not None:
        location = _program_location(program_dir, frame[0], frame[1])
    else:
        location = "\n  (raised outside the program's files; set GPUSTACK_DEBUG=1 for the stack)"
    if os.environ.get("GPUSTACK_DEBUG"):
        location += "\n" + text.rstrip()
    return ProgramError(f"{headline}{location}")


def _headline(text: str) -> str | None:
    """The error's own line, without the SDK's "Running program ... failed" preamble."""
    # Node prints an error that refers to itself (the SDK's serialization errors keep their
    # cause) with util.inspect's `<ref *1> ` marker before its name: not part of the message.
    lines = [_SELF_REFERENCE.sub("", line.rstrip()) for line in text.splitlines() if line.strip()]
    lines = [
        line
        for line in lines
        if not line.startswith("Running program ") and not _STACK_FRAME.match(line)
    ]
    for line in lines:
        if re.match(r"^\s*[A-Za-z_$][\w$.]*(Error|Exception)\b", line) or line.startswith("Error"):
            return line.strip()
    return lines[0].strip() if lines else None


def _first_program_frame(program_dir: Path, text: str) -> tuple[str, int] | None:
    root = program_dir.resolve()
    for line in text.splitlines():
        match = _STACK_FRAME.match(line)
        if match is None:
            continue
        path = Path(match.group("file").removeprefix("file://"))
        if "node_modules" in path.parts or not path.is_relative_to(root):
            continue
        return str(path), int(match.group("line"))
    return None


def _program_location(program_dir: Path, file: str, line: int, base: Path | None = None) -> str:
    """`at FILE:LINE` (relative to the program) and the source line; a relative `file` is
    relative to `base`, else to the program directory."""
    path = Path(file)
    if not path.is_absolute():
        path = (base or program_dir) / path
    shown = os.path.relpath(path, program_dir)
    where = f"\n  at {shown}:{line}"
    with contextlib.suppress(OSError, IndexError):
        source = path.read_text().splitlines()[line - 1].strip()
        if source:
            where += f"\n    {source}"
    return where


def _npm_reason(output: str, lines: int = 8) -> str:
    """npm's own explanation: its first `npm error` lines, before the usage text it may add."""
    reason: list[str] = []
    for line in output.splitlines():
        text = line.removeprefix("npm error").removeprefix("npm ERR!").strip()
        if not text:
            if len(reason) > 1:
                break
            continue
        if text.startswith("Usage:") or text.startswith("A complete log of this run"):
            break
        reason.append("  " + text)
    return "\n".join(reason[:lines]) or _tail(output, lines)


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text or "")


def _tail(text: str, lines: int) -> str:
    kept = [line for line in (text or "").splitlines() if line.strip()]
    return "\n".join("  " + line for line in kept[-lines:])


# --- the engine's log, kept ------------------------------------------------------------------


class EngineLogTap(engine_pb2_grpc.EngineServicer):
    """An Engine service in front of the real one: keeps ERROR messages, forwards the rest.

    Without a real engine address it answers itself: logs are kept, the root resource is
    remembered.
    """

    def __init__(self, engine_address: str) -> None:
        self._engine_address = engine_address
        self._channel: grpc.Channel | None = None
        self._engine: Any = None
        self._server: grpc.Server | None = None
        self._errors: list[str] = []
        self._root_urn = ""
        self.address = ""

    def __enter__(self) -> EngineLogTap:
        if self._engine_address:
            self._channel = grpc.insecure_channel(self._engine_address)
            self._engine = engine_pb2_grpc.EngineStub(self._channel)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        engine_pb2_grpc.add_EngineServicer_to_server(self, self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.address = f"127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
        if self._channel is not None:
            self._channel.close()

    def errors(self) -> list[str]:
        """The ERROR-severity messages the program logged, in order."""
        return list(self._errors)

    def Log(self, request: Any, context: Any) -> Any:
        if request.severity == engine_pb2.ERROR:
            # Kept, not forwarded: the run's ProgramError carries them, cleaned of the SDK's
            # colours and frames, as the Python host reports an exception once.
            self._errors.append(request.message)
            return empty_pb2.Empty()
        return self._forward("Log", request, context, empty_pb2.Empty())

    def GetRootResource(self, request: Any, context: Any) -> Any:
        local = engine_pb2.GetRootResourceResponse(urn=self._root_urn)
        return self._forward("GetRootResource", request, context, local)

    def SetRootResource(self, request: Any, context: Any) -> Any:
        self._root_urn = request.urn
        local = engine_pb2.SetRootResourceResponse()
        return self._forward("SetRootResource", request, context, local)

    def StartDebugging(self, request: Any, context: Any) -> Any:
        return self._forward("StartDebugging", request, context, empty_pb2.Empty())

    def RequirePulumiVersion(self, request: Any, context: Any) -> Any:
        local = engine_pb2.RequirePulumiVersionResponse()
        return self._forward("RequirePulumiVersion", request, context, local)

    def _forward(self, method: str, request: Any, context: Any, local: Any) -> Any:
        """The real engine's answer, its status code passed on (the SDK reads UNIMPLEMENTED)."""
        if self._engine is None:
            return local
        try:
            return getattr(self._engine, method)(request)
        except grpc.RpcError as error:
            context.abort(error.code(), error.details() or "")
            raise  # abort raises; this keeps type checkers content
