"""How this project parses YAML: PyYAML's safe loader, on libyaml's parser when it is there.

Every fresh process (`gpustack plan`, the program under `pulumi up`, the policy pack) reads the
data files; PyYAML's pure-Python parser took 0.25 s for this repository's YAML, libyaml's
(`yaml.CSafeLoader`: same documents, same Python constructors) 0.03 s (measured 2026-11-25).
Without libyaml the pure-Python loader reads the same documents the same way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""`yaml.SafeLoader`'s documents and constructors, parsed by libyaml when PyYAML has it."""


class DuplicateKeyError(yaml.YAMLError):
    """A mapping gives one key twice."""


class UniqueKeyLoader(SafeLoader):  # type: ignore[misc,valid-type]
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The mapping, or `DuplicateKeyError` naming the key and both lines."""
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise DuplicateKeyError(
                    f"line {line}: key {key!r} is given twice (lines {seen[key]} and {line}); "
                    "a YAML reader keeps only one of them silently, so keep one"
                )
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class PulumiYamlLoader(UniqueKeyLoader):
    """Reads a plain scalar as the Pulumi CLI reads `Pulumi.yaml` and stack files.

    The CLI decodes them with Go's gopkg.in/yaml.v3 into untyped values (pulumi/pulumi
    sdk/go/common/resource/config `object.UnmarshalYAML`), then hands scalars to the program as
    text. yaml.v3 follows YAML 1.2 here where PyYAML follows 1.1: only `true`/`false` (any of
    three casings) are booleans, so `yes`, `no`, `on`, `off` stay text; and `22:00` or `1:30`
    is text, not a base-60 number (PyYAML reads `22:00` as 1320); a date or time stays the
    text it was written as (yaml.v3 keeps timestamps as text in untyped values). Nulls,
    decimal, hex and leading-zero octal numbers read the same in both.
    """


def _pulumi_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    resolvers = {
        first: [(tag, pattern) for tag, pattern in entries if tag not in _RETYPED]
        for first, entries in UniqueKeyLoader.yaml_implicit_resolvers.items()
    }
    for tag, pattern, firsts in (
        ("tag:yaml.org,2002:bool", _YAML12_BOOL, "tTfF"),
        ("tag:yaml.org,2002:int", _YAML12_INT, "-+0123456789"),
        ("tag:yaml.org,2002:float", _YAML12_FLOAT, "-+.0123456789"),
    ):
        for first in firsts:
            resolvers.setdefault(first, []).append((tag, pattern))
    return resolvers


_RETYPED = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    # yaml.v3 leaves a timestamp-like scalar as its text when decoding into an untyped value.
    "tag:yaml.org,2002:timestamp",
}
_YAML12_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
# PyYAML's own int and float patterns without their base-60 forms (`1:30`).
_YAML12_INT = re.compile(
    r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
)
# yaml.v3's `yamlStyleFloat` (an exponent needs no dot: `1e3` is 1000), plus .inf and .nan.
_YAML12_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
PulumiYamlLoader.yaml_implicit_resolvers = _pulumi_resolvers()


def safe_load(text: str) -> Any:
    """`yaml.safe_load(text)`, parsed by libyaml when PyYAML has it."""
    return yaml.load(text, Loader=SafeLoader)


def read(path: Path) -> Any:
    """The parsed UTF-8 YAML file; a parse error names the file, line and column."""
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=SafeLoader)


class _KubernetesYamlLoader(SafeLoader):  # type: ignore[misc,valid-type]
    """Kubernetes manifests as pulumi-kubernetes decodes them (sigs.k8s.io/yaml: YAML to JSON),
    where a timestamp stays its text: JSON has no date type."""


_KubernetesYamlLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", SafeLoader.construct_yaml_str
)


def decode_manifests(text: str) -> list[Any]:
    """The objects of a multi-document Kubernetes YAML text, empty documents left out (the
    provider's `kubernetes:yaml:decode` invoke)."""
    return [doc for doc in yaml.load_all(text, Loader=_KubernetesYamlLoader) if doc is not None]
