"""Sharing property conversions across policies changes speed, never verdicts."""

from __future__ import annotations

import threading

import pulumi_policy.policy as servicer_module
import pytest
from pulumi.runtime.proto import analyzer_pb2 as pb
from pulumi_policy.policy import EnforcementLevel, _PolicyAnalyzerServicer

from gpustack.analyzer import marshal_properties
from policies import PACK_NAME, all_policies
from policies.shared_properties import _RecentResults, restore_sdk, share_property_conversions
from tests.conftest import planned


def test_memo_returns_the_same_result_for_the_same_object_only() -> None:
    calls: list[object] = []
    memo = _RecentResults(lambda value: calls.append(value) or {"n": len(calls)}, capacity=2)
    first, twin = {"a": 1}, {"a": 1}
    assert memo(first) is memo(first)
    assert memo(twin) is not memo(first)  # equal but a different object: converted again
    assert len(calls) == 2


def test_memo_evicts_the_oldest_entry_beyond_its_capacity() -> None:
    calls: list[object] = []
    memo = _RecentResults(lambda value: calls.append(value) or object(), capacity=2)
    a, b, c = object(), object(), object()
    memo(a), memo(b), memo(c), memo(a)
    assert calls == [a, b, c, a]


def test_memo_is_per_thread() -> None:
    memo = _RecentResults(lambda value: object())
    shared = object()
    mine = memo(shared)
    theirs: list[object] = []
    thread = threading.Thread(target=lambda: theirs.append(memo(shared)))
    thread.start()
    thread.join()
    assert theirs[0] is not mine and memo(shared) is mine


def _verdicts(servicer: _PolicyAnalyzerServicer, requests: list[pb.AnalyzeRequest]) -> list:
    diagnostics = []
    for request in requests:
        response = servicer.Analyze(request, None)
        diagnostics += [(d.policyName, d.urn, d.message) for d in response.diagnostics]
    stack = pb.AnalyzeStackRequest(
        resources=[
            pb.AnalyzerResource(type=r.type, properties=r.properties, urn=r.urn, name=r.name)
            for r in requests
        ]
    )
    diagnostics += [
        (d.policyName, d.urn, d.message) for d in servicer.AnalyzeStack(stack, None).diagnostics
    ]
    return sorted(diagnostics)


def test_pack_verdicts_are_identical_with_shared_conversions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = planned("prod")
    # A known-bad copy of every resource too, so there are violations to compare.
    requests = []
    for resource in plan.custom_resources():
        for inputs in (resource.inputs, {**resource.inputs, "minimumTlsVersion": "TLS1_0"}):
            requests.append(
                pb.AnalyzeRequest(
                    type=resource.type,
                    properties=marshal_properties(inputs),
                    urn=resource.urn,
                    name=resource.name,
                )
            )

    def servicer() -> _PolicyAnalyzerServicer:
        return _PolicyAnalyzerServicer(
            PACK_NAME,
            "0.0.1",
            all_policies(),
            EnforcementLevel.ADVISORY,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        )

    for name in ("json_format", "deserialize_properties", "unknown_checking_proxy"):
        monkeypatch.setattr(servicer_module, name, getattr(servicer_module, name))
    for name in ("__init__", "Analyze", "AnalyzeStack", "_get_resource_options",
                 "_get_provider_resource"):
        monkeypatch.setattr(_PolicyAnalyzerServicer, name, _PolicyAnalyzerServicer.__dict__[name])
    restore_sdk()
    before = _verdicts(servicer(), requests)
    assert share_property_conversions() is True
    after = _verdicts(servicer(), requests)
    assert share_property_conversions() is True  # installing twice wraps the SDK once
    again = _verdicts(servicer(), requests)
    assert before, "the bad copies should produce violations"
    # Doubling every resource breaks two stack-wide limits: stack policies are compared too.
    assert {"gpustack-cost-estimate-under-budget", "gpustack-gpu-total-ceiling"} <= {
        policy for policy, _, _ in before}
    assert after == before
    assert again == before
