"""Entry point the Pulumi CLI runs (`python -m pulumi.policy <engine> .` in this folder)."""

import sys
from pathlib import Path

# The pack imports this repository's packages (policies, gpustack): find them from the checkout
# even when the virtualenv lacks the project or holds a stale editable install of it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policies import PACK_NAME, all_policies
from policies.shared_properties import share_property_conversions

share_property_conversions()

PolicyPack(
    name=PACK_NAME,
    policies=all_policies(),
    description="Security, reliability, GPU and cost guardrails for Azure GPU stacks.",
    provider="azure-native",
)
