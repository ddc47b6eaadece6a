"""What a provider SDK says a resource type or invoke returns, read from its Python classes.

Pulumi's Python SDKs declare every output of a resource as a `@pulumi.getter` property of the
resource class, and every field of an invoke's result as a getter of its `<Name>Result` output
type, each with a type annotation. The offline engine reads these instead of keeping a hand-made
list per type, so a type it has never seen still gets the outputs the real provider returns.

Two sources, one reader (`gpustack.hosts.sdk_shapes`): the program's own SDK, whose classes the
exec shim describes in the program's process before a type's first registration (`Shapes`, one
per plan), and the planner's SDK, imported here for anything not described that way (an
invoke's result, a TypeScript program, an in-process plan).
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from gpustack.hosts import sdk_shapes

KINDS = ("str", "enum", "int", "float", "bool", "list", "map", "object", "any")


@dataclass(frozen=True)
class Field:
    """One property as it travels on the wire: camelCase name, kind, optional or always there."""

    name: str
    kind: str
    optional: bool
    object_type: str | None = None
    """Reference (`module:QualName`) of an object's output type, or of a list's or map's
    object items; `object_fields` reads it."""
    enum_value: Any = None
    """An enum's first member value: the SDK instantiates the enum from the answer."""


def _fields(rows: Any) -> tuple[Field, ...]:
    fields = []
    for name, kind, optional, detail in rows:
        if kind == "enum":
            fields.append(Field(name, kind, bool(optional), None, detail))
        else:
            reference = detail if isinstance(detail, str) else None
            fields.append(Field(name, kind, bool(optional), reference))
    return tuple(fields)


# azure-native loads its modules lazily (importlib.util.LazyLoader). On Python before 3.12, two
# threads touching a lazy module for the first time at once can leave it half-loaded for the
# rest of the process (CPython gh-114763): seen here as `pulumi_azure_native.storage` without
# `StorageAccount` after the monitor's threads answered a plan. Every SDK look-up takes one lock.
_SDK_LOCK = threading.RLock()


def _sdk_lookup(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def locked(*args: Any) -> Any:
        with _SDK_LOCK:
            return function(*args)

    return functools.cache(locked)


def python_package(package: str) -> str:
    """`azure-native` -> `pulumi_azure_native`, as Pulumi's Python codegen names packages."""
    return "pulumi_" + package.replace("-", "_")


def snake_case(name: str) -> str:
    """`getPublicIPAddress` -> `get_public_ip_address`, as Pulumi's Python codegen names modules."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


def module_path(token: str) -> tuple[str, str] | None:
    """(python module, member name) for a `package:module:Member` token."""
    parts = token.split(":")
    if len(parts) != 3:
        return None
    package, module, member = parts
    module = module.split("/")
    if module and module[0] == "index":
        module = []
    # `kubernetes:helm.sh/v3` lives in `pulumi_kubernetes.helm.v3`.
    dotted = ".".join(m.split(".")[0] for m in module if m)
    base = python_package(package)
    return (f"{base}.{dotted}" if dotted else base), member


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception:  # an SDK that is absent or broken answers "no shape"
        return None


@_sdk_lookup
def resource_class(token: str) -> type | None:
    """The SDK's resource class for a type token, or None when that SDK is not importable."""
    located = module_path(token)
    if located is None:
        return None
    module_name, member = located
    # The package first: importing a submodule of a lazily loaded package before the package
    # itself leaves the package without that submodule's names (pulumi._utils.lazy_import).
    for candidate in (module_name, f"{module_name}.{snake_case(member)}"):
        module = _import(candidate)
        cls = getattr(module, member, None) if module is not None else None
        if isinstance(cls, type) and issubclass(cls, pulumi.Resource):
            return cls
    return None


@_sdk_lookup
def resource_outputs(token: str) -> tuple[Field, ...]:
    """Every output property the resource class declares."""
    cls = resource_class(token)
    return _fields(sdk_shapes.field_rows(cls)) if cls is not None else ()


@_sdk_lookup
def resource_inputs(token: str) -> frozenset[str]:
    """The wire names of the resource's inputs (its `<Name>Args` class)."""
    cls = resource_class(token)
    return frozenset(sdk_shapes.input_names(cls)) if cls is not None else frozenset()


@_sdk_lookup
def _class_source(token: str) -> str:
    cls = resource_class(token)
    return sdk_shapes.class_source(cls) if cls is not None else ""


@_sdk_lookup
def secret_outputs(token: str) -> frozenset[str]:
    """Outputs the resource class marks secret (`additional_secret_outputs` in its `__init__`).

    The engine makes these secret whatever the provider answers; the mocks do the same.
    """
    return frozenset(sdk_shapes.secret_outputs(_class_source(token)))


@_sdk_lookup
def api_version(token: str) -> str | None:
    """The ARM API version an azure-native class uses ("Uses Azure REST API version ...")."""
    return sdk_shapes.api_version(_class_source(token))


@_sdk_lookup
def invoke_result_fields(token: str) -> tuple[Field, ...] | None:
    """The fields of an invoke's typed result, or None when the SDK does not declare one."""
    located = module_path(token)
    if located is None:
        return None
    module_name, member = located
    result_name = member[0].upper() + member[1:] + "Result"
    for candidate in (module_name, f"{module_name}.{snake_case(member)}"):  # package first
        module = _import(candidate)
        result = getattr(module, result_name, None) if module is not None else None
        if isinstance(result, type):
            return _fields(sdk_shapes.field_rows(result))
    return None


@_sdk_lookup
def object_fields(reference: str) -> tuple[Field, ...]:
    """The getters of the output type a `Field.object_type` names, with their kinds."""
    cls = sdk_shapes.resolve(reference)
    return _fields(sdk_shapes.field_rows(cls)) if cls is not None else ()


class Shapes:
    """What each resource type declares, for one plan.

    A type the program's process described (`report`) is answered from its own SDK, the version
    the program pinned; anything else from the planner's SDK, as the module functions do.
    """

    def __init__(self) -> None:
        self._resources: dict[str, Mapping[str, Any]] = {}
        self._outputs: dict[str, tuple[Field, ...]] = {}
        self._types: dict[str, tuple[Field, ...]] = {}

    def report(self, token: str, described: Mapping[str, Any]) -> None:
        """Record `sdk_shapes.describe_resource` of `token`'s class, as the program sent it."""
        self._resources[token] = described
        self._outputs[token] = _fields(described.get("outputs") or ())
        for reference, rows in (described.get("types") or {}).items():
            self._types.setdefault(reference, _fields(rows))

    def reported(self, token: str) -> bool:
        """Whether the program's process described `token`."""
        return token in self._resources

    def resource_outputs(self, token: str) -> tuple[Field, ...]:
        """Every output property the resource class declares."""
        if token in self._outputs:
            return self._outputs[token]
        return resource_outputs(token)

    def resource_inputs(self, token: str) -> frozenset[str]:
        """The wire names of the resource's inputs."""
        if token in self._resources:
            return frozenset(self._resources[token].get("inputs") or ())
        return resource_inputs(token)

    def secret_outputs(self, token: str) -> frozenset[str]:
        """Outputs the resource class marks secret."""
        if token in self._resources:
            return frozenset(self._resources[token].get("secrets") or ())
        return secret_outputs(token)

    def api_version(self, token: str) -> str | None:
        """The ARM API version the resource class uses."""
        if token in self._resources:
            version = self._resources[token].get("api_version")
            return str(version) if version else None
        return api_version(token)

    def object_fields(self, reference: str) -> tuple[Field, ...]:
        """The getters of an output type, from the program's SDK when it described them."""
        if reference in self._types:
            return self._types[reference]
        return object_fields(reference)

    def described_object_fields(self, reference: str) -> tuple[Field, ...] | None:
        """The getters of an output type without importing an SDK into the planner's process.

        From the program's description; when the program describes its classes (a Python
        program) but not this type, None: importing the planner's own SDK for it costs seconds
        per plan. A program that describes nothing (TypeScript, in-process) reads the planner's
        SDK, as `object_fields` does.
        """
        if reference in self._types:
            return self._types[reference]
        if self._resources:
            return None
        return object_fields(reference)

    @staticmethod
    def invoke_result_fields(token: str) -> tuple[Field, ...] | None:
        """The fields of an invoke's typed result (the planner's SDK)."""
        return invoke_result_fields(token)
