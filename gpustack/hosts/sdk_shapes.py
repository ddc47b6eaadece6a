"""What a Pulumi Python SDK class declares, as plain JSON-able rows: read in either process.

The planner asks this of its own SDK (`gpustack.sdk_types`); the exec shim asks it of the
program's SDK, in the program's process, where the classes are already imported, and sends the
answer to the planner before the type's first registration (`describe_resource`). Either way
the rows come from the same code.

This file runs with the *program's* interpreter and Pulumi SDK too (loaded by path from
`python_exec.py`), so it imports nothing from gpustack and keeps to Python 3.8 syntax.
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import re
import sys
import types
import typing
from typing import Any

import pulumi
from pulumi import _types as pulumi_types

PLACEHOLDER_DEPTH = 4
"""How deep a full plan fills nested output objects with placeholders (the mocks' limit)."""

_UNION_TYPES = tuple(t for t in (typing.Union, getattr(types, "UnionType", None)) if t is not None)
_SECRET_OUTPUTS = re.compile(r"additional_secret_outputs=\[([^\]]*)\]")
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")
_API_VERSION = re.compile(r"Uses Azure REST API version ([0-9]{4}-[0-9]{2}-[0-9]{2}[a-z-]*)")

# A row is (wire name, kind, optional, detail); the detail is an enum's first member value, or
# the reference (`module:QualName`) of an object's output type or of a list's or map's object
# items. Annotations are strings here (3.8 runs this file), so builtin generics are fine.


def reference(cls: type) -> str:
    """`pulumi_azure_native.network.outputs:SubnetResponse`: where an output type lives."""
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve(ref: str) -> type | None:
    """The class a `reference` names, from the modules already imported or importable."""
    module_name, _, qualname = ref.partition(":")
    try:
        import importlib

        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # an absent or broken SDK answers "no shape"
        return None
    return found if isinstance(found, type) else None


def field_rows(cls: type) -> list[tuple[str, str, bool, Any]]:
    """The getters of a resource or output-type class, with their kinds."""
    rows: dict[str, tuple[str, str, bool, Any]] = {}
    hints = _sdk_return_hints(cls)
    for _, wire_name, prop in pulumi_types._py_properties(cls):
        hint = hints.get(wire_name, Any) if hints is not None else _annotation(prop)
        kind, optional, detail = _kind(hint)
        rows[wire_name] = (wire_name, kind, optional, detail)
    return list(rows.values())


def input_names(cls: type) -> list[str]:
    """The wire names of a resource's inputs (its `<Name>Args` class), without their types.

    Names only: evaluating the input annotations costs far more and nothing needs them.
    """
    module = sys.modules.get(cls.__module__)
    args_class = getattr(module, f"{cls.__name__}Args", None) if module is not None else None
    if not isinstance(args_class, type):
        return []
    return sorted({wire for _, wire, _ in pulumi_types._py_properties(args_class)})


def class_source(cls: type) -> str:
    """The source of the module defining `cls` (empty when it cannot be read)."""
    try:
        return inspect.getsource(sys.modules[cls.__module__])
    except (KeyError, OSError, TypeError):
        return ""


def secret_outputs(source: str) -> list[str]:
    """Outputs a resource class marks secret (`additional_secret_outputs` in its `__init__`)."""
    names = set()
    for listed in _SECRET_OUTPUTS.findall(source):
        names.update(_QUOTED.findall(listed))
    return sorted(names)


def api_version(source: str) -> str | None:
    """The ARM API version an azure-native class uses ("Uses Azure REST API version ...")."""
    found = _API_VERSION.search(source)
    return found.group(1) if found else None


def describe_resource(cls: type, nested: bool) -> dict[str, Any]:
    """Everything the planner's mocks read about a resource class, JSON-able.

    With `nested`, also the output types a full plan fills with placeholders: those of every
    top-level field, then of required fields only, to `PLACEHOLDER_DEPTH`.
    """
    source = class_source(cls)
    outputs = field_rows(cls)
    described: dict[str, list[tuple[str, str, bool, Any]]] = {}
    if nested:
        for row in outputs:
            if row[1] in ("object", "list") and isinstance(row[3], str):
                _describe_nested(row[3], 1, described)
    return {
        "outputs": outputs,
        "inputs": input_names(cls),
        "secrets": secret_outputs(source),
        "api_version": api_version(source),
        "types": described,
    }


def _describe_nested(
    ref: str, depth: int, described: dict[str, list[tuple[str, str, bool, Any]]]
) -> None:
    if depth > PLACEHOLDER_DEPTH or ref in described:
        return
    cls = resolve(ref)
    if cls is None:
        return
    rows = field_rows(cls)
    described[ref] = rows
    for _, kind, optional, detail in rows:
        follows = kind == "object" or (kind == "list" and depth < PLACEHOLDER_DEPTH)
        if follows and not optional and isinstance(detail, str):
            _describe_nested(detail, depth + 1, described)


def _sdk_return_hints(cls: type) -> dict[str, Any] | None:
    """The getters' return annotations as the SDK itself resolves them to translate outputs.

    Current SDKs cache these per class (`pulumi._types._raw_return_hints`), resolving names in
    the class's own module(s); reading them here costs nothing the SDK would not compute
    anyway. Older SDKs lack it: None, and `_annotation` reads each getter instead.
    """
    raw = getattr(pulumi_types, "_raw_return_hints", None)
    if raw is None:
        return None
    try:
        return dict(raw(cls))
    except Exception:  # an SDK whose helper fails on this class: read the getters directly
        return None


def _annotation(prop: property) -> Any:
    # A local namespace that is not the module's makes typing evaluate each forward reference
    # here: the SDKs share one ForwardRef object per annotation text across modules, and
    # typing otherwise reuses whichever module resolved it first ('outputs.SystemDataResponse'
    # of managedidentity for a compute class).
    try:
        return typing.get_type_hints(prop.fget, localns={}).get("return", Any)
    except Exception:  # an unresolvable forward reference means "any shape"
        return Any


def _kind(annotation: Any) -> tuple[str, bool, Any]:
    """(kind, optional, detail) of an annotation such as `Output[str | None]`."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is pulumi.Output or (
            isinstance(origin, type) and origin.__name__ in ("Output", "Awaitable")
        ):
            annotation = args[0] if args else Any
            continue
        if origin in _UNION_TYPES:
            members = [a for a in args if a is not type(None)]
            optional = optional or len(members) < len(args)
            annotation = members[0] if len(members) == 1 else Any
            continue
        break
    origin = typing.get_origin(annotation) or annotation
    if annotation is Any or not isinstance(origin, type):
        return "any", optional, None
    if pulumi_types.is_output_type(origin):
        return "object", optional, reference(origin)
    if issubclass(origin, enum.Enum):
        # The SDK instantiates the enum from the answer: only a member's value will do.
        first = next(iter(origin), None)
        return "enum", optional, first.value if first is not None else None
    for kind, base in (("bool", bool), ("str", str), ("int", int), ("float", float)):
        if issubclass(origin, base):
            return kind, optional, None
    item_args = typing.get_args(annotation)
    item = item_args[-1] if item_args else None
    is_object = isinstance(item, type) and pulumi_types.is_output_type(item)
    item_ref = reference(item) if is_object else None
    if issubclass(origin, collections.abc.Mapping):
        return "map", optional, item_ref
    if issubclass(origin, collections.abc.Sequence):
        return "list", optional, item_ref
    return "any", optional, None
