"""Convert each resource's properties once per Analyze call, not once per policy.

pulumi-policy 1.21's servicer (`_PolicyAnalyzerServicer.Analyze`) turns the request's protobuf
properties into Python values and wraps them in an unknown-checking proxy inside its loop over
policies: with this pack's 46 resource policies that is 46 identical conversions per resource,
about 80 % of the pack's time (measured in-process: 383 resources/s, 1,978 with this change).
AnalyzeStack does the same for every resource once per stack policy.
The conversions are pure and the proxy is read-only, so one shared result is equivalent. The
change is scoped to the pinned SDK version and is a no-op on any other.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pulumi_policy.policy as servicer_module
from google.protobuf import json_format
from pulumi_policy.version import VERSION

# The SDK version whose Analyze loop this was measured against (requirements.txt pins it).
MEASURED_SDK_VERSION = "1.21.0"
# Enough for a large stack's AnalyzeStack call; each entry is one resource's properties.
MEMO_ENTRIES = 20_000


class _RecentResults:
    """Remember, per thread, results for recent arguments, compared by identity.

    Analyze converts one message once per policy; AnalyzeStack converts every resource's message
    once per stack policy, so the memo holds a stack's worth of entries. The gRPC server runs
    calls on a thread pool and one thread handles one call at a time, so a per-thread memo never
    mixes up two resources. Entries hold their argument, so its id cannot be reused.
    """

    def __init__(self, convert: Callable[[Any], Any], capacity: int = MEMO_ENTRIES) -> None:
        self._convert = convert
        self._capacity = capacity
        self._local = threading.local()

    def __call__(self, argument: Any) -> Any:
        entries: OrderedDict[int, tuple[Any, Any]] | None = getattr(self._local, "entries", None)
        if entries is None:
            entries = self._local.entries = OrderedDict()
        key = id(argument)
        hit = entries.get(key)
        if hit is not None and hit[0] is argument:
            entries.move_to_end(key)
            return hit[1]
        result = self._convert(argument)
        entries[key] = (argument, result)
        if len(entries) > self._capacity:
            entries.popitem(last=False)
        return result


class _JsonFormat:
    """`json_format` with MessageToDict shared for the same message object."""

    def __init__(self) -> None:
        self._message_to_dict = _RecentResults(json_format.MessageToDict)

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return json_format.MessageToDict(message, *args, **kwargs)
        return self._message_to_dict(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(json_format, name)


def share_property_conversions() -> bool:
    """Install the shared conversions; False (and nothing changed) on an unmeasured SDK."""
    if VERSION != MEASURED_SDK_VERSION:
        return False
    servicer_module.json_format = _JsonFormat()  # type: ignore[assignment]
    servicer_module.deserialize_properties = _RecentResults(servicer_module.deserialize_properties)
    servicer_module.unknown_checking_proxy = _RecentResults(servicer_module.unknown_checking_proxy)
    return True
