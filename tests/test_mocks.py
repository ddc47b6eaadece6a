"""The offline engine's answers: shaped like ARM, unknown under preview, true to the inputs."""

from __future__ import annotations

import base64
import ipaddress
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.rpc import UNKNOWN

from gpustack import cli, placeholders
from gpustack.cost import estimate_monthly_cost
from gpustack.engine import Plan, run_plan, to_display
from gpustack.estimates import plan_estimates
from gpustack.hosts import ProgramError
from gpustack.mocks import WHOLLY_UNKNOWN_KEY, AzureMocks, ProviderCheckFailure
from gpustack.project import ProjectError, _config, parse_override
from gpustack.report import plan_document
from tests.conftest import ENVIRONMENTS, PROGRAMS, ROOT, planned, program_plan


def write_program(directory: Path, name: str, main: str, stack_config: str = "") -> Path:
    """A one-file Python Pulumi project in `directory`, with a dev stack file when given."""
    (directory / "Pulumi.yaml").write_text(f"name: {name}\nruntime: python\n")
    if stack_config:
        (directory / "Pulumi.dev.yaml").write_text(stack_config)
    (directory / "__main__.py").write_text(main)
    return directory


# --- invokes ---------------------------------------------------------------------------------


def test_invokes_the_mocks_never_knew_answer_in_arms_shape() -> None:
    outputs = program_plan("mock_azure").outputs
    assert outputs["registryUser"] == "acrmock"
    assert len(base64.b64decode(outputs["registryPassword"])) == 32
    assert outputs["sharedKeyLength"] == outputs["cosmosKeyLength"] == 44
    assert outputs["sasHasSignature"] is True
    assert outputs["callbackUrl"].endswith("/workflows/wf/triggers/manual/paths/invoke")
    assert outputs["tokenLength"] == 44


def test_an_existing_resources_address_is_not_invented() -> None:
    # getPublicIPAddress of a resource this program does not create: no input says its IP or
    # region; its name is the one the program asked for.
    # A stack output whose value is None is not sent at all (the SDK treats None as absent).
    outputs = program_plan("mock_azure").outputs
    assert "existingIp" not in outputs and "existingIpLocation" not in outputs
    assert outputs["existingIpName"] == "existing-ip"


def test_under_preview_invokes_without_an_answer_are_unknown() -> None:
    outputs = program_plan("mock_azure", preview=True).outputs
    assert outputs["existingIp"] == "<computed>"
    # Invokes with an ARM-shaped answer and no resource being created still answer.
    assert outputs["sharedKeyLength"] == 44


def test_invoke_on_a_resource_being_created_is_unknown_under_preview() -> None:
    mocks = AzureMocks(preview=True, config={})
    mocks._pending.add("aks-gpu")
    args = pulumi.runtime.MockCallArgs(
        "azure-native:containerservice:listManagedClusterUserCredentials",
        {"resourceGroupName": "rg", "resourceName": "aks-gpu"},
        "",
    )
    answer, _ = mocks.call(args)
    assert answer == {WHOLLY_UNKNOWN_KEY: UNKNOWN}


def test_helm_v3_chart_plans_with_an_empty_manifest_and_a_note() -> None:
    mocks = AzureMocks(preview=False, config={})
    args = pulumi.runtime.MockCallArgs("kubernetes:helm:template", {"jsonOpts": "{}"}, "")
    assert mocks.call(args)[0] == {"result": []}
    assert any("helm" in note.lower() for note in mocks.notes)
    assert program_plan("mock_providers").outputs["chartResources"] == 0
    preview = AzureMocks(preview=True, config={})
    assert preview.call(args)[0] == {"result": UNKNOWN}


def test_reading_a_charts_resource_plans_under_preview_and_fails_clearly_in_full() -> None:
    preview = run_plan(PROGRAMS / "mock_helm", "dev", preview=True)
    assert preview.outputs["ingressService"] == "<computed>"
    assert any("helm" in note.lower() for note in preview.notes)
    # In its own process: a program that failed leaves callbacks behind in the SDK's runtime.
    command = [sys.executable, "-m", "gpustack", "plan", "--no-policy", "--program"]
    failed = subprocess.run(
        [*command, str(PROGRAMS / "mock_helm")], capture_output=True, text=True, check=False
    )
    assert failed.returncode == cli.EXIT_ERROR
    assert "KeyError" in failed.stderr
    assert "note: Helm charts are not rendered offline" in failed.stderr


# --- resource outputs ------------------------------------------------------------------------


def test_outputs_of_types_without_an_answer_come_from_the_sdk_class() -> None:
    outputs = program_plan("mock_azure").outputs
    header = outputs["instrumentationKeyHeader"]
    assert header.startswith("ikey=") and len(header) == len("ikey=") + 36


def test_a_blobs_type_input_is_never_overwritten() -> None:
    plan = program_plan("mock_azure")
    assert plan.outputs["blobType"] == "Block"
    (blob,) = plan.by_type("azure-native:storage:Blob")
    assert blob.outputs["type"] == "Block"


def test_no_provisioning_state_claims_success() -> None:
    plan = program_plan("mock_azure")
    assert plan.outputs["vmState"] == "<computed>"
    for resource in plan.resources:
        text = json.dumps(to_display(resource.outputs), default=str)
        assert "Succeeded" not in text, resource.urn


def test_under_preview_every_undeclared_output_is_unknown() -> None:
    plan = program_plan("mock_azure", preview=True)
    (insights,) = plan.by_type("azure-native:applicationinsights:Component")
    assert insights.outputs["instrumentationKey"] == UNKNOWN
    assert plan.outputs["instrumentationKeyHeader"] == "<computed>"


def test_full_plans_are_deterministic() -> None:
    first = program_plan("mock_providers").outputs
    again = run_plan(PROGRAMS / "mock_providers", "dev").outputs
    assert first == again


# --- the provider's location and subscription ------------------------------------------------


def test_the_providers_location_applies_to_resources_without_one() -> None:
    plan = program_plan("mock_azure")
    assert plan.outputs["groupLocation"] == "region westus3"
    (vm,) = plan.by_type("azure-native:compute:VirtualMachine")
    assert vm.inputs["location"] == "westus3"
    (subnet,) = plan.by_type("azure-native:network:Subnet")
    assert "location" not in subnet.inputs  # a subnet takes no location
    estimates = plan_estimates(plan, None, None)
    (pool,) = estimates["capacity"]["pools"]
    assert pool["region"] == "westus3"
    (line,) = [line for line in estimates["cost"]["lines"] if line["urn"] == vm.urn]
    assert "westus3" in line["assumption"]


def test_the_providers_subscription_is_in_ids() -> None:
    (group,) = program_plan("mock_azure").by_type("azure-native:resources:ResourceGroup")
    assert group.id.startswith("/subscriptions/11111111-2222-4333-8444-555555555555/")


def test_without_a_provider_location_a_new_group_fails_the_providers_check() -> None:
    # pulumi-azure-native provider.go: getDefaultLocation has nothing for a group (no provider
    # location, no group to inherit from), so Check reports the required property, with advice.
    mocks = AzureMocks(preview=False, config={})
    with pytest.raises(ProviderCheckFailure, match="missing required property 'location'"):
        mocks.checked_inputs("azure-native:resources:ResourceGroup", {})
    # A resource in a group the program does not create: ARM would be asked; offline, unknown.
    vm = mocks.checked_inputs(
        "azure-native:compute:VirtualMachine", {"resourceGroupName": "existing"}
    )
    assert vm["location"] == UNKNOWN


@pytest.mark.parametrize("in_process", [True, False])
def test_a_program_with_no_location_anywhere_fails_as_preview_would(
    tmp_path: Path, in_process: bool
) -> None:
    main = "from pulumi_azure_native import resources\nresources.ResourceGroup('rg')\n"
    write_program(tmp_path, "noloc", main, stack_config="config: {}\n")
    with pytest.raises(ProgramError) as raised:
        run_plan(tmp_path, "dev", preview=True, in_process=in_process)
    assert raised.value.fault == "program"
    assert (
        "azure-native:resources:ResourceGroup resource 'rg' has a problem: missing required "
        "property 'location'. Either set it explicitly or configure it with 'pulumi config set "
        "azure-native:location <value>'."
    ) in str(raised.value)
    # The SDK raises it in its own code: the message names the program's line.
    assert "(declared at __main__.py:2)" in str(raised.value)
    given = [("azure-native:location", "westus3", False)]
    plan = run_plan(tmp_path, "dev", config_overrides=given, in_process=in_process)
    assert plan.resources[0].inputs["location"] == "westus3"


NO_DEFAULT_PROVIDERS = """\
import pulumi
import pulumi_azure_native as azure_native
from pulumi_azure_native import authorization, resources

explicit = azure_native.Provider("explicit", location="westus3")
resources.ResourceGroup("ok", opts=pulumi.ResourceOptions(provider=explicit))
team_opts = pulumi.ResourceOptions(providers=[explicit])
team = pulumi.ComponentResource("acme:Team", "team", opts=team_opts)
resources.ResourceGroup("inherits", opts=pulumi.ResourceOptions(parent=team))
authorization.get_client_config(opts=pulumi.InvokeOptions(provider=explicit))
existing = "/subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/shared"
resources.ResourceGroup.get("shared", existing, opts=pulumi.ResourceOptions(provider=explicit))
mistake = pulumi.Config().get("mistake")
if mistake == "resource":
    resources.ResourceGroup("forgot")
elif mistake == "invoke":
    authorization.get_client_config()
elif mistake == "read":
    resources.ResourceGroup.get("forgot", existing)
"""


DISABLED_DEFAULTS = "config:\n  pulumi:disable-default-providers: [azure-native]\n"


def test_explicit_providers_plan_with_default_providers_disabled(tmp_path: Path) -> None:
    write_program(tmp_path, "explicit", NO_DEFAULT_PROVIDERS, stack_config=DISABLED_DEFAULTS)
    plan = run_plan(tmp_path, "dev")
    assert [r.name for r in plan.resources] == ["explicit", "ok", "team", "inherits"]


@pytest.mark.parametrize(
    ("mistake", "refused"),
    [
        ("resource", "'azure-native:resources:ResourceGroup' must use an explicit provider. "
         "(declared at __main__.py:15)"),
        ("invoke", "'azure-native:authorization:getClientConfig' must use an explicit provider."
         "\n  at __main__.py:17"),
        ("read", "'azure-native:resources:ResourceGroup' must use an explicit provider. "
         "(reading 'forgot' with .get())"),
    ],
)
def test_disabled_default_providers_refuse_what_uses_them(
    tmp_path: Path, mistake: str, refused: str
) -> None:
    # Before: `pulumi:disable-default-providers` was ignored, so a resource that forgot its
    # provider (and would land in the default subscription) planned cleanly.
    write_program(tmp_path, "explicit", NO_DEFAULT_PROVIDERS, stack_config=DISABLED_DEFAULTS)
    with pytest.raises(ProgramError) as raised:
        run_plan(tmp_path, "dev", config_overrides=[("explicit:mistake", mistake, False)])
    assert raised.value.fault == "program"
    assert "Default provider for 'azure-native' disabled. " + refused in str(raised.value)


def test_resources_of_a_package_nothing_models_are_named_in_a_note(tmp_path: Path) -> None:
    # pulumi-azure (the classic provider) and others: planned from inputs, but no rule, price
    # or GPU count looks at them, so a clean verdict must not read as covering them.
    write_program(
        tmp_path, "classic",
        "import pulumi\n"
        "for name in ('a', 'b'):\n"
        "    pulumi.CustomResource('azure:compute/linuxVirtualMachine:LinuxVirtualMachine',\n"
        "                          name, {'size': 'Standard_ND96isr_H100_v5'})\n"
        "pulumi.CustomResource('azuread:index/application:Application', 'app', {})\n"
        "pulumi.CustomResource('random:index/randomPet:RandomPet', 'pet', {})\n",
    )  # fmt: skip
    plan = run_plan(tmp_path, "dev", in_process=True)
    uncovered = [note for note in plan.notes if note.startswith("package ")]
    assert [note.split(":")[0] for note in uncovered] == ["package azure", "package azuread"]
    assert "the policy pack, cost and GPU capacity do not cover them" in uncovered[0]
    assert len(plan.resources) == 4


@pytest.mark.parametrize("in_process", [True, False])
def test_stack_outputs_mark_each_unknown_or_secret_where_it_sits(
    tmp_path: Path, in_process: bool
) -> None:
    # As the Pulumi CLI shows stack outputs: an exported object keeps its known fields.
    write_program(
        tmp_path, "shown",
        "import pulumi\nfrom pulumi_azure_native import resources\n"
        "group = resources.ResourceGroup('rg')\n"
        "pulumi.export('mixed', {'known': 'a', 'secret': pulumi.Output.secret('s'),\n"
        "                        'location': group.location, 'id': group.id})\n"
        "pulumi.export('whole', pulumi.Output.secret({'a': 1}))\n",
        stack_config="config:\n  azure-native:location: westus3\n",
    )  # fmt: skip
    preview = run_plan(tmp_path, "dev", preview=True, in_process=in_process).outputs
    assert preview["mixed"] == {
        "known": "a", "secret": "[secret]", "location": "westus3", "id": "<computed>"
    }
    assert preview["whole"] == "[secret]"
    full = run_plan(tmp_path, "dev", in_process=in_process).outputs
    assert full["mixed"]["id"].startswith("/subscriptions/")
    assert full["mixed"]["secret"] == "[secret]" and full["mixed"]["known"] == "a"


# --- random, tls, command --------------------------------------------------------------------


def test_random_password_honours_length_classes_and_stays_secret() -> None:
    plan = program_plan("mock_providers")
    assert plan.outputs["password"] == "[secret]"
    (resource,) = plan.by_type("random:index/randomPassword:RandomPassword")
    value = resource.outputs["result"]["value"]
    assert len(value) == 24
    assert sum(c.isupper() for c in value) >= 2 and sum(c.isdigit() for c in value) >= 2
    assert set(value) <= set(placeholders.UPPER + placeholders.LOWER + placeholders.NUMERIC + "_-")


def test_random_values_have_the_requested_shape() -> None:
    outputs = program_plan("mock_providers").outputs
    assert len(outputs["suffix"]) == 6 and outputs["suffix"].islower()
    assert len(outputs["pet"].split("-")) == 3
    assert len(outputs["idHex"]) == 8
    assert 30000 <= outputs["port"] <= 30100
    assert str(outputs["runId"])[14] == "4"


def test_tls_public_key_reaches_the_cluster_as_a_valid_openssh_key() -> None:
    (cluster,) = program_plan("mock_providers").by_type(
        "azure-native:containerservice:ManagedCluster"
    )
    key_data = cluster.inputs["linuxProfile"]["ssh"]["publicKeys"][0]["keyData"]
    kind, body = key_data.split()
    blob = base64.b64decode(body)
    (length,) = struct.unpack(">I", blob[:4])
    assert kind == "ssh-rsa" and blob[4 : 4 + length] == b"ssh-rsa"
    # e, then a 4096-bit modulus (with its sign byte).
    (e_length,) = struct.unpack(">I", blob[11:15])
    (n_length,) = struct.unpack(">I", blob[15 + e_length : 19 + e_length])
    assert n_length == 4096 // 8 + 1


def test_command_output_is_unknown_in_a_full_plan_too() -> None:
    # Before: a marker text ("offline-plan-stdout-<hex>"), so `json.loads(cmd.stdout)` failed a
    # program that is right ("the program failed: JSONDecodeError"). What a command prints is
    # unknowable offline, as a public IP is: unknown, and a callback on it does not run.
    plan = program_plan("mock_providers")
    assert plan.outputs["fingerprint"] == plan.outputs["accountId"] == "<computed>"
    (command,) = [r for r in plan.resources if r.name == "account"]
    assert command.outputs["stdout"] == command.outputs["stderr"] == UNKNOWN
    # It runs on a machine, not in Azure: no cost, and no "unpriced" warning.
    report = estimate_monthly_cost(plan_document(plan)["resources"])
    assert command.urn not in report.unpriced


@pytest.mark.parametrize("preview", [False, True])
def test_kubernetes_yaml_is_decoded_into_its_resources(preview: bool) -> None:
    # Before: the decode invoke answered nothing, so a ConfigFile declared no resources and
    # `get_resource` failed the program (KeyError: 'apps/v1/Deployment:web'). The provider
    # parses the YAML itself, with no cluster, under `pulumi preview` too.
    plan = program_plan("mock_providers", preview=preview)
    assert plan.outputs["webReplicas"] == 2
    assert plan.outputs["teamNamespace"] == "team-a"
    # JSON has no date type: an unquoted date reaches Kubernetes as its text.
    assert plan.outputs["released"] == "2024-05-01"
    by_name = {r.name: r for r in plan.resources}
    assert by_name["web"].parent == by_name["settings"].parent == by_name["app"].urn
    assert by_name["team-a"].parent == by_name["inline"].urn
    assert not any("yaml" in note.lower() for note in plan.notes)


def test_yaml_that_does_not_parse_fails_the_program_naming_the_decode(tmp_path: Path) -> None:
    main = (
        "from pulumi_kubernetes.yaml import ConfigGroup\n"
        "ConfigGroup('bad', yaml=['kind: [unclosed'])\n"
    )
    write_program(tmp_path, "badyaml", main, stack_config="config: {}\n")
    with pytest.raises(ProgramError) as raised:
        run_plan(tmp_path, "dev")
    assert raised.value.fault == "program"
    assert "kubernetes:yaml:decode: the YAML does not parse" in str(raised.value)


def test_under_preview_generated_values_are_unknown() -> None:
    outputs = program_plan("mock_providers", preview=True).outputs
    assert outputs["password"] in ("<computed>", "[secret]")
    assert outputs["pet"] == outputs["fingerprint"] == "<computed>"


# --- secrets and --config --------------------------------------------------------------------


def test_a_secure_value_is_a_decodable_secret_placeholder() -> None:
    outputs = program_plan("mock_azure").outputs
    assert outputs["signingKeyBytes"] == "[secret]"
    values, secret_keys = _config("p", {}, {"key": {"secure": "v1:abc"}})
    assert secret_keys == ["p:key"]
    assert len(base64.b64decode(values["p:key"])) == 32
    assert len(base64.urlsafe_b64decode(values["p:key"])) == 32


def test_nested_secure_values_make_the_whole_key_secret() -> None:
    stack = {"alertWebhooks": [{"name": "oncall", "url": {"secure": "v1:abc"}}]}
    values, secret_keys = _config("p", {}, stack)
    assert secret_keys == ["p:alertWebhooks"]
    hooks = json.loads(values["p:alertWebhooks"])
    assert hooks[0]["name"] == "oncall" and isinstance(hooks[0]["url"], str)
    assert program_plan("mock_azure").outputs["webhookCount"] == "[secret]"


def test_config_overrides_replace_values_and_keep_or_add_secrecy() -> None:
    stack = {"key": {"secure": "v1:abc"}, "region": "eastus"}
    overrides = [parse_override("key=real"), parse_override("p:token=t", secret=True)]
    overrides.append(parse_override("azure-native:location=westus3"))
    values, secret_keys = _config("p", {}, stack, overrides)
    assert values["p:key"] == "real" and values["p:token"] == "t"
    assert values["azure-native:location"] == "westus3"
    assert sorted(secret_keys) == ["p:key", "p:token"]


def test_plan_config_flag_reaches_the_program(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    plan = ["plan", "--program", str(PROGRAMS / "mock_azure"), "--no-policy", "-f", "json"]
    flags = ["-c", "azure-native:location=eastus", "--config-secret", "signingKey=c2hvcnQ="]
    code = cli.main([*plan, "-o", str(out), *flags])
    assert code == cli.EXIT_OK
    document = json.loads(out.read_text())
    (vm,) = [r for r in document["resources"] if r["type"].endswith(":VirtualMachine")]
    assert vm["inputs"]["location"] == "eastus"
    assert document["outputs"]["groupLocation"] == "region eastus"
    assert document["outputs"]["signingKeyBytes"] == "[secret]"


def test_a_config_flag_without_equals_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ProjectError, match="KEY=VALUE"):
        parse_override("novalue")
    code = cli.main(["plan", "--program", str(PROGRAMS / "mock_azure"), "--config", "oops"])
    assert code == cli.EXIT_ERROR
    assert "--config 'oops': expected KEY=VALUE" in capsys.readouterr().err


# --- reported values are true for each environment -------------------------------------------


def _network_config(env: str) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / f"Pulumi.{env}.yaml").read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in config.items()}


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _private_addresses(texts: list[str]) -> list[ipaddress.IPv4Network]:
    found = []
    for text in texts:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if isinstance(network, ipaddress.IPv4Network) and network.is_private:
            found.append(network)
    return found


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_private_address_in_a_plan_is_inside_that_environments_network(env: str) -> None:
    config = _network_config(env)
    space = ipaddress.ip_network(config["network"]["addressSpace"])
    # Every range the environment's config names (subnets, allowed admin sources).
    extra = _private_addresses(_strings(config))
    plan = planned(env)
    texts = _strings(plan.outputs)
    for resource in plan.resources:
        texts += _strings(to_display(resource.outputs))
    addresses = _private_addresses(texts)
    assert addresses, "the plan reports no private address at all"
    # Service CIDRs AKS uses inside the cluster are the program's inputs, not reported facts.
    cluster_ranges = [ipaddress.ip_network(n) for n in _cluster_ranges(plan)]
    for address in addresses:
        inside = any(address.subnet_of(net) for net in [space, *extra, *cluster_ranges])
        assert inside, f"{env}: {address} is outside {space} and {extra}"


def _cluster_ranges(plan: Plan) -> list[str]:
    ranges = []
    for cluster in plan.by_type("azure-native:containerservice:ManagedCluster"):
        profile = cluster.inputs.get("networkProfile") or {}
        ranges += [
            profile[k] for k in ("serviceCidr", "podCidr", "dockerBridgeCidr") if k in profile
        ]
        ranges += [f"{profile['dnsServiceIP']}/32"] if "dnsServiceIP" in profile else []
    return ranges


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_api_gateways_address_comes_from_its_own_subnet(env: str) -> None:
    subnet = ipaddress.ip_network(_network_config(env)["inference"]["apimSubnet"])
    gateway = planned(env).outputs["inferenceGateway"]["gatewayPrivateIps"]
    assert gateway == [str(subnet.network_address + 4)]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_names_in_a_plan_carry_that_environments_name(env: str) -> None:
    plan = planned(env)
    others = [other for other in ENVIRONMENTS if other != env]
    assert plan.outputs["environment"] == env
    for key in ("resourceGroupName", "aksClusterName"):
        assert env in plan.outputs[key], key
    for text in _strings(plan.outputs):
        for other in others:
            assert f"-{other}-" not in text and not text.endswith(f"-{other}"), (key, text)




# --- placeholder shapes ----------------------------------------------------------------------


def test_password_without_special_characters_has_none() -> None:
    value = placeholders.password("seed", {"length": 40, "special": False, "minLower": 5})
    assert len(value) == 40 and value.isalnum()
    assert sum(c.islower() for c in value) >= 5
    assert value == placeholders.password("seed", {"length": 40, "special": False, "minLower": 5})


def test_pet_names_take_prefix_and_separator() -> None:
    name = placeholders.pet_name("seed", {"length": 2, "prefix": "gpu", "separator": "_"})
    prefix, *words = name.split("_")
    assert prefix == "gpu" and len(words) == 2


@pytest.mark.parametrize("algorithm", ["ED25519", "ECDSA", "RSA"])
def test_tls_private_key_public_half_is_a_wellformed_openssh_line(algorithm: str) -> None:
    outputs = placeholders.tls_private_key("seed", {"algorithm": algorithm})
    kind, body = outputs["publicKeyOpenssh"].split()
    blob = base64.b64decode(body)
    (length,) = struct.unpack(">I", blob[:4])
    assert blob[4 : 4 + length].decode() == kind
    assert outputs["publicKeyFingerprintSha256"].startswith("SHA256:")
    assert outputs["privateKeyPem"].startswith("-----BEGIN ")


def test_under_preview_the_gateway_address_is_unknown() -> None:
    mocks = AzureMocks(preview=True, config={})
    args = pulumi.runtime.MockResourceArgs(
        "azure-native:apimanagement:ApiManagementService",
        "apim",
        {
            "resourceGroupName": "rg",
            "location": "eastus",
            "virtualNetworkConfiguration": {"subnetResourceId": UNKNOWN},
        },
        "",
        custom=True,
    )
    _, state = mocks.new_resource(args)
    assert state["privateIPAddresses"] == UNKNOWN
    assert state["gatewayUrl"] == UNKNOWN


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_mock_answer_overwrites_an_input(env: str) -> None:
    for resource in planned(env).custom_resources():
        for key, value in resource.inputs.items():
            # ARM reads identities back as a map of id -> principal (see mocks), and secrets
            # travel wrapped differently on the two sides.
            if key == "identity" or "__secret__" in json.dumps(value, default=str):
                continue
            assert _preserved(value, resource.outputs.get(key)), (resource.urn, key)


def _preserved(given: Any, answered: Any) -> bool:
    """Every value the program gave is in the answer; ARM may add computed fields beside them."""
    if isinstance(given, dict):
        return isinstance(answered, dict) and all(
            _preserved(v, answered.get(k)) for k, v in given.items()
        )
    if isinstance(given, list):
        return (
            isinstance(answered, list)
            and len(given) == len(answered)
            and all(_preserved(g, a) for g, a in zip(given, answered, strict=True))
        )
    return given == answered


def test_resolving_an_sdk_class_leaves_its_lazily_loaded_package_whole() -> None:
    # In a fresh interpreter, as the planner's own process is when the monitor answers: looking a
    # class up must not break `from pulumi_azure_native import resources` for a later plan.
    import subprocess
    import sys

    script = (
        "import pulumi_azure_native\n"
        "from gpustack import sdk_types\n"
        "assert sdk_types.resource_class('azure-native:resources:ResourceGroup') is not None\n"
        "assert sdk_types.invoke_result_fields('azure-native:storage:listStorageAccountKeys')\n"
        "from pulumi_azure_native import resources, storage\n"
        "print(hasattr(resources, 'ResourceGroup'), hasattr(storage, 'StorageAccount'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["True", "True"]


# --- what a program reads but does not manage --------------------------------------------------


def test_another_stacks_outputs_are_unknown_under_preview() -> None:
    plan = program_plan("py_reads", preview=True)
    assert plan.outputs["subnetId"] == "<computed>"
    assert plan.outputs["subnetIdLength"] == "<computed>"
    assert any("stack reference acme/network/prod" in note for note in plan.notes)


def test_a_full_plan_reads_no_outputs_from_another_stack_and_says_so() -> None:
    plan = program_plan("py_reads")
    assert "subnetId" not in plan.outputs  # None: not sent, as the SDK does
    assert plan.outputs["subnetIdLength"] == 0
    assert plan.outputs["groupLocation"] == "westeurope"
    assert any("stack reference acme/network/prod" in note for note in plan.notes)
    # A read is not a resource of this plan: nothing to price or check.
    assert {r.type for r in plan.resources} == {"azure-native:resources:ResourceGroup"}


def test_requiring_another_stacks_output_fails_clearly_with_the_reason() -> None:
    with pytest.raises(ProgramError) as raised:
        run_plan(PROGRAMS / "py_reads", "strict")
    assert raised.value.fault == "program"
    message = str(raised.value)
    assert "gpuSubnetId" in message
    assert "stack reference acme/network/prod: its outputs are unknown offline" in message
    assert run_plan(PROGRAMS / "py_reads", "strict", preview=True).outputs["subnetId"] == (
        "<computed>"
    )


@pytest.mark.parametrize("preview", [False, True])
def test_additional_secret_outputs_reach_the_program_as_secrets(preview: bool) -> None:
    plan = program_plan("py_reads", preview=preview)
    sealed = next(r for r in plan.resources if r.name == "rg-sealed")
    assert sealed.options["additionalSecretOutputs"] == ["location"]
    assert plan.outputs["sealedLocation"] == "[secret]"
    assert plan.outputs["sealedLocationIsSecret"] is True
    # Underneath it is the planned value, which unsecret hands back.
    assert plan.outputs["sealedLocationUnsecret"] == "westeurope"


def test_an_existing_resource_read_keeps_its_id_and_invents_no_property() -> None:
    full = program_plan("py_reads").outputs
    assert full["sharedName"] == "sharedmodels"
    assert "sharedBlobEndpoint" not in full  # None, never a made-up endpoint
    previewed = program_plan("py_reads", preview=True).outputs
    assert previewed["sharedName"] == "sharedmodels"
    assert previewed["sharedBlobEndpoint"] == "<computed>"


def test_notes_reach_the_plan_json_and_stderr() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gpustack", "plan", "--program", str(PROGRAMS / "py_reads"),
         "--no-policy", "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    notes = json.loads(done.stdout)["notes"]
    assert notes == sorted(notes) and len(notes) == 2
    for note in notes:
        assert f"note: {note}" in done.stderr


def test_a_component_its_provider_builds_plans_empty_with_a_note() -> None:
    plan = program_plan("py_helm_v4")
    (chart,) = plan.by_type("kubernetes:helm.sh/v4:Chart")
    assert not chart.custom
    assert not [r for r in plan.resources if r.parent == chart.urn]
    assert plan.notes == [
        "kubernetes:helm.sh/v4:Chart gpu-operator: a component its provider builds; its "
        "children are not planned offline"
    ]


def test_a_dynamic_providers_code_never_runs_and_the_plan_says_so() -> None:
    full = program_plan("py_dynamic")
    assert "value" not in full.outputs
    assert full.notes == [
        "pulumi-python:dynamic:Resource doubled: a dynamic provider's code is not run offline; "
        "the outputs it would compute are not in this plan"
    ]
    assert program_plan("py_dynamic", preview=True).outputs["value"] == "<computed>"


@pytest.mark.parametrize("location", ["westus2", "West US 2"])
def test_a_public_ip_with_a_dns_label_answers_on_its_cloudapp_name(location: str) -> None:
    # azure-ts-webserver and vm-scaleset export `dnsSettings.fqdn`: it read `undefined`.
    args = pulumi.runtime.MockResourceArgs(
        "azure-native:network:PublicIPAddress",
        "lb-ip",
        {"resourceGroupName": "rg", "location": location, "dnsSettings": {"domainNameLabel": "a"}},
        "",
        custom=True,
    )
    _, state = AzureMocks(config={}).new_resource(args)
    assert state["dnsSettings"] == {"domainNameLabel": "a", "fqdn": "a.westus2.cloudapp.azure.com"}
    assert "ipAddress" not in state or state["ipAddress"] == UNKNOWN
    # Under preview it is known only after deploy, as every output is.
    _, state = AzureMocks(preview=True, config={}).new_resource(args)
    assert state["dnsSettings"]["fqdn"] == UNKNOWN
