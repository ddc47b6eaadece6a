"""Run a real pulumi-policy pack over the Analyzer gRPC protocol, the way the Pulumi CLI does.

The CLI (`sdk/go/common/resource/plugin/analyzer_plugin.go`, `pkg/engine/plugins.go`,
`pkg/resource/deploy/step_generator.go` in pulumi/pulumi) boots a Python pack through the
`pulumi-analyzer-policy-python` shim, which runs `python -u -m pulumi.policy <engine> .` with the
pack folder as working directory (so `runpy` puts the pack folder, not its parent, on `sys.path`).
It reads the port from the first stdout line, calls Handshake (optional), GetAnalyzerInfo,
Configure with the reconciled policy config, Remediate and Analyze for every resource, and
AnalyzeStack once at the end. This module does the same against captured plan resources.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import grpc
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import rpc as pulumi_rpc
from pulumi.runtime.proto import analyzer_pb2 as pb

from gpustack import yaml_loader
from gpustack.engine import SECRET_KEY, collector_paused

__all__ = [
    "SECRET_KEY",
    "UNKNOWN",
    "PolicyConfigError",
    "PolicyPackError",
    "PolicyPackSession",
    "PolicyResult",
    "PolicyRuleInfo",
    "PolicyViolation",
    "marshal_properties",
    "run_policy_pack",
]

UNKNOWN: str = pulumi_rpc.UNKNOWN
"""Preview unknown, as the Python SDK sends it and the engine forwards it (the string sentinel)."""

_SIG_KEY: str = pulumi_rpc._special_sig_key
_SECRET_SIG: str = pulumi_rpc._special_secret_sig
_ASSET_SIG: str = pulumi_rpc._special_asset_sig
_ARCHIVE_SIG: str = pulumi_rpc._special_archive_sig
_RESOURCE_SIG: str = pulumi_rpc._special_resource_sig
_OUTPUT_SIG: str = pulumi_rpc._special_output_value_sig

# Same limit the policy SDK gives its server; AnalyzeStack for a large plan exceeds gRPC's 4 MB.
_MAX_MESSAGE = 400 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
]
# The CLI hands the pack its engine address; a Python pack only logs through it when
# PULUMI_PROJECT/STACK/DRY_RUN are set, so an unroutable placeholder is safe here.
_NO_ENGINE = "127.0.0.1:0"
# Calls in flight per pack process: it serves with 4 threads under one GIL; 4 to 8 measured
# best (one at a time leaves it idle between calls, a deeper queue only adds switching).
_IN_FLIGHT = 4
_MAX_WORKERS = 4
_RESOURCES_PER_WORKER = 500
_OUTPUT_TAIL_LINES = 60

_LEVELS = ("advisory", "mandatory", "remediate", "disabled")
_LEVEL_TO_PB = {
    "advisory": pb.ADVISORY,
    "mandatory": pb.MANDATORY,
    "remediate": pb.REMEDIATE,
    "disabled": pb.DISABLED,
}
_PB_TO_LEVEL = {v: k for k, v in _LEVEL_TO_PB.items()}
_PB_TO_SEVERITY = {
    pb.POLICY_SEVERITY_LOW: "low",
    pb.POLICY_SEVERITY_MEDIUM: "medium",
    pb.POLICY_SEVERITY_HIGH: "high",
    pb.POLICY_SEVERITY_CRITICAL: "critical",
}


class PolicyPackError(RuntimeError):
    """The policy pack could not start, crashed, or failed an RPC; carries its stderr tail."""


class PolicyConfigError(PolicyPackError):
    """The policy config does not fit the pack (unknown level, schema violation, no config)."""


@dataclass(frozen=True)
class PolicyViolation:
    """One diagnostic the pack reported, with the level the CLI would act on."""

    rule: str
    level: str  # "mandatory" | "advisory" | "remediate"
    urn: str | None
    message: str
    pack: str
    severity: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class PolicyRuleInfo:
    """A policy as the pack describes it, with its effective (configured) enforcement level."""

    name: str
    description: str
    level: str
    severity: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class PolicyResult:
    """Outcome of one run of a pack over a plan."""

    pack: str
    version: str
    rules: list[PolicyRuleInfo]
    violations: list[PolicyViolation]

    @property
    def mandatory(self) -> list[PolicyViolation]:
        """Violations that would fail `pulumi up`."""
        return [v for v in self.violations if v.level == "mandatory"]

    def to_json(self) -> dict[str, Any]:
        """Stable, JSON-ready summary for reports."""
        return {
            "pack": self.pack,
            "rules": [r.name for r in self.rules if r.level != "disabled"],
            "violations": [
                {"rule": v.rule, "level": v.level, "urn": v.urn, "message": v.message}
                for v in self.violations
            ],
        }


@dataclass
class _PackInfo:
    name: str
    version: str
    supports_config: bool
    policies: list[pb.PolicyInfo]
    schemas: dict[str, dict[str, Any]]
    initial_config: dict[str, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)


# --- property marshalling (plugin.MarshalProperties with KeepUnknowns, KeepSecrets) -------------


def _wire(value: Any) -> Any:
    """One captured input value as the engine puts it on the wire, before Struct encoding."""
    if isinstance(value, dict):
        if len(value) == 1 and SECRET_KEY in value:
            return {_SIG_KEY: _SECRET_SIG, "value": _wire(value[SECRET_KEY])}
        sig = value.get(_SIG_KEY)
        if sig == _RESOURCE_SIG:
            # The analyzer marshals without KeepResources: a reference becomes its id, else urn.
            if "id" in value:
                return value["id"] if value["id"] not in ("", None) else UNKNOWN
            return value.get("urn", UNKNOWN)
        if sig == _OUTPUT_SIG:
            if "value" not in value:
                return UNKNOWN
            inner = _wire(value["value"])
            return {_SIG_KEY: _SECRET_SIG, "value": inner} if value.get("secret") else inner
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    return _wire_asset(value)


def _wire_asset(value: Any) -> Any:
    import pulumi  # local: only plans that carry assets pay for the import

    for kind, sig in ((pulumi.Asset, _ASSET_SIG), (pulumi.Archive, _ARCHIVE_SIG)):
        if isinstance(value, kind):
            out: dict[str, Any] = {_SIG_KEY: sig}
            for attr in ("path", "text", "uri"):
                if getattr(value, attr, None) is not None:
                    out[attr] = getattr(value, attr)
            if isinstance(value, pulumi.AssetArchive):
                out["assets"] = {k: _wire_asset(v) for k, v in value.assets.items()}
            return out
    raise TypeError(f"cannot send {type(value).__name__} to a policy pack: {value!r}")


def marshal_properties(inputs: Mapping[str, Any]) -> struct_pb2.Struct:
    """Encode captured inputs as the engine does: top-level `__` keys dropped, numbers as floats."""
    struct = struct_pb2.Struct()
    struct.update({k: _wire(v) for k, v in inputs.items() if not k.startswith("__")})
    return struct


# --- policy config (pkg/resource/analyzer/config.go: parse, reconcile, validate) -------------


def _parse_config(config: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any] | None]]:
    parsed: dict[str, tuple[str, dict[str, Any] | None]] = {}
    for name, value in config.items():
        level, props = "", None
        if isinstance(value, str):
            level = value
        elif isinstance(value, Mapping):
            rest = dict(value)
            level = rest.pop("enforcementLevel", "")
            props = rest or None
        else:
            raise PolicyConfigError(
                f"policy config {name!r}: {value!r} is not valid; use an enforcement level "
                f"string or an object"
            )
        if level and level not in _LEVELS:
            raise PolicyConfigError(
                f"policy config {name!r}: {level!r} is not an enforcement level; "
                f"use one of {', '.join(_LEVELS)}"
            )
        if level or props:  # the CLI drops empty entries
            parsed[name] = (level, props)
    return parsed


def _apply_config(
    result: dict[str, tuple[str, dict[str, Any] | None]],
    given: Mapping[str, tuple[str, dict[str, Any] | None]],
) -> None:
    all_level = given.get("all", ("", None))[0]
    if all_level:
        for name, (_, props) in result.items():
            result[name] = (all_level, props)
    # Like the CLI this also copies the "all" entry itself; the pack ignores that name.
    for name, (level, props) in given.items():
        current_level, current_props = result.get(name, ("", None))
        merged = dict(current_props) if current_props else None
        if props:
            merged = {**(merged or {}), **props}
        result[name] = (level or current_level, merged)


def _reconcile(
    info: _PackInfo, config: Mapping[str, Any] | None
) -> dict[str, tuple[str, dict[str, Any] | None]]:
    result: dict[str, tuple[str, dict[str, Any] | None]] = {}
    for policy in info.policies:
        defaults = {
            k: s["default"] for k, s in info.schemas.get(policy.name, {}).items() if "default" in s
        }
        result[policy.name] = (_PB_TO_LEVEL[policy.enforcementLevel], defaults or None)
    _apply_config(result, info.initial_config)
    if config:
        _apply_config(result, _parse_config(config))

    errors: list[str] = []
    for policy in info.policies:
        schema = info.schemas.get(policy.name)
        if schema is None:
            continue
        object_schema = {"type": "object", "properties": schema,
                         "required": list(policy.configSchema.required)}
        props = result[policy.name][1] or {}
        errors += [f"{policy.name}: {e}" for e in _validate(object_schema, props, "")]
        # JSON schema lets unknown properties through, and the policy would never read one: a
        # misspelt key (maxGpuz) silently keeps the default, so a gate refuses it.
        unknown = sorted(set(props) - set(schema))
        if unknown:
            errors.append(
                f"{policy.name}: unknown key {', '.join(unknown)}; allowed: "
                f"{', '.join(sorted(schema)) or 'none'}"
            )
    for name, (level, _) in result.items():
        if not level:
            errors.append(f"{name}: no enforcementLevel, and {info.name!r} has no such policy")
    if errors:
        raise PolicyConfigError(
            f"policy config for pack {info.name!r} is invalid:\n  " + "\n  ".join(sorted(errors))
        )
    return result


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


def _validate(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    """The JSON-schema subset policy config schemas use: type, enum, bounds, items, required."""
    where = path or "(root)"
    expected = schema.get("type")
    if expected == "null":
        return [] if value is None else [f"{where}: expected null"]
    if isinstance(expected, str) and expected in _JSON_TYPES:
        is_bool = isinstance(value, bool)
        ok = isinstance(value, _JSON_TYPES[expected]) and (expected == "boolean" or not is_bool)
        if ok and expected == "integer":
            ok = float(value).is_integer()
        if not ok:
            return [f"{where}: expected {expected}, got {type(value).__name__} {value!r}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value!r} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value!r} is above the maximum {schema['maximum']}")
    if isinstance(value, (list, tuple)) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            errors += _validate(schema["items"], item, f"{path}[{i}]")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: {key} is required")
        for key, sub in (schema.get("properties") or {}).items():
            if key in value and isinstance(sub, Mapping):
                errors += _validate(sub, value[key], f"{path}.{key}" if path else key)
    return errors


# --- request building ------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                     "h": 3600.0}


def _seconds(value: Any) -> float:
    # The engine parses the SDK's Go-style duration strings ("10m", "1h30m") into seconds.
    if isinstance(value, (int, float)):
        return float(value)
    if not value:
        return 0.0
    return sum(float(n) * _DURATION_SECONDS[u] for n, u in _DURATION.findall(str(value)))


def _urn_type_and_name(urn: str) -> tuple[str, str]:
    parts = urn.split("::", 3)
    if len(parts) < 4:
        return "", urn
    return parts[2].rsplit("$", 1)[-1], parts[3]


def _provider_urn(reference: str) -> str:
    # A provider reference is "<urn>::<id>"; a bare URN has exactly three "::" separators.
    return reference.rsplit("::", 1)[0] if reference.count("::") >= 4 else reference


def _resource_options(resource: Mapping[str, Any]) -> pb.AnalyzerResourceOptions:
    opts = resource.get("options") or {}
    dbr = opts.get("deleteBeforeReplace")
    timeouts = opts.get("customTimeouts") or {}
    return pb.AnalyzerResourceOptions(
        protect=bool(opts.get("protect", False)),
        ignoreChanges=list(opts.get("ignoreChanges") or []),
        deleteBeforeReplace=bool(dbr),
        # The engine knows whether the program set it; a captured False reads as "not set".
        deleteBeforeReplaceDefined=bool(opts.get("deleteBeforeReplaceDefined", bool(dbr))),
        additionalSecretOutputs=list(opts.get("additionalSecretOutputs") or []),
        aliases=[a if isinstance(a, str) else a.get("urn", "") for a in opts.get("aliases") or []],
        customTimeouts=pb.AnalyzerResourceOptions.CustomTimeouts(
            create=_seconds(timeouts.get("create")),
            update=_seconds(timeouts.get("update")),
            delete=_seconds(timeouts.get("delete")),
        ),
        parent=resource.get("parent") or "",
    )


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


class _Requests:
    """Each resource's Analyze request, serialized once.

    AnalyzeRequest and AnalyzerResource share field numbers 1-6, so a stack entry is the same
    bytes plus parent/dependencies; this halves the client's marshalling work.
    """

    def __init__(self, resources: Sequence[Mapping[str, Any]]) -> None:
        self.resources = resources
        self.by_urn = {r["urn"]: r for r in resources}
        self._providers: dict[str, pb.AnalyzerProviderResource] = {}
        self.analyze = [self._analyze_bytes(r, marshal_properties(r.get("inputs") or {}))
                        for r in resources]

    def remediated(self, index: int, properties: struct_pb2.Struct) -> None:
        """Later calls see the remediated inputs, as the engine's would."""
        self.analyze[index] = self._analyze_bytes(self.resources[index], properties)

    def stack(self) -> bytes:
        parts = []
        for resource, head in zip(self.resources, self.analyze, strict=True):
            entry = head + pb.AnalyzerResource(
                parent=resource.get("parent") or "",
                dependencies=list(resource.get("dependencies") or []),
                propertyDependencies={
                    k: pb.AnalyzerPropertyDependencies(urns=list(v))
                    for k, v in (resource.get("propertyDependencies") or {}).items()
                    if v  # the CLI leaves out properties without dependencies
                },
            ).SerializeToString()
            parts += (b"\x0a", _varint(len(entry)), entry)  # field 1 (resources), length-delimited
        return b"".join(parts)

    def _analyze_bytes(self, r: Mapping[str, Any], properties: struct_pb2.Struct) -> bytes:
        return pb.AnalyzeRequest(
            urn=r["urn"], type=r["type"], name=r["name"], properties=properties,
            options=_resource_options(r), provider=self._provider(r),
        ).SerializeToString()

    def _provider(self, resource: Mapping[str, Any]) -> pb.AnalyzerProviderResource | None:
        reference = (resource.get("options") or {}).get("provider")
        if not reference:
            return None
        if reference not in self._providers:
            urn = _provider_urn(reference)
            captured = self.by_urn.get(urn)
            type_, name = _urn_type_and_name(urn)
            self._providers[reference] = pb.AnalyzerProviderResource(
                urn=urn,
                type=captured["type"] if captured else type_,
                name=captured["name"] if captured else name,
                properties=marshal_properties((captured or {}).get("inputs") or {}),
            )
        return self._providers[reference]


# --- one pack process --------------------------------------------------------------------------


def _read_pack_project(pack_dir: Path) -> dict[str, Any]:
    project_file = pack_dir / "PulumiPolicy.yaml"
    try:
        project = yaml_loader.read(project_file) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyPackError(
            f"failed to load the policy pack project {project_file}: {exc}; a pack folder needs "
            f"a PulumiPolicy.yaml with `runtime: python`"
        ) from exc
    runtime = project.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, Mapping) else runtime
    if runtime_name != "python":
        raise PolicyPackError(
            f"{project_file}: runtime is {runtime_name!r}; only `runtime: python` packs run here"
        )
    return project


def _pack_python(pack_dir: Path, project: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """Interpreter and environment, as the shim picks them from `runtime.options.virtualenv`."""
    env = dict(os.environ)
    runtime = project.get("runtime")
    options = (runtime.get("options") or {}) if isinstance(runtime, Mapping) else {}
    virtualenv = options.get("virtualenv")
    if not virtualenv:
        return sys.executable, env
    venv = (pack_dir / virtualenv).resolve()
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        raise PolicyPackError(
            f"the 'virtualenv' option in {pack_dir / 'PulumiPolicy.yaml'} is {virtualenv!r}, but "
            f"{venv} is not a virtual environment; create it with `python -m venv {venv}` and "
            f"install the pack's requirements into it"
        )
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONHOME", None)
    return str(python), env


class _PackProcess:
    """One pack process and its channel; keeps a tail of everything the pack prints."""

    def __init__(self, pack_dir: Path, python: str, env: dict[str, str], timeout: float) -> None:
        self.pack_dir = pack_dir
        self.timeout = timeout
        self.output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_TAIL_LINES)
        self._first_line: Queue[str | None] = Queue(maxsize=1)
        self._threads: list[threading.Thread] = []
        self._channel: grpc.Channel | None = None
        self._calls: dict[str, grpc.UnaryUnaryMultiCallable] = {}
        command = [python, "-u", "-m", "pulumi.policy", _NO_ENGINE, "."]
        try:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                command, cwd=pack_dir, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise PolicyPackError(f"could not run {python} for {pack_dir}: {exc}") from exc
        assert self.proc.stdout is not None and self.proc.stderr is not None
        # Both pipes are drained for the pack's whole life: a pack that logs must never block.
        self._pump(self.proc.stdout, first_line=True)
        self._pump(self.proc.stderr, first_line=False)

    def _pump(self, pipe: Any, first_line: bool) -> None:
        def run() -> None:
            waiting = first_line
            for raw in iter(pipe.readline, b""):
                text = raw.decode("utf-8", "replace")
                if waiting:
                    self._first_line.put(text)
                    waiting = False
                else:
                    self.output.append(text.rstrip("\n"))
            if waiting:
                self._first_line.put(None)
            pipe.close()

        thread = threading.Thread(target=run, name="policy-pack-pipe", daemon=True)
        thread.start()
        self._threads.append(thread)

    def connect(self) -> None:
        """Read the port the pack prints, open the channel, and handshake."""
        assert self.proc is not None
        try:
            line = self._first_line.get(timeout=self.timeout)
        except Empty:
            raise self.error(f"printed no port within {self.timeout:.0f}s") from None
        if line is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            for thread in self._threads:
                thread.join(timeout=1)
            raise self.error(f"exited with code {self.proc.returncode} before printing its port")
        try:
            port = int(line.strip())
        except ValueError:
            raise self.error(f"printed {line.strip()!r} where its port was expected") from None
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_CHANNEL_OPTIONS)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.timeout)
        except grpc.FutureTimeoutError as exc:
            raise self.error(f"accepted no connection on port {port}") from exc
        request = pb.AnalyzerHandshakeRequest(
            engine_address=_NO_ENGINE,
            root_directory=str(self.pack_dir),
            program_directory=str(self.pack_dir),
        )
        try:
            self._method("Handshake", pb.AnalyzerHandshakeResponse)(
                request.SerializeToString(), timeout=self.timeout)
        except grpc.RpcError as exc:
            # Python packs do not implement it; the CLI falls back silently, so do we.
            if _code(exc) != grpc.StatusCode.UNIMPLEMENTED:
                raise self.rpc_error(exc, "Handshake") from exc

    def _method(self, name: str, reply: Any) -> grpc.UnaryUnaryMultiCallable:
        # Requests go out as ready-made bytes (no serializer); replies are parsed as usual.
        if name not in self._calls:
            assert self._channel is not None, "connect() first"
            self._calls[name] = self._channel.unary_unary(
                f"/pulumirpc.Analyzer/{name}", request_serializer=None,
                response_deserializer=reply.FromString,
            )
        return self._calls[name]

    def call(self, name: str, request: bytes, reply: Any, label: str) -> Any:
        try:
            return self._method(name, reply)(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise self.rpc_error(exc, label) from exc

    def future(self, name: str, request: bytes, reply: Any) -> grpc.Future:
        return self._method(name, reply).future(request, timeout=self.timeout)

    def error(self, what: str, config: bool = False) -> PolicyPackError:
        tail = "\n".join(self.output.copy()).strip()  # copy: the pump thread may append
        message = f"policy pack {self.pack_dir} {what}"
        if tail:
            message += f"\n--- pack output (last {_OUTPUT_TAIL_LINES} lines) ---\n{tail}"
        return PolicyConfigError(message) if config else PolicyPackError(message)

    def rpc_error(self, exc: grpc.RpcError, label: str) -> PolicyPackError:
        code = _code(exc)
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        if self.proc is not None and self.proc.poll() is not None:
            details += f" (the pack exited with code {self.proc.returncode})"
        return self.error(f"failed {label}: {code.name if code else 'error'}: {details}")

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in self._threads:
            thread.join(timeout=1)


# --- the pack in this interpreter --------------------------------------------------------------

# Request message of each Analyzer method the client calls.
_REQUEST_TYPES: dict[str, Any] = {
    "GetAnalyzerInfo": empty_pb2.Empty,
    "Configure": pb.ConfigureAnalyzerRequest,
    "Analyze": pb.AnalyzeRequest,
    "Remediate": pb.AnalyzeRequest,
    "AnalyzeStack": pb.AnalyzeStackRequest,
}


class _PackStarted(Exception):
    """Raised in place of serving: the pack's servicer has been built and captured."""


class _CapturingServer:
    """Stands in for `grpc.server` while the pack's `__main__` runs: captures, never serves."""

    def add_insecure_port(self, address: str) -> int:
        return 0

    def start(self) -> None:
        raise _PackStarted


class _CallContext:
    """The servicer's `context` argument: records what an unimplemented method sets."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details


class _InProcessRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class _Done:
    """A finished call with the `grpc.Future` interface the session uses."""

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self._result, self._error = result, error

    def result(self, timeout: float | None = None) -> Any:
        if self._error is not None:
            raise self._error
        return self._result


class _InProcessPack:
    """The pack's own servicer, built by running its `__main__` here, called without gRPC.

    The pack runs exactly as `python -m pulumi.policy <engine> .` runs it (its folder on
    `sys.path`, `__main__` executed), except that `PolicyPack` hands its servicer over instead
    of serving it. Requests are the same serialized bytes the gRPC path sends, parsed into the
    same messages, so verdicts match (pinned by a test); what is saved is the transport, the
    second interpreter and the garbage collector's passes over this one's heap.
    """

    def __init__(self, pack_dir: Path, timeout: float) -> None:
        self.pack_dir = pack_dir
        self.timeout = timeout
        self.proc = None
        self.output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_TAIL_LINES)
        self._servicer: Any = None

    def connect(self) -> None:
        import runpy

        import pulumi_policy.policy as policy_module

        captured: list[Any] = []
        real_grpc, real_add = policy_module.grpc, policy_module.analyzer_pb2_grpc
        policy_module.grpc = _FakeGrpcModule()  # type: ignore[assignment]
        policy_module.analyzer_pb2_grpc = _FakeRegistration(captured)  # type: ignore[assignment]
        try:
            with self.captured_output():
                runpy.run_path(str(self.pack_dir), run_name="__main__")
        except _PackStarted:
            pass
        except BaseException as exc:  # the pack's own code failed: report it as the CLI would
            raise self.error(f"failed to start: {type(exc).__name__}: {exc}") from None
        finally:
            policy_module.grpc = real_grpc
            policy_module.analyzer_pb2_grpc = real_add
        if not captured:
            raise self.error("never constructed a PolicyPack")
        self._servicer = captured[0]

    @contextlib.contextmanager
    def captured_output(self) -> Iterator[None]:
        # What the pack prints is its log, never part of this process's report on stdout.
        import io

        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                yield
        finally:
            self.output.extend(buffer.getvalue().splitlines())

    def call(self, name: str, request: bytes, reply: Any, label: str) -> Any:
        try:
            return self.future(name, request, reply).result()
        except grpc.RpcError as exc:
            raise self.rpc_error(exc, label) from exc

    def future(self, name: str, request: bytes, reply: Any) -> _Done:
        method = getattr(self._servicer, name, None)
        if method is None:
            return _Done(error=_InProcessRpcError(grpc.StatusCode.UNIMPLEMENTED, name))
        context = _CallContext()
        try:
            result = method(_REQUEST_TYPES[name].FromString(request), context)
        except NotImplementedError:
            return _Done(error=_InProcessRpcError(grpc.StatusCode.UNIMPLEMENTED, name))
        except Exception as exc:  # as grpc reports an exception in a servicer method
            return _Done(error=_InProcessRpcError(
                grpc.StatusCode.UNKNOWN,
                f"Exception calling application: {type(exc).__name__}: {exc}"))
        if context.code not in (None, grpc.StatusCode.OK):
            return _Done(error=_InProcessRpcError(context.code, context.details))
        return _Done(result)

    def error(self, what: str, config: bool = False) -> PolicyPackError:
        return _PackProcess.error(self, what, config)  # type: ignore[arg-type]

    def rpc_error(self, exc: grpc.RpcError, label: str) -> PolicyPackError:
        code = _code(exc)
        details = exc.details() if isinstance(exc, grpc.Call | _InProcessRpcError) else str(exc)
        return self.error(f"failed {label}: {code.name if code else 'error'}: {details}")

    def close(self) -> None:
        self._servicer = None


class _FakeGrpcModule:
    @staticmethod
    def server(*_args: Any, **_kwargs: Any) -> _CapturingServer:
        return _CapturingServer()


class _FakeRegistration:
    def __init__(self, captured: list[Any]) -> None:
        self._captured = captured

    def add_AnalyzerServicer_to_server(self, servicer: Any, _server: Any) -> None:
        self._captured.append(servicer)


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    return code() if callable(code) else None


# --- the session -------------------------------------------------------------------------------


class PolicyPackSession:
    """A running policy pack, reusable across runs; use as a context manager.

    `workers` > 1 starts that many copies of the pack and spreads Analyze calls over them (the
    CLI runs one; results match for packs whose resource policies keep no state between calls).
    `in_process=True` runs a pack that needs no interpreter of its own (no `virtualenv` option)
    inside this one and calls its servicer with the same request bytes, without gRPC; the
    default is the CLI's way, a pack process spoken to over gRPC.
    """

    def __init__(
        self,
        pack_dir: Path | str,
        *,
        python: str | None = None,
        timeout: float = 60.0,
        workers: int = 1,
        in_process: bool = False,
    ) -> None:
        self.pack_dir = Path(pack_dir).resolve()
        self.timeout = timeout
        self.workers = max(1, workers)
        self.in_process = in_process
        self._project = _read_pack_project(self.pack_dir)
        if python is None:
            self._python, self._env = _pack_python(self.pack_dir, self._project)
        else:
            self._python, self._env = python, dict(os.environ)
        # A pack with an interpreter of its own must run in it.
        self.in_process = in_process and self._python == sys.executable
        self._processes: list[_PackProcess | _InProcessPack] = []
        self.info: _PackInfo | None = None

    def __enter__(self) -> PolicyPackSession:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the pack process(es), connect, and read the pack's metadata."""
        if self.in_process:
            self._processes.append(_InProcessPack(self.pack_dir, self.timeout))
        # Spawn all first so the interpreters boot in parallel.
        for _ in range(0 if self.in_process else self.workers):
            self._processes.append(
                _PackProcess(self.pack_dir, self._python, self._env, self.timeout))
        for process in self._processes:
            process.connect()
        self.info = self._analyzer_info()

    def close(self) -> None:
        """Close the channels and end every pack process."""
        processes, self._processes = self._processes, []
        for process in processes:
            process.close()

    @property
    def _primary(self) -> _PackProcess:
        if not self._processes:
            raise RuntimeError("start() the policy pack session first")
        return self._processes[0]

    def _analyzer_info(self) -> _PackInfo:
        reply: pb.AnalyzerInfo = self._primary.call(
            "GetAnalyzerInfo", empty_pb2.Empty().SerializeToString(), pb.AnalyzerInfo,
            "GetAnalyzerInfo")
        schemas: dict[str, dict[str, Any]] = {}
        if reply.supportsConfig:
            for policy in reply.policies:
                if policy.HasField("configSchema"):
                    schemas[policy.name] = json_format.MessageToDict(
                        policy.configSchema.properties)
        initial = {
            # An entry without a level arrives as ADVISORY (proto3 default); the CLI keeps that.
            name: (_PB_TO_LEVEL[cfg.enforcementLevel],
                   json_format.MessageToDict(cfg.properties) or None)
            for name, cfg in reply.initialConfig.items()
        }
        # PulumiPolicy.yaml's version wins over the pack's; Python packs always answer 0.0.1.
        version = str(self._project.get("version") or reply.version)
        return _PackInfo(reply.name, version, reply.supportsConfig, list(reply.policies),
                         schemas, initial)

    def _configure(self, config: Mapping[str, Any] | None) -> dict[str, str]:
        info = self.info
        assert info is not None
        if not info.supports_config:
            if config:
                raise self._primary.error(f"({info.name}) does not support config", config=True)
            return {p.name: _PB_TO_LEVEL[p.enforcementLevel] for p in info.policies}
        try:
            reconciled = _reconcile(info, config)
        except PolicyConfigError as exc:
            raise PolicyConfigError(f"{exc} (pack folder {self.pack_dir})") from None
        request = pb.ConfigureAnalyzerRequest()
        for name, (level, props) in reconciled.items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = _LEVEL_TO_PB[level]
            if props:
                entry.properties.update(props)
        # Sent on every run (the CLI skips only an empty map), so a rerun resets earlier config.
        if reconciled:
            payload = request.SerializeToString()
            for process in self._processes:
                process.call("Configure", payload, empty_pb2.Empty, "Configure")
        return {name: level for name, (level, _) in reconciled.items()}

    def _fan_out(self, name: str, reply: Any, requests: Sequence[bytes],
                 urns: Sequence[str]) -> list[Any]:
        """Unary calls dealt round-robin over the processes, a few in flight each; in order."""
        processes = self._processes
        window = _IN_FLIGHT * len(processes)
        pending: collections.deque[tuple[int, grpc.Future]] = collections.deque()
        results: list[Any] = []

        def collect() -> None:
            index, future = pending.popleft()
            try:
                results.append(future.result())
            except grpc.RpcError as exc:
                worker = processes[index % len(processes)]
                raise worker.rpc_error(exc, f"{name} for {urns[index]}") from exc

        for index, payload in enumerate(requests):
            pending.append((index, processes[index % len(processes)].future(name, payload, reply)))
            if len(pending) >= window:
                collect()
        while pending:
            collect()
        return results

    def run(
        self, resources: Sequence[Mapping[str, Any]], config: Mapping[str, Any] | None = None
    ) -> PolicyResult:
        """Configure the pack, then Remediate/Analyze every resource and AnalyzeStack once."""
        if self.info is None:
            self.start()
        if not self.in_process:
            return self._run(resources, config)
        pack = self._primary
        assert isinstance(pack, _InProcessPack)
        with collector_paused(), pack.captured_output():
            return self._run(resources, config)

    def _run(
        self, resources: Sequence[Mapping[str, Any]], config: Mapping[str, Any] | None
    ) -> PolicyResult:
        info = self.info
        assert info is not None
        levels = self._configure(config)
        requests = _Requests(resources)
        urns = [r["urn"] for r in resources]
        by_resource: list[list[PolicyViolation]] = [[] for _ in resources]

        resource_policies = {p.name for p in info.policies if p.policy_type != pb.POLICY_TYPE_STACK}
        if any(levels.get(name) == "remediate" for name in resource_policies):
            # The pack only remediates at level "remediate"; the CLI's pass is a no-op otherwise.
            self._remediate(requests, by_resource)

        # The CLI calls AnalyzeStack last. Its outcome depends only on the (remediated) inputs,
        # so with spare pack copies it runs beside the Analyze stream instead.
        stack_payload = requests.stack()
        stack = None
        if len(self._processes) > 1:
            stack = self._primary.future("AnalyzeStack", stack_payload, pb.AnalyzeResponse)
        replies = self._fan_out("Analyze", pb.AnalyzeResponse, requests.analyze, urns)
        for index, reply in enumerate(replies):
            for diag in reply.diagnostics:
                # The CLI reports a resource diagnostic against the analyzed resource's URN.
                by_resource[index].append(self._violation(diag, urns[index]))
        violations = [v for found in by_resource for v in found]

        try:
            stack_reply = (stack.result() if stack is not None else self._primary.future(
                "AnalyzeStack", stack_payload, pb.AnalyzeResponse).result())
        except grpc.RpcError as exc:
            if _code(exc) != grpc.StatusCode.UNIMPLEMENTED:
                raise self._primary.rpc_error(exc, "AnalyzeStack") from exc
            stack_reply = pb.AnalyzeResponse()
        root = next((r["urn"] for r in resources if r["type"] == "pulumi:pulumi:Stack"), None)
        for diag in stack_reply.diagnostics:
            # A URN outside the stack (or none) goes to the root stack resource, as in the CLI.
            urn = diag.urn if diag.urn in requests.by_urn else root
            violations.append(self._violation(diag, urn))

        rules = sorted(
            (PolicyRuleInfo(
                name=p.name,
                description=p.description,
                level=levels.get(p.name, _PB_TO_LEVEL[p.enforcementLevel]),
                severity=_PB_TO_SEVERITY.get(p.severity),
                message=p.message or p.remediation_steps or None,
            ) for p in info.policies),
            key=lambda rule: rule.name,
        )
        return PolicyResult(info.name, info.version, rules, violations)

    def _remediate(self, requests: _Requests, by_resource: list[list[PolicyViolation]]) -> None:
        urns = [r["urn"] for r in requests.resources]
        replies = self._fan_out("Remediate", pb.RemediateResponse, requests.analyze, urns)
        for index, reply in enumerate(replies):
            for item in reply.remediations:
                if item.diagnostic:
                    # A remediation that could not run (preview unknowns) is an advisory warning.
                    by_resource[index].append(PolicyViolation(
                        rule=item.policyName, level="advisory", urn=urns[index],
                        message=item.diagnostic, pack=item.policyPackName,
                        description=item.description or None))
                elif item.HasField("properties"):
                    requests.remediated(index, item.properties)
                    by_resource[index].append(PolicyViolation(
                        rule=item.policyName, level="remediate", urn=urns[index],
                        message=f"{item.description}\nremediated by the policy pack",
                        pack=item.policyPackName, description=item.description or None))

    def _violation(self, diag: pb.AnalyzeDiagnostic, urn: str | None) -> PolicyViolation:
        level = _PB_TO_LEVEL.get(diag.enforcementLevel, "advisory")
        if level == "remediate":
            # Still violating after remediation, or a stack policy: the CLI treats it as mandatory.
            level = "mandatory"
        return PolicyViolation(
            rule=diag.policyName,
            level=level,
            urn=urn or None,
            message=diag.message,
            pack=diag.policyPackName or (self.info.name if self.info else ""),
            severity=_PB_TO_SEVERITY.get(diag.severity),
            description=diag.description or None,
        )


def _auto_workers(count: int) -> int:
    # Extra pack copies only pay off with a spare core each (the client needs one) and enough
    # resources to amortize a ~0.4 s interpreter start.
    spare_cores = (os.cpu_count() or 1) - 1
    return max(1, min(spare_cores, _MAX_WORKERS, count // _RESOURCES_PER_WORKER))


def run_policy_pack(
    pack_dir: Path,
    resources: list[dict],
    config: dict | None = None,
    *,
    python: str | None = None,
    timeout: float = 60.0,
    workers: int | None = None,
    in_process: bool = False,
) -> PolicyResult:
    """Start the pack in its own process, analyze `resources` with it, and always stop it.

    `config` has the shape of `pulumi preview --policy-pack-config` JSON. `timeout` bounds the
    start-up and each RPC. `workers=None` adds pack copies only for large plans on spare cores.
    `in_process=True` runs the pack in this interpreter (see `PolicyPackSession`).
    """
    count = _auto_workers(len(resources)) if workers is None else workers
    with PolicyPackSession(pack_dir, python=python, timeout=timeout, workers=count,
                           in_process=in_process) as session:
        return session.run(resources, config)
