"""Stack config: the committed environments validate; each kind of bad input is one clear error."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from stacks.config import PROJECT, ConfigError, StackConfig, parse_config

ROOT = Path(__file__).resolve().parent.parent
PREFIX = f"{PROJECT}:"


def stack_values(stack: str) -> dict[str, Any]:
    """The project-namespace keys of a committed stack file, without the namespace."""
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key[len(PREFIX) :]: value for key, value in config.items() if key.startswith(PREFIX)}


def minimal() -> dict[str, Any]:
    return {
        "environment": "dev",
        "location": "eastus",
        "budget": {"monthlyAmountUsd": 100},
    }


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "Pulumi.test.yaml")
    return caught.value.problems


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_committed_stack_files_validate(stack: str) -> None:
    cfg = parse_config(stack_values(stack), f"Pulumi.{stack}.yaml")
    assert cfg.environment == stack
    assert cfg.protect is (stack != "dev")


def test_minimal_config_gets_secure_defaults() -> None:
    cfg = parse_config(minimal(), "Pulumi.test.yaml")
    assert cfg.network.nat_gateway is True
    assert cfg.network.allow_operator_ips == []
    assert cfg.storage.containers == ["datasets", "models", "checkpoints"]
    assert cfg.vault.soft_delete_retention_days == 90
    assert cfg.all_tags["environment"] == "dev"


def test_unknown_key_is_named_with_the_allowed_keys() -> None:
    raw = minimal() | {"network": {"adressSpace": "10.1.0.0/16"}}
    (problem,) = problems_of(raw)
    assert problem.startswith(f"{PREFIX}network.adressSpace: unknown key")
    assert "addressSpace" in problem and "gpuSubnet" in problem


def test_unknown_top_level_key_is_an_error() -> None:
    (problem,) = problems_of(minimal() | {"netwrok": {}})
    assert problem.startswith(f"{PREFIX}netwrok: unknown key")
    assert "network" in problem


def test_wrong_type_names_the_key_and_the_value() -> None:
    raw = minimal() | {"budget": {"monthlyAmountUsd": "lots"}}
    (problem,) = problems_of(raw)
    assert problem.startswith(f"{PREFIX}budget.monthlyAmountUsd:")
    assert '"lots"' in problem


def test_out_of_range_value_says_what_is_allowed() -> None:
    raw = minimal() | {"vault": {"softDeleteRetentionDays": 400}}
    (problem,) = problems_of(raw)
    assert problem.startswith(f"{PREFIX}vault.softDeleteRetentionDays:")
    assert "90" in problem


def test_missing_required_keys_are_each_reported() -> None:
    problems = problems_of({"location": "eastus"})
    assert f"{PREFIX}environment: required key is missing" in problems
    assert f"{PREFIX}budget: required key is missing" in problems


def test_misspelled_key_wrong_type_and_negative_count_are_one_error() -> None:
    raw = stack_values("dev")
    raw = copy.deepcopy(raw)
    raw["monitoring"]["logRetentionDayz"] = 30
    raw["budget"]["monthlyAmountUsd"] = "a lot"
    raw["aks"]["gpuPools"][0]["minCount"] = -1
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "Pulumi.dev.yaml")
    message = str(caught.value)
    assert message.startswith("Invalid configuration in Pulumi.dev.yaml (3 problems)")
    assert f"{PREFIX}monitoring.logRetentionDayz: unknown key" in message
    assert f"{PREFIX}budget.monthlyAmountUsd" in message
    assert f"{PREFIX}aks.gpuPools[0].minCount" in message


def test_address_space_overlapping_infiniband_range_is_rejected() -> None:
    raw = minimal() | {
        "network": {
            "addressSpace": "172.16.0.0/12",
            "systemSubnet": "172.20.0.0/22",
            "gpuSubnet": "172.20.4.0/22",
            "privateEndpointSubnet": "172.20.8.0/24",
        }
    }
    (problem,) = problems_of(raw)
    assert "172.16.0.0/16" in problem and "InfiniBand" in problem


def test_subnet_outside_address_space_is_rejected() -> None:
    raw = minimal() | {"network": {"gpuSubnet": "10.99.0.0/24"}}
    (problem,) = problems_of(raw)
    assert problem.startswith(f"{PREFIX}network.gpuSubnet: 10.99.0.0/24 is outside addressSpace")


def test_overlapping_subnets_are_rejected() -> None:
    raw = minimal() | {"network": {"privateEndpointSubnet": "10.40.4.0/24"}}
    (problem,) = problems_of(raw)
    assert "overlaps" in problem


def test_invalid_cidr_is_explained() -> None:
    raw = minimal() | {"network": {"addressSpace": "10.40.0.0/33"}}
    (problem,) = problems_of(raw)
    assert problem.startswith(f"{PREFIX}network.addressSpace")
    assert "IPv4 CIDR" in problem


def test_unknown_vm_size_lists_supported_sizes() -> None:
    raw = minimal() | {
        "aks": {
            "authorizedIpRanges": ["203.0.113.0/24"],
            "gpuPools": [{"name": "gpu", "vmSize": "Standard_NC6", "maxCount": 1}],
        }
    }
    (problem,) = problems_of(raw)
    assert problem.startswith(f"{PREFIX}aks.gpuPools[0].vmSize")
    assert "Standard_NC4as_T4_v3" in problem


def test_driver_none_without_gpu_operator_is_rejected() -> None:
    raw = minimal() | {
        "aks": {
            "authorizedIpRanges": ["203.0.113.0/24"],
            "gpuPools": [
                {"name": "nd", "vmSize": "Standard_ND96asr_v4", "maxCount": 2, "driver": "None"}
            ],
        }
    }
    (problem,) = problems_of(raw)
    assert "gpuOperator" in problem and "nd" in problem


def test_public_api_server_needs_authorized_ranges() -> None:
    (problem,) = problems_of(minimal() | {"aks": {"privateCluster": False}})
    assert "authorizedIpRanges" in problem


def test_config_error_is_a_pulumi_run_error() -> None:
    # RunError is what the Pulumi language host prints without a stack trace.
    import pulumi

    assert issubclass(ConfigError, pulumi.RunError)


def test_model_rejects_python_names_it_does_not_know() -> None:
    with pytest.raises(ValidationError, match="unknown_field"):
        StackConfig.model_validate(minimal() | {"unknown_field": 1})
