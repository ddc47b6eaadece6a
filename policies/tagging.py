"""Tagging rules: every taggable Azure resource carries the keys cost reports and owners need."""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path

from pulumi_policy import Severity

from policies.rulebook import (
    ADVISORY,
    ENVIRONMENTS,
    MANDATORY,
    Report,
    Resource,
    Rule,
    names,
    resource_rule,
)

# The installed azure-native SDK, read as text: importing a module to inspect it costs seconds.
_SDK = importlib.util.find_spec("pulumi_azure_native")


@functools.cache
def _accepts_tags(kind: str) -> bool | None:
    """Whether the azure-native resource class of `module:Name` takes a `tags` input.

    Read from the SDK's generated source (the resource's `__init__` stores `tags` in its props);
    None when the SDK or the class file cannot be found.
    """
    if _SDK is None or _SDK.origin is None or ":" not in kind:
        return None
    module, name = kind.split(":", 1)
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    source = Path(_SDK.origin).parent / module / f"{snake}.py"
    try:
        text = source.read_text(encoding="utf-8")
    except OSError:
        return None
    return '__props__.__dict__["tags"] = tags' in text


def _taggable(resource: Resource) -> bool:
    if not resource.type.startswith("azure-native:"):
        return False
    accepts = _accepts_tags(resource.kind)
    if accepts is not None:
        return accepts
    # Without the SDK: tracked resources are the ones with a location or tags.
    return resource.get("location") is not None or resource.get("tags") is not None


def _tags(resource: Resource) -> Mapping[str, object]:
    tags = resource.get("tags")
    return tags if isinstance(tags, Mapping) else {}


@resource_rule(
    Rule(
        id="gpustack-tags-required",
        area="tagging",
        title="Azure resources carry the required tags",
        why="Cost Management splits GPU spend by tag; a resource without an owner or cost "
        "centre becomes spend nobody can account for, and an orphan nobody dares delete.",
        fix="Pass the stack's tags (ComponentContext.tags) to every resource, or set the "
        "missing keys in Pulumi.<env>.yaml tags.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources",
            "https://learn.microsoft.com/azure/cloud-adoption-framework/ready/azure-best-practices/resource-tagging",
        ),
        mirrors=("Azure.Resource.UseTags",),
        settings={
            "requiredTags": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["environment", "owner", "costCenter"],
                "description": "Tag keys every taggable resource must carry.",
            }
        },
    ),
)
def tags_required(resource: Resource, report: Report) -> None:
    if not _taggable(resource):
        return
    present = {key.lower() for key in _tags(resource)}
    missing = [key for key in resource.config["requiredTags"] if key.lower() not in present]
    if missing:
        report(f"missing tags: {names(missing)}")


# The environment a tag must name: the policy config's, else the stack's name when it is one
# of the environments. Not the `prod` every other environment-scoped rule assumes for an
# unconfigured stack (the strictest reading there): here it would call a resource tagged dev
# in a stack named dev mistagged.
_ENVIRONMENT_TO_MATCH = {
    "environment": {
        "type": ["string", "null"],
        "enum": [*ENVIRONMENTS, None],
        "default": None,
        "description": "The environment this stack is (dev, staging or prod); null: the "
        "stack's name, when it is one of them.",
    }
}


@resource_rule(
    Rule(
        id="gpustack-tags-environment-matches",
        area="tagging",
        title="The environment tag names the stack's environment",
        why="A resource tagged dev in the prod stack (or the reverse) is counted in the wrong "
        "budget and may be cleaned up by the wrong automation.",
        fix="Set the environment tag from the stack config (StackConfig.all_tags does).",
        severity=Severity.LOW,
        level=ADVISORY,
        references=(
            "https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources",
        ),
        settings=_ENVIRONMENT_TO_MATCH,
    ),
)
def tags_environment_matches(resource: Resource, report: Report) -> None:
    if not _taggable(resource):
        return
    environment = resource.config.get("environment") or _stack_environment(resource.urn)
    if environment is None:
        return  # no environment to compare the tag with
    tags = _tags(resource)
    key = next((k for k in tags if k.lower() == "environment"), None)
    if key is not None and str(tags[key]).lower() != environment:
        report(f"tag environment is {tags[key]!r}; this is the {environment} stack")


def _stack_environment(urn: str) -> str | None:
    """The environment a stack's name is (`urn:pulumi:<stack>::...`), if it is one."""
    stack = urn.removeprefix("urn:pulumi:").split("::", 1)[0].lower()
    return stack if stack in ENVIRONMENTS else None


POLICIES = [tags_required, tags_environment_matches]
