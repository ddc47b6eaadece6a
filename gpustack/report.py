"""Plan reports: the JSON contract (docs/plan-json.md), a terminal tree, PR-comment markdown."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from gpustack.engine import Plan, PlannedResource

FORMATS = ("table", "json", "markdown")


def plan_document(
    plan: Plan,
    policy: dict[str, Any] | None = None,
    cost: dict[str, Any] | None = None,
    capacity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The plan as the documented JSON contract."""
    return {
        "project": plan.project,
        "stack": plan.stack,
        "preview": plan.preview,
        "resources": [resource.to_json() for resource in plan.resources],
        "outputs": plan.outputs,
        "policy": policy,
        "cost": cost,
        "capacity": capacity,
    }


def render_json(document: dict[str, Any]) -> str:
    """Stable, indented JSON."""
    return json.dumps(document, indent=2, sort_keys=False, default=str) + "\n"


def summary_line(document: dict[str, Any]) -> str:
    """One line: resources by kind, violations, cost."""
    resources = document["resources"]
    custom = sum(1 for r in resources if r.get("custom") and not _is_provider(r["type"]))
    components = sum(1 for r in resources if not r.get("custom"))
    parts = [f"{custom} resources", f"{components} components"]
    policy = document.get("policy")
    if policy:
        levels = Counter(v["level"] for v in policy["violations"])
        parts.append(
            f"{levels.get('mandatory', 0)} mandatory / {levels.get('advisory', 0)} advisory "
            "policy violations"
        )
    cost = document.get("cost")
    if cost:
        monthly = cost["monthly"]
        parts.append(
            f"${monthly['min']:,.0f} / ${monthly['expected']:,.0f} / ${monthly['max']:,.0f} "
            "per month (min / expected / max)"
        )
    mode = "preview" if document.get("preview") else "plan"
    return f"{mode} {document['project']}/{document['stack']}: " + ", ".join(parts)


def render_table(document: dict[str, Any]) -> str:
    """A tree of components and resources with a summary line."""
    resources = document["resources"]
    children: dict[str | None, list[dict[str, Any]]] = {}
    for resource in resources:
        if _is_provider(resource["type"]):
            continue
        children.setdefault(resource["parent"], []).append(resource)
    known = {r["urn"] for r in resources}
    roots = [r for r in resources if r["parent"] not in known and not _is_provider(r["type"])]
    lines = [f"{'TYPE':<58} NAME", f"{'-' * 58} {'-' * 30}"]

    def walk(resource: dict[str, Any], prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else ("└─ " if last else "├─ ")
        marks = _option_marks(resource)
        label = f"{prefix}{branch}{resource['type']}"
        lines.append(f"{label:<58} {resource['name']}{marks}")
        kids = children.get(resource["urn"], [])
        extension = "" if depth == 0 else ("   " if last else "│  ")
        for index, child in enumerate(kids):
            walk(child, prefix + extension, index == len(kids) - 1, depth + 1)

    for root in roots:
        walk(root, "", True, 0)
    lines.append("")
    lines += _violation_lines(document)
    if document.get("outputs"):
        lines.append("Outputs:")
        for key, value in document["outputs"].items():
            lines.append(f"  {key}: {json.dumps(value, default=str)}")
        lines.append("")
    lines.append(summary_line(document))
    return "\n".join(lines) + "\n"


def render_markdown(document: dict[str, Any]) -> str:
    """A pull-request comment: summary, resources by type, violations, cost."""
    lines = [f"### gpustack plan: `{document['project']}` / `{document['stack']}`", ""]
    lines += [summary_line(document), ""]
    policy = document.get("policy")
    if policy is not None:
        violations = policy["violations"]
        lines.append(f"#### Policy ({policy['pack']}, {len(policy['rules'])} rules)")
        lines.append("")
        if violations:
            lines += ["| level | rule | resource | message |", "|---|---|---|---|"]
            for v in violations:
                name = (v.get("urn") or "stack").split("::")[-1]
                message = v["message"].replace("\n", " ").replace("|", "\\|")
                lines.append(f"| {v['level']} | `{v['rule']}` | `{name}` | {message} |")
        else:
            lines.append("No violations.")
        lines.append("")
    cost = document.get("cost")
    if cost is not None:
        monthly = cost["monthly"]
        lines += [
            f"#### Monthly cost ({cost['currency']}, prices as of {cost.get('prices_as_of')})",
            "",
            "| | min | expected | max |",
            "|---|---:|---:|---:|",
            f"| total | {monthly['min']:,.0f} | {monthly['expected']:,.0f} "
            f"| {monthly['max']:,.0f} |",
            "",
        ]
    counts = Counter(
        r["type"] for r in document["resources"] if r.get("custom") and not _is_provider(r["type"])
    )
    lines += ["<details><summary>Resources by type</summary>", ""]
    lines += ["| type | count |", "|---|---:|"]
    lines += [f"| `{token}` | {count} |" for token, count in sorted(counts.items())]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _violation_lines(document: dict[str, Any]) -> list[str]:
    policy = document.get("policy")
    if not policy or not policy["violations"]:
        return []
    lines = [f"Policy violations ({policy['pack']}):"]
    for v in policy["violations"]:
        target = (v.get("urn") or "stack").split("::")[-1]
        lines.append(f"  [{v['level']}] {v['rule']} on {target}: {v['message']}")
    lines.append("")
    return lines


def _option_marks(resource: dict[str, Any]) -> str:
    options = resource.get("options") or {}
    marks = []
    if options.get("protect"):
        marks.append("protected")
    if options.get("retainOnDelete"):
        marks.append("retained")
    if options.get("ignoreChanges"):
        marks.append("ignores " + ",".join(options["ignoreChanges"]))
    return f"  [{'; '.join(marks)}]" if marks else ""


def _is_provider(token: str) -> bool:
    return token.startswith("pulumi:providers:")


def resources_of(document: dict[str, Any], token: str) -> list[dict[str, Any]]:
    """Resources of one type in a plan document."""
    return [r for r in document["resources"] if r["type"] == token]


__all__ = [
    "FORMATS",
    "Plan",
    "PlannedResource",
    "plan_document",
    "render_json",
    "render_markdown",
    "render_table",
    "resources_of",
    "summary_line",
]
