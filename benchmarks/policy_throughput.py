"""`python -m benchmarks.policy_throughput`: policy pack throughput, three ways, in one run.

The prod plan's resources are replicated to a few thousand (each copy with distinct URNs and
distinct inputs, so no conversion is shared between copies that a real stack would not share)
and analyzed by the real pack:

- `sdk-grpc`: the pack process as pulumi-policy ships it (`GPUSTACK_POLICY_SDK_ONLY=1`), over
  gRPC: the baseline every ratio is taken against;
- `grpc`: the pack process with its speed-ups (`policies/shared_properties.py`, a frozen heap),
  over gRPC, as `pulumi preview --policy-pack policies` runs it;
- `in-process`: the same pack in this interpreter with the same request bytes and no gRPC, as
  `gpustack plan` runs it.

Samples are interleaved (a `gc.collect()` before each) so load on the machine hits every way
alike; min and median are reported, and all three must give the same verdicts.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpustack.analyzer import PolicyResult, run_policy_pack
from gpustack.engine import run_plan

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "policies"
GOAL_PER_S = 2000.0
RESULTS_JSON = Path(__file__).resolve().parent / "policy_throughput.json"


def replicate(resources: Sequence[dict[str, Any]], copies: int) -> list[dict[str, Any]]:
    """`copies` copies of a plan with distinct URNs and inputs (parents and dependencies follow)."""
    out = []
    for copy in range(copies):

        def rename(urn: str | None, n: int = copy) -> str | None:
            return None if urn is None else f"{urn}-{n}"

        for r in resources:
            out.append({
                **r,
                "urn": rename(r["urn"]),
                "name": f"{r['name']}-{copy}",
                "parent": rename(r.get("parent")),
                # An input no rule reads, so each copy's properties differ from the others'.
                "inputs": {**(r.get("inputs") or {}), "benchmarkCopy": copy},
                "dependencies": [rename(u) for u in r.get("dependencies") or []],
                "propertyDependencies": {
                    k: [rename(u) for u in v]
                    for k, v in (r.get("propertyDependencies") or {}).items()
                },
            })
    return out


def _verdicts(result: PolicyResult) -> list[tuple[str, str, str | None, str]]:
    return sorted((v.rule, v.level, v.urn, v.message) for v in result.violations)


def _run(way: str, resources: list[dict[str, Any]], config: dict[str, Any]) -> PolicyResult:
    if way == "sdk-grpc":
        os.environ["GPUSTACK_POLICY_SDK_ONLY"] = "1"
        try:
            return run_policy_pack(PACK, resources, config, workers=1)
        finally:
            del os.environ["GPUSTACK_POLICY_SDK_ONLY"]
    return run_policy_pack(PACK, resources, config, workers=1, in_process=way == "in-process")


WAYS = ("sdk-grpc", "grpc", "in-process")


def measure(target: int, repeats: int) -> dict[str, Any]:
    plan = run_plan(ROOT, "prod")
    config = json.loads((PACK / "config" / "prod.json").read_text())
    base = [r.analyzer_view() for r in plan.resources]
    resources = replicate(base, max(1, target // len(base)))
    _run("in-process", base[:2], config)  # load the pack's modules once, outside the samples
    wall: dict[str, list[float]] = {way: [] for way in WAYS}
    verdicts: dict[str, list[Any]] = {}
    for _ in range(repeats):
        for way in WAYS:
            gc.collect()
            start = time.perf_counter()
            result = _run(way, resources, config)
            wall[way].append(time.perf_counter() - start)
            verdicts.setdefault(way, _verdicts(result))
    baseline = min(wall["sdk-grpc"])
    rows = {}
    for way in WAYS:
        best = min(wall[way])
        rows[way] = {
            "min_s": round(best, 3),
            "median_s": round(statistics.median(wall[way]), 3),
            "resources_per_s": round(len(resources) / best),
            "speed_vs_sdk_grpc": round(baseline / best, 2),
        }
    return {
        "date": time.strftime("%Y-%m-%d"),
        "resources": len(resources),
        "rules": len(result.rules),
        "violations": len(verdicts["in-process"]),
        "repeats": repeats,
        "verdicts_identical": all(v == verdicts["sdk-grpc"] for v in verdicts.values()),
        "goal_per_s": GOAL_PER_S,
        "goal_met_in_process": rows["in-process"]["resources_per_s"] >= GOAL_PER_S,
        "ways": rows,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Policy throughput, {results['date']}: {results['resources']:,} resources, "
        f"{results['rules']} rules, {results['repeats']} interleaved samples per way; "
        f"verdicts identical across ways: {results['verdicts_identical']}.",
        "",
        "| way | min s | median s | resources/s (min) | speed vs sdk-grpc |",
        "|---|---|---|---|---|",
    ]
    for way, row in results["ways"].items():
        lines.append(
            f"| {way} | {row['min_s']} | {row['median_s']} | {row['resources_per_s']:,} "
            f"| {row['speed_vs_sdk_grpc']}x |")
    met = "met" if results["goal_met_in_process"] else "missed"
    lines += ["", f"Goal: ≥ {results['goal_per_s']:,.0f} resources/s in process: {met}."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.policy_throughput")
    parser.add_argument("--resources", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    results = measure(args.resources, args.repeats)
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    return 0 if results["verdicts_identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
