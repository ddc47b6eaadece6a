"""`--stack-outputs STACK=FILE`: another stack's outputs, as `pulumi stack output --json` prints
them, answer the program's `StackReference` as the backend would; bad arguments exit 2 first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpustack.arguments import UsageError
from gpustack.engine import run_plan
from gpustack.stack_outputs import find_stack_outputs, parse_stack_outputs
from tests.conftest import FIXTURES

PROGRAM = FIXTURES / "programs" / "py_reads"
SUBNET = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-net/providers/"
    "Microsoft.Network/virtualNetworks/vnet-gpu/subnets/gpu"
)


@pytest.fixture(scope="module")
def network_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stacks") / "network.json"
    # `pulumi stack output --json` without --show-secrets prints a secret as "[secret]".
    path.write_text(json.dumps({"gpuSubnetId": SUBNET, "token": "[secret]", "vnetCidr": 16}))
    return path


def _given(name: str, path: Path) -> list:
    return parse_stack_outputs([f"{name}={path}"])


def test_given_outputs_answer_a_full_plan_and_require_output_succeeds(
    network_outputs: Path,
) -> None:
    plan = run_plan(
        PROGRAM, "strict", stack_outputs=_given("acme/network/prod", network_outputs),
        in_process=True,
    )  # fmt: skip
    assert plan.outputs["subnetId"] == SUBNET
    assert plan.outputs["subnetIdLength"] == len(SUBNET)
    assert not any("stack reference" in note for note in plan.notes)


def test_given_outputs_are_known_under_preview_too(network_outputs: Path) -> None:
    plan = run_plan(
        PROGRAM, "dev", preview=True, stack_outputs=_given("network/prod", network_outputs),
        in_process=True,
    )  # fmt: skip
    assert plan.outputs["subnetId"] == SUBNET
    assert plan.outputs["subnetIdLength"] == len(SUBNET)


def test_an_output_shown_as_secret_stays_secret(network_outputs: Path) -> None:
    given = _given("acme/network/prod", network_outputs)
    assert given[0].secret_names == ("token",)
    plan = run_plan(PROGRAM, "dev", stack_outputs=given, in_process=True)
    # Computed from a secret: shown masked, never as the number 8.
    assert plan.outputs["networkTokenLength"] == "[secret]"


def test_outputs_for_another_stack_do_not_answer_and_the_note_says_how(
    network_outputs: Path,
) -> None:
    plan = run_plan(
        PROGRAM, "dev", stack_outputs=_given("other-org/network/prod", network_outputs),
        in_process=True,
    )  # fmt: skip
    assert "subnetId" not in plan.outputs
    (note,) = [note for note in plan.notes if "stack reference acme/network/prod" in note]
    assert "--stack-outputs STACK=FILE" in note


def test_outputs_given_for_a_stack_the_program_never_reads_are_named_in_a_note(
    network_outputs: Path,
) -> None:
    given = parse_stack_outputs(
        [f"acme/network/prod={network_outputs}", f"acme/netwrok/prod={network_outputs}"]
    )
    plan = run_plan(PROGRAM, "dev", stack_outputs=given, in_process=True)
    unread = [note for note in plan.notes if note.startswith("--stack-outputs")]
    assert unread == [
        "--stack-outputs acme/netwrok/prod: no StackReference in the program names this stack, "
        "so its outputs were not used"
    ]


@pytest.mark.parametrize(
    ("given", "reference", "project", "matches"),
    [
        ("acme/network/prod", "acme/network/prod", "app", True),
        ("network/prod", "acme/network/prod", "app", True),  # the organization is not known
        ("acme/network/prod", "network/prod", "app", True),
        ("prod", "prod", "app", True),
        ("prod", "app/prod", "app", True),  # a bare stack is in the program's project
        ("prod", "network/prod", "app", False),
        ("acme/network/prod", "other/network/prod", "app", False),
        ("acme/network/dev", "acme/network/prod", "app", False),
    ],
)
def test_stack_names_match_as_the_cli_resolves_them(
    network_outputs: Path, given: str, reference: str, project: str, matches: bool
) -> None:
    found = find_stack_outputs(reference, _given(given, network_outputs), project)
    assert (found is not None) is matches


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("network", "expected STACK=FILE"),
        ("network=", "expected STACK=FILE"),
        ("=network.json", "expected STACK=FILE"),
        ("a//b={file}", "'a//b' is not a stack name"),
        ("a/b/c/d={file}", "'a/b/c/d' is not a stack name"),
        ("acme/network/prod={missing}", "--stack-outputs acme/network/prod={missing}: no such"),
        ("n={directory}", "is a directory"),
        ("n={binary}", "not a UTF-8 text file"),
        ("n={truncated}", "not JSON"),
        ("n={array}", "a JSON list; expected an object of output names"),
    ],
)
def test_bad_arguments_name_the_option_and_the_file(
    tmp_path: Path, argument: str, expected: str
) -> None:
    files = {
        "file": tmp_path / "ok.json",
        "missing": tmp_path / "missing.json",
        "directory": tmp_path,
        "binary": tmp_path / "binary.json",
        "truncated": tmp_path / "truncated.json",
        "array": tmp_path / "array.json",
    }
    files["file"].write_text("{}")
    files["binary"].write_bytes(b"\xff\xfe\x00{")
    files["truncated"].write_text('{"a": ')
    files["array"].write_text("[1, 2]")
    text = argument.format(**files)
    with pytest.raises(UsageError) as raised:
        parse_stack_outputs([text])
    assert expected.format(**files) in str(raised.value)


def test_one_stack_given_twice_is_refused(network_outputs: Path) -> None:
    with pytest.raises(UsageError, match="'acme/network/prod' is given twice"):
        parse_stack_outputs([f"acme/network/prod={network_outputs}"] * 2)


def test_the_command_line_plans_with_them_and_refuses_bad_ones(network_outputs: Path) -> None:
    command = [sys.executable, "-m", "gpustack", "plan", "--program", str(PROGRAM),
               "--stack", "strict", "--no-policy", "--format", "json"]  # fmt: skip
    done = subprocess.run(
        [*command, "--stack-outputs", f"acme/network/prod={network_outputs}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"]["subnetId"] == SUBNET
    refused = subprocess.run(
        [*command, "--stack-outputs", "acme/network/prod"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr.startswith("error: --stack-outputs 'acme/network/prod': expected")
