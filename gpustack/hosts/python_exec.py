"""Run a Pulumi Python program against a monitor and engine: gpustack's language-host exec shim.

It does what Pulumi's `pulumi-language-python-exec` does (sdk/python/cmd/ in pulumi/pulumi):
read the stack config from `PULUMI_CONFIG` / `PULUMI_CONFIG_SECRET_KEYS`, configure the SDK's
settings from `--monitor --engine --project --stack --dry_run`, change to `--pwd` and run the
program's entry point with `runpy` inside `pulumi.runtime.run_in_stack`. On top, for an offline
plan:

- it records the order in which the program constructs resources (a stack transformation sees
  each resource synchronously, in constructor order) so the plan's order does not depend on
  which registration RPC happens to arrive first;
- it drops the SDKs' type-only aliases before registration: they only map old type tokens of a
  resource in existing state, mean nothing to a plan, and cost a URN computation each;
- it describes each SDK resource class to the planner before the type's first registration
  (`TypeDescriber`): the planner answers in the shapes of the program's own SDK, which is
  already imported here, instead of importing (another version of) it itself;
- it loads generated provider SDKs with their annotations deferred (`sdk_loader.py`), which
  halves their import time, the largest part of the process's run;
- it runs with the garbage collector off and exits with `os._exit` after flushing, skipping
  interpreter teardown (the process is short-lived; both are pure time);
- it never lets the program end the process on its own terms: `sys.exit(n)`, KeyboardInterrupt
  and exceptions become a JSON result (`--result FILE`) that names the program's file and line.

This file runs with the *program's* interpreter and Pulumi SDK (any pulumi 3.x), so it imports
nothing from gpustack and keeps to Python 3.8 syntax. gpustack's in-process engine imports its
helpers (`StackRecorder`, `settle`) too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import inspect
import json
import logging
import os
import re
import runpy
import sys
import traceback
from typing import Any

_ALIAS_FIELDS = ("name", "parent", "stack", "project", "urn")
DESCRIBE_TOKEN = "gpustack:internal:describeType"
"""The invoke by which the shim hands the planner a resource class's `describe_resource`; the
planner's monitor answers it itself, and it is not part of the plan."""


class StackRecorder:
    """A stack transformation: records constructor order and drops type-only aliases."""

    def __init__(
        self,
        pulumi_module: Any,
        drop_type_aliases: bool = True,
        describer: TypeDescriber | None = None,
    ) -> None:
        self.pulumi = pulumi_module
        self.drop_type_aliases = drop_type_aliases
        self.describer = describer
        self.resources: list[Any] = []
        self.tasks: list[Any] = []
        """The asyncio task each resource was constructed in (None outside a running loop)."""
        self.main_task: Any = None
        """The task running the program's own code (`starting`); others run its callbacks."""

    def starting(self) -> None:
        """Called where the program's code starts: its task is the main one."""
        self.main_task = _current_task()

    def __call__(self, args: Any) -> Any:
        self.resources.append(args.resource)
        self.tasks.append(_current_task())
        if self.describer is not None:
            self.describer(args.resource, args.type_)
        if not self.drop_type_aliases:
            return None
        opts = args.opts
        aliases = getattr(opts, "aliases", None)
        if not aliases:
            return None
        kept = [alias for alias in aliases if not self._type_only(alias)]
        if len(kept) == len(aliases):
            return None
        new_opts = opts._copy() if hasattr(opts, "_copy") else _shallow_copy(opts)
        new_opts.aliases = kept or None
        return self.pulumi.ResourceTransformationResult(args.props, new_opts)

    def _type_only(self, alias: Any) -> bool:
        # Called for every alias of every resource (25-113 each for azure-native): kept cheap.
        if not isinstance(alias, self.pulumi.Alias) or alias.type_ is ...:
            return False
        fields = vars(alias)
        return all(fields.get(field, ...) is ... for field in _ALIAS_FIELDS)

    async def urns(self) -> list[str]:
        """The URNs of the recorded resources, in constructor order (unresolvable ones left out).

        The program's own code constructs in a fixed order. Callbacks (`apply`, a YAML file's
        manifests after their decode invoke) run when the values they wait for arrive, in an
        order that changes from run to run: each callback's resources stay together in the order
        it made them, after the program's own, and callbacks are ordered by the URN of the first
        resource each made, so the same program lists the same resources in the same order.
        """
        results = await asyncio.gather(
            *(resource.urn.future() for resource in self.resources), return_exceptions=True
        )
        main: list[str] = []
        callbacks: dict[int, list[str]] = {}
        # No zip(strict=...): this shim runs in the program's interpreter, perhaps before 3.10.
        for index, urn in enumerate(results):
            task = self.tasks[index]
            if not isinstance(urn, str):
                continue
            if self.main_task is None or task is None or task is self.main_task:
                main.append(urn)
            else:
                callbacks.setdefault(id(task), []).append(urn)
        return main + [urn for group in sorted(callbacks.values()) for urn in group]


class TypeDescriber:
    """Sends the planner what the program's SDK declares for each resource type it registers.

    Called from the stack transformation, so synchronously, before the type's first
    RegisterResource goes out: the planner has the shape when it answers. Only classes the
    type's own SDK package generated are described (a bare `CustomResource` with that token
    is not its class). Any failure here leaves the planner to read its own SDK, as before.
    """

    def __init__(self, pulumi_module: Any, nested: bool) -> None:
        self.pulumi = pulumi_module
        self.nested = nested
        self.seen: set[str] = set()
        self._shapes: Any = None

    def __call__(self, resource: Any, token: str) -> None:
        if token in self.seen:
            return
        self.seen.add(token)
        cls = type(resource)
        package = "pulumi_" + token.split(":")[0].replace("-", "_")
        if not isinstance(resource, self.pulumi.CustomResource) or not (
            cls.__module__ == package or cls.__module__.startswith(package + ".")
        ):
            return
        try:
            described = self._sdk_shapes().describe_resource(cls, self.nested)
            payload = json.dumps({"token": token, "described": described})
            from google.protobuf import struct_pb2
            from pulumi.runtime import settings
            from pulumi.runtime.proto import resource_pb2

            args = struct_pb2.Struct()
            args.update({"describe": payload})
            request = resource_pb2.ResourceInvokeRequest(tok=DESCRIBE_TOKEN, args=args)
            settings.get_monitor().Invoke(request)
        except Exception:  # the planner falls back to reading its own SDK
            return

    def _sdk_shapes(self) -> Any:
        if self._shapes is None:
            self._shapes = load_sibling("sdk_shapes")
        return self._shapes


def load_sibling(name: str) -> Any:
    """A module of this directory, loaded by path: the program's `sys.path` does not hold it."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
    spec = importlib.util.spec_from_file_location("gpustack_" + name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class FirstTracebacks:
    """Keeps each failed task's traceback as it was raised.

    asyncio hands a task's traceback out once: after the first `result()` or `await` (the SDK's
    own, when an export or an input depends on the failed output), later readers get the
    exception without the frames that raised it, e.g. the program's `apply` lambda. A task
    factory that looks first keeps those frames for the error report.
    """

    def __init__(self) -> None:
        self.frames: dict[int, Any] = {}
        self._keep: list[BaseException] = []

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make `loop` create tasks that report their first traceback here."""

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            task = asyncio.Task(coro, loop=loop, **kwargs)
            task.add_done_callback(self._look)
            return task

        loop.set_task_factory(factory)

    def _look(self, task: Any) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and id(error) not in self.frames and error.__traceback__:
            self._keep.append(error)
            self.frames[id(error)] = traceback.extract_tb(error.__traceback__)

    def frames_for(self, error: BaseException) -> list[Any]:
        """The frames of `error` as caught, plus those it was raised with, innermost last."""
        frames = list(traceback.extract_tb(error.__traceback__))
        first = self.frames.get(id(error))
        if first is not None:
            frames.extend(first)
        return frames


def _current_task() -> Any:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


def _shallow_copy(opts: Any) -> Any:
    import copy

    return copy.copy(opts)


async def settle() -> None:
    """Wait until every RPC and output the program started has finished (current SDKs).

    The SDK's `wait_for_rpcs` waits for outstanding outputs with `asyncio.wait(...,
    FIRST_COMPLETED)` in a loop, re-registering a callback on every pending output each round:
    quadratic in the outputs a large program creates. Waiting for all at once settles the same
    work in linear time; errors surface as before.
    """
    from pulumi.runtime import settings

    rpc_manager = settings._get_rpc_manager()
    while True:
        while rpc_manager.rpcs:
            await rpc_manager.rpcs.pop()
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
        with settings.SETTINGS.lock:
            pending = list(settings.SETTINGS.outputs)
            settings.SETTINGS.outputs.clear()
        if pending:
            done, _ = await asyncio.wait(pending)
            for task in done:
                task.result()
            continue
        if not rpc_manager.rpcs:
            return


def supports_fast_settle() -> bool:
    """Whether this SDK has the structures `settle` relies on (pulumi >= 3.1xx)."""
    try:
        from pulumi.runtime import settings, stack
    except ImportError:
        return False
    return (
        hasattr(settings, "_get_rpc_manager")
        and hasattr(settings.SETTINGS, "outputs")
        and hasattr(stack, "wait_for_rpcs")
    )


def _is_own(filename: str, root: str) -> bool:
    """Whether a frame's file is one of the program's own (not its virtualenv's)."""
    if filename.startswith("<"):
        # `<frozen runpy>`, `<string>`: no file; resolved against the working directory (the
        # program's), they would pass for one of its files.
        return False
    path = os.path.realpath(filename)
    inside = path == root or path.startswith(root + os.sep)
    third_party = "site-packages" in path or f"{os.sep}.venv{os.sep}" in path
    return inside and not third_party


def _own_frame(
    error: BaseException, frames: list[Any], root: str, tracebacks: FirstTracebacks | None
) -> Any:
    """The innermost frame in the program's own files that led to `error`.

    A SyntaxError names the file and line it could not compile (its frames are runpy's). The
    SDK re-raises an input's failure as its own ValueError (`While processing resource ...`,
    `raise ... from error`): the program's frame, an `apply` lambda's, is on the cause.
    """
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    for failure in reversed(chain):
        if (
            isinstance(failure, SyntaxError)
            and failure.filename
            and failure.lineno
            and _is_own(failure.filename, root)
        ):
            code = (failure.text or "").strip()
            return traceback.FrameSummary(
                failure.filename, failure.lineno, "<module>", lookup_line=False, line=code
            )
    for failure in chain:
        if failure is error:
            candidates = frames
        elif tracebacks is not None:
            candidates = tracebacks.frames_for(failure)
        else:
            candidates = list(traceback.extract_tb(failure.__traceback__))
        own = [frame for frame in candidates if _is_own(frame.filename, root)]
        if own:
            return own[-1]
    return None


def _requirements_list(root: str, module: str) -> bool:
    """Whether the program's requirements.txt names the distribution `module` comes from
    (`pulumi_azuread` from `pulumi-azuread`, names compared as pip normalizes them)."""
    try:
        with open(os.path.join(root, "requirements.txt"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    wanted = re.sub(r"[-_.]+", "-", module).lower()
    for line in lines:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match and re.sub(r"[-_.]+", "-", match.group(1)).lower() == wanted:
            return True
    return False


def describe_failure(
    error: BaseException, program_dir: str, tracebacks: FirstTracebacks | None = None
) -> dict[str, Any]:
    """Whose fault, what, and where in the program's own files (innermost frame)."""
    frames = (
        tracebacks.frames_for(error)
        if tracebacks is not None
        else list(traceback.extract_tb(error.__traceback__))
    )
    result: dict[str, Any] = {
        "fault": "program",
        "type": type(error).__name__,
        "message": str(error),
        "traceback": "Traceback (most recent call last):\n"
        + "".join(traceback.format_list(frames))
        + "".join(traceback.format_exception_only(type(error), error)),
    }
    root = os.path.realpath(program_dir)
    frame = _own_frame(error, frames, root, tracebacks)
    if frame is not None:
        result["file"] = os.path.relpath(os.path.realpath(frame.filename), root)
        result["line"] = frame.lineno
        result["code"] = (frame.line or "").strip()
    if isinstance(error, SystemExit):
        result["type"] = "SystemExit"
        result["message"] = f"the program called sys.exit({error.code!r})"
    elif isinstance(error, KeyboardInterrupt):
        result["message"] = "the program was interrupted (KeyboardInterrupt)"
    elif isinstance(error, ModuleNotFoundError) and error.name:
        top = error.name.split(".")[0]
        local = os.path.exists(os.path.join(root, top)) or os.path.exists(
            os.path.join(root, top + ".py")
        )
        if not local:
            result["fault"] = "environment"
            advice = "add it to requirements.txt"
            listed = _requirements_list(root, top)
            if listed and os.path.realpath(sys.prefix).startswith(root + os.sep):
                advice = (
                    "requirements.txt lists it, but the program's virtualenv was not made "
                    f"from it: run `{sys.executable} -m pip install -r requirements.txt`"
                )
            elif listed:
                # Public examples often name no virtualenv: the requirements were never
                # installed where the program runs.
                advice = (
                    "requirements.txt lists it, but it is not installed here: name a "
                    "virtualenv in Pulumi.yaml (runtime.options.virtualenv), which gpustack "
                    "plan creates from requirements.txt as `pulumi install` does"
                )
            result["message"] = (
                f"No module named '{error.name}' in the program's environment "
                f"({sys.executable}); {advice}"
            )
    try:
        import pulumi

        if isinstance(error, pulumi.RunError):
            result["type"] = "RunError"
    except ImportError:
        pass
    return result


class QuietEngine:
    """The engine stub, minus debug messages: the SDK sends each `log.debug` as a blocking RPC
    (hundreds per plan) that the Pulumi CLI shows only with `--debug`, and a plan never does."""

    def __init__(self, engine: Any, debug_severity: int) -> None:
        self._engine = engine
        self._debug = debug_severity

    def Log(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.severity == self._debug:
            return None
        return self._engine.Log(request, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def _settings(pulumi_module: Any, args: argparse.Namespace) -> Any:
    wanted = {
        "monitor": args.monitor,
        "engine": args.engine,
        "project": args.project,
        "stack": args.stack,
        "parallel": int(args.parallel),
        "dry_run": args.dry_run == "true",
        "organization": args.organization,
        "root_directory": args.pwd,
    }
    accepted = inspect.signature(pulumi_module.runtime.Settings).parameters
    return pulumi_module.runtime.Settings(
        **{key: value for key, value in wanted.items() if key in accepted}
    )


def _quiet_debug_logs() -> None:
    try:
        from pulumi.runtime import settings
        from pulumi.runtime.proto import engine_pb2
    except ImportError:
        return
    engine = getattr(settings.SETTINGS, "engine", None)
    if engine is not None and not os.environ.get("GPUSTACK_DEBUG"):
        settings.SETTINGS.engine = QuietEngine(engine, engine_pb2.DEBUG)


def _write_result(path: str | None, result: dict[str, Any]) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(result, handle)


def _finish(path: str | None, result: dict[str, Any], code: int) -> None:
    _write_result(path, result)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        # Skip interpreter teardown: nothing left to do but free memory the OS frees anyway.
        os._exit(code)


STANDBY_FLAG = "--standby"


def standby() -> list[str]:
    """Started ahead (`--standby`): load the Pulumi SDK, then wait for the run's arguments.

    The planner starts the program's interpreter while it is still loading itself, and sends
    one JSON line on stdin when its monitor is up: `{"argv": [...], "env": {...}}` (the
    arguments `main` takes, and the `PULUMI_CONFIG*` variables). No program code runs before
    that line; stdin closing first (the plan was refused, or the planner is gone) ends this
    process quietly.
    """
    # What the wait is for: the SDK loaded by then. When it is missing, main() says so once it
    # has somewhere to report to.
    with contextlib.suppress(ImportError):
        import pulumi.runtime  # noqa: F401
    line = sys.stdin.readline()
    if not line.strip():
        os._exit(0)
    order = json.loads(line)
    os.environ.update(order["env"])
    return list(order["argv"])


def main(argv: list[str] | None = None) -> None:
    """Parse the language host's arguments and run the program; never returns."""
    parser = argparse.ArgumentParser(description="Run a Pulumi Python program for gpustack plan")
    parser.add_argument("--project")
    parser.add_argument("--stack")
    parser.add_argument("--parallel", default="8")
    parser.add_argument("--dry_run", default="false")
    parser.add_argument("--pwd")
    parser.add_argument("--monitor")
    parser.add_argument("--engine")
    parser.add_argument("--organization", default="organization")
    parser.add_argument("--result", help="write the outcome as JSON to this file")
    parser.add_argument(
        "--sdk-cache", help="load generated provider SDKs with deferred annotations, cached here"
    )
    parser.add_argument("PROGRAM", help="the program's entry point (__main__.py)")
    parser.add_argument("ARGS", nargs="*")
    args = parser.parse_args(argv)

    program = os.path.abspath(args.PROGRAM)
    program_dir = os.path.abspath(args.pwd or os.path.dirname(program))
    if args.sdk_cache:
        load_sibling("sdk_loader").install(args.sdk_cache)
    try:
        import pulumi
        import pulumi.runtime
    except ImportError as error:
        _finish(
            args.result,
            {
                "status": "error",
                "fault": "environment",
                "type": type(error).__name__,
                "message": f"the Pulumi SDK is not installed for {sys.executable} ({error}); "
                "add pulumi to requirements.txt",
            },
            1,
        )
        return

    config = pulumi.runtime.get_config_env()
    if hasattr(pulumi.runtime, "get_config_secret_keys_env") and hasattr(
        pulumi.runtime, "set_all_config"
    ):
        pulumi.runtime.set_all_config(config, pulumi.runtime.get_config_secret_keys_env())
    else:
        for key, value in config.items():
            pulumi.runtime.set_config(key, value)
    pulumi.runtime.configure(_settings(pulumi, args))
    _quiet_debug_logs()

    sys.argv = [program, *list(args.ARGS)]
    os.chdir(program_dir)
    sys.path.insert(0, os.path.dirname(program))
    # As the real exec does: the SDK leaves futures unobserved when a program fails on purpose.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)

    recorder = StackRecorder(pulumi, describer=TypeDescriber(pulumi, nested=True))
    if supports_fast_settle():
        from pulumi.runtime import stack as stack_module

        async def _wait_for_rpcs(await_all_outstanding_tasks: bool = True) -> None:
            await settle()

        stack_module.wait_for_rpcs = _wait_for_rpcs  # type: ignore[assignment]

    def run() -> None:
        pulumi.runtime.register_stack_transformation(recorder)
        recorder.starting()
        runpy.run_path(program, run_name="__main__")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    tracebacks = FirstTracebacks()
    tracebacks.install(loop)
    result: dict[str, Any]
    code = 0
    try:
        loop.run_until_complete(pulumi.runtime.run_in_stack(run))
        order = loop.run_until_complete(recorder.urns())
        result = {"status": "ok", "order": order}
    except (Exception, SystemExit, KeyboardInterrupt) as error:  # reported, never re-raised
        result = {"status": "error", **describe_failure(error, program_dir, tracebacks)}
        code = 1
    _finish(args.result, result, code)


if __name__ == "__main__":
    # Before the heavy imports: collections over the objects the SDKs' imports leave behind are
    # most of what the collector would do in this short-lived process.
    gc.disable()
    # Our own directory must not shadow the program's modules.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    main(standby() if sys.argv[1:] == [STANDBY_FLAG] else None)
