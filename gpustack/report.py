"""Plan reports: the JSON contract (docs/plan-json.md), a terminal tree, PR-comment markdown."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from typing import Any

from gpustack.capacity import reservation_lines, unverified_lines
from gpustack.diagram import mermaid_flowchart
from gpustack.engine import Plan, PlannedResource

FORMATS = ("table", "json", "markdown", "mermaid")

# The table report fits a 100-column terminal (and a PR comment's code block); the JSON has
# every value in full.
WIDTH = 100
ELLIPSIS = "…"
# How the JSON contract spells an unknown value (`--preview`) and a secret one.
COMPUTED = "<computed>"
SECRET = "[secret]"
# How the table and markdown reports show an unknown value, everywhere.
UNKNOWN_TEXT = "(known after deploy)"
# Bounds of the TYPE column; names get the rest of a line.
_TYPE_COLUMN_MAX = 58
_TYPE_COLUMN_MIN = 30
# Every marker a report can print, with what it means; a report explains those it used.
LEGEND = {
    "[protected]": "protect: Pulumi refuses to delete or replace it until it is unprotected",
    "[retained]": "retainOnDelete: deleting it in Pulumi (or `pulumi destroy`) leaves it in Azure",
    "[ignores P]": "ignoreChanges: after creation, changes to property P in the program are not "
    "applied (P is managed elsewhere: by the autoscaler, or as resources of their own)",
    "[replaces on P]": "replaceOnChanges: a change to P replaces the resource instead of "
    "updating it",
    "[deletes first]": "deleteBeforeReplace: a replacement deletes the old resource before "
    "creating the new one",
    "[mandatory]": "a mandatory policy violation: `pulumi up` with the pack fails, and so does "
    "`gpustack plan` (exit 1)",
    "[advisory]": "an advisory policy violation: reported, nothing fails",
    "[remediate]": "a remediating policy: `pulumi up` with the pack changes the property itself",
    UNKNOWN_TEXT: "computed by Azure: unknown until `pulumi up` (`\"<computed>\"` in the JSON)",
    SECRET: "a secret: no report shows its value",
    ELLIPSIS: "shortened to fit; `--format json` has the full text",
}


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
        "notes": plan.notes,
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
    """The terminal report, at most `WIDTH` columns: resource tree, policy, cost, capacity,
    outputs, a legend for every marker used, and a summary line."""
    legend: set[str] = set()
    lines = _resource_tree_lines(document, legend)
    lines.append("")
    lines += _violation_lines(document, legend)
    lines += _exception_lines(document)
    lines += _cost_lines(document, legend)
    lines += _capacity_lines(document)
    lines += _output_lines(document, legend)
    lines += _legend_lines(legend)
    lines += _wrap(summary_line(document), first="")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_markdown(document: dict[str, Any]) -> str:
    """A pull-request comment: summary, policy, cost, capacity, architecture, outputs, resource
    options and types; long values shortened, every marker explained."""
    legend: set[str] = set()
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
                lines.append(
                    f"| {v['level']} | `{v['rule']}` | `{name}` | {_cell(v['message'])} |"
                )
            levels = sorted({v["level"] for v in violations})
            lines += [""] + [
                f"- {level}: {LEGEND[f'[{level}]']}" for level in levels if f"[{level}]" in LEGEND
            ]
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
            f"#### Monthly cost ({cost['currency']})",
            "",
            f"Prices: {cost.get('prices_as_of')}. Min, expected and max are the cost at the "
            "minimum, expected and maximum node counts.",
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
    lines += _outputs_markdown(document.get("outputs"), legend)
    lines += _options_markdown(document["resources"], legend)
    counts = Counter(
        r["type"] for r in document["resources"] if r.get("custom") and not _is_provider(r["type"])
    )
    lines += ["<details><summary>Resources by type</summary>", ""]
    lines += ["| type | count |", "|---|---:|"]
    lines += [f"| `{token}` | {count} |" for token, count in sorted(counts.items())]
    lines += ["", "</details>", ""]
    lines += _legend_markdown(legend)
    return "\n".join(lines)


# Longest output value a PR comment shows; the JSON has every value in full.
_MARKDOWN_VALUE_MAX = 80
# A shortened output value keeps a third from its start and two thirds from its end.
_VALUE_HEAD_SHARE = 1 / 3


def _outputs_markdown(outputs: dict[str, Any] | None, legend: set[str]) -> list[str]:
    if not outputs:
        return []
    lines = ["<details><summary>Stack outputs</summary>", ""]
    for key, value, branch in _output_rows(outputs, depth=0):
        indent, name = key[: len(key) - len(key.lstrip())], key.strip()
        if branch:
            lines.append(f"{indent}- `{name}`")
            continue
        text = _fit(_value_text(value, legend), _MARKDOWN_VALUE_MAX, legend, _VALUE_HEAD_SHARE)
        shown = f"*{text}*" if text in (UNKNOWN_TEXT, SECRET) else f"`{text}`"
        lines.append(f"{indent}- `{name}`: {shown}")
    lines += ["", "</details>", ""]
    return lines


def _options_markdown(resources: list[dict[str, Any]], legend: set[str]) -> list[str]:
    rows = []
    for resource in resources:
        markers = " ".join(f"`{marker}`" for marker in _option_markers(resource, legend))
        if markers:
            rows.append(f"| `{resource['name']}` | `{resource['type']}` | {_cell(markers)} |")
    if not rows:
        return []
    lines = [f"<details><summary>Resource options ({len(rows)} resources)</summary>", ""]
    lines += ["| resource | type | options |", "|---|---|---|", *rows, "", "</details>", ""]
    return lines


def _legend_markdown(legend: set[str]) -> list[str]:
    used = [marker for marker in LEGEND if marker in legend]
    if not used:
        return []
    lines = ["<details><summary>Legend</summary>", ""]
    lines += [f"- `{marker}` — {LEGEND[marker]}" for marker in used]
    lines += ["", "</details>", ""]
    return lines


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("\n", " ").replace("|", "\\|")


def _span(counts: dict[str, Any]) -> str:
    low, high = counts["min"], counts["max"]
    if low is None or high is None:
        return "?"
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def _short(urn: str) -> str:
    return urn.split("::")[-1]


def _cost_lines(document: dict[str, Any], legend: set[str]) -> list[str]:
    cost = document.get("cost")
    if not cost:
        return []
    lines = _wrap(
        f"Monthly cost ({cost['currency']}) at the minimum, expected and maximum node counts; "
        f"prices: {cost.get('prices_as_of')}",
        first="",
    )
    name_width = WIDTH - 2 - 3 * 13
    lines.append(f"  {'':<{name_width}}" + "".join(f" {h:>12}" for h in ("min", "expected", "max")))
    lines.append(_cost_row("total", cost["monthly"], name_width))
    for line in sorted(cost["lines"], key=lambda item: -item["monthly"]["max"]):
        if line["monthly"]["max"] == 0:
            continue
        lines.append(_cost_row(_fit(_short(line["urn"]), name_width, legend), line["monthly"],
                               name_width))
        lines += _wrap(line["assumption"], indent="      ")
    if cost["unpriced"]:
        lines.append("  Not priced, so not in the totals:")
        names = [_short(urn) for urn in cost["unpriced"]]
        width = min(max(len(name) for name in names), 50)
        for name, urn in zip(names, cost["unpriced"], strict=True):
            lines.append(_fit(f"    {name:<{width}}  {_urn_type(urn)}", WIDTH, legend))
    for warning in cost.get("warnings") or []:
        lines += _wrap(f"warning: {warning}", indent="    ", first="  ")
    lines.append("")
    return lines


def _cost_row(name: str, monthly: dict[str, float], name_width: int) -> str:
    amounts = "".join(f" {monthly[key]:>12,.2f}" for key in ("min", "expected", "max"))
    return f"  {name:<{name_width}}{amounts}"


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
        lines += _wrap(
            f"InfiniBand domain ({domain['fabric']}): {', '.join(domain['pools'])}, up to "
            f"{domain['max_nodes']} nodes / {domain['max_gpus']} GPUs",
            indent="    ",
            first="  ",
        )
    for quota in capacity["quota"]:
        limit = "" if quota["limit"] is None else f" of limit {quota['limit']}"
        used = "" if quota["current"] is None else f", {quota['current']} in use"
        lines += _wrap(
            f"quota {quota['region']} {quota['family']}: {quota['vcpus_max']} vCPUs at max"
            f"{used}{limit}",
            indent="    ",
            first="  ",
        )
    for line in [*reservation_lines(capacity), *unverified_lines(capacity)]:
        lines += _wrap(line, indent="    ", first="  ")
    for warning in capacity.get("warnings", []):
        lines += _wrap(f"warning: {warning}", indent="    ", first="  ")
    for error in capacity["errors"]:
        lines += _wrap(f"ERROR: {error}", indent="    ", first="  ")
    lines.append("")
    return lines


def _output_lines(document: dict[str, Any], legend: set[str]) -> list[str]:
    """Stack outputs as an indented tree, values shortened to fit; the JSON has them in full."""
    outputs = document.get("outputs")
    if not outputs:
        return []
    rows = _output_rows(outputs, depth=1)
    key_width = min(max((len(key) for key, _, branch in rows if not branch), default=0), 40)
    lines = ["Outputs:"]
    for key, value, branch in rows:
        if branch:
            lines.append(_fit(key, WIDTH, legend))
            continue
        head = f"{key:<{key_width}}  "
        # Ids and URLs end in the part a reader looks for: keep more of the end.
        text = _value_text(value, legend)
        lines.append(head + _fit(text, max(WIDTH - len(head), 8), legend, _VALUE_HEAD_SHARE))
    lines.append("")
    return lines


def _output_rows(value: dict[str, Any] | list[Any], depth: int) -> list[tuple[str, Any, bool]]:
    """(indented key, value, is a branch) rows; a branch's children follow it, one level in."""
    rows: list[tuple[str, Any, bool]] = []
    indent = "  " * depth
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        label = f"{indent}{key}" if isinstance(value, dict) else f"{indent}[{key}]"
        nested = (isinstance(item, dict) and item) or (isinstance(item, list) and not _flat(item))
        rows.append((label, item, bool(nested)))
        if nested:
            rows += _output_rows(item, depth + 1)
    return rows


def _flat(items: list[Any]) -> bool:
    return not any(isinstance(item, dict | list) for item in items)


def _value_text(value: Any, legend: set[str]) -> str:
    """A value as a reader wants it: strings bare, unknowns and secrets spelt as the legend says."""
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(item, legend) for item in value) + "]"
    if isinstance(value, dict):
        return "{}"
    if value == COMPUTED:
        legend.add(UNKNOWN_TEXT)
        return UNKNOWN_TEXT
    if value == SECRET:
        legend.add(SECRET)
        return SECRET
    if isinstance(value, str):
        return value.replace("\n", "\\n") if value else '""'
    return json.dumps(value)


def _legend_lines(legend: set[str]) -> list[str]:
    used = [marker for marker in LEGEND if marker in legend]
    if not used:
        return []
    width = max(len(marker) for marker in used)
    lines = ["Legend:"]
    for marker in used:
        lines += _wrap(
            LEGEND[marker], first=f"  {marker:<{width}}  ", indent=" " * (width + 4)
        )
    lines.append("")
    return lines


def _wrap(text: str, indent: str = "  ", first: str | None = None) -> list[str]:
    """`text` wrapped at `WIDTH`; the first line starts with `first` (default: `indent`), the
    others with `indent`."""
    first = indent if first is None else first
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=first,
        subsequent_indent=indent,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def _fit(text: str, width: int, legend: set[str], head_share: float = 0.5) -> str:
    """`text` shortened in the middle to `width` characters, noting the ellipsis in `legend`."""
    if len(text) <= width:
        return text
    legend.add(ELLIPSIS)
    return _shorten(text, width, head_share)


def _shorten(text: str, width: int, head_share: float = 0.5) -> str:
    """`text` cut to `width` with an ellipsis; `head_share` of what is kept comes from the start."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    head = int((width - 1) * head_share)
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[len(text) - tail :] if tail else "")


def _fit_token(token: str, width: int, legend: set[str]) -> str:
    """A type token fitted to `width`: the type name kept whole, its package and module
    shortened from the left (at a ':', '.' or '/' where possible)."""
    if len(token) <= width:
        return token
    legend.add(ELLIPSIS)
    qualifier, _, type_name = token.rpartition(":")
    room = width - len(type_name) - 1 - len(ELLIPSIS)
    if room < 0:
        return _shorten(token, width)
    kept = qualifier[len(qualifier) - room :] if room else ""
    cuts = [kept.index(sep) + 1 for sep in ":./" if sep in kept[:-1]]
    if cuts:
        kept = kept[min(cuts) :]
    return f"{ELLIPSIS}{kept}:{type_name}"


def _urn_type(urn: str) -> str:
    """The resource's own type from its URN (the last of the parent-qualified types)."""
    return urn.split("::")[-2].split("$")[-1]


def _cost_markdown(cost: dict[str, Any]) -> list[str]:
    lines = ["<details><summary>Cost by resource</summary>", ""]
    lines += ["| resource | min | expected | max | assumption |", "|---|---:|---:|---:|---|"]
    for line in sorted(cost["lines"], key=lambda item: -item["monthly"]["max"]):
        if line["monthly"]["max"] == 0:
            continue
        m = line["monthly"]
        assumption = _cell(line["assumption"])
        lines.append(
            f"| `{_short(line['urn'])}` | {m['min']:,.2f} | {m['expected']:,.2f} "
            f"| {m['max']:,.2f} | {assumption} |"
        )
    lines += ["", "</details>", ""]
    if cost["unpriced"]:
        names = ", ".join(f"`{_short(u)}` (`{_urn_type(u)}`)" for u in cost["unpriced"])
        lines += [f"Not priced, so not in the totals: {names}", ""]
    warnings = [f"- :warning: {warning}" for warning in cost.get("warnings") or []]
    if warnings:
        lines += [*warnings, ""]
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
    checked = any(q["limit"] is not None for q in capacity["quota"])
    if capacity["quota"] and checked:
        lines += ["| quota | region | vCPUs at max | in use | limit | shortfall |",
                  "|---|---|---:|---:|---:|---:|"]
        for q in capacity["quota"]:
            cells = [q["current"], q["limit"], q["shortfall"]]
            shown = " | ".join("not in file" if c is None else str(c) for c in cells)
            lines.append(f"| {q['family']} | {q['region']} | {q['vcpus_max']} | {shown} |")
        lines.append("")
    elif capacity["quota"]:
        lines += ["| quota | region | vCPUs at max |", "|---|---|---:|"]
        lines += [
            f"| {q['family']} | {q['region']} | {q['vcpus_max']} |" for q in capacity["quota"]
        ]
        lines += ["", "Quota in use and limits were not checked: pass `--quota-from`.", ""]
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
        lines += _wrap(f"{e['rule']} ({e.get('level') or 'settings'}): {e['note']}",
                       indent="      ", first="  ")
    lines.append("")
    return lines


def _violation_lines(document: dict[str, Any], legend: set[str] | None = None) -> list[str]:
    policy = document.get("policy")
    if not policy or not policy["violations"]:
        return []
    lines = [f"Policy violations ({policy['pack']}):"]
    for v in policy["violations"]:
        target = (v.get("urn") or "stack").split("::")[-1]
        if legend is not None:
            legend.add(f"[{v['level']}]")
        lines += _wrap(
            f"[{v['level']}] {v['rule']} on {target}: {v['message']}", indent="      ", first="  "
        )
    lines.append("")
    return lines


def _resource_tree_lines(document: dict[str, Any], legend: set[str]) -> list[str]:
    """TYPE and NAME columns, the tree drawn in TYPE; markers after the name or below it."""
    resources = [r for r in document["resources"] if not _is_provider(r["type"])]
    children: dict[str | None, list[dict[str, Any]]] = {}
    for resource in resources:
        children.setdefault(resource["parent"], []).append(resource)
    known = {r["urn"] for r in resources}
    # (tree prefix, type, name, markers, the tree drawn on a continuation line)
    rows: list[tuple[str, str, str, list[str], str]] = []

    def walk(resource: dict[str, Any], prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else ("└─ " if last else "├─ ")
        kids = children.get(resource["urn"], [])
        extension = "" if depth == 0 else ("   " if last else "│  ")
        below = prefix + extension + ("│" if kids else "")
        rows.append((prefix + branch, resource["type"], resource["name"],
                     _option_markers(resource, legend), below))
        for index, child in enumerate(kids):
            walk(child, prefix + extension, index == len(kids) - 1, depth + 1)

    for root in (r for r in resources if r["parent"] not in known):
        walk(root, "", True, 0)
    type_width = _type_column_width([len(p) + len(t) for p, t, *_ in rows],
                                    [len(name) for _, _, name, _, _ in rows])
    name_width = WIDTH - type_width - 2
    lines = [f"{'TYPE':<{type_width}}  NAME", f"{'-' * type_width}  {'-' * name_width}"]
    for prefix, token, name, markers, below in rows:
        label = prefix + _fit_token(token, max(type_width - len(prefix), 1), legend)
        line = f"{label:<{type_width}}  {_fit(name, name_width, legend)}"
        pending = [_fit(marker, name_width, legend) for marker in markers]
        separator = "  "
        while pending and len(line) + len(separator) + len(pending[0]) <= WIDTH:
            line += separator + pending.pop(0)
            separator = " "
        lines.append(line)
        while pending:
            line = f"{below:<{type_width}}  {pending.pop(0)}"
            while pending and len(line) + 1 + len(pending[0]) <= WIDTH:
                line += " " + pending.pop(0)
            lines.append(line)
    return lines


def _type_column_width(labels: list[int], names: list[int]) -> int:
    """The TYPE column width that shortens the fewest cells of a `WIDTH`-column tree; on a tie,
    the wider TYPE column."""
    widest = min(max(labels, default=4), _TYPE_COLUMN_MAX)
    best, best_cost = widest, None
    for width in range(widest, _TYPE_COLUMN_MIN - 1, -1):
        room = WIDTH - width - 2
        cost = sum(label > width for label in labels) + sum(name > room for name in names)
        if best_cost is None or cost < best_cost:
            best, best_cost = width, cost
    return best


def _option_markers(resource: dict[str, Any], legend: set[str]) -> list[str]:
    """The resource options a reader must know before `pulumi up`, as `[...]` markers."""
    options = resource.get("options") or {}
    markers: list[tuple[str, str]] = []
    if options.get("protect"):
        markers.append(("[protected]", "[protected]"))
    if options.get("retainOnDelete"):
        markers.append(("[retained]", "[retained]"))
    markers += [(f"[ignores {path}]", "[ignores P]") for path in options.get("ignoreChanges") or []]
    markers += [
        (f"[replaces on {path}]", "[replaces on P]")
        for path in options.get("replaceOnChanges") or []
    ]
    if options.get("deleteBeforeReplace"):
        markers.append(("[deletes first]", "[deletes first]"))
    legend.update(key for _, key in markers)
    return [text for text, _ in markers]


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
