"""Compose one environment (dev, staging, prod) from its validated config."""

from stacks.config import ConfigError, StackConfig, load_stack_config, parse_config
from stacks.environment import build

__all__ = ["ConfigError", "StackConfig", "build", "load_stack_config", "parse_config"]
