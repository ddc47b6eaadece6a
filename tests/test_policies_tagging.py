"""Tagging rules: required keys on every taggable resource, and the right environment."""

from __future__ import annotations

from policies import tagging
from tests.policy_runs import check_resource

GROUP = "azure-native:resources:ResourceGroup"
STORAGE = "azure-native:storage:StorageAccount"
SUBNET = "azure-native:network:Subnet"
DEV = {"environment": "dev"}
PROD = {"environment": "prod"}


def test_taggable_resources_carry_the_required_tags() -> None:
    config = {"requiredTags": ["environment", "owner"]}
    tagged = {"location": "eastus", "tags": {"Environment": "dev", "owner": "ml"}}
    assert check_resource(tagging.tags_required, GROUP, tagged, config=config) == []
    (message,) = check_resource(tagging.tags_required, GROUP, {"location": "eastus",
                                                                "tags": {"owner": "ml"}},
                                config=config)
    assert "missing tags: environment" in message
    # A storage account without tags or location is still taggable; a subnet is not.
    assert check_resource(tagging.tags_required, STORAGE, {}, config=config)
    assert check_resource(tagging.tags_required, SUBNET, {}, config=config) == []


def test_environment_tag_matches_the_stack() -> None:
    tags = {"tags": {"environment": "dev"}}
    assert check_resource(tagging.tags_environment_matches, GROUP, tags, config=DEV) == []
    (message,) = check_resource(tagging.tags_environment_matches, GROUP, tags, config=PROD)
    assert "tag environment is 'dev'; this is the prod stack" in message


def test_without_a_policy_config_the_tag_is_compared_with_the_stacks_name() -> None:
    # Before: an unconfigured stack was taken for prod, so a resource tagged dev in the stack
    # named dev was reported ("tag environment is 'dev'; this is the prod stack").
    tags = {"tags": {"environment": "dev"}}
    assert check_resource(tagging.tags_environment_matches, GROUP, tags) == []
    prod_tags = {"tags": {"environment": "prod"}}
    (message,) = check_resource(tagging.tags_environment_matches, GROUP, prod_tags)
    assert "tag environment is 'prod'; this is the dev stack" in message  # the URN's stack: dev
    # A stack whose name is no environment has nothing to compare with.
    assert tagging._stack_environment("urn:pulumi:feature-42::lab::t::n") is None
    assert tagging._stack_environment("urn:pulumi:Staging::lab::t::n") == "staging"


def test_every_tagging_rule_is_tested() -> None:
    assert {p.name for p in tagging.POLICIES} == {
        "gpustack-tags-required", "gpustack-tags-environment-matches"}
