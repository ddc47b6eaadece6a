"""Which program `gpustack plan` plans when no --program is given: the one `pulumi preview`
would, found from the working directory upwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gpustack.engine import run_plan
from gpustack.project import ProjectError, find_program, load_project
from tests.conftest import FIXTURES, ROOT


def test_program_is_found_in_the_working_directory_or_above(tmp_path: Path) -> None:
    project = tmp_path / "project"
    nested = project / "src" / "deep"
    nested.mkdir(parents=True)
    (project / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    assert find_program(project) == project.resolve()
    assert find_program(nested) == project.resolve()
    assert find_program(ROOT / "components") == ROOT
    assert find_program(FIXTURES / "foreign_program") == FIXTURES / "foreign_program"


def test_the_yml_spelling_counts_as_a_project(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yml").write_text("name: p\nruntime: python\n")
    assert find_program(tmp_path) == tmp_path.resolve()


def _example_without_stack_files(directory: Path) -> Path:
    """A project as public examples ship it: Pulumi.yaml with config defaults, no stack file."""
    (directory / "Pulumi.yaml").write_text(
        "name: example\nruntime: python\nconfig:\n  azure-native:location: westus2\n"
        "  vmSize:\n    type: string\n    default: Standard_NC4as_T4_v3\n"
    )
    (directory / "__main__.py").write_text(
        "import pulumi\nfrom pulumi_azure_native import resources\n"
        "group = resources.ResourceGroup('rg')\n"
        "pulumi.export('size', pulumi.Config().require('vmSize'))\n"
        "pulumi.export('where', group.location)\n"
    )
    return directory


def test_a_project_with_no_stack_file_plans_with_its_defaults_and_says_so(tmp_path: Path) -> None:
    program = _example_without_stack_files(tmp_path)
    given = [("vmSize", "Standard_NC24ads_A100_v4", False)]
    plan = run_plan(program, "dev", config_overrides=given, in_process=True)
    assert plan.outputs == {"size": "Standard_NC24ads_A100_v4", "where": "westus2"}
    assert plan.notes == [
        "no stack file (Pulumi.dev.yaml): stack dev has only the project's config defaults "
        "and --config values, as a new stack (`pulumi stack init`) would"
    ]
    assert run_plan(program, "dev", in_process=True).outputs["size"] == "Standard_NC4as_T4_v3"


def test_a_missing_stack_file_beside_others_is_a_mistyped_stack(tmp_path: Path) -> None:
    program = _example_without_stack_files(tmp_path)
    (program / "Pulumi.prod.yml").write_text("config: {}\n")
    with pytest.raises(ProjectError) as raised:
        load_project(program, "prd")
    assert str(raised.value) == f"no stack file Pulumi.prd.yaml in {program} (stacks here: prod)"
    assert load_project(program, "prod").config["azure-native:location"] == "westus2"


def _typed_project(directory: Path, stack_config: str) -> Path:
    (directory / "Pulumi.yaml").write_text(
        "name: typed\nruntime: python\nconfig:\n  azure-native:location: westus2\n"
        "  replicas:\n    type: integer\n    default: 3\n"
        "  enabled:\n    type: boolean\n    default: false\n"
        "  region:\n    type: string\n  tier:\n    description: no type, no default\n"
        "  token:\n    type: string\n    secret: true\n    default: none\n"
        "  azure-native:subscriptionId:\n    type: string\n"  # another namespace: optional
    )
    (directory / "Pulumi.dev.yaml").write_text(stack_config)
    (directory / "__main__.py").write_text("")
    return directory


def test_a_declared_key_with_no_default_the_stack_does_not_set_is_refused(tmp_path: Path) -> None:
    program = _typed_project(tmp_path, "config:\n  typed:replicas: 5\n")
    with pytest.raises(ProjectError) as raised:
        load_project(program, "dev")
    assert str(raised.value).startswith(
        "Stack 'dev' is missing configuration values 'region' and 'tier': Pulumi.yaml declares"
    )
    given = [("region", "eastus", False), ("tier", "gold", False)]
    config = load_project(program, "dev", given).config
    assert config["typed:region"] == "eastus"
    assert config["typed:replicas"] == "5"
    assert config["typed:enabled"] == "false"


@pytest.mark.parametrize(
    ("stack_value", "allowed"),
    [
        ("typed:replicas: abc", False),
        ("typed:replicas: '2.5'", False),
        ("typed:replicas: '+7'", True),
        ("typed:enabled: yes", False),  # Go's YAML reads `yes` as text, not a boolean
        ("typed:enabled: true", True),
        ("typed:enabled:\n    secure: AAABAMxyz", True),  # its plaintext is not known offline
        ("typed:region: [a, b]", False),
        ("typed:region: 42", True),
        ("typed:token: plain", False),
        ("typed:token:\n    secure: AAABAMxyz", True),
    ],
)
def test_a_stack_value_not_of_its_declared_type_is_refused_naming_file_and_key(
    tmp_path: Path, stack_value: str, allowed: bool
) -> None:
    key = stack_value.split(":")[1]
    base = "".join(f"  typed:{k}: {v}\n" for k, v in (("region", "eastus"), ("tier", "gold")))
    base = "".join(line for line in base.splitlines(True) if f"typed:{key}:" not in line)
    program = _typed_project(tmp_path, f"config:\n{base}  {stack_value}\n")
    if allowed:
        load_project(program, "dev")
        return
    with pytest.raises(ProjectError) as raised:
        load_project(program, "dev")
    assert str(raised.value).startswith(f"Pulumi.dev.yaml: key 'typed:{key}' is ")
    assert f"Stack 'dev' with configuration key '{key}' must be " in str(raised.value)


def test_outside_any_project_plan_says_what_to_pass_and_exits_2(tmp_path: Path) -> None:
    assert find_program(tmp_path) is None, "a Pulumi.yaml above the temp dir would hide the case"
    result = subprocess.run(
        [sys.executable, "-m", "gpustack", "plan", "--no-policy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: no Pulumi.yaml in ")
    assert "--program <project dir>" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_prices_without_a_subcommand_prints_refresh_usage_with_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpustack", "prices"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("usage: gpustack prices refresh")
    for option in ("--from-csv", "--out", "--regions"):
        assert option in result.stderr
