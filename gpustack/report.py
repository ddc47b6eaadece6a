"""Plan reports: the JSON contract (docs/plan-json.md), a terminal tree, PR-comment markdown."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from gpustack.capacity import reservation_lines, unverified_lines
from gpustack.diagram import mermaid_flowchart
from gpustack.engine import Plan, PlannedResource

FORMATS = ("table", "json", "markdown", "mermaid")


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
        if cost.get("unpriced"):
            parts.append(f"{len(cost['unpriced'])} resources unpriced (not in that total)")
    capacity = document.get("capacity")
    if capacity and capacity["gpus"]["max"]:
        parts.append(f"{_span(capacity['gpus'])} GPUs")
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
    lines += _exception_lines(document)
    lines += _cost_lines(document)
    lines += _capacity_lines(document)
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
        exceptions = policy.get("exceptions") or []
        if exceptions:
            lines += ["Exceptions from the policy config:", ""]
            lines += [f"- `{e['rule']}` ({e.get('level') or 'settings'}): {e['note']}"
                      for e in exceptions]
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
        lines += _cost_markdown(cost)
    lines += _capacity_markdown(document.get("capacity"))
    lines += ["#### Architecture", "", "```mermaid", mermaid_flowchart(document["resources"])]
    lines += ["```", ""]
    counts = Counter(
        r["type"] for r in document["resources"] if r.get("custom") and not _is_provider(r["type"])
    )
    lines += ["<details><summary>Resources by type</summary>", ""]
    lines += ["| type | count |", "|---|---:|"]
    lines += [f"| `{token}` | {count} |" for token, count in sorted(counts.items())]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _span(counts: dict[str, Any]) -> str:
    low, high = counts["min"], counts["max"]
    if low is None or high is None:
        return "?"
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def _short(urn: str) -> str:
    return urn.split("::")[-1]


def _cost_lines(document: dict[str, Any]) -> list[str]:
    cost = document.get("cost")
    if not cost:
        return []
    lines = [
        f"Monthly cost ({cost['currency']}, min / expected / max; "
        f"prices {cost['prices_as_of']}):"
    ]
    for line in sorted(cost["lines"], key=lambda item: -item["monthly"]["max"]):
        if line["monthly"]["max"] == 0:
            continue
        m = line["monthly"]
        lines.append(
            f"  {m['min']:>10,.2f} {m['expected']:>10,.2f} {m['max']:>10,.2f}  "
            f"{_short(line['urn'])}: {line['assumption']}"
        )
    for urn in cost["unpriced"]:
        lines.append(f"  {'unpriced':>32}  {_short(urn)} ({urn.split('::')[-2]})")
    lines += [f"  warning: {warning}" for warning in cost.get("warnings") or []]
    lines.append("")
    return lines


def _capacity_lines(document: dict[str, Any]) -> list[str]:
    capacity = document.get("capacity")
    if not capacity:
        return []
    lines = [
        f"GPU capacity: {_span(capacity['gpus'])} GPUs, {_span(capacity['vram_gb'])} GB VRAM"
    ]
    for model, counts in capacity["gpus_by_model"].items():
        lines.append(f"  {model}: {_span(counts)}")
    for domain in capacity["infiniband_domains"]:
        lines.append(
            f"  InfiniBand domain ({domain['fabric']}): {', '.join(domain['pools'])}, up to "
            f"{domain['max_nodes']} nodes / {domain['max_gpus']} GPUs"
        )
    for quota in capacity["quota"]:
        limit = "" if quota["limit"] is None else f" of limit {quota['limit']}"
        used = "" if quota["current"] is None else f", {quota['current']} in use"
        lines.append(
            f"  quota {quota['region']} {quota['family']}: {quota['vcpus_max']} vCPUs at max"
            f"{used}{limit}"
        )
    lines += [f"  {line}" for line in reservation_lines(capacity)]
    lines += [f"  {line}" for line in unverified_lines(capacity)]
    lines += [f"  warning: {w}" for w in capacity.get("warnings", [])]
    lines += [f"  ERROR: {e}" for e in capacity["errors"]]
    lines.append("")
    return lines


def _cost_markdown(cost: dict[str, Any]) -> list[str]:
    lines = ["<details><summary>Cost by resource</summary>", ""]
    lines += ["| resource | min | expected | max | assumption |", "|---|---:|---:|---:|---|"]
    for line in sorted(cost["lines"], key=lambda item: -item["monthly"]["max"]):
        if line["monthly"]["max"] == 0:
            continue
        m = line["monthly"]
        assumption = line["assumption"].replace("|", "\\|")
        lines.append(
            f"| `{_short(line['urn'])}` | {m['min']:,.2f} | {m['expected']:,.2f} "
            f"| {m['max']:,.2f} | {assumption} |"
        )
    lines += ["", "</details>", ""]
    if cost["unpriced"]:
        names = ", ".join(f"`{_short(u)}` ({u.split('::')[-2]})" for u in cost["unpriced"])
        lines += [f"Not priced (not counted in the totals): {names}", ""]
        lines += [f"- :warning: {warning}" for warning in cost.get("warnings") or []]
        lines.append("")
    return lines


def _capacity_markdown(capacity: dict[str, Any] | None) -> list[str]:
    if not capacity:
        return []
    lines = [
        f"#### GPU capacity: {_span(capacity['gpus'])} GPUs, {_span(capacity['vram_gb'])} GB VRAM",
        "",
    ]
    if capacity["pools"]:
        lines += ["| pool | kind | size | nodes | GPUs | spot | InfiniBand |",
                  "|---|---|---|---:|---:|---|---|"]
        for pool in capacity["pools"]:
            nodes = _span({"min": pool["min"], "max": pool["max"]})
            lines.append(
                f"| `{pool['name']}` | {pool['kind']} | {pool['vm_size']} | {nodes} "
                f"| {_span(pool['gpus'])} | {'yes' if pool['spot'] else ''} "
                f"| {'yes' if pool['infiniband_domain'] else ''} |"
            )
        lines.append("")
    if capacity["quota"]:
        lines += ["| quota | region | vCPUs at max | in use | limit | shortfall |",
                  "|---|---|---:|---:|---:|---:|"]
        for q in capacity["quota"]:
            cells = [q["current"], q["limit"], q["shortfall"]]
            shown = " | ".join("" if c is None else str(c) for c in cells)
            lines.append(f"| {q['family']} | {q['region']} | {q['vcpus_max']} | {shown} |")
        lines.append("")
    lines += [f"- {line}" for line in reservation_lines(capacity)]
    lines += [f"- {line}" for line in unverified_lines(capacity)]
    lines += [f"- :x: {error}" for error in capacity["errors"]]
    lines += [f"- :warning: {warning}" for warning in capacity.get("warnings", [])]
    if lines[-1] != "":
        lines.append("")
    return lines


def _exception_lines(document: dict[str, Any]) -> list[str]:
    exceptions = (document.get("policy") or {}).get("exceptions") or []
    if not exceptions:
        return []
    lines = ["Policy exceptions (from the policy config):"]
    for e in exceptions:
        lines.append(f"  {e['rule']} ({e.get('level') or 'settings'}): {e['note']}")
    lines.append("")
    return lines


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


def unpriced_warnings(document: dict[str, Any]) -> list[str]:
    """The cost section's warnings (what the totals leave out), for stderr and every format."""
    cost = document.get("cost") or {}
    return list(cost.get("warnings") or [])


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
    "unpriced_warnings",
]
