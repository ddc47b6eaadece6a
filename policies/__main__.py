"""Entry point the Pulumi CLI runs (`python -m pulumi.policy <engine> .` in this folder)."""

import gc
import os
import sys
from pathlib import Path

# The pack imports this repository's packages (policies, gpustack): find them from the checkout
# even when the virtualenv lacks the project or holds a stale editable install of it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policies import PACK_NAME, all_policies
from policies.shared_properties import restore_sdk, share_property_conversions

# GPUSTACK_POLICY_SDK_ONLY=1 runs the policy SDK as shipped: the baseline of
# `python -m benchmarks.policy_throughput`, and a way to rule the speed-ups out of a verdict.
if os.environ.get("GPUSTACK_POLICY_SDK_ONLY") == "1":
    restore_sdk()
else:
    share_property_conversions()
    # The pack lives for one `pulumi preview/up`. What the imports left on the heap (the
    # azure-native facts, the SDKs) never becomes garbage; frozen, the collector stops
    # re-scanning it on every pass, which cost more than the rules themselves.
    gc.freeze()

PolicyPack(
    name=PACK_NAME,
    policies=all_policies(),
    description="Security, reliability, GPU and cost guardrails for Azure GPU stacks.",
    provider="azure-native",
)
