"""gpustack.analyzer against a real pulumi-policy pack served over the Analyzer gRPC protocol."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from gpustack.analyzer import (
    SECRET_KEY,
    UNKNOWN,
    PolicyConfigError,
    PolicyPackError,
    PolicyPackSession,
    PolicyResult,
    marshal_properties,
    run_policy_pack,
)

PACK = Path(__file__).parent / "fixtures" / "mini_policy_pack"
PREFIX = "urn:pulumi:dev::gpu::"
STACK_URN = f"{PREFIX}pulumi:pulumi:Stack::gpu-dev"
PROVIDER_URN = f"{PREFIX}pulumi:providers:azure-native::westeu"


def resource(
    name: str,
    type_: str,
    inputs: dict[str, Any],
    *,
    parent: str | None = STACK_URN,
    dependencies: list[str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """A captured plan resource in the shape gpustack's offline engine records."""
    qualified = f"pulumi:pulumi:Stack${type_}" if parent else type_
    return {
        "urn": f"{PREFIX}{qualified}::{name}",
        "type": type_,
        "name": name,
        "parent": parent,
        "inputs": inputs,
        "options": {"protect": False, "ignoreChanges": [], "dependsOn": [], "provider": None,
                    "retainOnDelete": False, "deleteBeforeReplace": False, **options},
        "dependencies": dependencies or [],
        "propertyDependencies": {},
    }


STACK = resource("gpu-dev", "pulumi:pulumi:Stack", {}, parent=None)
GOOD = resource("goodsa", "azure-native:storage:StorageAccount",
                {"minimumTlsVersion": "TLS1_2", "location": "eastus", "tags": {"owner": "ml"}})
BAD = resource("badsa", "azure-native:storage:StorageAccount",
               {"minimumTlsVersion": "TLS1_0", "location": "westeurope", "tags": {"owner": "ml"}},
               dependencies=[GOOD["urn"]])
PLAN = [STACK, GOOD, BAD]


@pytest.fixture(scope="module")
def session() -> Iterator[PolicyPackSession]:
    with PolicyPackSession(PACK, timeout=30) as running:
        yield running


def by_rule(result: PolicyResult, rule: str) -> list[Any]:
    return [v for v in result.violations if v.rule == rule]


def probe(session: PolicyPackSession, inputs: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """What the pack's probe rule received for one test:index:Probe resource."""
    result = session.run([STACK, resource("probe", "test:index:Probe", inputs, **kwargs)])
    [echo] = by_rule(result, "probe")
    return json.loads(echo.message.split("\n", 1)[1])


def test_bad_storage_account_gets_mandatory_tls_violation_and_good_one_does_not(
    session: PolicyPackSession,
) -> None:
    result = session.run(PLAN)

    [violation] = by_rule(result, "storage-min-tls")
    assert violation.level == "mandatory"
    assert violation.urn == BAD["urn"]
    assert "minimumTlsVersion is 'TLS1_0'" in violation.message
    assert violation.pack == "mini-policy-pack"
    assert violation.severity == "high"
    assert violation.description == "Storage accounts require TLS 1.2."
    assert violation in result.mandatory
    assert GOOD["urn"] not in {v.urn for v in result.violations}


def test_result_names_pack_version_rules_and_their_levels(session: PolicyPackSession) -> None:
    result = session.run(PLAN)

    assert (result.pack, result.version) == ("mini-policy-pack", "0.3.0")  # PulumiPolicy.yaml
    rules = {r.name: r for r in result.rules}
    assert rules["storage-min-tls"].level == "mandatory"
    assert rules["storage-min-tls"].message == "Set minimum_tls_version='TLS1_2'."
    assert rules["require-owner-tag"].level == "advisory"
    summary = result.to_json()
    assert summary["pack"] == "mini-policy-pack"
    assert "storage-min-tls" in summary["rules"]
    assert {"rule": "storage-min-tls", "level": "mandatory", "urn": BAD["urn"],
            "message": by_rule(result, "storage-min-tls")[0].message} in summary["violations"]


def test_stack_rule_sees_every_resource_with_parents_and_dependencies(
    session: PolicyPackSession,
) -> None:
    result = session.run(PLAN, {"max-resources": {"maxResources": 1}})

    [violation] = by_rule(result, "max-resources")
    assert "3 resources exceed the limit of 1" in violation.message
    assert "2 with parent, 1 with dependencies" in violation.message
    assert violation.urn == STACK_URN  # no URN from a stack policy: the root stack, as the CLI


def test_disabled_rule_reports_nothing_and_leaves_the_evaluated_rules(
    session: PolicyPackSession,
) -> None:
    result = session.run(PLAN, {"storage-min-tls": "disabled"})

    assert by_rule(result, "storage-min-tls") == []
    assert {r.name: r.level for r in result.rules}["storage-min-tls"] == "disabled"
    assert "storage-min-tls" not in result.to_json()["rules"]


def test_all_key_sets_every_level_and_a_named_rule_overrides_it(
    session: PolicyPackSession,
) -> None:
    result = session.run(PLAN, {"all": "advisory", "allowed-locations": "disabled"})

    assert result.mandatory == []
    assert by_rule(result, "storage-min-tls")[0].level == "advisory"
    assert by_rule(result, "allowed-locations") == []


def test_config_properties_reach_the_rule(session: PolicyPackSession) -> None:
    default = session.run(PLAN)
    assert [v.urn for v in by_rule(default, "allowed-locations")] == [BAD["urn"]]

    configured = session.run(PLAN, {"allowed-locations": {"locations": ["westeurope"]}})

    [violation] = by_rule(configured, "allowed-locations")
    assert violation.urn == GOOD["urn"]
    assert "not in ['westeurope']" in violation.message


def test_rerun_without_config_restores_the_packs_defaults(session: PolicyPackSession) -> None:
    session.run(PLAN, {"storage-min-tls": "disabled"})

    assert len(by_rule(session.run(PLAN), "storage-min-tls")) == 1


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"max-resources": {"maxResources": "lots"}}, "max-resources: maxResources: expected"),
        ({"max-resources": {"maxResources": -1}}, "below the minimum"),
        ({"storage-min-tls": "strict"}, "'strict' is not an enforcement level"),
        ({"no-such-rule": {"x": 1}}, "no-such-rule: no enforcementLevel"),
    ],
)
def test_invalid_config_is_rejected_before_analysis(
    session: PolicyPackSession, config: dict[str, Any], expected: str
) -> None:
    with pytest.raises(PolicyConfigError, match=expected):
        session.run(PLAN, config)


def test_preview_unknown_is_left_to_the_packs_unknown_handling(
    session: PolicyPackSession,
) -> None:
    pending = resource("pendingsa", "azure-native:storage:StorageAccount",
                       {"minimumTlsVersion": UNKNOWN, "location": "eastus",
                        "tags": {"owner": "ml"}})

    result = session.run([STACK, pending])

    [note] = by_rule(result, "storage-min-tls")
    assert note.level == "advisory"
    assert note.urn == pending["urn"]
    assert "can't run policy 'storage-min-tls'" in note.message
    assert "minimumTlsVersion can't be known during preview" in note.message
    assert result.mandatory == []


def test_numbers_arrive_as_floats(session: PolicyPackSession) -> None:
    seen = probe(session, {"capacity": 4, "ratio": 0.5, "enabled": True})

    assert seen["props"] == {"capacity": 4.0, "ratio": 0.5, "enabled": True}
    assert isinstance(seen["props"]["capacity"], float)
    assert seen["props"]["enabled"] is True


def test_nested_values_and_camel_case_names_are_preserved(session: PolicyPackSession) -> None:
    inputs = {"virtualMachineProfile": {"osProfile": {"adminUsername": "azureuser"},
                                        "dataDisks": [{"diskSizeGB": 1024, "lun": 0}]},
              "zones": ["1", "2"], "nothing": None, "__defaults": ["x"]}

    seen = probe(session, inputs)["props"]

    assert seen["virtualMachineProfile"] == {"osProfile": {"adminUsername": "azureuser"},
                                             "dataDisks": [{"diskSizeGB": 1024.0, "lun": 0.0}]}
    assert seen["zones"] == ["1", "2"]
    assert seen["nothing"] is None
    assert "__defaults" not in seen  # the engine skips top-level internal keys


def test_secrets_reach_the_pack_unwrapped(session: PolicyPackSession) -> None:
    seen = probe(session, {"adminPassword": {SECRET_KEY: "s3cret"},
                           "settings": {"token": {SECRET_KEY: {"value": 7}}}})

    assert seen["props"] == {"adminPassword": "s3cret", "settings": {"token": {"value": 7.0}}}


def test_resource_options_and_provider_reach_the_pack(session: PolicyPackSession) -> None:
    provider = resource("westeu", "pulumi:providers:azure-native", {"location": "westeurope"},
                        parent=None)
    target = resource("probe", "test:index:Probe", {}, protect=True,
                      ignoreChanges=["sku.capacity"], deleteBeforeReplace=True,
                      provider=f"{PROVIDER_URN}::prov-id")

    result = session.run([STACK, provider, target])

    [echo] = by_rule(result, "probe")
    seen = json.loads(echo.message.split("\n", 1)[1])
    assert seen["name"] == "probe" and seen["urn"] == target["urn"]
    assert seen["protect"] is True
    assert seen["ignoreChanges"] == ["sku.capacity"]
    assert seen["deleteBeforeReplace"] is True
    assert seen["parent"] == STACK_URN
    assert seen["provider"] == {"urn": PROVIDER_URN, "type": "pulumi:providers:azure-native",
                                "name": "westeu", "props": {"location": "westeurope"}}


def test_marshalling_matches_the_engine_wire_format() -> None:
    struct = marshal_properties({"a": 1, "s": {SECRET_KEY: [1, "x"]}, "u": UNKNOWN,
                                 "__meta": "dropped", "n": {"__inner": True}})

    assert json_format.MessageToDict(struct) == {
        "a": 1.0,
        "s": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
              "value": [1.0, "x"]},
        "u": "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
        "n": {"__inner": True},  # only top-level internal keys are skipped
    }


def test_rule_that_raises_mid_run_fails_with_the_packs_error(
    session: PolicyPackSession,
) -> None:
    boom = resource("boom", "test:index:Explode", {})

    with pytest.raises(PolicyPackError, match="explode rule blew up on purpose") as caught:
        session.run([STACK, boom])
    assert f"Analyze for {boom['urn']}" in str(caught.value)


def test_pack_that_crashes_on_start_raises_with_its_stderr(tmp_path: Path) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("name: broken\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("raise RuntimeError('broken pack: missing rules')\n")

    with pytest.raises(PolicyPackError, match="before printing its port") as caught:
        run_policy_pack(tmp_path, PLAN, timeout=30)
    assert "broken pack: missing rules" in str(caught.value)


def test_folder_without_a_python_policy_project_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(PolicyPackError, match=r"PulumiPolicy\.yaml"):
        run_policy_pack(tmp_path, PLAN)


def test_run_policy_pack_matches_a_sharded_session_and_stops_its_processes(
    session: PolicyPackSession,
) -> None:
    expected = session.run(PLAN).to_json()

    assert run_policy_pack(PACK, PLAN, timeout=30).to_json() == expected
    with PolicyPackSession(PACK, timeout=30, workers=2) as sharded:
        assert sharded.run(PLAN).to_json() == expected
        pids = [p.proc.pid for p in sharded._processes if p.proc is not None]
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
