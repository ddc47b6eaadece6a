"""The documents state facts about the tool; these tests hold the facts to the tool.

- every `gpustack ...` command line in README.md and docs/ parses with the real parser;
- every stack output a document names (the plan JSON example, `pulumi stack output KEY`)
  exists in a plan of the program that document describes;
- the README's configuration table lists exactly the top-level config keys of the models;
- no document calls itself a draft.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from pydantic.alias_generators import to_camel

from gpustack.cli import build_parser
from stacks.config import StackConfig
from tests.conftest import ROOT, bootstrap_plan, planned

BOOTSTRAP = ROOT / "bootstrap"


def tracked_markdown() -> list[Path]:
    """Every markdown file in git (fixtures' own READMEs included)."""
    listed = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = [ROOT / name for name in listed]
    # Files not yet committed still count, so the test sees the working tree.
    files += [p for p in (ROOT / "docs").glob("*.md") if p not in files]
    return sorted(files)


DOCUMENTS = [p for p in tracked_markdown() if p.name == "README.md" or p.parent.name == "docs"]
USER_DOCS = [p for p in DOCUMENTS if "tests" not in p.relative_to(ROOT).parts]


def doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


# `gpustack ...` as a shell line (optionally `.venv/bin/gpustack`) or inside backticks.
_SHELL_LINE = re.compile(r"^\s*(?:\$ )?(?:\S*/)?gpustack\s+(.+)$")
_INLINE = re.compile(r"`(?:\S*/)?gpustack\s+([^`]+)`")


def gpustack_commands(text: str) -> list[str]:
    """The argument strings of every `gpustack` command in a markdown text."""
    commands: list[str] = []
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            match = _SHELL_LINE.match(line)
            if match:
                commands.append(match.group(1))
        else:
            commands += _INLINE.findall(line)
    return commands


def argv_of(command: str) -> list[str]:
    """The argv a shell would pass: comments, redirections and pipes dropped."""
    words = shlex.split(command, comments=True)
    argv: list[str] = []
    for word in words:
        if word in {">", ">>", "|", "||", "&&", "2>"} or word.startswith((">", "|")):
            break
        argv.append(word)
    return argv


def test_the_command_scanner_finds_shell_and_inline_commands() -> None:
    text = "\n".join(
        [
            "Run `gpustack plan -s dev` first.",
            "```sh",
            ".venv/bin/gpustack catalog --gpu A100   # sizes",
            "gpustack diff a.json b.json > out.md",
            "```",
        ]
    )
    found = [argv_of(command) for command in gpustack_commands(text)]
    assert found == [
        ["plan", "-s", "dev"],
        ["catalog", "--gpu", "A100"],
        ["diff", "a.json", "b.json"],
    ]


@pytest.mark.parametrize("path", USER_DOCS, ids=doc_id)
def test_every_gpustack_command_in_the_docs_parses(path: Path) -> None:
    parser = build_parser()
    for command in gpustack_commands(path.read_text(encoding="utf-8")):
        argv = argv_of(command)
        if len(argv) == 1:
            # Prose naming a command ("`gpustack diff` reads ..."), not a command line.
            assert argv[0] in subcommands(), f"{doc_id(path)}: no command `gpustack {argv[0]}`"
            continue
        # Placeholders such as BASE.json stay strings; argparse checks names, choices, arity.
        try:
            parser.parse_args(argv)
        except SystemExit as exit_:
            pytest.fail(f"{doc_id(path)}: `gpustack {command}` does not parse (exit {exit_.code})")


def subcommands() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_the_docs_show_at_least_the_main_commands() -> None:
    seen = {
        argv_of(command)[0]
        for path in USER_DOCS
        for command in gpustack_commands(path.read_text(encoding="utf-8"))
    }
    assert {"plan", "diff", "catalog", "prices"} <= seen


def bootstrap_outputs() -> frozenset[str]:
    return frozenset(bootstrap_plan().outputs)


def program_outputs(path: Path) -> frozenset[str]:
    """The output keys of the program a document describes."""
    if path.parent == BOOTSTRAP:
        return bootstrap_outputs()
    return frozenset(planned("prod").outputs) | frozenset(planned("dev").outputs)


# `--stack` / `-s` take a value (`pulumi stack output --stack org/net/prod --json` names no key).
_STACK_OUTPUT = re.compile(
    r"pulumi stack output (?:(?:--stack|-s) [^\s`]+ |--(?!stack\b)[^\s`]+ )*"
    r"([A-Za-z_][A-Za-z0-9_]*)(?![\w/-])"
)
# Prose: "the stack output `key`", "the `key` output".
_PROSE_OUTPUT = re.compile(r"\boutputs? `([A-Za-z][A-Za-z0-9]*)`|`([A-Za-z][A-Za-z0-9]*)` output\b")


def named_outputs(text: str) -> set[str]:
    """Output keys a document names: `pulumi stack output KEY`, "the stack output `KEY`",
    "the `KEY` output", and the "outputs" of JSON examples."""
    names = set(_STACK_OUTPUT.findall(text))
    names |= {a or b for a, b in _PROSE_OUTPUT.findall(text)}
    for block in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL):
        try:
            example = json.loads(block)
        except json.JSONDecodeError:
            continue
        if isinstance(example, dict) and isinstance(example.get("outputs"), dict):
            names |= set(example["outputs"])
    return names


@pytest.mark.parametrize("path", USER_DOCS, ids=doc_id)
def test_every_output_key_a_document_names_exists(path: Path) -> None:
    names = named_outputs(path.read_text(encoding="utf-8"))
    if not names:
        return
    missing = names - program_outputs(path)
    assert not missing, f"{doc_id(path)} names outputs the program does not export: {missing}"


def test_plan_json_example_names_outputs() -> None:
    # The example must keep naming outputs, or the check above would check nothing.
    text = (ROOT / "docs" / "plan-json.md").read_text(encoding="utf-8")
    assert "aksKubeconfig" in named_outputs(text)
    assert named_outputs((BOOTSTRAP / "README.md").read_text(encoding="utf-8")) >= {
        "backendUrl",
        "storageAccount",
    }
    monitoring = (ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")
    assert named_outputs(monitoring) >= {"gpuVmRemoteWriteUrl", "grafanaDashboardImport"}


def readme_config_keys() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    keys: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            keys |= set(re.findall(r"`([A-Za-z]+)`", first_cell))
    return keys


def test_readme_configuration_table_lists_exactly_the_top_level_keys() -> None:
    model_keys = {field.alias or to_camel(name) for name, field in StackConfig.model_fields.items()}
    readme_keys = readme_config_keys()
    assert readme_keys, "the README's configuration table is gone"
    assert model_keys - readme_keys == set(), "keys missing from the README table"
    assert readme_keys - model_keys == set(), "README table keys the models do not accept"


_DRAFT = re.compile(r"\b(draft|to merge into|work in progress|wip|todo|tbd)\b", re.IGNORECASE)


@pytest.mark.parametrize("path", DOCUMENTS, ids=doc_id)
def test_no_document_calls_itself_a_draft(path: Path) -> None:
    headings = [
        line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    ]
    assert not [h for h in headings if _DRAFT.search(h)], headings


# Keys under these paths are data (property names, output names, GPU models), not the contract.
_FREE_FORM = {"resources[].inputs", "outputs", "gpus_by_model", "unpriced_reasons"}


def undocumented_shape(example: object, real: object, path: str = "") -> list[str]:
    """Paths of keys in a documented example that the real document does not have."""
    if path.split(".")[-1] in _FREE_FORM or path in _FREE_FORM:
        return []
    if isinstance(example, dict) and isinstance(real, dict):
        problems = []
        for key, value in example.items():
            if key == "…":
                continue
            where = f"{path}.{key}" if path else key
            if key not in real:
                problems.append(where)
            else:
                problems += undocumented_shape(value, real[key], where)
        return problems
    if isinstance(example, list) and isinstance(real, list) and real:
        merged: dict[str, object] = {}
        for item in real:
            if isinstance(item, dict):
                merged.update({k: v for k, v in item.items() if merged.get(k) is None})
        target = merged if merged else real[0]
        return [p for item in example for p in undocumented_shape(item, target, f"{path}[]")]
    return []


def test_every_key_in_the_plan_json_examples_is_in_a_real_plan() -> None:
    from gpustack.estimates import plan_estimates
    from gpustack.report import plan_document

    plan = planned("prod")
    real = json.loads(json.dumps(plan_document(plan) | plan_estimates(plan), default=str))
    checked = 0
    for name in ("plan-json.md", "plan-json-report.md"):
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        for block in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL):
            example = json.loads(block)
            # A whole document, or one section of it, known by a key only it has.
            section = {"currency": "cost", "gpus": "capacity"}
            target = next((real[section[k]] for k in section if k in example), real)
            assert undocumented_shape(example, target) == [], f"{name}: {block[:60]}"
            checked += 1
    assert checked >= 3, "the plan JSON docs lost their examples"


# A tracker reference ("issue" and a number) tells a reader nothing about what the code is for.
_ISSUE_NUMBER = re.compile(r"issue ?#?[0-9]+", re.IGNORECASE)


def test_no_tracked_file_refers_to_an_issue_number() -> None:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in listed:
        path = ROOT / name
        if not path.is_file() or path.suffix not in {
            ".py", ".md", ".yaml", ".yml", ".json", ".toml", ".sh", ".txt", ".cfg", ".service",
            ".timer", ".env", "",
        }:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if _ISSUE_NUMBER.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == [], "say what the thing is for instead:\n" + "\n".join(offenders)
