"""Policy violations as SARIF 2.1.0, the format GitHub code scanning ingests.

Each result names the rule, the resource URN as a logical location and, when the engine
recorded it, the file and line that declared the resource (relative to the repository root),
so the alert lands on the line of Python that needs the fix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gpustack.analyzer import PolicyRuleInfo

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
SOURCE_ROOT = "%SRCROOT%"

# Enforcement level -> SARIF result level: mandatory fails the deploy, advisory warns.
_LEVELS = {"mandatory": "error", "advisory": "warning", "remediate": "note", "disabled": "none"}
# GitHub reads `security-severity` (0-10) to rank alerts: 9+ critical, 7+ high, 4+ medium.
_LIBRARY_DIRECTORIES = frozenset({"site-packages", "dist-packages", "node_modules"})
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0"}


def render_sarif(
    document: Mapping[str, Any],
    rules: Sequence[PolicyRuleInfo] = (),
    program_dir: Path | None = None,
) -> str:
    """The plan document's policy violations as a SARIF log (one run)."""
    policy = document.get("policy") or {"pack": "gpustack", "rules": [], "violations": []}
    root = repository_root(program_dir) if program_dir else None
    resources = {r["urn"]: r for r in document.get("resources", [])}
    descriptors = _rule_descriptors(policy, rules)
    index = {descriptor["id"]: i for i, descriptor in enumerate(descriptors)}
    fallback = _fallback_location(document, program_dir, root)

    results = []
    for violation in policy["violations"]:
        rule_id = violation["rule"]
        if rule_id not in index:
            index[rule_id] = len(descriptors)
            descriptors.append(_descriptor(rule_id, None))
        results.append(_result(violation, index[rule_id], resources, root, fallback))

    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": policy["pack"],
                "informationUri": "https://www.pulumi.com/docs/iac/using-pulumi/crossguard/",
                "rules": descriptors,
            }
        },
        # GitHub keeps one analysis per category: one per project and stack.
        "automationDetails": {"id": f"gpustack-plan/{document['project']}/{document['stack']}/"},
        "originalUriBaseIds": (
            {SOURCE_ROOT: {"uri": root.as_uri() + "/"}} if root is not None else {}
        ),
        "results": results,
        "properties": {"project": document["project"], "stack": document["stack"]},
    }
    warnings = (document.get("cost") or {}).get("warnings") or []
    if warnings:
        # Not findings about the code: notes on what the run could not judge (unpriced cost).
        run["invocations"] = [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": [
                    {"level": "warning", "message": {"text": text}} for text in warnings
                ],
            }
        ]
    log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
    return json.dumps(log, indent=2) + "\n"


def repository_root(start: Path) -> Path:
    """The nearest directory at or above `start` holding `.git`, else `start` itself."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return start


def _rule_descriptors(
    policy: Mapping[str, Any], rules: Sequence[PolicyRuleInfo]
) -> list[dict[str, Any]]:
    """Every evaluated rule, with the pack's metadata (and this repository's rulebook's)."""
    infos = {rule.name: rule for rule in rules}
    names = list(policy.get("rules") or []) or sorted(infos)
    return [_descriptor(name, infos.get(name)) for name in names]


def _descriptor(rule_id: str, info: PolicyRuleInfo | None) -> dict[str, Any]:
    documented = _rulebook().get(rule_id)
    title = (documented.title if documented else None) or (info.description if info else rule_id)
    descriptor: dict[str, Any] = {
        "id": rule_id,
        "name": "".join(part.capitalize() for part in rule_id.split("-")),
        "shortDescription": {"text": title},
        "fullDescription": {"text": documented.why if documented else title},
    }
    fix = documented.fix if documented else (info.message if info else None)
    if fix:
        descriptor["help"] = {"text": fix, "markdown": f"**How to fix:** {fix}"}
    if documented:
        descriptor["helpUri"] = documented.references[0]
    level = info.level if info else (documented.level.value if documented else "advisory")
    descriptor["defaultConfiguration"] = {"level": _LEVELS.get(level, "warning")}
    severity = (info.severity if info else None) or (
        documented.severity.value if documented else None
    )
    properties: dict[str, Any] = {"tags": ["pulumi-policy"]}
    if documented:
        properties["tags"] += [documented.area, *documented.mirrors]
    if severity in _SECURITY_SEVERITY:
        properties["security-severity"] = _SECURITY_SEVERITY[severity]
    descriptor["properties"] = properties
    return descriptor


def _rulebook() -> Mapping[str, Any]:
    """This repository's rule metadata (why, fix, references) when its pack is importable."""
    try:
        from policies import RULES
    except ImportError:
        return {}
    return RULES


def _result(
    violation: Mapping[str, Any],
    rule_index: int,
    resources: Mapping[str, Mapping[str, Any]],
    root: Path | None,
    fallback: dict[str, Any] | None,
) -> dict[str, Any]:
    urn = violation.get("urn")
    location: dict[str, Any] = {}
    physical = _physical_location(urn, resources, root) or fallback
    if physical is not None:
        location["physicalLocation"] = physical
    if urn:
        location["logicalLocations"] = [
            {"name": urn.rsplit("::", 1)[-1], "fullyQualifiedName": urn, "kind": "resource"}
        ]
    # Stable across runs even when lines move: the rule, the resource and the first line.
    digest = hashlib.sha256(
        "\n".join([violation["rule"], urn or "", violation["message"]]).encode()
    ).hexdigest()
    return {
        "ruleId": violation["rule"],
        "ruleIndex": rule_index,
        "level": _LEVELS.get(violation["level"], "warning"),
        "message": {"text": violation["message"]},
        "locations": [location] if location else [],
        "partialFingerprints": {"gpustackViolation/v1": digest[:32]},
    }


def _physical_location(
    urn: str | None, resources: Mapping[str, Mapping[str, Any]], root: Path | None
) -> dict[str, Any] | None:
    """Where the resource (or the nearest component above it) was declared."""
    seen = set()
    while urn and urn in resources and urn not in seen:
        seen.add(urn)
        resource = resources[urn]
        source = resource.get("source") or {}
        located = _artifact(source.get("file"), source.get("line"), root)
        if located is not None:
            return located
        urn = resource.get("parent")
    return None


def _artifact(file: Any, line: Any, root: Path | None) -> dict[str, Any] | None:
    if not isinstance(file, str) or not file:
        return None
    path = Path(file)
    if root is not None:
        try:
            path = path.resolve().relative_to(root)
        except ValueError:
            return None  # outside the repository (an installed library): not annotatable
        if _LIBRARY_DIRECTORIES & set(path.parts):
            # An installed library inside the repository (the program's own virtualenv or
            # node_modules; `yaml.ConfigFile` declares each manifest there): not the program's
            # code, so the nearest component the program declared is where to point.
            return None
    location: dict[str, Any] = {"artifactLocation": {"uri": path.as_posix()}}
    if root is not None:
        location["artifactLocation"]["uriBaseId"] = SOURCE_ROOT
    if isinstance(line, int | float) and line >= 1:
        location["region"] = {"startLine": int(line)}
    return location


def _fallback_location(
    document: Mapping[str, Any], program_dir: Path | None, root: Path | None
) -> dict[str, Any] | None:
    """Stack-wide violations point at the stack's config file, which sets what they judge."""
    if program_dir is None:
        return None
    for name in (f"Pulumi.{document['stack']}.yaml", "Pulumi.yaml"):
        candidate = program_dir / name
        if candidate.exists():
            return _artifact(str(candidate), 1, root)
    return None
