"""Foreign programs planned end to end: the platform rules catch each mistake of platform_bad
and stay quiet on platform_good, its well-configured twin.

Both programs run under the offline engine (gpustack.engine.run_plan) and the pack runs in its
own process over the Analyzer protocol, as `gpustack plan --program` does; one pack session
serves both. Other rules of the pack (tags, diagnostics) may fire on these bare programs; only
the platform rules are asserted here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gpustack.analyzer import PolicyPackSession, PolicyResult
from gpustack.engine import Plan, run_plan
from policies import RULES
from policies import platform_services as platform
from tests.conftest import FIXTURES, ROOT

PROGRAMS = FIXTURES / "programs"
PLATFORM_RULES = {policy.name for policy in platform.POLICIES}

# Every platform rule, and the resources of platform_bad it must name.
BAD_FAULTS = {
    "gpustack-appservice-https-only": {"web-app", "web-app-staging"},
    "gpustack-appservice-min-tls": {"web-app"},
    "gpustack-appservice-ftps": {"web-app", "web-app-staging"},
    "gpustack-appservice-remote-debugging-off": {"web-app"},
    "gpustack-appservice-managed-identity": {"web-app", "web-app-staging"},
    "gpustack-appservice-client-certificates": {"web-app", "web-app-staging"},
    "gpustack-appservice-http2": {"web-app"},  # the slot keeps the API's default, HTTP/2 on
    "gpustack-appservice-public-network-access": {"web-app", "web-app-staging"},
    "gpustack-appservice-supported-runtime": {"web-app", "web-app-staging"},
    "gpustack-appservice-cors-not-wildcard": {"web-app"},
    "gpustack-appservice-diagnostic-logging": {"web-app", "web-app-staging"},
    "gpustack-appservice-health-check": {"web-app", "web-app-staging"},
    "gpustack-appservice-plan-zone-redundant": {"web-plan"},
    "gpustack-appservice-plan-instances": {"web-plan"},
    "gpustack-sql-public-network-access": {"web-sql"},
    "gpustack-sql-min-tls": {"web-sql"},
    "gpustack-sql-entra-only-auth": {"web-sql"},
    "gpustack-sql-auditing": {"web-sql"},
    "gpustack-sql-firewall-not-open": {"web-sql-everyone"},
    "gpustack-sql-allow-azure-services": {"web-sql-azure"},
    "gpustack-cosmosdb-local-auth-disabled": {"web-cosmos"},
    "gpustack-cosmosdb-public-network-access": {"web-cosmos"},
    "gpustack-cosmosdb-metadata-write-disabled": {"web-cosmos"},
    "gpustack-cosmosdb-min-tls": {"web-cosmos"},
    "gpustack-cosmosdb-continuous-backup": {"web-cosmos"},
    "gpustack-aci-no-public-ip": {"web-worker"},
    "gpustack-aci-vnet": {"web-worker"},
    "gpustack-aci-secure-environment-values": {"web-worker"},
    "gpustack-containerapp-internal-ingress": {"web-api"},
    "gpustack-containerapp-https-only": {"web-api"},
    "gpustack-containerapp-managed-identity": {"web-api"},
    "gpustack-containerapp-environment-internal": {"web-apps-env"},
    "gpustack-firewall-threat-intel-on": {"web-fw-policy"},
    "gpustack-firewall-threat-intel-deny": {"web-fw", "web-fw-policy"},
    "gpustack-gateway-legacy-sku": {"web-vpn"},
    "gpustack-gateway-zone-redundant-sku": {"web-er"},
    "gpustack-gateway-vpn-active-active": {"web-vpn"},
    "gpustack-synapse-firewall-not-open": {"web-synapse-everyone"},
    "gpustack-synapse-managed-vnet": {"web-synapse"},
    "gpustack-synapse-public-network-access": {"web-synapse"},
    "gpustack-synapse-entra-only-auth": {"web-synapse"},
    "gpustack-storage-sas-expiry-policy": {"webassets"},
    "gpustack-storage-key-expiry-policy": {"webassets"},
    "gpustack-vm-supported-os-image": {"web-build"},
}


@pytest.fixture(scope="module")
def verdicts() -> Iterator[dict[str, tuple[Plan, PolicyResult]]]:
    """Each program's plan and the pack's verdict on it (default config: production)."""
    plans = {name: run_plan(PROGRAMS / name, "dev") for name in ("platform_bad", "platform_good")}
    with PolicyPackSession(ROOT / "policies") as session:
        yield {
            name: (plan, session.run([r.analyzer_view() for r in plan.resources], {}))
            for name, plan in plans.items()
        }


def platform_violations(result: PolicyResult) -> dict[str, set[str]]:
    """Platform rule -> names of the resources it reported."""
    found: dict[str, set[str]] = {}
    for violation in result.violations:
        if violation.rule in PLATFORM_RULES:
            name = violation.urn.rsplit("::", 1)[-1] if violation.urn else "(stack)"
            found.setdefault(violation.rule, set()).add(name)
    return found


def test_expected_faults_cover_every_platform_rule() -> None:
    assert set(BAD_FAULTS) == PLATFORM_RULES


def test_bad_program_plans_every_platform_type(
    verdicts: dict[str, tuple[Plan, PolicyResult]],
) -> None:
    plan, _ = verdicts["platform_bad"]
    kinds = {r.type.removeprefix("azure-native:") for r in plan.resources}
    assert {platform.WEB_APP, platform.WEB_APP_SLOT, platform.APP_SERVICE_PLAN,
            platform.SQL_SERVER, platform.SQL_FIREWALL_RULE, platform.COSMOS,
            platform.CONTAINER_GROUP, platform.CONTAINER_APP, platform.MANAGED_ENVIRONMENT,
            platform.FIREWALL, platform.FIREWALL_POLICY, platform.GATEWAY, platform.SYNAPSE,
            platform.SYNAPSE_FIREWALL_RULE, platform.STORAGE, platform.VM,
            "sql:ServerBlobAuditingPolicy"} <= kinds


def test_bad_program_is_caught_by_every_platform_rule(
    verdicts: dict[str, tuple[Plan, PolicyResult]],
) -> None:
    _, result = verdicts["platform_bad"]
    found = platform_violations(result)
    for rule_id, names in BAD_FAULTS.items():
        assert found.get(rule_id) == names, (rule_id, found.get(rule_id))
    levels = {v.rule: v.level for v in result.violations if v.rule in PLATFORM_RULES}
    for rule_id, level in levels.items():
        assert level == RULES[rule_id].level.value, rule_id


def test_good_program_has_no_platform_violations(
    verdicts: dict[str, tuple[Plan, PolicyResult]],
) -> None:
    plan, result = verdicts["platform_good"]
    assert len(plan.resources) > 20
    leftover = [(v.rule, v.urn, v.message) for v in result.violations
                if v.rule in PLATFORM_RULES]
    assert leftover == []
