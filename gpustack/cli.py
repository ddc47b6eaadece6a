"""`gpustack`: plan a Pulumi program offline, browse the GPU catalog, refresh prices, diff plans.

Exit codes (docs/plan-json.md): 0 ok; 1 only for mandatory policy violations or a quota
shortfall (`--quota-from`): the plan is valid but `pulumi up` would fail; 2 for every error
(input, program, environment or an internal error). Errors are one `error: ...` paragraph on
stderr; a Python traceback only with GPUSTACK_DEBUG=1.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pulumi

from gpustack import catalog, diff, prices
from gpustack.analyzer import PolicyPackError, PolicyResult, run_policy_pack
from gpustack.arguments import (
    UsageError,
    check_out_path,
    emit,
    read_text_argument,
    silence_stdout,
)
from gpustack.capacity import QuotaFileError, QuotaUsage, load_quota_usage
from gpustack.diagram import render_mermaid
from gpustack.engine import Plan, ProgramError, run_plan
from gpustack.estimates import plan_estimates
from gpustack.project import ConfigOverride, ProjectError, find_program, parse_override
from gpustack.regions import check_region
from gpustack.report import (
    plan_document,
    render_json,
    render_markdown,
    render_table,
    unpriced_warnings,
)
from gpustack.sarif import render_sarif
from gpustack.stack_outputs import StackOutputs, parse_stack_outputs

EXIT_OK = 0
EXIT_POLICY = 1
EXIT_ERROR = 2

# This repository's root: the home of the policy pack.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The files that make a directory a Pulumi project, as the Pulumi CLI looks for them.
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


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors in the one-paragraph `error: ...` form, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line, one subcommand per job."""
    parser = _Parser(
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
    plan.add_argument(
        "--stack-outputs",
        action="append",
        default=[],
        metavar="STACK=FILE",
        help="another stack's outputs for the program's StackReference to it: FILE as "
        "`pulumi stack output --stack STACK --json` prints it (repeatable)",
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


def plan_stack(
    program: Path,
    stack: str,
    preview: bool,
    config: Sequence[ConfigOverride] = (),
    stack_outputs: Sequence[StackOutputs] = (),
) -> Plan:
    """Run the program, turning every user-facing failure into `PlanFailed`."""
    try:
        return run_plan(
            program, stack, preview=preview, config_overrides=config, stack_outputs=stack_outputs
        )
    except pulumi.RunError as error:
        raise PlanFailed(f"error: {error}") from None
    except (ProgramError, ProjectError) as error:
        raise PlanFailed(f"error: {error}") from None


def run_plan_command(args: argparse.Namespace) -> int:
    """`gpustack plan`: every file argument is checked before the program runs."""
    try:
        _check_stack_name(args.stack)
        check_out_path(args.out, "--out")
        if not args.no_policy:
            _check_policy_pack(args.policy_pack)
        quota_usage = _quota_usage(args.quota_from)
        quota_region = _quota_region(args.quota_region)
        stack_outputs = parse_stack_outputs(args.stack_outputs)
        policy_config = None
        if not args.no_policy:
            program_dir = args.program if args.program is not None else find_program(Path.cwd())
            given = args.policy_config or default_policy_config(
                program_dir, args.policy_pack, args.stack)
            policy_config = load_policy_config(given)
    except UsageError as error:
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
        plan = plan_stack(program, args.stack, args.preview, overrides, stack_outputs)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except PlanFailed as failure:
        print(failure, file=sys.stderr)
        return EXIT_ERROR
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    document = plan_document(plan)
    document.update(plan_estimates(plan, quota_usage, quota_region))
    quota_regions = sorted({row["region"] for row in document["capacity"]["quota"]})
    if quota_usage is not None and quota_region is None and len(quota_regions) > 1:
        # Which region the file covers is an input question, not a shortfall (exit 2, not 1).
        print(
            f"error: --quota-from: the plan uses {', '.join(quota_regions)} and a list-usage "
            "file covers one region; say which with --quota-region",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if quota_region is not None:
        planned = _planned_regions(document)
        if quota_region not in planned:
            print(
                f"error: --quota-region {quota_region}: the plan has no VMs or node pools there "
                f"(planned regions: {', '.join(planned) or 'none'}); give the region the "
                "--quota-from file was listed for",
                file=sys.stderr,
            )
            return EXIT_ERROR
    policy = None
    if not args.no_policy:
        try:
            policy = check_policy(plan, args.policy_pack, policy_config)
        except PlanFailed as failure:
            print(failure, file=sys.stderr)
            return EXIT_ERROR
        document["policy"] = policy.to_json()
        document["policy"]["exceptions"] = policy_exceptions(policy_config)
    render = _renderers()[args.format]
    if args.format == "sarif":
        rules = policy.rules if policy else ()
        render = functools.partial(render_sarif, rules=rules, program_dir=plan.program_dir)
    for warning in unpriced_warnings(document):
        print(f"warning: {warning}", file=sys.stderr)
    try:
        emit(render(document), args.out)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if document["capacity"]["errors"]:
        for error in document["capacity"]["errors"]:
            print(f"error: {error}", file=sys.stderr)
        return EXIT_POLICY
    if policy is not None and policy.mandatory:
        print(f"error: {len(policy.mandatory)} mandatory policy violations", file=sys.stderr)
        return EXIT_POLICY
    return EXIT_OK


# Pulumi stack names: letters, digits, '-', '_' and '.' (the stack file is Pulumi.<stack>.yaml).
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _check_stack_name(stack: str) -> None:
    if not _STACK_NAME.match(stack) or stack in {".", ".."}:
        raise UsageError(
            f"--stack {stack!r}: a stack name is letters, digits, '-', '_' and '.' (at most 100), "
            "e.g. dev; give the stack name alone, not org/project/stack"
        )


def _check_policy_pack(pack: Path) -> None:
    if not (pack / "PulumiPolicy.yaml").is_file():
        raise UsageError(
            f"--policy-pack {pack}: no PulumiPolicy.yaml there; give a pulumi-policy pack "
            "directory, or --no-policy"
        )


def _planned_regions(document: dict[str, Any]) -> list[str]:
    """Regions the plan places resources in: quota rows and every resource's `location`."""
    regions = {row["region"] for row in document["capacity"]["quota"]}
    for resource in document["resources"]:
        location = (resource.get("inputs") or {}).get("location")
        if isinstance(location, str):
            regions.add(location.replace(" ", "").lower())
    return sorted(regions)


def _quota_usage(path: Path | None) -> list[QuotaUsage] | None:
    if path is None:
        return None
    try:
        return load_quota_usage(path)
    except QuotaFileError as error:
        raise UsageError(f"--quota-from: {error}") from None


def _quota_region(region: str | None) -> str | None:
    if region is None:
        return None
    try:
        return check_region(region.strip().lower())
    except ValueError as error:
        raise UsageError(f"--quota-region: {error}") from None


def default_policy_config(program: Path | None, pack: Path, stack: str) -> Path | None:
    """`<pack>/config/<stack>.json`, but only for the program the pack sits in (this project).

    Any other program gets the pack's defaults unless `--policy-config` names a file, even
    when its stack happens to share a name with one of ours.
    """
    own = pack / "config" / f"{stack}.json"
    if program is not None and program.resolve() == pack.resolve().parent and own.exists():
        return own
    return None


def policy_exceptions(config: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rules the policy config waives or loosens on purpose: those with a `_comment` note."""
    return [
        {"rule": name, "level": value.get("enforcementLevel"), "note": value["_comment"]}
        for name, value in sorted((config or {}).items())
        if isinstance(value, dict) and isinstance(value.get("_comment"), str)
    ]


def load_policy_config(path: Path | None) -> dict[str, Any] | None:
    """Read `--policy-config` (the `pulumi preview --policy-pack-config` JSON object)."""
    if path is None:
        return None
    text = read_text_argument(path, "--policy-config")
    try:
        config = json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as error:
        raise UsageError(f"--policy-config {path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise UsageError(
            f"--policy-config {path}: expected a JSON object of policy name -> enforcement "
            f'level or settings (e.g. {{"gpustack-gpu-total-ceiling": {{"maxGpus": 8}}}}), '
            f"not a {type(config).__name__}"
        )
    return config


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_policy(plan: Plan, pack: Path, config: dict[str, Any] | None) -> PolicyResult:
    """Run the policy pack over the plan with its policy config (read before planning)."""
    resources = [resource.analyzer_view() for resource in plan.resources]
    # This repository's pack runs in this interpreter (same requests, no gRPC: several times
    # faster); any other pack runs in its own process, as the Pulumi CLI runs it, so its modules
    # can never collide with ours.
    in_process = pack.resolve() == DEFAULT_POLICY_PACK.resolve()
    try:
        return run_policy_pack(pack, resources, config, in_process=in_process)
    except PolicyPackError as error:
        raise PlanFailed(f"error: {error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gpustack` console script: the exit-code contract holds for every
    failure, including ones inside gpustack itself."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as stop:
        # Only code gpustack runs (a program's sys.exit) raises this past a handler; its status
        # must not pass for a verdict (1 would read as a policy violation).
        print(
            f"error: the planned code called sys.exit({stop.code!r}) instead of finishing",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except OSError as error:
        if error.errno not in _ENVIRONMENT_ERRNOS:
            return _internal_error(error)
        # The machine, not gpustack: a full disk or a read-only place to write the report to.
        silence_stdout()
        print(f"error: cannot write the output ({error.strerror})", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:  # the contract: exit 2, never a bare traceback
        return _internal_error(error)


# Write failures that say the machine is full or read-only, not that gpustack has a bug.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}


def _internal_error(error: BaseException) -> int:
    """Exit 2 with one line naming the failure as gpustack's bug (the traceback on request)."""
    if os.environ.get("GPUSTACK_DEBUG") == "1":
        traceback.print_exception(error)
    print(
        f"error: internal error in gpustack ({type(error).__name__}: {error}). This is a "
        "bug; rerun with GPUSTACK_DEBUG=1 for the traceback and report it.",
        file=sys.stderr,
    )
    return EXIT_ERROR


def run() -> NoReturn:
    """The console script: `main`, then exit without tearing the interpreter down.

    Everything gpustack writes is flushed first and every resource it holds is released by
    then (the monitor server, temporary directories); what teardown would still do is free
    the objects of a few hundred imported modules, which the OS does faster at exit.
    """
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    except (OSError, ValueError) as error:
        # What did not reach stdout is lost: that run did not succeed, whatever it found.
        print(f"error: cannot write to stdout ({error})", file=sys.stderr)
        code = EXIT_ERROR
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
