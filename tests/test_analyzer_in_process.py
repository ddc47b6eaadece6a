"""The policy pack run in this interpreter gives what the gRPC Analyzer path gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpustack.analyzer import PolicyPackError, PolicyPackSession, run_policy_pack
from tests.conftest import ROOT, planned

PACK = ROOT / "policies"
MINI_PACK = Path(__file__).parent / "fixtures" / "mini_policy_pack"


def _misconfigured(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each resource twice: as planned, and a copy with insecure settings under another URN."""
    bad = []
    for r in resources:
        inputs = dict(r["inputs"])
        inputs.update(minimumTlsVersion="TLS1_0", publicNetworkAccess="Enabled",
                      enableRbacAuthorization=False, allowBlobPublicAccess=True)
        bad.append({**r, "urn": f"{r['urn']}-bad", "name": f"{r['name']}-bad", "inputs": inputs})
    return resources + bad


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_in_process_verdicts_match_the_grpc_path(stack: str) -> None:
    resources = _misconfigured([r.analyzer_view() for r in planned(stack).resources])
    config = json.loads((PACK / "config" / f"{stack}.json").read_text())
    over_grpc = run_policy_pack(PACK, resources, config, workers=1)
    in_process = run_policy_pack(PACK, resources, config, in_process=True)
    assert "gpustack-storage-min-tls" in {v.rule for v in over_grpc.mandatory}, (
        "the insecure copies should be caught")
    assert in_process.to_json() == over_grpc.to_json()


def test_in_process_matches_grpc_on_a_foreign_pack_with_config() -> None:
    plan = [r.analyzer_view() for r in planned("dev").resources][:20]
    config = {"all": "mandatory"}
    assert (run_policy_pack(MINI_PACK, plan, config, in_process=True).to_json()
            == run_policy_pack(MINI_PACK, plan, config, workers=1).to_json())


def _pack(tmp_path: Path, main: str, project: str = "runtime: python\n") -> Path:
    (tmp_path / "PulumiPolicy.yaml").write_text(project)
    (tmp_path / "__main__.py").write_text(main)
    return tmp_path


NOISY_PACK = """
from pulumi_policy import PolicyPack, ResourceValidationPolicy, EnforcementLevel
print("pack starting")

def check(args, report):
    print("checking", args.urn)
    report("always")

PolicyPack(name="noisy", policies=[ResourceValidationPolicy(
    name="noisy-always", description="always fails", validate=check,
    enforcement_level=EnforcementLevel.MANDATORY)])
"""


def test_what_an_in_process_pack_prints_never_reaches_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = [r.analyzer_view() for r in planned("dev").resources][:3]
    result = run_policy_pack(_pack(tmp_path, NOISY_PACK), plan, in_process=True)
    assert len(result.mandatory) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_an_in_process_pack_that_fails_to_start_names_its_folder(tmp_path: Path) -> None:
    pack = _pack(tmp_path, "import not_a_module_anywhere\n")
    with pytest.raises(PolicyPackError, match=r"failed to start: ModuleNotFoundError") as caught:
        run_policy_pack(pack, [], in_process=True)
    assert str(tmp_path) in str(caught.value)


def test_an_in_process_pack_that_never_builds_a_policy_pack_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyPackError, match="never constructed a PolicyPack"):
        run_policy_pack(_pack(tmp_path, "x = 1\n"), [], in_process=True)


def test_a_rule_that_raises_in_process_is_reported_like_the_grpc_path(tmp_path: Path) -> None:
    # No print at start-up here: the gRPC path reads the pack's port from its first line.
    main = NOISY_PACK.replace('report("always")', 'raise RuntimeError("rule bug")').replace(
        'print("pack starting")', "")
    pack = _pack(tmp_path, main)
    plan = [r.analyzer_view() for r in planned("dev").resources][:1]
    with pytest.raises(PolicyPackError, match=r"failed Analyze for .*rule bug"):
        run_policy_pack(pack, plan, in_process=True)
    with pytest.raises(PolicyPackError, match=r"failed Analyze for .*rule bug"):
        run_policy_pack(pack, plan, workers=1)


def test_a_pack_with_its_own_virtualenv_is_never_run_in_process(tmp_path: Path) -> None:
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(Path("/bin/true"))
    pack = _pack(tmp_path, NOISY_PACK,
                 "runtime:\n  name: python\n  options:\n    virtualenv: venv\n")
    assert PolicyPackSession(pack, in_process=True).in_process is False
