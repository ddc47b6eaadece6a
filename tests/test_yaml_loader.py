"""The YAML loader: libyaml's parser reads this repository's files exactly as PyYAML's pure-Python
parser does, errors still name the file and line, and a key given twice is still refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpustack import yaml_loader
from gpustack.project import ProjectError, load_project
from tests.conftest import ROOT

# Every YAML file the toolkit, the program, the policy pack and the bootstrap program read.
REPOSITORY_YAML = sorted(
    {
        *ROOT.glob("Pulumi*.yaml"),
        *(ROOT / "gpustack" / "data").glob("*.yaml"),
        *(ROOT / "policies").rglob("*.yaml"),
        *(ROOT / "components" / "templates").rglob("*.yaml"),
        *(ROOT / "bootstrap").glob("*.yaml"),
    }
)


def _typed(value: Any) -> Any:
    """`value` with every scalar's type and every mapping's key order made comparable."""
    if isinstance(value, dict):
        return [(_typed(key), _typed(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return type(value).__name__, value


def test_libyaml_is_the_parser_here() -> None:
    # The requirements install PyYAML wheels built with libyaml; without it this is pure Python.
    assert yaml.__with_libyaml__
    assert yaml_loader.SafeLoader is yaml.CSafeLoader


@pytest.mark.parametrize("path", REPOSITORY_YAML, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_yaml_reads_the_same_as_with_the_pure_python_parser(path: Path) -> None:
    pure = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    assert _typed(yaml_loader.read(path)) == _typed(pure)


def test_a_parse_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "facts.yaml"
    bad.write_text("source: here\nsizes: [unclosed\nmore: 1\n", encoding="utf-8")
    with pytest.raises(yaml.YAMLError) as raised:
        yaml_loader.read(bad)
    assert f'in "{bad}", line 2, column 8' in str(raised.value)


def test_a_stack_file_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(
        f"name: demo\nruntime: python\nmain: {ROOT}\n", encoding="utf-8"
    )
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  demo:network:\n    addressSpace: 10.0.0.0/16\n"
        "    subnets: {}\n    addressSpace: 10.1.0.0/16\n",
        encoding="utf-8",
    )
    with pytest.raises(ProjectError) as raised:
        load_project(tmp_path, "dev")
    message = str(raised.value)
    assert message.startswith("Pulumi.dev.yaml, line 5: key 'addressSpace' is given twice")
    assert "(lines 3 and 5)" in message


def test_without_libyaml_the_pure_python_loader_reads_and_refuses_the_same() -> None:
    script = """
import yaml
del yaml.CSafeLoader
from gpustack import yaml_loader
assert yaml_loader.SafeLoader is yaml.SafeLoader
assert yaml_loader.safe_load("a: [1, 2]\\nb: yes\\n") == {"a": [1, 2], "b": True}
try:
    yaml.load("a: 1\\nb: 2\\na: 3\\n", Loader=yaml_loader.UniqueKeyLoader)
except yaml_loader.DuplicateKeyError as error:
    print(error)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("line 3: key 'a' is given twice (lines 1 and 3)")


# Plain scalars as gopkg.in/yaml.v3 (the Pulumi CLI) types them, next to PyYAML's YAML 1.1.
PULUMI_READS = {
    "yes": "yes", "No": "No", "on": "on", "OFF": "OFF",  # 1.1 booleans: text to the CLI
    "22:00": "22:00", "1:30:00": "1:30:00",  # 1.1 base-60 numbers: text to the CLI
    "true": True, "FALSE": False, "12": 12, "012": 10, "0x1F": 31, "1_000": 1000,
    "1.5": 1.5, "1e3": 1000.0, ".5": 0.5, "~": None,
    "2027-01-01": "2027-01-01", "2027-01-01T10:00:00Z": "2027-01-01T10:00:00Z",  # text, as v3
}  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), sorted(PULUMI_READS.items()))
def test_stack_files_type_plain_scalars_as_the_pulumi_cli_does(text: str, expected: Any) -> None:
    value = yaml.load(f"key: {text}\n", Loader=yaml_loader.PulumiYamlLoader)["key"]
    assert value == expected and type(value) is type(expected)


def test_the_program_gets_stack_values_as_the_cli_hands_them_over(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("")
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  p:window: 22:00\n  p:enabled: yes\n  p:replicas: 2.0\n  p:ratio: 0.25\n"
        "  p:tags:\n    owner: on\n    start: 1:30\n"
    )
    config = load_project(tmp_path, "dev").config
    assert config["p:window"] == "22:00"  # PyYAML alone: 1320
    assert config["p:enabled"] == "yes"  # PyYAML alone: "true"
    assert config["p:replicas"] == "2"  # Go's JSON number text, as the CLI writes it
    assert config["p:ratio"] == "0.25"
    assert config["p:tags"] == '{"owner": "on", "start": "1:30"}'
