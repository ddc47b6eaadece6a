"""Render docs/config.md from the config models, so the reference cannot drift from the code.

Run `python -m stacks.config_reference > docs/config.md`; a test checks the file is current.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from stacks.config import PROJECT, StackConfig, _model_of

HEADER = f"""# Configuration reference

Generated from `stacks/config.py` by `python -m stacks.config_reference`; do not edit by hand.

Every key lives in the project namespace (`{PROJECT}:<key>`) of `Pulumi.<stack>.yaml`.
Unknown keys are errors. Constraints are checked before any resource is declared, and so are
the limits Azure and Kubernetes enforce at deploy time that span keys (reserved address ranges,
subnet sizes, AKS's pod and service ranges, node pool and node counts, tags on every resource
including the private DNS zones, zonal settings in regions without zones); each limit is recorded
with its source in `gpustack/data/azure_limits.yaml`. YAML typing is checked too: a boolean is
never taken for a number, a number where text belongs asks for quotes, and zones may be written
as numbers.
"""


def render() -> str:
    """The whole reference as markdown."""
    sections = [HEADER]
    sections += _section(StackConfig, f"{PROJECT}:", top_level=True)
    return "\n".join(sections).rstrip() + "\n"


def _section(
    model: type[BaseModel], prefix: str, top_level: bool = False, description: str | None = None
) -> list[str]:
    title = f"`{prefix}`" if not top_level else "Top-level keys"
    # A field's own description says what this use of a shared model is for.
    doc = description or ((model.__doc__ or "").strip().splitlines() or [""])[0]
    lines = [f"## {title}", "", doc, "", "| key | type | default | constraints |"]
    lines.append("|---|---|---|---|")
    nested: list[tuple[type[BaseModel], str, str | None]] = []
    for name, field in model.model_fields.items():
        key = field.alias or to_camel(name)
        kind = _type_name(field.annotation)
        child = _model_of(field.annotation)
        constraints = _constraints(field)
        if field.description and child is None:
            constraints = ", ".join(part for part in (constraints, field.description) if part)
        lines.append(f"| `{key}` | {kind} | {_default(field)} | {constraints} |")
        if child is not None and child is not model:
            separator = "" if top_level else "."
            suffix = "[]" if _is_list(field.annotation) else ""
            nested.append((child, f"{prefix}{separator}{key}{suffix}", field.description))
    lines.append("")
    for child, child_prefix, description in nested:
        lines += _section(child, child_prefix, description=description)
    return lines


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(_is_list(argument) for argument in get_args(annotation))


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is None:
        if isinstance(annotation, type):
            return "object" if issubclass(annotation, BaseModel) else annotation.__name__
        return str(annotation)
    if origin is Annotated:
        return _type_name(get_args(annotation)[0])
    arguments = [a for a in get_args(annotation) if a is not type(None)]
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in get_args(annotation))
    if origin is list:
        return f"list of {_type_name(arguments[0])}"
    if origin is dict:
        return f"map of {_type_name(arguments[1])}"
    names = [_type_name(a) for a in arguments]
    optional = len(arguments) < len(get_args(annotation))
    return " or ".join(names) + (" (optional)" if optional else "")


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return ""
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "see below"
    shown = json.dumps(value, default=_plain)
    return f"`{shown}`"


def _plain(value: Any) -> Any:
    """Defaults that hold models (lists of them) shown as their YAML keys and values."""
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, mode="json")
    return str(value)


def _constraints(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attribute in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            value = getattr(item, attribute, None)
            if value is not None:
                parts.append(f"{attribute} {value}".replace("|", "\\|"))
        # A validator function's docstring says what it checks (regions, SSH keys, labels...).
        doc = getattr(getattr(item, "func", None), "__doc__", None)
        if doc:
            parts.append(" ".join(doc.strip().split("\n\n")[0].split()).replace("|", "\\|"))
    return ", ".join(f"`{part}`" for part in parts)


if __name__ == "__main__":
    sys.stdout.write(render())
