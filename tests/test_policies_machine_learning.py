"""Azure Machine Learning rules: a public workspace endpoint and compute with local auth."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from policies import machine_learning as ml
from tests.policy_runs import check_resource

WORKSPACE = "azure-native:machinelearningservices:Workspace"
COMPUTE = "azure-native:machinelearningservices:Compute"

GOOD_WORKSPACE = {"workspaceName": "mlw", "publicNetworkAccess": "Disabled",
                  "identity": {"type": "SystemAssigned"}}
GPU_CLUSTER = {"workspaceName": "mlw", "computeName": "a100", "properties": {
    "computeType": "AmlCompute", "disableLocalAuth": True,
    "properties": {"vmSize": "Standard_NC24ads_A100_v4", "vmPriority": "LowPriority",
                   "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4}}}}


def test_private_workspace_passes() -> None:
    assert check_resource(ml.ml_workspace_public_network_access, WORKSPACE, GOOD_WORKSPACE) == []
    lowercase = {**GOOD_WORKSPACE, "publicNetworkAccess": "disabled"}
    assert check_resource(ml.ml_workspace_public_network_access, WORKSPACE, lowercase) == []


@pytest.mark.parametrize(("props", "says"), [
    ({"workspaceName": "mlw"}, "publicNetworkAccess is not set (Azure's default is Enabled)"),
    ({"publicNetworkAccess": "Enabled"}, "publicNetworkAccess is 'Enabled'"),
    ({**GOOD_WORKSPACE, "allowPublicAccessWhenBehindVnet": True},
     "allowPublicAccessWhenBehindVnet is True"),
])
def test_public_workspace_is_reported(props: dict[str, Any], says: str) -> None:
    (message,) = check_resource(ml.ml_workspace_public_network_access, WORKSPACE, props)
    assert says in message


def test_versioned_workspace_type_is_judged_like_the_default_one() -> None:
    versioned = "azure-native:machinelearningservices/v20240401:Workspace"
    assert check_resource(ml.ml_workspace_public_network_access, versioned, {})
    assert check_resource(ml.ml_workspace_public_network_access, versioned, GOOD_WORKSPACE) == []


def test_compute_without_local_auth_passes_and_with_it_is_reported() -> None:
    assert check_resource(ml.ml_compute_local_auth_disabled, COMPUTE, GPU_CLUSTER) == []
    for value, says in ((None, "not set (local authentication is on)"), (False, "False")):
        props = {**GPU_CLUSTER, "properties": {**GPU_CLUSTER["properties"],
                                               "disableLocalAuth": value}}
        if value is None:
            del props["properties"]["disableLocalAuth"]
        (message,) = check_resource(ml.ml_compute_local_auth_disabled, COMPUTE, props)
        assert f"properties.disableLocalAuth is {says}" in message


def test_every_compute_type_is_held_to_it() -> None:
    instance = {"properties": {"computeType": "ComputeInstance",
                               "properties": {"vmSize": "Standard_NC4as_T4_v3"}}}
    assert check_resource(ml.ml_compute_local_auth_disabled, COMPUTE, instance)


def test_unknown_settings_during_preview_are_not_judged() -> None:
    props = {"publicNetworkAccess": UNKNOWN_STRING_VALUE}
    with pytest.raises(UnknownValueError):
        check_resource(ml.ml_workspace_public_network_access, WORKSPACE, props)


def test_rules_ignore_other_types() -> None:
    assert check_resource(ml.ml_compute_local_auth_disabled, WORKSPACE, {}) == []
    assert check_resource(ml.ml_workspace_public_network_access, COMPUTE, {}) == []
