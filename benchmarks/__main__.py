"""`python -m benchmarks`: plan time against its floor, policy throughput, growth with pools.

Results go to benchmarks/results.json and a table to benchmarks/RESULTS.md (for the README).

- Plan vs floor: each environment's plan (the real program under the Azure mocks, in process)
  against the floor of registering the same resources bare (plain `pulumi.CustomResource` /
  `ComponentResource` with the same types, names, parents and inputs) under the same mocks, in
  the same process and run: samples interleaved, a full collection before each, min and median.
  The ratio is what the SDK classes and the program add.
- The whole command: `gpustack plan -s prod --no-policy` (the program out of process, in its
  own interpreter) against the same command as it ran before (`benchmarks/baseline_plan.py`:
  in process, type aliases and the garbage collector kept), each a fresh process, interleaved.
- Policy throughput: this repository's pack over the Analyzer gRPC path
  (`gpustack.analyzer.run_policy_pack`), on the prod plan replicated to a few thousand resources.
- Growth: plan time of the dev stack with 1, 5 and 20 AKS GPU pools.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pulumi
from pulumi import _types

from benchmarks.policy_throughput import replicate
from gpustack import sdk_types
from gpustack.analyzer import run_policy_pack
from gpustack.engine import Plan, PlannedResource, capture, run_plan

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = Path(__file__).resolve().parent
ENVIRONMENTS = ("dev", "staging", "prod")
POOL_COUNTS = (1, 5, 20)
PLAN_GOAL_RATIO = 1.5
CLI_GOAL_RATIO = 1 / 3
POLICY_GOAL_PER_S = 2000.0


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of `repeats` runs (after one warm-up) and the last result."""
    result = run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


# --- plan vs floor -----------------------------------------------------------------------------


def register_bare(resources: Sequence[PlannedResource]) -> Callable[[], None]:
    """A program that registers `resources` as plain custom/component resources, same parents."""
    return _register(resources, {})


def register_typed(resources: Sequence[PlannedResource]) -> Callable[[], None]:
    """`register_bare`, but each custom resource through its SDK class (`network.Subnet(...)`
    with the plan's inputs as keyword arguments): what the typed SDK costs by itself, with no
    program code and no Output passed between resources. Resources with no SDK class (a
    Kubernetes custom resource) are registered bare, as in the floor."""
    calls = {r.urn: _sdk_call(r) for r in resources if r.custom}
    declare = _register(resources, {urn: call for urn, call in calls.items() if call})
    declare.typed_count = sum(call is not None for call in calls.values())  # type: ignore[attr-defined]
    return declare


def _register(
    resources: Sequence[PlannedResource], typed: dict[str, tuple[type, dict[str, Any]]]
) -> Callable[[], None]:
    """A program registering `resources` with their parents: through `typed[urn]` (class and
    keyword arguments) where given, else as a plain custom or component resource."""

    def declare() -> None:
        created: dict[str, pulumi.Resource] = {}
        for r in resources:
            if r.type.startswith("pulumi:providers:"):
                continue
            parent = created.get(r.parent) if r.parent else None
            opts = pulumi.ResourceOptions(parent=parent)
            if r.urn in typed:
                cls, kwargs = typed[r.urn]
                created[r.urn] = cls(r.name, opts=opts, **kwargs)
            elif r.custom:
                created[r.urn] = pulumi.CustomResource(r.type, r.name, dict(r.inputs), opts)
            else:
                created[r.urn] = pulumi.ComponentResource(r.type, r.name, None, opts)

    return declare


def _sdk_call(r: PlannedResource) -> tuple[type, dict[str, Any]] | None:
    """The SDK class of `r` and its inputs as that class's keyword arguments, when it has one."""
    cls = sdk_types.resource_class(r.type)
    if cls is None:
        return None
    module = sys.modules[cls.__module__]
    # A resource whose name is also a type's takes `<Name>InitArgs` (azure-native, Kubernetes).
    args = getattr(module, f"{cls.__name__}InitArgs", None) or getattr(
        module, f"{cls.__name__}Args", None
    )
    if args is None:
        return None
    python_names = {
        wire: name for name, wire in _types._py_to_pulumi_names_from_py_properties(args).items()
    }
    kwargs = {}
    for wire, value in r.inputs.items():
        if wire not in python_names:
            return None
        name = python_names[wire]
        # The constructor's own parameters take the input's name with a trailing underscore.
        kwargs[f"{name}_" if name in ("resource_name", "opts") else name] = value
    return cls, kwargs


def interleaved(
    runs: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Wall times of each run, alternating between them, after one warm-up each.

    A full collection before each sample, so no sample pays for another's garbage. The CPU
    time of this process is kept too, under `<name>_cpu` (steadier on a shared machine).
    """
    results = {name: run() for name, run in runs.items()}
    samples: dict[str, list[float]] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            gc.collect()
            start, cpu = time.perf_counter(), time.process_time()
            results[name] = run()
            samples.setdefault(name, []).append(time.perf_counter() - start)
            samples.setdefault(f"{name}_cpu", []).append(time.process_time() - cpu)
    return samples, results


def bench_plans(repeats: int) -> list[dict[str, Any]]:
    rows = []
    for stack in ENVIRONMENTS:
        plan = run_plan(ROOT, stack, in_process=True)
        typed = register_typed(plan.resources)
        samples, _ = interleaved(
            {
                "plan": lambda s=stack: run_plan(ROOT, s, in_process=True),
                "floor": lambda p=plan: capture(register_bare(p.resources)),
                "typed": lambda t=typed: capture(t),
            },
            repeats,
        )
        plan_min, floor_min = min(samples["plan"]), min(samples["floor"])
        typed_min = min(samples["typed"])
        plan_med = statistics.median(samples["plan"])
        floor_med = statistics.median(samples["floor"])
        rows.append(
            {
                "stack": stack,
                "resources": len(plan.resources),
                "plan_min_s": round(plan_min, 4),
                "plan_median_s": round(plan_med, 4),
                "floor_min_s": round(floor_min, 4),
                "floor_median_s": round(floor_med, 4),
                "ratio_min": round(plan_min / floor_min, 2),
                "ratio_median": round(plan_med / floor_med, 2),
                "plan_cpu_min_s": round(min(samples["plan_cpu"]), 4),
                "floor_cpu_min_s": round(min(samples["floor_cpu"]), 4),
                "ratio_cpu_min": round(min(samples["plan_cpu"]) / min(samples["floor_cpu"]), 2),
                "typed_resources": typed.typed_count,  # type: ignore[attr-defined]
                "typed_min_s": round(typed_min, 4),
                "typed_median_s": round(statistics.median(samples["typed"]), 4),
                "typed_ratio_min": round(typed_min / floor_min, 2),
                "goal_ratio": PLAN_GOAL_RATIO,
                "met": plan_min / floor_min <= PLAN_GOAL_RATIO,
            }
        )
    return rows


def bench_cli(repeats: int, plan: Plan) -> dict[str, Any]:
    """The whole `gpustack plan` process against the same command before this engine."""
    stack = plan.stack
    arguments = ["plan", "-s", stack, "--no-policy", "--format", "json"]
    commands = {
        "out_of_process": [sys.executable, "-m", "gpustack", *arguments],
        "baseline": [sys.executable, "-m", "benchmarks.baseline_plan", *arguments],
        "import_floor": [sys.executable, "-m", "benchmarks.import_floor", *sdk_classes(plan)],
    }

    cpu: dict[str, list[float]] = {name: [] for name in commands}

    def runner(name: str, command: list[str]) -> Callable[[], bytes]:
        def run() -> bytes:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(
                after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            )
            return done.stdout

        return run

    samples, outputs = interleaved({k: runner(k, v) for k, v in commands.items()}, repeats)
    floor_min = min(samples["import_floor"])
    # CPU time of the whole process tree (the program's child included), warm-up excluded.
    new_cpu, old_cpu = min(cpu["out_of_process"][1:]), min(cpu["baseline"][1:])
    new_min, old_min = min(samples["out_of_process"]), min(samples["baseline"])
    new_med = statistics.median(samples["out_of_process"])
    old_med = statistics.median(samples["baseline"])
    return {
        "stack": stack,
        "out_of_process_min_s": round(new_min, 3),
        "out_of_process_median_s": round(new_med, 3),
        "baseline_min_s": round(old_min, 3),
        "baseline_median_s": round(old_med, 3),
        "ratio_min": round(new_min / old_min, 2),
        "ratio_median": round(new_med / old_med, 2),
        "out_of_process_cpu_min_s": round(new_cpu, 3),
        "baseline_cpu_min_s": round(old_cpu, 3),
        "ratio_cpu_min": round(new_cpu / old_cpu, 2),
        "import_floor_min_s": round(floor_min, 3),
        "import_floor_median_s": round(statistics.median(samples["import_floor"]), 3),
        "import_floor_ratio_min": round(floor_min / old_min, 2),
        "goal_ratio": round(CLI_GOAL_RATIO, 2),
        "met": new_min / old_min <= CLI_GOAL_RATIO,
        "same_plan": outputs["out_of_process"] == outputs["baseline"],
    }


def sdk_classes(plan: Plan) -> list[str]:
    """`module:Member` of every SDK class the plan registers, as a program imports it."""
    specs = set()
    for planned in plan.resources:
        cls = sdk_types.resource_class(planned.type) if planned.custom else None
        located = sdk_types.module_path(planned.type)
        if cls is not None and located is not None:
            module_name, member = located
            exported = module_name if hasattr(sys.modules.get(module_name), member) else None
            specs.add(f"{exported or cls.__module__}:{member}")
    return sorted(specs)


def profile_plan(stack: str, top: int = 12) -> list[dict[str, Any]]:
    """Where a plan's time goes: the functions with the most cumulative time, by file."""
    profiler = cProfile.Profile()
    profiler.enable()
    run_plan(ROOT, stack, in_process=True)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: -item[1][2],
    )[:top]:
        short = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        short = short.split("/lib/python3.11/")[-1]
        rows.append(
            {
                "function": f"{short}:{line}({function})",
                "calls": calls,
                "own_s": round(own, 4),
                "cumulative_s": round(cumulative, 4),
                "own_share": round(own / total, 3) if total else None,
            }
        )
    return rows


# --- policy throughput -------------------------------------------------------------------------


def policy_pack_dir() -> tuple[Path, str]:
    pack = ROOT / "policies"
    if (pack / "PulumiPolicy.yaml").exists() and (pack / "__main__.py").exists():
        return pack, "policies"
    return ROOT / "tests" / "fixtures" / "mini_policy_pack", "tests/fixtures/mini_policy_pack"


def bench_policy(plan: Plan, target: int) -> dict[str, Any]:
    pack, label = policy_pack_dir()
    base = [r.analyzer_view() for r in plan.resources]
    copies = max(1, target // len(base))
    resources = replicate(base, copies)
    start = time.perf_counter()
    run_policy_pack(pack, base[:1])
    startup_s = time.perf_counter() - start
    start = time.perf_counter()
    result = run_policy_pack(pack, resources)
    total_s = time.perf_counter() - start
    steady = max(total_s - startup_s, 1e-9)
    return {
        "pack": label,
        "rules": len(result.rules),
        "resources": len(resources),
        "violations": len(result.violations),
        "total_s": round(total_s, 3),
        "startup_s": round(startup_s, 3),
        "resources_per_s": round(len(resources) / total_s),
        "resources_per_s_after_startup": round(len(resources) / steady),
        "goal_per_s": POLICY_GOAL_PER_S,
        "met": len(resources) / total_s >= POLICY_GOAL_PER_S,
    }


# --- growth with pools -------------------------------------------------------------------------


def bench_growth(repeats: int) -> dict[str, Any]:
    from gpustack.project import load_project
    from stacks import build, parse_config
    from stacks.config import PROJECT

    project = load_project(ROOT, "dev")
    prefix = f"{PROJECT}:"
    raw = {k[len(prefix) :]: _decode(v) for k, v in project.config.items() if k.startswith(prefix)}
    rows = []
    for count in POOL_COUNTS:
        aks = dict(raw.get("aks") or {})
        aks["gpuPools"] = [
            {"name": f"gpu{i}", "vmSize": "Standard_NC4as_T4_v3", "minCount": 0, "maxCount": 2}
            for i in range(count)
        ]
        cfg = parse_config({**raw, "aks": aks}, "Pulumi.dev.yaml")

        def plan_once(c: Any = cfg) -> list[PlannedResource]:
            return capture(lambda: build(c), project=PROJECT, stack="dev", config=project.config)

        seconds, resources = timed(plan_once, repeats)
        rows.append({"pools": count, "resources": len(resources), "plan_s": round(seconds, 4)})
    first, middle, last = rows
    per_pool_low = (middle["plan_s"] - first["plan_s"]) / (middle["pools"] - first["pools"])
    per_pool_high = (last["plan_s"] - middle["plan_s"]) / (last["pools"] - middle["pools"])
    return {
        "rows": rows,
        "seconds_per_pool_1_to_5": round(per_pool_low, 4),
        "seconds_per_pool_5_to_20": round(per_pool_high, 4),
        # 1.0 is perfectly linear; well above 1 would mean each pool costs more than the last.
        "marginal_cost_ratio": round(per_pool_high / per_pool_low, 2) if per_pool_low else None,
    }


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return value


# --- output ------------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"`python -m benchmarks` on {results['machine']}, Python {results['python']}, "
        f"{results['date']}. {results['repeats']} samples of each after a warm-up, interleaved.",
        "",
        "## Plan time against its floor",
        "",
        "The floor registers the same resources as plain `pulumi.CustomResource`s (same types, "
        "names, parents and inputs) under the same mocks, in the same run. In process; min "
        "(median) of the samples; the CPU ratio compares this process's CPU time (min). The "
        "typed column declares the same resources through their SDK classes (`register_typed`: "
        "the plan's inputs as keyword arguments, no program code, no Outputs between "
        "resources): what the SDK's typed classes cost by themselves, against the same floor.",
        "",
        "| stack | resources | plan (s) | floor (s) | ratio of mins (medians) | CPU ratio "
        "| typed SDK only (s) | typed / floor | goal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in results["plan"]:
        mark = "met" if row["met"] else "missed"
        lines.append(
            f"| {row['stack']} | {row['resources']} | {row['plan_min_s']:.3f} "
            f"({row['plan_median_s']:.3f}) | {row['floor_min_s']:.3f} "
            f"({row['floor_median_s']:.3f}) | {row['ratio_min']:.2f}x "
            f"({row['ratio_median']:.2f}x) | {row['ratio_cpu_min']:.2f}x "
            f"| {row['typed_min_s']:.3f} ({row['typed_resources']} typed) "
            f"| {row['typed_ratio_min']:.2f}x | ≤ {row['goal_ratio']}x ({mark}) |"
        )
    cli_row = results["cli"]
    lines += [
        "",
        f"## The whole `gpustack plan -s {cli_row['stack']} --no-policy` process",
        "",
        "The program runs out of process in its own interpreter; the baseline is the same "
        "command as it ran before (`benchmarks/baseline_plan.py`: in process, type aliases and "
        "the garbage collector kept). Fresh processes, interleaved; min (median).",
        "",
        "| out of process (s) | baseline (s) | ratio of mins (medians) | CPU (s): new / baseline "
        "| same plan | goal |",
        "|---:|---:|---:|---:|---|---|",
        f"| {cli_row['out_of_process_min_s']:.2f} ({cli_row['out_of_process_median_s']:.2f}) "
        f"| {cli_row['baseline_min_s']:.2f} ({cli_row['baseline_median_s']:.2f}) "
        f"| {cli_row['ratio_min']:.2f}x ({cli_row['ratio_median']:.2f}x) "
        f"| {cli_row['out_of_process_cpu_min_s']:.2f} / {cli_row['baseline_cpu_min_s']:.2f} "
        f"({cli_row['ratio_cpu_min']:.2f}x) "
        f"| {'yes' if cli_row['same_plan'] else 'NO'} "
        f"| ≤ {cli_row['goal_ratio']}x ({'met' if cli_row['met'] else 'missed'}) |",
        "",
        f"The floor under any run of the program in a process of its own: a fresh interpreter "
        f"that only loads the {cli_row['stack']} plan's SDK classes "
        f"(`benchmarks/import_floor.py`) takes {cli_row['import_floor_min_s']:.2f} s "
        f"({cli_row['import_floor_median_s']:.2f} s), "
        f"{cli_row['import_floor_ratio_min']:.2f}x of the baseline, in the same interleaved run.",
    ]
    lines += ["", "Where prod's plan time goes (own time, top functions):", ""]
    lines += ["| function | calls | own (s) | share |", "|---|---:|---:|---:|"]
    for row in results["plan_profile"]:
        lines.append(
            f"| `{row['function']}` | {row['calls']} | {row['own_s']:.3f} | "
            f"{row['own_share']:.0%} |"
        )
    policy = results["policy"]
    lines += [
        "",
        "## Policy throughput (gRPC Analyzer path)",
        "",
        f"Pack `{policy['pack']}` ({policy['rules']} rules) over {policy['resources']} resources "
        "(the prod plan replicated with distinct URNs).",
        "",
        "| resources/s (wall, incl. pack start) | resources/s after start-up | start-up (s) "
        "| goal |",
        "|---:|---:|---:|---|",
        f"| {policy['resources_per_s']:,} | {policy['resources_per_s_after_startup']:,} "
        f"| {policy['startup_s']:.2f} | ≥ {policy['goal_per_s']:,.0f} "
        f"({'met' if policy['met'] else 'missed'}) |",
        "",
        "## Plan time as pools grow (dev stack, AKS GPU pools)",
        "",
        "| pools | resources | plan (s) |",
        "|---:|---:|---:|",
    ]
    growth = results["growth"]
    for row in growth["rows"]:
        lines.append(f"| {row['pools']} | {row['resources']} | {row['plan_s']:.3f} |")
    lines += [
        "",
        f"Each pool adds {growth['seconds_per_pool_1_to_5'] * 1000:.0f} ms from 1 to 5 pools and "
        f"{growth['seconds_per_pool_5_to_20'] * 1000:.0f} ms from 5 to 20 (ratio "
        f"{growth['marginal_cost_ratio']}; 1.0 is linear).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument(
        "--policy-resources", type=int, default=5000, help="resources for the policy benchmark"
    )
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)

    plan_rows = bench_plans(args.repeats)
    print(f"plan: {json.dumps(plan_rows)}", file=sys.stderr)
    prod = run_plan(ROOT, "prod", in_process=True)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.system()}",
        "python": platform.python_version(),
        "repeats": args.repeats,
        "plan": plan_rows,
        "plan_profile": profile_plan("prod"),
        "cli": bench_cli(args.repeats, prod),
        "policy": bench_policy(prod, args.policy_resources),
        "growth": bench_growth(args.repeats),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / "RESULTS.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
