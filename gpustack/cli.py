"""`gpustack`: plan a Pulumi program offline, browse the GPU catalog, refresh prices, diff plans.

Exit codes: 0 ok; 1 mandatory policy violations or a quota shortfall (`--quota-from`): the plan
is valid but `pulumi up` would fail; 2 config, program or usage errors.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pulumi

from gpustack import catalog, diff, prices
from gpustack.analyzer import PolicyPackError, PolicyResult, run_policy_pack
from gpustack.capacity import QuotaFileError, load_quota_usage
from gpustack.diagram import render_mermaid
from gpustack.engine import Plan, ProgramError, run_plan
from gpustack.estimates import plan_estimates
from gpustack.project import ConfigOverride, ProjectError, parse_override
from gpustack.report import plan_document, render_json, render_markdown, render_table
from gpustack.sarif import render_sarif

EXIT_OK = 0
EXIT_POLICY = 1
EXIT_ERROR = 2

# This repository's root: the home of the policy pack.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The files that make a directory a Pulumi project, as the Pulumi CLI looks for them.
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml")
DEFAULT_POLICY_PACK = PROJECT_ROOT / "policies"

Renderer = Callable[[dict[str, Any]], str]


class PlanFailed(Exception):
    """The program or its config could not be planned; the message is for the user."""


def _renderers() -> dict[str, Renderer]:
    renderers: dict[str, Renderer] = {
        "table": render_table,
        "json": render_json,
        "markdown": render_markdown,
        "mermaid": render_mermaid,
        "sarif": render_sarif,
    }
    return renderers


def build_parser() -> argparse.ArgumentParser:
    """The command line, one subcommand per job."""
    parser = argparse.ArgumentParser(
        prog="gpustack",
        description="GPU stacks on Azure: offline plans, policy, cost and capacity.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser("plan", help="run a stack's Pulumi program offline and report it")
    plan.add_argument("--stack", "-s", default="dev", help="stack name (default: dev)")
    plan.add_argument(
        "--program",
        type=Path,
        help="the Pulumi project directory (default: the closest directory holding a "
        "Pulumi.yaml, from the current one upwards, as the Pulumi CLI finds it)",
    )
    plan.add_argument(
        "--format", "-f", default="table", choices=sorted(_renderers()), help="report format"
    )
    plan.add_argument("--out", "-o", type=Path, help="write the report to this file")
    plan.add_argument(
        "--preview", action="store_true", help="leave computed outputs unknown, as `pulumi preview`"
    )
    plan.add_argument(
        "--quota-from",
        type=Path,
        metavar="FILE",
        help="check vCPU quota against `az vm list-usage --location <region> -o json` output",
    )
    plan.add_argument(
        "--quota-region", help="the region the --quota-from file covers (default: the plan's)"
    )
    plan.add_argument(
        "--policy-pack",
        type=Path,
        default=DEFAULT_POLICY_PACK,
        metavar="DIR",
        help="policy pack to run, as `pulumi preview --policy-pack` (default: this repo's)",
    )
    plan.add_argument(
        "--policy-config",
        type=Path,
        metavar="FILE",
        help="policy config JSON (default: <policy pack>/config/<stack>.json when it exists)",
    )
    plan.add_argument("--no-policy", action="store_true", help="skip the policy pack")
    plan.add_argument(
        "--config",
        "-c",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config value for this plan, as `pulumi up --config` (repeatable)",
    )
    plan.add_argument(
        "--config-secret",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="as --config, and the value is secret (as `pulumi config set --secret`)",
    )
    plan.set_defaults(handler=run_plan_command)

    diff_parser = commands.add_parser("diff", help="compare two plan JSON files (PR base, head)")
    diff.add_diff_arguments(diff_parser)
    diff_parser.set_defaults(handler=diff.run_diff)

    catalog_parser = commands.add_parser("catalog", help="the supported VM sizes and their prices")
    catalog.add_catalog_arguments(catalog_parser)
    catalog_parser.set_defaults(handler=catalog.run_catalog)

    prices_parser = commands.add_parser("prices", help="the price snapshot")
    prices.add_prices_arguments(prices_parser)
    prices_parser.set_defaults(handler=prices.run_prices)
    return parser


def find_program(start: Path) -> Path | None:
    """The closest directory at or above `start` holding a Pulumi.yaml, or None.

    The Pulumi CLI finds its project the same way (`DetectProjectPathFrom` walks up from the
    working directory), so `gpustack plan` and `pulumi preview` plan the same program.
    """
    start = start.resolve()
    for directory in (start, *start.parents):
        if any((directory / name).is_file() for name in PROJECT_FILES):
            return directory
    return None


def plan_stack(
    program: Path, stack: str, preview: bool, config: Sequence[ConfigOverride] = ()
) -> Plan:
    """Run the program, turning every user-facing failure into `PlanFailed`."""
    try:
        return run_plan(program, stack, preview=preview, config_overrides=config)
    except pulumi.RunError as error:
        raise PlanFailed(str(error)) from None
    except (ProgramError, ProjectError) as error:
        raise PlanFailed(f"error: {error}") from None


def run_plan_command(args: argparse.Namespace) -> int:
    """`gpustack plan`."""
    try:
        quota_usage = load_quota_usage(args.quota_from) if args.quota_from else None
    except QuotaFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    program = args.program if args.program is not None else find_program(Path.cwd())
    if program is None:
        print(
            f"error: no Pulumi.yaml in {Path.cwd()} or any directory above it; run gpustack "
            "plan inside a Pulumi project, or pass --program <project dir>",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        overrides = [parse_override(text) for text in args.config]
        overrides += [parse_override(text, secret=True) for text in args.config_secret]
        plan = plan_stack(program, args.stack, args.preview, overrides)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except PlanFailed as failure:
        print(failure, file=sys.stderr)
        return EXIT_ERROR
    document = plan_document(plan)
    document.update(plan_estimates(plan, quota_usage, args.quota_region))
    policy = None
    if not args.no_policy:
        try:
            policy = check_policy(plan, args.policy_pack, args.policy_config)
        except PlanFailed as failure:
            print(failure, file=sys.stderr)
            return EXIT_ERROR
        document["policy"] = policy.to_json()
    render = _renderers()[args.format]
    if args.format == "sarif":
        rules = policy.rules if policy else ()
        render = functools.partial(render_sarif, rules=rules, program_dir=plan.program_dir)
    _emit(render(document), args.out)
    if document["capacity"]["errors"]:
        for error in document["capacity"]["errors"]:
            print(f"error: {error}", file=sys.stderr)
        return EXIT_POLICY
    if policy is not None and policy.mandatory:
        print(f"error: {len(policy.mandatory)} mandatory policy violations", file=sys.stderr)
        return EXIT_POLICY
    return EXIT_OK


def check_policy(plan: Plan, pack: Path, config_file: Path | None) -> PolicyResult:
    """Run the policy pack over the plan, with the stack's policy config when there is one."""
    if config_file is None and (pack / "config" / f"{plan.stack}.json").exists():
        config_file = pack / "config" / f"{plan.stack}.json"
    try:
        config = json.loads(config_file.read_text()) if config_file else None
    except (OSError, json.JSONDecodeError) as error:
        raise PlanFailed(f"error: policy config {config_file}: {error}") from None
    resources = [resource.analyzer_view() for resource in plan.resources]
    # This repository's pack runs in this interpreter (same requests, no gRPC: several times
    # faster); any other pack runs in its own process, as the Pulumi CLI runs it, so its modules
    # can never collide with ours.
    in_process = pack.resolve() == DEFAULT_POLICY_PACK.resolve()
    try:
        return run_policy_pack(pack, resources, config, in_process=in_process)
    except PolicyPackError as error:
        raise PlanFailed(f"error: {error}") from None


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gpustack` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
