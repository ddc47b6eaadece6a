"""Resource shapes come from the program's own SDK, described in the program's process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pulumi
import pytest
from pulumi_azure_native import compute, containerservice, keyvault, storage

from gpustack import sdk_types
from gpustack.hosts import python_exec, sdk_shapes
from gpustack.mocks import AzureMocks
from tests.conftest import FIXTURES, ROOT

PROGRAMS = FIXTURES / "programs"
VAULT = "azure-native:keyvault:Vault"


def described(cls: type, nested: bool = True) -> dict[str, Any]:
    """What the shim sends, after the JSON round trip it takes on the wire."""
    return json.loads(json.dumps(sdk_shapes.describe_resource(cls, nested)))


@pytest.mark.parametrize(
    ("cls", "token"),
    [
        (keyvault.Vault, VAULT),
        (storage.StorageAccount, "azure-native:storage:StorageAccount"),
        (containerservice.ManagedCluster, "azure-native:containerservice:ManagedCluster"),
        (compute.VirtualMachineScaleSet, "azure-native:compute:VirtualMachineScaleSet"),
    ],
)
def test_a_reported_description_answers_exactly_as_reading_the_sdk_does(
    cls: type, token: str
) -> None:
    shapes = sdk_types.Shapes()
    shapes.report(token, described(cls))
    assert shapes.reported(token)
    assert shapes.resource_outputs(token) == sdk_types.resource_outputs(token)
    assert shapes.resource_inputs(token) == sdk_types.resource_inputs(token)
    assert shapes.secret_outputs(token) == sdk_types.secret_outputs(token)
    assert shapes.api_version(token) == sdk_types.api_version(token)
    # Every nested type a full plan fills in is in the description, read the same way.
    for field in shapes.resource_outputs(token):
        if field.object_type is not None:
            assert shapes.object_fields(field.object_type) == sdk_types.object_fields(
                field.object_type
            )


def test_full_plan_answers_are_the_same_from_a_description_and_from_the_sdk() -> None:
    token = "azure-native:containerservice:ManagedCluster"
    inputs = {"resourceGroupName": "rg", "location": "eastus2", "dnsPrefix": "gpu"}
    args = pulumi.runtime.MockResourceArgs(token, "aks", inputs, None, "", True)
    from_sdk = AzureMocks(config={}).new_resource(args)
    told = AzureMocks(config={})
    told.shapes.report(token, described(containerservice.ManagedCluster))
    assert told.new_resource(args) == from_sdk
    assert from_sdk[1]["azureApiVersion"]


def test_a_description_wins_over_the_planners_own_sdk() -> None:
    shapes = sdk_types.Shapes()
    shapes.report(
        VAULT,
        {
            "outputs": [["vaultUri", "str", False, None], ["sku", "enum", False, "premium"]],
            "inputs": ["vaultName"],
            "secrets": ["vaultUri"],
            "api_version": "2019-09-01",
            "types": {},
        },
    )
    assert [f.name for f in shapes.resource_outputs(VAULT)] == ["vaultUri", "sku"]
    assert shapes.resource_outputs(VAULT)[1].enum_value == "premium"
    assert shapes.resource_inputs(VAULT) == {"vaultName"}
    assert shapes.secret_outputs(VAULT) == {"vaultUri"}
    assert shapes.api_version(VAULT) == "2019-09-01"
    # A type nobody described is still read from the planner's SDK.
    group = "azure-native:resources:ResourceGroup"
    assert not shapes.reported(group)
    assert shapes.resource_outputs(group) == sdk_types.resource_outputs(group)


def test_a_preview_description_leaves_nested_types_out() -> None:
    assert described(containerservice.ManagedCluster, nested=False)["types"] == {}
    assert described(containerservice.ManagedCluster)["types"]


class _RecordingMonitor:
    def __init__(self) -> None:
        self.requests: list[Any] = []

    def Invoke(self, request: Any) -> Any:  # the gRPC method name
        self.requests.append(request)


def test_the_shim_describes_each_sdk_class_once_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pulumi.runtime import settings

    monitor = _RecordingMonitor()
    monkeypatch.setattr(settings, "get_monitor", lambda: monitor)
    describer = python_exec.TypeDescriber(pulumi, nested=False)
    vault = keyvault.Vault.__new__(keyvault.Vault)
    describer(vault, VAULT)
    describer(vault, VAULT)
    # A bare CustomResource with an SDK token is not that SDK's class; a component has no
    # provider outputs; neither is described.
    bare = pulumi.CustomResource.__new__(pulumi.CustomResource)
    describer(bare, "azure-native:storage:StorageAccount")
    component = pulumi.ComponentResource.__new__(pulumi.ComponentResource)
    describer(component, "gpustack:index:Thing")
    assert [r.tok for r in monitor.requests] == [python_exec.DESCRIBE_TOKEN]
    message = json.loads(monitor.requests[0].args.fields["describe"].string_value)
    assert message["token"] == VAULT
    assert message["described"] == described(keyvault.Vault, nested=False)


def test_an_old_sdk_program_gets_the_outputs_its_own_sdk_declares() -> None:
    # azure-native 2.x has `insights`; the planner's 3.x does not, so only the program's own
    # process can say what an insights Component returns.
    token = "azure-native:insights:Component"
    assert sdk_types.resource_class(token) is None
    from gpustack.engine import run_plan

    plan = run_plan(PROGRAMS / "py_old_sdk", "dev")
    (component,) = plan.by_type(token)
    for name in ("instrumentationKey", "appId", "connectionString"):
        assert isinstance(component.outputs[name], str) and component.outputs[name], name


@pytest.mark.parametrize("preview", [False, True])
def test_the_planner_does_not_import_the_sdk_the_program_already_described(
    preview: bool,
) -> None:
    # The planner's process used to import every SDK module the program used to learn the
    # shapes (seconds of a plan). Run in a fresh interpreter, as `gpustack plan` is. Under
    # --preview too: nested unknowns need the output types of the objects a program gives, and
    # reading them from the planner's SDK took prod's preview from 2.4 s to 4.1-4.8 s.
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from gpustack.engine import run_plan\n"
        f"plan = run_plan(Path({str(ROOT)!r}), 'dev', preview={preview})\n"
        "print(len(plan.resources))\n"
        "print(sorted(m for m in sys.modules if m.startswith('pulumi_azure_native')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    count, imported = done.stdout.splitlines()
    assert int(count) > 100
    assert imported == "[]"


def test_each_sdk_module_resolves_its_own_forward_references() -> None:
    # Both classes annotate `systemData` with the text 'outputs.SystemDataResponse', which
    # typing turns into one shared ForwardRef: each must still name its own module's type.
    from pulumi_azure_native import managedidentity

    fields = {}
    for cls in (managedidentity.UserAssignedIdentity, compute.VirtualMachineScaleSet):
        fields[cls] = {row[0]: row for row in sdk_shapes.field_rows(cls)}["systemData"]
    identity_ref = fields[managedidentity.UserAssignedIdentity][3]
    compute_ref = fields[compute.VirtualMachineScaleSet][3]
    assert identity_ref == "pulumi_azure_native.managedidentity.outputs:SystemDataResponse"
    assert compute_ref == "pulumi_azure_native.compute.outputs:SystemDataResponse"
