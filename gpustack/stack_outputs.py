"""Other stacks' outputs, given on the command line for the program's `StackReference`s.

Under the Pulumi CLI a `StackReference` reads another stack's outputs from the backend. Offline
there is no backend: without help its outputs are unknown (`--preview`) or absent (a full plan,
where `require_output` fails). `gpustack plan --stack-outputs STACK=FILE` supplies them, FILE
being what `pulumi stack output --stack STACK --json` prints (a JSON object, output name to
value; add `--show-secrets` for real secret values). Without `--show-secrets` that command
prints a secret output as the text `[secret]`: such an output stays secret here, as the backend
would mark it, with that text as its value.

STACK is matched as the Pulumi CLI resolves a stack reference's name: `org/project/stack` in
full, or `project/stack` and `stack` in the current organization and project. Offline the
organization is not known, so `project/stack` also matches a reference naming any organization,
and the reverse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpustack.arguments import UsageError, read_text_argument

OPTION = "--stack-outputs"
SECRET_SHOWN_AS = "[secret]"
"""How `pulumi stack output --json` prints a secret output without `--show-secrets`."""


@dataclass(frozen=True)
class StackOutputs:
    """One other stack's outputs: `outputs` by name, and which of them are secret."""

    stack: str
    outputs: Mapping[str, Any]
    secret_names: tuple[str, ...]


def parse_stack_outputs(texts: Sequence[str]) -> list[StackOutputs]:
    """Each `STACK=FILE` argument read and checked, or a `UsageError` naming it and the file."""
    given: list[StackOutputs] = []
    seen: dict[tuple[str, ...], str] = {}
    for text in texts:
        stack, separator, file_name = text.partition("=")
        stack = stack.strip()
        if not separator or not stack or not file_name.strip():
            raise UsageError(
                f"{OPTION} {text!r}: expected STACK=FILE, e.g. acme/network/prod=network.json "
                "(FILE as `pulumi stack output --stack acme/network/prod --json` prints it)"
            )
        parts = tuple(stack.split("/"))
        if len(parts) > 3 or not all(parts):
            raise UsageError(
                f"{OPTION} {text!r}: {stack!r} is not a stack name; give org/project/stack, "
                "project/stack or stack"
            )
        if parts in seen:
            raise UsageError(f"{OPTION}: {stack!r} is given twice ({seen[parts]!r} and {text!r})")
        seen[parts] = text
        path = Path(file_name)
        option = f"{OPTION} {stack}="
        try:
            document = json.loads(read_text_argument(path, option))
        except UsageError as error:  # it names the option and file as `OPTION FILE`
            raise UsageError(str(error).replace(f"{option} ", option, 1)) from None
        except json.JSONDecodeError as error:
            raise UsageError(
                f"{option}{path}: not JSON ({error.msg} at line {error.lineno}); give what "
                "`pulumi stack output --json` prints"
            ) from None
        if not isinstance(document, dict):
            raise UsageError(
                f"{option}{path}: a JSON {type(document).__name__}; expected an object of output "
                "names to values, as `pulumi stack output --json` prints"
            )
        secret_names = tuple(
            sorted(name for name, value in document.items() if value == SECRET_SHOWN_AS)
        )
        given.append(StackOutputs(stack, document, secret_names))
    return given


def find_stack_outputs(
    reference: str, given: Sequence[StackOutputs], project: str
) -> StackOutputs | None:
    """The outputs given for the stack `reference` names (in the program's `project`), if any."""
    wanted = _qualified(reference, project)
    for candidate in given:
        if _same_stack(wanted, _qualified(candidate.stack, project)):
            return candidate
    return None


def _qualified(name: str, project: str) -> tuple[str | None, str, str]:
    """(organization or None, project, stack) as the CLI resolves a stack reference's name."""
    parts = name.split("/")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return None, parts[0], parts[1]
    return None, project, name


def _same_stack(a: tuple[str | None, str, str], b: tuple[str | None, str, str]) -> bool:
    organizations_agree = a[0] is None or b[0] is None or a[0] == b[0]
    return organizations_agree and a[1:] == b[1:]
