"""On-demand Capacity Reservations: the component, pools that use a group, the stack config and
the policy rules, all against the facts in capacity_reservations.yaml and the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.aks import ACCELERATOR_LABEL, GpuNodePool, GpuNodePoolArgs
from components.capacity_reservation import (
    GpuCapacityReservation,
    GpuCapacityReservationArgs,
    ReservedCapacity,
)
from components.conventions import ComponentContext, IdentityRef
from components.gpu_pool import GpuVmPool, GpuVmPoolArgs
from gpustack import catalog, facts
from gpustack.engine import PlannedResource, capture
from gpustack.mocks import AzureMocks
from policies import capacity
from stacks.config import PROJECT, ConfigError, parse_config
from tests.policy_runs import Declared, check_resource, check_stack
from tests.test_gpu_pool import _identity_maps

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = ComponentContext("rg-test", "eastus", {"environment": "test"})
GROUP = "/subscriptions/s/resourceGroups/rg/providers"
SUBNET = f"{GROUP}/Microsoft.Network/virtualNetworks/v/subnets/gpu"
CRG_ID = f"{GROUP}/Microsoft.Compute/capacityReservationGroups/crg"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICWWEKvBQHrRUG6uF5ZH8bPQTu/wiThy/6dSr1zezbrL test"
NODES = IdentityRef(
    id=f"{GROUP}/Microsoft.ManagedIdentity/userAssignedIdentities/nodes",
    principal_id="00000000-0000-4000-8000-0000000000aa",
    client_id="00000000-0000-4000-8000-0000000000bb",
)
CRG = "azure-native:compute:CapacityReservationGroup"
RESERVATION = "azure-native:compute:CapacityReservation"
ROLE = "azure-native:authorization:RoleAssignment"
T4 = "Standard_NC4as_T4_v3"
A100 = "Standard_NC24ads_A100_v4"
ND = "Standard_ND96asr_v4"
FACTS = facts.load("capacity_reservations")


def _of(resources: list[PlannedResource], token: str) -> list[PlannedResource]:
    return [r for r in resources if r.type == token]


# --- the component ----------------------------------------------------------------------------


def test_group_holds_one_reservation_per_size_and_zone_with_catalog_sizes() -> None:
    wanted = [
        ReservedCapacity(T4, 2, "1"),
        ReservedCapacity(T4, 1, "2"),
        ReservedCapacity(A100, 1, "1"),
    ]
    holder: dict[str, GpuCapacityReservation] = {}

    def declare() -> None:
        holder["crg"] = GpuCapacityReservation(
            "crg", GpuCapacityReservationArgs(CONTEXT, wanted, zones=("1", "2"))
        )
        holder["crg"].grant_aks_identity("aks", "00000000-0000-4000-8000-0000000000cc")

    planned = capture(declare)
    (group,) = _of(planned, CRG)
    assert group.inputs["zones"] == ["1", "2"]
    assert group.inputs["location"] == "eastus"
    reservations = _of(planned, RESERVATION)
    got = sorted(
        (r.inputs["sku"]["name"], r.inputs["sku"]["capacity"], tuple(r.inputs["zones"]))
        for r in reservations
    )
    assert got == sorted((w.vm_size, w.quantity, (w.zone,)) for w in wanted)
    # Quantities per size add up over zones, from the requests, not a fixed number.
    assert holder["crg"].reserved == {
        size: sum(w.quantity for w in wanted if w.vm_size == size) for size in {T4, A100}
    }
    # AKS's cluster identity gets the documented role, on the group itself.
    (grant,) = _of(planned, ROLE)
    role = FACTS["aks"]["role"]
    assert grant.inputs["roleDefinitionId"].endswith(facts.role_definition_id(role))
    assert group.id and grant.inputs["scope"] == group.id
    assert "/capacityreservationgroups/" in grant.inputs["scope"].lower()


@pytest.mark.parametrize(
    ("reservations", "zones", "message"),
    [
        ([ReservedCapacity(ND, 1)], (), "not on Azure's supported list"),
        (
            [ReservedCapacity("Standard_NC40ads_H100_v5", 1)],
            (),
            "not on Azure's supported list",
        ),
        ([ReservedCapacity(T4, 1, "1"), ReservedCapacity(T4, 2, "1")], ("1",), "appears twice"),
        ([ReservedCapacity(T4, 1, "3")], ("1",), "needs a zone from the group's zones"),
        ([ReservedCapacity(T4, 1, "1")], (), "group is regional"),
        ([ReservedCapacity(T4, 0)], (), "quantity must be >= 1"),
        ([], (), "at least one"),
    ],
)
def test_component_refuses_what_azure_would_reject(
    reservations: list[ReservedCapacity], zones: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        capture(
            lambda: GpuCapacityReservation(
                "crg", GpuCapacityReservationArgs(CONTEXT, reservations, zones=zones)
            )
        )


def test_catalog_reservation_support_follows_the_overview_tables() -> None:
    for size in catalog.all_sizes():
        if size.series in FACTS["supported_gpu_series"]:
            assert size.capacity_reservation, size.name
        if size.name.startswith("Standard_ND") or size.series == "NCads_H100_v5":
            assert not size.capacity_reservation, size.name
        if not size.is_gpu:
            assert size.capacity_reservation, size.name  # D v5, E v5, Fsv2, Fasv6 are listed


# --- pools using a group ----------------------------------------------------------------------


def _vm_pool(**overrides: Any) -> list[PlannedResource]:
    values: dict[str, Any] = {
        "context": CONTEXT,
        "vm_size": T4,
        "subnet_id": SUBNET,
        "ssh_public_key": KEY,
        "identity": NODES,
        "max_count": 2,
        "capacity_reservation_group_id": CRG_ID,
    }
    args = GpuVmPoolArgs(**(values | overrides))
    original = AzureMocks._azure

    def _azure(self: AzureMocks, mock_args: Any, urn: str) -> tuple[str, dict[str, Any]]:
        resource_id, state = original(self, mock_args, urn)
        return resource_id, _identity_maps(state)

    AzureMocks._azure = _azure  # type: ignore[method-assign]
    try:
        return capture(lambda: GpuVmPool("t4pool", args))
    finally:
        AzureMocks._azure = original  # type: ignore[method-assign]


def test_scale_set_and_vm_name_the_reservation_group() -> None:
    (scale_set,) = _of(_vm_pool(), "azure-native:compute:VirtualMachineScaleSet")
    profile = scale_set.inputs["virtualMachineProfile"]
    assert profile["capacityReservation"]["capacityReservationGroup"]["id"] == CRG_ID
    (vm,) = _of(
        _vm_pool(kind="vm", min_count=1, max_count=1), "azure-native:compute:VirtualMachine"
    )
    assert vm.inputs["capacityReservation"]["capacityReservationGroup"]["id"] == CRG_ID


def test_scale_set_without_a_group_has_no_reservation_profile() -> None:
    (scale_set,) = _of(
        _vm_pool(capacity_reservation_group_id=None), "azure-native:compute:VirtualMachineScaleSet"
    )
    assert "capacityReservation" not in scale_set.inputs["virtualMachineProfile"]


@pytest.mark.parametrize(
    ("overrides", "unsupported_key"),
    [({"spot": True}, "spot"), ({"proximity_placement_group": True}, "proximity_placement_group")],
)
def test_pool_refuses_a_group_with_unsupported_deployment_types(
    overrides: dict[str, Any], unsupported_key: str
) -> None:
    with pytest.raises(ValueError, match=FACTS["unsupported_with"][unsupported_key]):
        _vm_pool(**overrides)


def _aks_pool(**overrides: Any) -> list[PlannedResource]:
    values: dict[str, Any] = {
        "context": CONTEXT,
        "cluster_name": "aks-test",
        "pool_name": "gpu",
        "vm_size": T4,
        "subnet_id": SUBNET,
        "max_count": 3,
    }
    return capture(lambda: GpuNodePool("aks-gpu", GpuNodePoolArgs(**(values | overrides))))


def test_aks_pool_names_the_group_in_capacity_reservation_group_id() -> None:
    (pool,) = _of(
        _aks_pool(capacity_reservation_group_id=CRG_ID), "azure-native:containerservice:AgentPool"
    )
    assert pool.inputs["capacityReservationGroupID"] == CRG_ID
    (plain,) = _of(_aks_pool(), "azure-native:containerservice:AgentPool")
    assert "capacityReservationGroupID" not in plain.inputs


def test_amd_aks_pool_is_labelled_amd_and_takes_only_the_operator_path() -> None:
    mi300x = catalog.lookup("Standard_ND96isr_MI300X_v5")
    (pool,) = _of(
        _aks_pool(vm_size=mi300x.name, driver="None"), "azure-native:containerservice:AgentPool"
    )
    assert pool.inputs["nodeLabels"][ACCELERATOR_LABEL] == "amd"
    assert "Install" not in mi300x.aks_gpu_drivers
    with pytest.raises(ValueError, match="not usable"):
        _aks_pool(vm_size=mi300x.name, driver="Install")


# --- stack config -----------------------------------------------------------------------------


def _prod(**extra: Any) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    values = {key[len(PROJECT) + 1 :]: value for key, value in raw.items()}
    return values | extra


def _problems(values: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(values, "Pulumi.prod.yaml")
    return str(caught.value)


def test_config_accepts_a_zonal_group_for_the_zonal_inference_pool() -> None:
    group = {
        "name": "t4serve",
        "zones": ["1", "2", "3"],
        "reservations": [{"vmSize": T4, "quantity": 1, "zone": "1"}],
        "aksGpuPools": ["t4infer"],
    }
    cfg = parse_config(_prod(capacityReservations=[group]), "Pulumi.prod.yaml")
    (parsed,) = cfg.capacity_reservations
    assert parsed.reserved_quantity(T4) == 1 and parsed.aks_gpu_pools == ["t4infer"]


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        (
            {"name": "nd", "reservations": [{"vmSize": ND, "quantity": 2}], "vmPools": ["ndtrain"]},
            "capacityReservations[0].reservations[0].vmSize",
        ),
        (
            {
                "name": "a",
                "reservations": [{"vmSize": A100, "quantity": 1}],
                "aksGpuPools": ["t4infer"],
            },
            "does not reserve",
        ),
        (
            {"name": "a", "reservations": [{"vmSize": T4, "quantity": 1}], "aksGpuPools": ["nope"]},
            "'nope', which is not a configured",
        ),
        (
            {"name": "a", "zones": ["1"], "reservations": [{"vmSize": T4, "quantity": 1}]},
            "needs zone",
        ),
        (
            {"name": "a", "reservations": [{"vmSize": T4, "quantity": 1, "size": 3}]},
            "size",
        ),
    ],
)
def test_config_errors_name_the_key_and_the_file(group: dict[str, Any], expected: str) -> None:
    message = _problems(_prod(capacityReservations=[group]))
    assert "Pulumi.prod.yaml" in message
    assert expected in message


def test_config_refuses_a_spot_pool_on_a_reservation() -> None:
    values = _prod()
    values["aks"] = {**values["aks"], "gpuPools": [
        {**values["aks"]["gpuPools"][0], "spot": True, "zones": None}, values["aks"]["gpuPools"][1]
    ]}  # fmt: skip
    group = {
        "name": "t4",
        "reservations": [{"vmSize": T4, "quantity": 1}],
        "aksGpuPools": ["t4infer"],
    }
    assert "spot VMs cannot use" in _problems(values | {"capacityReservations": [group]})


# --- policies ---------------------------------------------------------------------------------


def test_reservation_rule_passes_a_supported_size_and_fails_nd() -> None:
    rule = capacity.capacity_reservation_supported_size
    assert check_resource(rule, RESERVATION, {"sku": {"name": T4, "capacity": 1}}) == []
    (message,) = check_resource(rule, RESERVATION, {"sku": {"name": ND, "capacity": 1}})
    assert ND in message and "does not support" in message


def _training_scale_set(group: bool, capacity_: int = 2) -> dict[str, Any]:
    profile: dict[str, Any] = {}
    if group:
        profile["capacityReservation"] = {"capacityReservationGroup": {"id": CRG_ID}}
    return {
        "sku": {"name": A100, "capacity": capacity_},
        "tags": {"purpose": "training"},
        "virtualMachineProfile": profile,
    }


def test_prod_training_minimum_rule_wants_a_covering_reservation() -> None:
    rule = capacity.capacity_prod_training_minimum_reserved
    prod = {"environment": "prod"}
    unreserved = [
        Declared("azure-native:compute:VirtualMachineScaleSet", "train", _training_scale_set(False))
    ]
    ((message, _),) = check_stack(rule, unreserved, config=prod)
    assert "uses no capacity reservation group" in message
    # Not prod: the rule does not apply.
    assert check_stack(rule, unreserved, config={"environment": "dev"}) == []
    covered = [
        Declared("azure-native:compute:VirtualMachineScaleSet", "train", _training_scale_set(True)),
        Declared(RESERVATION, "res", {"sku": {"name": A100, "capacity": 2}}),
    ]
    assert check_stack(rule, covered, config=prod) == []
    short = [covered[0], Declared(RESERVATION, "res", {"sku": {"name": A100, "capacity": 1}})]
    ((message, _),) = check_stack(rule, short, config=prod)
    assert "reserves 1" in message


# --- the stack wiring, planned end to end -----------------------------------------------------


@pytest.fixture(scope="module")
def reserved_plan(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Staging with its A100 training pool on a one-VM reservation, planned once."""
    from gpustack.engine import run_plan

    program = tmp_path_factory.mktemp("reserved")
    for name in ("__main__.py", "Pulumi.yaml"):
        (program / name).write_bytes((ROOT / name).read_bytes())
    for name in ("components", "stacks", "gpustack", "policies", ".venv"):
        (program / name).symlink_to(ROOT / name)
    config = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    config["config"][f"{PROJECT}:capacityReservations"] = [
        {
            "name": "a100",
            "reservations": [{"vmSize": A100, "quantity": 1}],
            "aksGpuPools": ["a100"],
        },
        {"name": "t4", "reservations": [{"vmSize": T4, "quantity": 2}], "vmPools": ["t4infer"]},
    ]
    (program / "Pulumi.reserved.yaml").write_text(yaml.safe_dump(config))
    return run_plan(program, "reserved")


def test_stack_wires_the_group_to_the_aks_pool_after_the_identity_role(reserved_plan: Any) -> None:
    resources = reserved_plan.resources
    (group,) = [g for g in _of(resources, CRG) if g.name == "crg-a100-crg"]
    (pool,) = [
        r
        for r in _of(resources, "azure-native:containerservice:AgentPool")
        if r.name == "aks-a100-pool"
    ]
    assert pool.inputs["capacityReservationGroupID"] == group.id
    grants = [r for r in _of(resources, ROLE) if r.inputs.get("scope") == group.id]
    (grant,) = grants
    assert grant.urn in pool.dependencies, "the pool waits for the identity's role on the group"
    (identity,) = [
        r
        for r in resources
        if r.type == "azure-native:managedidentity:UserAssignedIdentity"
        and r.name == "aks-identity"
    ]
    assert grant.inputs["principalId"] == identity.outputs.get(
        "principalId", grant.inputs["principalId"]
    )


def test_plan_reports_reserved_gpus_and_the_idle_reservation_cost(reserved_plan: Any) -> None:
    from gpustack.capacity import reservation_lines
    from gpustack.estimates import plan_estimates

    estimates = plan_estimates(reserved_plan)
    (row,) = [r for r in estimates["capacity"]["reservations"] if r["vm_size"] == A100]
    size = catalog.lookup(A100)
    hours = float(facts.load("service_prices")["hours_per_month"])
    price = size.price(row["region"])
    assert price is not None and row["pools"] == ["a100"]
    assert row["reserved_gpus"] == 1 * size.gpu_count
    (pool,) = [p for p in estimates["capacity"]["pools"] if p["name"] == "a100"]
    assert pool["reserved_gpus"] == row["reserved_gpus"]
    # Idle slots: the reservation minus the pool's nodes at each scale, never below zero.
    for scale in ("min", "expected", "max"):
        nodes = {"min": pool["min"], "max": pool["max"]}.get(scale)
        if nodes is not None:
            assert row["idle_monthly"][scale] == pytest.approx(
                round(price * hours * max(0, 1 - nodes), 2)
            )
    (line,) = [item for item in estimates["cost"]["lines"] if item["urn"] == row["urn"]]
    assert line["monthly"] == row["idle_monthly"]
    assert row["urn"] not in estimates["cost"]["unpriced"]
    (text,) = [t for t in reservation_lines(estimates["capacity"]) if A100 in t]
    assert f"reserved {row['reserved_gpus']} of max {pool['gpus']['max']} GPUs" in text


def test_prod_training_minimum_on_an_unreservable_size_says_so() -> None:
    rule = capacity.capacity_prod_training_minimum_reserved
    nd = {**_training_scale_set(False), "sku": {"name": ND, "capacity": 2}}
    ((message, _),) = check_stack(
        rule, [Declared("azure-native:compute:VirtualMachineScaleSet", "nd", nd)],
        config={"environment": "prod"},
    )  # fmt: skip
    assert "cannot be reserved" in message

