"""What YAML does to values typed without quotes, caught before pydantic coerces it away.

YAML 1.1 (PyYAML, and the Pulumi CLI for `yes`/`no`/`on`/`off` in typed fields) reads `yes`,
`on`, `true` as booleans, and pydantic's lax mode then turns a boolean into 1 or 0 where a number
is wanted: `maxCount: yes` would quietly become one node. Stack models refuse that instead.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationInfo


def wants_number(annotation: Any) -> bool:
    """True for int or float fields, optional or constrained ones included."""
    if annotation in (int, float):
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return wants_number(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        arguments = [a for a in get_args(annotation) if a is not type(None)]
        return bool(arguments) and all(wants_number(a) for a in arguments)
    return False


def wants_numbers(annotation: Any) -> bool:
    """True for a list of numbers (`list[int]`, constrained or optional)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return wants_numbers(get_args(annotation)[0])
    if origin is list:
        return wants_number(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(wants_numbers(a) for a in get_args(annotation) if a is not type(None))
    return False


def refuse_boolean_numbers(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """A `mode="before"` check for every field: a boolean where a number belongs is an error."""
    field = model.model_fields.get(info.field_name or "")
    if field is None:
        return value
    found = (isinstance(value, bool) and wants_number(field.annotation)) or (
        isinstance(value, list)
        and any(isinstance(item, bool) for item in value)
        and wants_numbers(field.annotation)
    )
    if found:
        raise ValueError(
            "must be a number, not a boolean (YAML reads yes/no, on/off and true/false as "
            "booleans); write the number"
        )
    return value
