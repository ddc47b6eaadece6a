"""The pack as a whole: metadata, per-environment config, and the gRPC path end to end.

The pack runs in its own process over the Analyzer protocol (gpustack.analyzer), as the Pulumi
CLI runs it; one session is shared by the tests of this module.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpustack.analyzer import (
    UNKNOWN,
    PolicyConfigError,
    PolicyPackSession,
    PolicyResult,
)
from gpustack.engine import Plan
from gpustack.sarif import render_sarif
from policies import RULES, all_policies
from policies.rulebook import AREAS
from tests.conftest import ENVIRONMENTS, FIXTURES, ROOT

PACK = ROOT / "policies"
FOREIGN = FIXTURES / "foreign_bad"
DOCS = ROOT / "docs" / "policies.md"

# What the foreign fixture gets wrong, by rule, and the resource each violation lands on
# (None: the stack as a whole).
FOREIGN_FAULTS = {
    "gpustack-storage-public-network-access": "labdata",
    "gpustack-storage-network-default-deny": "labdata",
    "gpustack-storage-shared-key-disabled": "labdata",
    "gpustack-storage-min-tls": "labdata",
    "gpustack-storage-blob-public-access": "labdata",
    "gpustack-storage-blob-soft-delete": "labdata-blobs",
    "gpustack-keyvault-rbac-authorization": "lab-kv",
    "gpustack-keyvault-purge-protection": "lab-kv",
    "gpustack-keyvault-public-network-access": "lab-kv",
    "gpustack-aks-local-accounts-disabled": "lab-aks",
    "gpustack-aks-entra-azure-rbac": "lab-aks",
    "gpustack-aks-network-policy": "lab-aks",
    "gpustack-aks-api-server-access": "lab-aks",
    "gpustack-aks-managed-identity": "lab-aks",
    "gpustack-aks-auto-upgrade-channel": "lab-aks",
    "gpustack-aks-supported-version": "lab-aks",
    "gpustack-aks-azure-policy-addon": "lab-aks",
    "gpustack-aks-workload-identity": "lab-aks",
    "gpustack-aks-no-node-public-ip": "lab-aks",
    "gpustack-gpu-mig-supported-size": "lab-aks",
    "gpustack-gpu-pool-tainted": "lab-aks",
    "gpustack-gpu-operator-for-driver-none": "lab-aks",
    "gpustack-vm-no-public-ip": "lab-train",
    "gpustack-vm-ssh-keys-only": "lab-train",
    "gpustack-vm-encryption-at-host": "lab-train",
    "gpustack-vm-managed-identity": "lab-train",
    "gpustack-gpu-infiniband-hpc-image": "lab-train",
    "gpustack-gpu-infiniband-placement": "lab-train",
    "gpustack-gpu-infiniband-vnet-overlap": "lab-vnet",
    "gpustack-nsg-no-internet-management-ports": "lab-nsg",
    "gpustack-network-public-ip-standard-sku": "lab-pip",
    "gpustack-rbac-no-privileged-workload-roles": "lab-owner",
    "gpustack-tags-required": "lab-rg",
    "gpustack-gpu-total-ceiling": None,
    "gpustack-cost-budget-exists": None,
    "gpustack-aks-encryption-at-host": "lab-aks",
    "gpustack-storage-local-users-disabled": "labdata",
}


def pack_config(environment: str) -> dict[str, Any]:
    """The policy config of one of this project's environments."""
    return json.loads((PACK / "config" / f"{environment}.json").read_text())


@pytest.fixture(scope="module")
def session() -> Iterator[PolicyPackSession]:
    with PolicyPackSession(PACK) as running:
        yield running


@pytest.fixture(scope="module")
def foreign_json() -> tuple[int, str, dict[str, Any]]:
    """`gpustack plan --program tests/fixtures/foreign_bad -f json`, in a subprocess."""
    result = subprocess.run(
        [sys.executable, "-m", "gpustack", "plan", "--program", str(FOREIGN), "-f", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    return result.returncode, result.stderr, json.loads(result.stdout)


def declared(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A resource in the shape `PlannedResource.analyzer_view()` gives the analyzer."""
    return {"urn": f"urn:pulumi:dev::lab::{type_}::{name}", "type": type_, "name": name,
            "parent": None, "inputs": inputs, "options": {}, "dependencies": [],
            "propertyDependencies": {}}


# A small stack whose verdict depends on the environment's config.
CONFIG_SENSITIVE = [
    declared("azure-native:containerservice:AgentPool", "t4",
             {"vmSize": "Standard_NC4as_T4_v3", "mode": "User", "enableAutoScaling": True,
              "minCount": 1.0, "maxCount": 2.0, "nodeTaints": ["sku=gpu:NoSchedule"]}),
    declared("azure-native:compute:VirtualMachineScaleSet", "train",
             {"sku": {"name": "Standard_ND96asr_v4", "capacity": 0.0},
              "singlePlacementGroup": True}),
    declared("azure-native:containerservice:ManagedCluster", "aks", {"sku": {"tier": "Free"}}),
    declared("azure-native:keyvault:Vault", "kv", {"properties": {}}),
]


def by_rule(result: PolicyResult) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for violation in result.violations:
        found.setdefault(violation.rule, []).append(violation)
    return found


# --- metadata and config -------------------------------------------------------------------


def test_pack_has_at_least_forty_documented_rules() -> None:
    policies = all_policies()
    assert len(policies) >= 40
    assert {p.name for p in policies} == set(RULES)
    for rule in RULES.values():
        assert re.fullmatch(r"gpustack(-[a-z0-9]+)+", rule.id), rule.id
        assert rule.area in AREAS
        assert rule.title and rule.why and rule.fix, rule.id
        assert rule.references and all(r.startswith("https://") for r in rule.references)
        for key, spec in rule.settings.items():
            assert "default" in spec, f"{rule.id}.{key} needs a default"


def test_high_and_critical_security_rules_are_mandatory() -> None:
    security = [r for r in RULES.values() if r.area == "security"]
    # Platform rules a team may reasonably decide otherwise (policies/platform_services.py).
    platform_choices = {
        "gpustack-aci-vnet", "gpustack-appservice-client-certificates",
        "gpustack-appservice-cors-not-wildcard", "gpustack-appservice-http2",
        "gpustack-appservice-managed-identity", "gpustack-appservice-public-network-access",
        "gpustack-containerapp-environment-internal", "gpustack-containerapp-internal-ingress",
        "gpustack-containerapp-managed-identity", "gpustack-firewall-threat-intel-deny",
        "gpustack-sql-allow-azure-services",
    }
    for rule in security:
        if rule.id in platform_choices:
            assert rule.level.value == "advisory", rule.id
        elif rule.severity.value in ("high", "critical"):
            assert rule.level.value == "mandatory", rule.id
        else:
            assert rule.severity.value in ("medium", "low"), rule.id
    # Exposure of data or credentials is never left to a team's discretion.
    for rule_id in ("gpustack-storage-container-private", "gpustack-vm-no-plaintext-secrets",
                    "gpustack-disk-no-public-access", "gpustack-nsg-no-internet-inbound",
                    "gpustack-acr-export-disabled", "gpustack-aks-encryption-at-host"):
        assert RULES[rule_id].level.value == "mandatory", rule_id


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_environment_config_uses_known_rules_and_settings(environment: str) -> None:
    for rule_id, value in pack_config(environment).items():
        assert rule_id in RULES, f"{environment}.json: unknown rule {rule_id}"
        if isinstance(value, str):
            assert value in {"advisory", "mandatory", "disabled"}
            continue
        unknown = set(value) - set(RULES[rule_id].settings) - {"enforcementLevel", "_comment"}
        assert not unknown, f"{environment}.json: {rule_id} has no setting {unknown}"
        # A rule switched off on purpose says why (the plan report lists the note).
        if value.get("enforcementLevel") == "disabled":
            assert value.get("_comment"), f"{environment}.json: {rule_id} is disabled silently"


def test_environment_configs_pass_the_packs_schemas(session: PolicyPackSession) -> None:
    levels = {}
    for environment in ENVIRONMENTS:
        result = session.run([], pack_config(environment))  # Configure validates the config
        levels[environment] = {rule.name: rule.level for rule in result.rules}
    diagnostics = "gpustack-reliability-diagnostic-settings"
    assert [levels[env][diagnostics] for env in ENVIRONMENTS] == [
        "advisory", "mandatory", "mandatory"]


def test_config_that_breaks_a_schema_is_rejected_by_name(session: PolicyPackSession) -> None:
    with pytest.raises(PolicyConfigError, match=r"gpustack-gpu-total-ceiling: maxGpus"):
        session.run([], {"gpustack-gpu-total-ceiling": {"maxGpus": "lots"}})


# --- the foreign program, end to end -------------------------------------------------------


def test_foreign_program_plans_with_its_faults_and_exits_1(
    foreign_json: tuple[int, str, dict[str, Any]],
) -> None:
    code, stderr, document = foreign_json
    assert code == 1, stderr
    assert "mandatory policy violations" in stderr
    policy = document["policy"]
    assert policy["pack"] == "gpustack-azure"
    assert set(policy["rules"]) == set(RULES)
    seen: dict[str, set[str | None]] = {}
    for violation in policy["violations"]:
        assert set(violation) == {"rule", "level", "urn", "message"}
        target = violation["urn"].rsplit("::", 1)[-1] if violation["urn"] else None
        seen.setdefault(violation["rule"], set()).add(target)
    for rule_id, target in FOREIGN_FAULTS.items():
        assert target in seen.get(rule_id, set()), f"{rule_id} not reported on {target}"
    mandatory = {v["rule"] for v in policy["violations"] if v["level"] == "mandatory"}
    assert set(FOREIGN_FAULTS) <= mandatory


def test_foreign_program_named_dev_gets_the_pack_defaults_not_our_dev_config(
    foreign_json: tuple[int, str, dict[str, Any]],
) -> None:
    _, _, document = foreign_json
    assert document["stack"] == "dev"
    rules = {v["rule"] for v in document["policy"]["violations"]}
    # Our dev.json allows only T4/A10 sizes and caps GPUs at 8; the defaults allow every catalog
    # GPU size and read the stack as prod (so dev-only cost rules stay quiet).
    assert "gpustack-gpu-allowed-sizes" not in rules
    assert "gpustack-cost-dev-gpu-spot-or-zero" not in rules
    assert "gpustack-reliability-protect-stateful" in rules
    assert document["policy"]["exceptions"] == []


def test_policy_config_changes_what_is_enforced(session: PolicyPackSession) -> None:
    dev = by_rule(session.run(CONFIG_SENSITIVE, pack_config("dev")))
    assert "gpustack-cost-dev-gpu-spot-or-zero" in dev  # 1 T4 node always on in dev
    assert "gpustack-gpu-allowed-sizes" in dev  # dev allows no ND A100 v4
    assert "gpustack-reliability-aks-standard-tier" not in dev  # a prod-only rule
    assert {v.level for v in dev["gpustack-reliability-diagnostic-settings"]} == {"advisory"}

    prod = by_rule(session.run(CONFIG_SENSITIVE, pack_config("prod")))
    assert "gpustack-cost-dev-gpu-spot-or-zero" not in prod
    assert "gpustack-gpu-allowed-sizes" not in prod
    assert "gpustack-reliability-aks-standard-tier" in prod
    assert {v.level for v in prod["gpustack-reliability-diagnostic-settings"]} == {"mandatory"}

    relaxed = session.run(CONFIG_SENSITIVE, {"all": "advisory"})
    assert relaxed.violations and not relaxed.mandatory


def test_preview_unknowns_become_advisory_notes(session: PolicyPackSession) -> None:
    account = {
        "urn": "urn:pulumi:dev::lab::azure-native:storage:StorageAccount::sa",
        "type": "azure-native:storage:StorageAccount",
        "name": "sa",
        "parent": None,
        "inputs": {"minimumTlsVersion": UNKNOWN, "kind": "StorageV2"},
        "options": {},
    }
    result = session.run([account], {"all": "disabled", "gpustack-storage-min-tls": "mandatory"})
    (note,) = result.violations
    assert note.level == "advisory" and "during preview" in note.message


def test_sarif_points_at_the_lines_that_declared_each_resource(
    foreign_json: tuple[int, str, dict[str, Any]],
) -> None:
    _, _, document = foreign_json
    log = json.loads(render_sarif(document, program_dir=FOREIGN))
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["automationDetails"]["id"] == "gpustack-plan/foreign-gpu-lab/dev/"
    assert len(run["results"]) == len(document["policy"]["violations"])
    declared_at = {r["urn"]: r["source"] for r in document["resources"]}
    main = "tests/fixtures/foreign_bad/__main__.py"
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        logical = location.get("logicalLocations")
        if logical:
            urn = logical[0]["fullyQualifiedName"]
            assert physical["artifactLocation"]["uri"] == main
            assert physical["region"]["startLine"] == declared_at[urn]["line"]
        else:
            stack_file = "tests/fixtures/foreign_bad/Pulumi.dev.yaml"
            assert physical["artifactLocation"]["uri"] == stack_file
    # The VMSS is declared on the line that calls compute.VirtualMachineScaleSet(...).
    source_lines = (FOREIGN / "__main__.py").read_text().splitlines()
    (train,) = [r for r in document["resources"] if r["name"] == "lab-train"]
    assert "compute.VirtualMachineScaleSet(" in source_lines[train["source"]["line"] - 1]
    tls = next(r for r in rules if r["id"] == "gpustack-storage-min-tls")
    assert tls["defaultConfiguration"]["level"] == "error"
    assert tls["helpUri"].startswith("https://learn.microsoft.com/")
    assert "Azure.Storage.MinTLS" in tls["properties"]["tags"]
    assert tls["properties"]["security-severity"] == "8.0"


def test_sarif_points_past_an_installed_library_to_the_programs_own_line(tmp_path: Path) -> None:
    # A manifest of a yaml.ConfigFile is declared inside pulumi_kubernetes; with the program's
    # virtualenv inside the repository, SARIF pointed code scanning at that library file.
    (tmp_path / ".git").mkdir()
    library = tmp_path / ".venv/lib/python3.11/site-packages/pulumi_kubernetes/yaml/yaml.py"
    stack = "urn:pulumi:dev::app::pulumi:pulumi:Stack::app-dev"
    files = "urn:pulumi:dev::app::kubernetes:yaml:ConfigFile::app"
    deployment = (
        "urn:pulumi:dev::app::kubernetes:yaml:ConfigFile$kubernetes:apps/v1:Deployment::web"
    )
    document = {
        "project": "app", "stack": "dev",
        "resources": [
            {"urn": files, "parent": stack,
             "source": {"file": str(tmp_path / "__main__.py"), "line": 15}},
            {"urn": deployment, "parent": files, "source": {"file": str(library), "line": 760}},
        ],
        "policy": {"pack": "p", "rules": ["r"], "violations": [
            {"rule": "r", "level": "mandatory", "urn": deployment, "message": "m"}]},
    }
    (result,) = json.loads(render_sarif(document, program_dir=tmp_path))["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "__main__.py"
    assert physical["region"]["startLine"] == 15



# --- this project's environments -------------------------------------------------------------


_results: dict[str, PolicyResult] = {}


def environment_result(session: PolicyPackSession, plan: Plan) -> PolicyResult:
    """The pack's verdict on one of our environments' shared plans, computed once."""
    if plan.stack not in _results:
        resources = [r.analyzer_view() for r in plan.resources]
        _results[plan.stack] = session.run(resources, pack_config(plan.stack))
    return _results[plan.stack]


def test_our_environment_has_no_mandatory_violations(
    session: PolicyPackSession, env_plan: Plan
) -> None:
    mandatory = environment_result(session, env_plan).mandatory
    assert not mandatory, "\n".join(f"{v.rule} on {v.urn}: {v.message}" for v in mandatory)


def test_advisory_violations_our_environments_keep_are_explained(
    session: PolicyPackSession, dev_plan: Plan, staging_plan: Plan, prod_plan: Plan
) -> None:
    kept = DOCS.read_text().split("## Advisory violations our environments keep", 1)[1]
    for plan in (dev_plan, staging_plan, prod_plan):
        for violation in environment_result(session, plan).violations:
            assert f"`{violation.rule}`" in kept, f"{violation.rule} is not explained in {DOCS}"


def test_rule_table_in_the_docs_lists_every_rule() -> None:
    text = DOCS.read_text()
    for rule_id in RULES:
        assert f"`{rule_id}`" in text, rule_id


def test_rules_waived_by_our_config_are_listed_in_the_plan_reports(dev_plan: Plan) -> None:
    from gpustack import cli
    from gpustack.estimates import plan_estimates
    from gpustack.report import plan_document, render_markdown, render_table

    config_file = cli.default_policy_config(dev_plan.program_dir, PACK, "dev")
    assert config_file == PACK / "config" / "dev.json"
    exceptions = cli.policy_exceptions(cli.load_policy_config(config_file))
    assert [(e["rule"], e["level"]) for e in exceptions] == [
        ("gpustack-acr-quarantine", "disabled")]
    assert "no scanner" in exceptions[0]["note"].lower()
    document = plan_document(dev_plan)
    document.update(plan_estimates(dev_plan, None, None))
    document["policy"] = {"pack": "gpustack-azure", "rules": [], "violations": [],
                          "exceptions": exceptions}
    assert "gpustack-acr-quarantine (disabled): No scanner" in render_table(document)
    assert "- `gpustack-acr-quarantine` (disabled): No scanner" in render_markdown(document)
    # Another program's plan never picks up this project's config, whatever its stack name.
    assert cli.default_policy_config(FOREIGN, PACK, "dev") is None
