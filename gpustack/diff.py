"""Compare two plan JSON documents (a pull request's base and head): added, removed and changed
resources, replacements of stateful resources (data loss), and the monthly cost delta.

Replacement rules live in data/replace_properties.yaml with their sources; a program's own
`replaceOnChanges` option counts too, as the engine honours it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpustack import facts
from gpustack.arguments import UsageError, check_out_path, emit
from gpustack.inventory import UNKNOWN_VALUES

FORMATS = ("table", "markdown", "json")
_COST_KEYS = ("min", "expected", "max")


class PlanFileError(ValueError):
    """A file given to `gpustack diff` is not a plan JSON document."""


@dataclass(frozen=True)
class Replacement:
    """A change the provider carries out by deleting and recreating the resource."""

    urn: str
    type: str
    name: str
    reasons: tuple[str, ...]
    stateful: bool
    what: str
    certain: bool = True
    protected: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "reasons": list(self.reasons),
            "data_loss": self.stateful,
            "what": self.what,
            "certain": self.certain,
            "protected": self.protected,
        }


@dataclass
class PlanDiff:
    """What changes between two plans."""

    base_name: str
    head_name: str
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    replacements: list[Replacement] = field(default_factory=list)
    cost: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def data_loss(self) -> list[Replacement]:
        """Replacements that destroy data."""
        return [r for r in self.replacements if r.stateful]

    def to_json(self) -> dict[str, Any]:
        """JSON view (`gpustack diff --format json`)."""
        return {
            "base": self.base_name,
            "head": self.head_name,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "replacements": [r.to_json() for r in self.replacements],
            "cost": self.cost,
            "notes": self.notes,
        }


def load_plan(path: Path | str) -> dict[str, Any]:
    """Read a plan JSON document written by `gpustack plan --format json`, checked for the
    fields the diff reads (docs/plan-json.md)."""
    source = Path(path)
    if source.is_dir():
        raise PlanFileError(f"{source} is a directory; give a plan JSON file")
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanFileError(f"cannot read {source}: no such file") from None
    except UnicodeDecodeError:
        raise PlanFileError(f"{source} is not a UTF-8 text file; expected plan JSON") from None
    except OSError as error:
        raise PlanFileError(f"cannot read {source}: {error.strerror}") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise PlanFileError(f"{source} is not JSON ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise PlanFileError(
            f"{source} is not a plan document: write one with `gpustack plan --format json`"
        )
    problems = _plan_problems(document)
    if problems:
        shown = "; ".join(problems[:5])
        if len(problems) > 5:
            shown += f"; and {len(problems) - 5} more"
        raise PlanFileError(
            f"{source} is not a valid plan document ({shown}); write one with "
            "`gpustack plan --format json`"
        )
    return document


def _plan_problems(document: Mapping[str, Any]) -> list[str]:
    """Fields the diff relies on that are missing or of the wrong type."""
    problems = []
    for index, resource in enumerate(document["resources"]):
        where = f"resources[{index}]"
        if not isinstance(resource, Mapping):
            problems.append(f"{where} is not an object")
            continue
        for key in ("urn", "type", "name"):
            if not isinstance(resource.get(key), str):
                problems.append(f"{where}.{key} is missing or not a string")
        for key in ("inputs", "options"):
            if resource.get(key) is not None and not isinstance(resource[key], Mapping):
                problems.append(f"{where}.{key} must be an object")
    cost = document.get("cost")
    if cost is not None:
        if not isinstance(cost, Mapping):
            problems.append("cost must be an object or null")
        else:
            problems += _cost_problems(cost)
    return problems


def _cost_problems(cost: Mapping[str, Any]) -> list[str]:
    problems = []
    monthly = cost.get("monthly")
    if monthly is not None and not (
        isinstance(monthly, Mapping) and all(_is_number(monthly.get(k, 0)) for k in _COST_KEYS)
    ):
        problems.append("cost.monthly must hold numbers min, expected, max")
    lines = cost.get("lines") or []
    if not isinstance(lines, list):
        return [*problems, "cost.lines must be a list"]
    for index, line in enumerate(lines):
        figures = line.get("monthly") if isinstance(line, Mapping) else None
        if (
            not isinstance(line, Mapping)
            or not isinstance(line.get("urn"), str)
            or not isinstance(figures, Mapping)
            or not all(_is_number(figures.get(k)) for k in _COST_KEYS)
        ):
            problems.append(f"cost.lines[{index}] needs a urn and monthly min, expected, max")
    unpriced = cost.get("unpriced") or []
    if not isinstance(unpriced, list) or not all(isinstance(u, str) for u in unpriced):
        problems.append("cost.unpriced must be a list of URNs")
    return problems


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    )


def diff_plans(base: Mapping[str, Any], head: Mapping[str, Any]) -> PlanDiff:
    """Resources added, removed and changed (by URN), replacements and the cost delta."""
    old = {r["urn"]: r for r in base["resources"] if _is_managed(r)}
    new = {r["urn"]: r for r in head["resources"] if _is_managed(r)}
    result = PlanDiff(_title(base), _title(head))
    result.added = [_brief(new[urn]) for urn in new if urn not in old]
    result.removed = [_brief(old[urn]) for urn in old if urn not in new]
    # Sorted: set order of strings changes between runs (hash randomization).
    for urn in sorted(new.keys() & old.keys()):
        before, after = old[urn], new[urn]
        paths = _changed_paths(before.get("inputs") or {}, after.get("inputs") or {})
        if not paths:
            continue
        keys = sorted({p.split(".", 1)[0] for p in paths})
        result.changed.append({**_brief(after), "keys": keys})
        replacement = _replacement(before, after, paths)
        if replacement is not None:
            result.replacements.append(replacement)
    result.changed.sort(key=lambda c: c["urn"])
    if result.base_name == result.head_name:
        result.replacements.extend(_urn_moves(old, new))
    else:
        # URNs embed the project and stack, so nothing matches across stacks.
        result.notes.append(
            f"comparing different stacks ({result.base_name} vs {result.head_name}): every "
            "URN differs, so resources show as added and removed"
        )
    result.cost = _cost_delta(base.get("cost"), head.get("cost"))
    return result


def _is_managed(resource: Mapping[str, Any]) -> bool:
    return bool(resource.get("custom", True)) and not resource["type"].startswith(
        "pulumi:providers:"
    )


def _title(document: Mapping[str, Any]) -> str:
    return f"{document.get('project', '?')}/{document.get('stack', '?')}"


def _brief(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {"urn": resource["urn"], "type": resource["type"], "name": resource["name"]}


def _changed_paths(before: Any, after: Any, prefix: str = "") -> set[str]:
    """Dotted paths of values that differ; lists compare whole."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        paths: set[str] = set()
        for key in before.keys() | after.keys():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in before or key not in after:
                paths.add(path)
            else:
                paths |= _changed_paths(before[key], after[key], path)
        return paths
    return set() if before == after else {prefix}


def _value(inputs: Mapping[str, Any], path: str) -> Any:
    current: Any = inputs
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def _touches(paths: set[str], rule: str) -> bool:
    return any(p == rule or p.startswith(rule + ".") or rule.startswith(p + ".") for p in paths)


def _rules() -> dict[str, Any]:
    return facts.load("replace_properties")


def _replacement(
    before: Mapping[str, Any], after: Mapping[str, Any], paths: set[str]
) -> Replacement | None:
    table = _rules()
    spec = table["types"].get(after["type"])
    rules = [*table["common"], *((spec or {}).get("replace_on") or [])]
    old_inputs, new_inputs = before.get("inputs") or {}, after.get("inputs") or {}
    reasons, certain = [], True
    for rule in rules:
        path = rule["path"]
        if not _touches(paths, path):
            continue
        old, new = _value(old_inputs, path), _value(new_inputs, path)
        if not _condition_holds(rule.get("only_if"), old, new):
            continue
        unknown = any(isinstance(v, str) and v in UNKNOWN_VALUES for v in (old, new))
        certain = certain and not unknown
        shown = "unknown until apply" if unknown else f"{_show(old)} -> {_show(new)}"
        reasons.append(f"{path}: {shown}")
    for path in (after.get("options") or {}).get("replaceOnChanges") or []:
        if _touches(paths, path):
            reasons.append(f"{path}: listed in the resource's replaceOnChanges option")
    if not reasons:
        return None
    options = after.get("options") or {}
    return Replacement(
        urn=after["urn"],
        type=after["type"],
        name=after["name"],
        reasons=tuple(reasons),
        stateful=bool((spec or {}).get("stateful", False)),
        what=(spec or {}).get("what", after["type"].rsplit(":", 1)[-1]),
        certain=certain,
        protected=bool(options.get("protect")),
    )


def _condition_holds(condition: str | None, old: Any, new: Any) -> bool:
    if condition is None:
        return True
    if condition == "performance_changes":
        # Standard_* <-> Premium_*: redundancy alone can be migrated in place.
        return str(old).split("_", 1)[0] != str(new).split("_", 1)[0]
    if condition == "false_to_true":
        return old is False and new is True
    raise ValueError(f"replace_properties.yaml: unknown condition {condition!r}")


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _urn_moves(
    old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]
) -> list[Replacement]:
    """A stateful resource whose URN changed (renamed, or a new parent) without an alias."""
    types = _rules()["types"]
    added = [r for urn, r in new.items() if urn not in old]
    moves = []
    for urn, gone in old.items():
        spec = types.get(gone["type"])
        if urn in new or not spec or not spec.get("stateful"):
            continue
        twins = [r for r in added if r["type"] == gone["type"]]
        if not twins:
            continue
        moves.append(
            Replacement(
                urn=urn,
                type=gone["type"],
                name=gone["name"],
                reasons=(
                    f"URN changed (now {', '.join(t['name'] for t in twins)}): Pulumi deletes "
                    "the old resource and creates a new one unless the new one carries an "
                    "alias to the old URN",
                ),
                stateful=True,
                what=spec.get("what", gone["type"]),
                certain=len(twins) == 1,
                protected=bool((gone.get("options") or {}).get("protect")),
            )
        )
    return moves


def _cost_delta(base: Any, head: Any) -> dict[str, Any] | None:
    if not isinstance(base, Mapping) or not isinstance(head, Mapping):
        return None
    before, after = base.get("monthly") or {}, head.get("monthly") or {}
    by_urn: dict[str, dict[str, list[float]]] = {}
    for side, cost in ((0, base), (1, head)):
        for line in cost.get("lines") or []:
            sums = by_urn.setdefault(line["urn"], {k: [0.0, 0.0] for k in _COST_KEYS})
            for key in _COST_KEYS:
                sums[key][side] += float(line["monthly"][key])
    changes = []
    for urn, sums in by_urn.items():
        delta = {k: round(sums[k][1] - sums[k][0], 2) for k in _COST_KEYS}
        if any(delta.values()):
            changes.append({"urn": urn, "delta": delta})
    changes.sort(key=lambda c: -abs(c["delta"]["max"]))
    return {
        "currency": head.get("currency", "USD"),
        "base": {k: before.get(k) for k in _COST_KEYS},
        "head": {k: after.get(k) for k in _COST_KEYS},
        "delta": {
            k: round(float(after.get(k, 0)) - float(before.get(k, 0)), 2) for k in _COST_KEYS
        },
        "by_resource": changes,
        "unpriced_added": sorted(set(head.get("unpriced") or []) - set(base.get("unpriced") or [])),
    }


# ---------------------------------------------------------------------------- rendering


def render_diff_json(diff: PlanDiff) -> str:
    """Indented JSON."""
    return json.dumps(diff.to_json(), indent=2) + "\n"


def render_diff_table(diff: PlanDiff) -> str:
    """Plain text for a terminal."""
    lines = [f"diff {diff.base_name} -> {diff.head_name}: {_counts(diff)}"]
    lines += [f"note: {note}" for note in diff.notes]
    lines.append("")
    for replacement in diff.replacements:
        mark = "DATA LOSS" if replacement.stateful else "replace"
        lines.append(f"[{mark}] {replacement.type} {replacement.name}: {replacement.what}")
        lines.extend(f"    {reason}" for reason in replacement.reasons)
        if replacement.protected:
            lines.append("    protected: `pulumi up` refuses until protect is lifted")
    if diff.replacements:
        lines.append("")
    for sign, items in (("+", diff.added), ("-", diff.removed)):
        lines.extend(f"{sign} {r['type']:<58} {r['name']}" for r in items)
    for change in diff.changed:
        lines.append(f"~ {change['type']:<58} {change['name']}  ({', '.join(change['keys'])})")
    if diff.cost is not None:
        lines += ["", _cost_sentence(diff.cost)]
    return "\n".join(lines) + "\n"


def render_diff_markdown(diff: PlanDiff) -> str:
    """A pull-request comment."""
    lines = [f"### gpustack diff: `{diff.base_name}` → `{diff.head_name}`", "", _counts(diff), ""]
    lines += [f"> {note}" for note in diff.notes]
    if diff.notes:
        lines.append("")
    if diff.replacements:
        lost = len(diff.data_loss)
        lines.append(f"#### :warning: Replacements ({lost} with data loss)")
        lines += ["", "| | resource | what | why |", "|---|---|---|---|"]
        for r in diff.replacements:
            mark = "**data loss**" if r.stateful else "replace"
            if not r.certain:
                mark += " (possible)"
            why = "<br>".join(_cell(reason) for reason in r.reasons)
            if r.protected:
                why += "<br>protected: `pulumi up` refuses until protect is lifted"
            lines.append(f"| {mark} | `{r.name}` (`{r.type}`) | {r.what} | {why} |")
        lines.append("")
    if diff.cost is not None:
        cost = diff.cost
        lines += [
            f"#### Monthly cost ({cost['currency']})",
            "",
            "| | min | expected | max |",
            "|---|---:|---:|---:|",
        ]
        for row in ("base", "head"):
            lines.append(
                f"| {row} | " + " | ".join(_money(cost[row][k]) for k in _COST_KEYS) + " |"
            )
        lines.append(
            "| **delta** | "
            + " | ".join(f"**{_signed(cost['delta'][k])}**" for k in _COST_KEYS)
            + " |"
        )
        lines.append("")
        if cost["by_resource"]:
            lines += [
                "<details><summary>Cost changes by resource</summary>",
                "",
                "| resource | min | expected | max |",
                "|---|---:|---:|---:|",
            ]
            for change in cost["by_resource"]:
                cells = " | ".join(_signed(change["delta"][k]) for k in _COST_KEYS)
                lines.append(f"| `{change['urn'].rsplit('::', 1)[-1]}` | {cells} |")
            lines += ["", "</details>", ""]
    if diff.added or diff.removed or diff.changed:
        lines += [
            "<details><summary>Resource changes</summary>",
            "",
            "| | type | name | inputs |",
            "|---|---|---|---|",
        ]
        lines += [f"| + | `{r['type']}` | `{r['name']}` | |" for r in diff.added]
        lines += [f"| - | `{r['type']}` | `{r['name']}` | |" for r in diff.removed]
        lines += [
            f"| ~ | `{c['type']}` | `{c['name']}` | {', '.join(c['keys'])} |" for c in diff.changed
        ]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def _counts(diff: PlanDiff) -> str:
    text = f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed"
    if diff.replacements:
        text += f"; {len(diff.replacements)} replacement(s), {len(diff.data_loss)} with data loss"
    return text


def _cost_sentence(cost: Mapping[str, Any]) -> str:
    delta = cost["delta"]
    return (
        f"monthly cost delta ({cost['currency']}): {_signed(delta['min'])} min / "
        f"{_signed(delta['expected'])} expected / {_signed(delta['max'])} max"
    )


def _money(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):,.2f}"


def _signed(value: float) -> str:
    return f"{value:+,.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------------- command line


def add_diff_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `gpustack diff`."""
    parser.add_argument("base", type=Path, help="the base plan JSON (e.g. the PR's target)")
    parser.add_argument("head", type=Path, help="the head plan JSON (e.g. the PR's branch)")
    parser.add_argument("--format", "-f", choices=FORMATS, default="table")
    parser.add_argument("--out", "-o", type=Path, help="write the diff to this file")


def run_diff(args: argparse.Namespace) -> int:
    """`gpustack diff`: 0 when compared (replacements are reported, not failed), 2 on bad input."""
    try:
        check_out_path(args.out, "--out")
        diff = diff_plans(load_plan(args.base), load_plan(args.head))
    except (PlanFileError, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    renderers = {
        "table": render_diff_table,
        "markdown": render_diff_markdown,
        "json": render_diff_json,
    }
    try:
        emit(renderers[args.format](diff), args.out)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


__all__ = [
    "PlanDiff",
    "PlanFileError",
    "Replacement",
    "add_diff_arguments",
    "diff_plans",
    "load_plan",
    "render_diff_json",
    "render_diff_markdown",
    "render_diff_table",
    "run_diff",
]
