"""`gpustack`: plan a Pulumi program offline, browse the GPU catalog, refresh prices, diff plans.

Exit codes: 0 ok; 1 mandatory policy violations; 2 config, program or usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pulumi

from gpustack import catalog, prices
from gpustack.engine import Plan, ProgramError, run_plan
from gpustack.project import ProjectError
from gpustack.report import plan_document, render_json, render_markdown, render_table

EXIT_OK = 0
EXIT_POLICY = 1
EXIT_ERROR = 2

# This repository's root: the default program and the home of the policy pack.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

Renderer = Callable[[dict[str, Any]], str]


class PlanFailed(Exception):
    """The program or its config could not be planned; the message is for the user."""


def _renderers() -> dict[str, Renderer]:
    renderers: dict[str, Renderer] = {
        "table": render_table,
        "json": render_json,
        "markdown": render_markdown,
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
        default=PROJECT_ROOT,
        help="a Pulumi Python project directory (default: this project)",
    )
    plan.add_argument(
        "--format", "-f", default="table", choices=sorted(_renderers()), help="report format"
    )
    plan.add_argument("--out", "-o", type=Path, help="write the report to this file")
    plan.add_argument(
        "--preview", action="store_true", help="leave computed outputs unknown, as `pulumi preview`"
    )
    plan.set_defaults(handler=run_plan_command)

    catalog_parser = commands.add_parser("catalog", help="the supported VM sizes and their prices")
    catalog.add_catalog_arguments(catalog_parser)
    catalog_parser.set_defaults(handler=catalog.run_catalog)

    prices_parser = commands.add_parser("prices", help="the price snapshot")
    prices.add_prices_arguments(prices_parser)
    prices_parser.set_defaults(handler=prices.run_prices)
    return parser


def plan_stack(program: Path, stack: str, preview: bool) -> Plan:
    """Run the program, turning every user-facing failure into `PlanFailed`."""
    try:
        return run_plan(program, stack, preview=preview)
    except pulumi.RunError as error:
        raise PlanFailed(str(error)) from None
    except (ProgramError, ProjectError) as error:
        raise PlanFailed(f"error: {error}") from None


def run_plan_command(args: argparse.Namespace) -> int:
    """`gpustack plan`."""
    try:
        plan = plan_stack(args.program, args.stack, args.preview)
    except PlanFailed as failure:
        print(failure, file=sys.stderr)
        return EXIT_ERROR
    document = plan_document(plan)
    _emit(_renderers()[args.format](document), args.out)
    return EXIT_OK


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
