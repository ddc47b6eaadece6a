"""What a provider SDK says a resource type or invoke returns, read from its Python classes.

Pulumi's Python SDKs declare every output of a resource as a `@pulumi.getter` property of the
resource class, and every field of an invoke's result as a getter of its `<Name>Result` output
type, each with a type annotation. The offline engine reads these instead of keeping a hand-made
list per type, so a type it has never seen still gets the outputs the real provider returns.
"""

from __future__ import annotations

import collections.abc
import enum
import functools
import importlib
import inspect
import re
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi import _types as pulumi_types

KINDS = ("str", "enum", "int", "float", "bool", "list", "map", "object", "any")


@dataclass(frozen=True)
class Field:
    """One property as it travels on the wire: camelCase name, kind, optional or always there."""

    name: str
    kind: str
    optional: bool
    object_type: type | None = None
    """The output type of an object, or of a list's or map's items when they are objects."""


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


def _module_path(token: str) -> tuple[str, str] | None:
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
    located = _module_path(token)
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
    return object_fields(cls) if cls is not None else ()


@_sdk_lookup
def resource_inputs(token: str) -> frozenset[str]:
    """The wire names of the resource's inputs (its `<Name>Args` class)."""
    cls = resource_class(token)
    if cls is None:
        return frozenset()
    module = importlib.import_module(cls.__module__)
    args_class = getattr(module, f"{cls.__name__}Args", None)
    if not isinstance(args_class, type):
        return frozenset()
    return frozenset(field.name for field in object_fields(args_class))


@_sdk_lookup
def _class_source(token: str) -> str:
    cls = resource_class(token)
    if cls is None:
        return ""
    try:
        return inspect.getsource(importlib.import_module(cls.__module__))
    except (OSError, TypeError):
        return ""


@_sdk_lookup
def secret_outputs(token: str) -> frozenset[str]:
    """Outputs the resource class marks secret (`additional_secret_outputs` in its `__init__`).

    The engine makes these secret whatever the provider answers; the mocks do the same.
    """
    names: set[str] = set()
    for listed in re.findall(r"additional_secret_outputs=\[([^\]]*)\]", _class_source(token)):
        names.update(re.findall(r"[\"']([^\"']+)[\"']", listed))
    return frozenset(names)


@_sdk_lookup
def api_version(token: str) -> str | None:
    """The ARM API version an azure-native class uses ("Uses Azure REST API version ...")."""
    pattern = r"Uses Azure REST API version ([0-9]{4}-[0-9]{2}-[0-9]{2}[a-z-]*)"
    found = re.search(pattern, _class_source(token))
    return found.group(1) if found else None


@_sdk_lookup
def invoke_result_fields(token: str) -> tuple[Field, ...] | None:
    """The fields of an invoke's typed result, or None when the SDK does not declare one."""
    located = _module_path(token)
    if located is None:
        return None
    module_name, member = located
    result_name = member[0].upper() + member[1:] + "Result"
    for candidate in (module_name, f"{module_name}.{snake_case(member)}"):  # package first
        module = _import(candidate)
        result = getattr(module, result_name, None) if module is not None else None
        if isinstance(result, type):
            return object_fields(result)
    return None


@_sdk_lookup
def object_fields(cls: type) -> tuple[Field, ...]:
    """The getters of a resource, args or output-type class, with their kinds."""
    fields: dict[str, Field] = {}
    for python_name, wire_name, prop in pulumi_types._py_properties(cls):
        del python_name
        kind, optional, object_type = _kind(_annotation(prop))
        fields[wire_name] = Field(wire_name, kind, optional, object_type)
    return tuple(fields.values())


def _annotation(prop: property) -> Any:
    getter = prop.fget
    try:
        return typing.get_type_hints(getter).get("return", Any)
    except Exception:  # an unresolvable forward reference means "any shape"
        return Any


def _kind(annotation: Any) -> tuple[str, bool, type | None]:
    """(kind, optional, output type) of an annotation such as `Output[Optional[str]]`."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is pulumi.Output or (
            isinstance(origin, type) and origin.__name__ in ("Output", "Awaitable")
        ):
            annotation = args[0] if args else Any
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in args if a is not type(None)]
            optional = optional or len(members) < len(args)
            annotation = members[0] if len(members) == 1 else Any
            continue
        break
    origin = typing.get_origin(annotation) or annotation
    if annotation is Any or not isinstance(origin, type):
        return "any", optional, None
    if pulumi_types.is_output_type(origin):
        return "object", optional, origin
    if issubclass(origin, enum.Enum):
        return "enum", optional, origin
    if issubclass(origin, bool):
        return "bool", optional, None
    if issubclass(origin, str):
        return "str", optional, None
    if issubclass(origin, int):
        return "int", optional, None
    if issubclass(origin, float):
        return "float", optional, None
    item_args = typing.get_args(annotation)
    item = item_args[-1] if item_args else None
    item_type = item if isinstance(item, type) and pulumi_types.is_output_type(item) else None
    if issubclass(origin, collections.abc.Mapping):
        return "map", optional, item_type
    if issubclass(origin, collections.abc.Sequence):
        return "list", optional, item_type
    return "any", optional, None
