"""How this project parses YAML: PyYAML's safe loader, on libyaml's parser when it is there.

Every fresh process (`gpustack plan`, the program under `pulumi up`, the policy pack) reads the
data files; PyYAML's pure-Python parser took 0.25 s for this repository's YAML, libyaml's
(`yaml.CSafeLoader`: same documents, same Python constructors) 0.03 s (measured 2026-11-25).
Without libyaml the pure-Python loader reads the same documents the same way.
"""

from __future__ import annotations

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


def safe_load(text: str) -> Any:
    """`yaml.safe_load(text)`, parsed by libyaml when PyYAML has it."""
    return yaml.load(text, Loader=SafeLoader)


def read(path: Path) -> Any:
    """The parsed UTF-8 YAML file; a parse error names the file, line and column."""
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=SafeLoader)
