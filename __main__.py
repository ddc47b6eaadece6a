"""The azure-gpu-stacks Pulumi program: validate this stack's config, then build it."""

from stacks import build, load_stack_config

build(load_stack_config())
