"""The offline engine answers like Azure and records what the engine would see."""

from __future__ import annotations

import base64
import re

import pulumi
import yaml
from pulumi.runtime.rpc import UNKNOWN
from pulumi_azure_native import (
    authorization,
    compute,
    containerservice,
    keyvault,
    managedidentity,
    network,
    resources,
    storage,
)

from gpustack.engine import SECRET_KEY, PlannedResource, capture
from gpustack.mocks import answers

SUBSCRIPTION = answers()["subscription"]
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def only(registered: list[PlannedResource], token: str) -> PlannedResource:
    (match,) = [r for r in registered if r.type == token]
    return match


def test_ids_are_arm_shaped_and_nest_child_resources() -> None:
    def declare() -> None:
        vnet = network.VirtualNetwork(
            "vnet", resource_group_name="rg-a", virtual_network_name="vnet-a"
        )
        network.Subnet(
            "snet",
            subnet_name="snet-gpu",
            resource_group_name="rg-a",
            virtual_network_name=vnet.name,
            address_prefix="10.0.0.0/24",
        )

    registered = capture(declare)
    vnet = only(registered, "azure-native:network:VirtualNetwork")
    subnet = only(registered, "azure-native:network:Subnet")
    assert vnet.id == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-a/providers/"
        "Microsoft.Network/virtualNetworks/vnet-a"
    )
    assert subnet.id == f"{vnet.id}/subnets/snet-gpu"
    assert subnet.outputs["type"] == "Microsoft.Network/virtualNetworks/subnets"


def test_resource_group_id_has_no_provider_segment() -> None:
    registered = capture(lambda: resources.ResourceGroup("rg", resource_group_name="rg-x"))
    assert registered[0].id == f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-x"


def test_auto_names_add_a_stable_suffix_to_the_logical_name() -> None:
    def declare() -> None:
        storage.StorageAccount(
            "models",
            resource_group_name="rg",
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=storage.SkuName.STANDARD_ZRS),
        )

    first = only(capture(declare), "azure-native:storage:StorageAccount")
    second = only(capture(declare), "azure-native:storage:StorageAccount")
    name = first.outputs["accountName"]
    assert re.fullmatch(r"models[0-9a-f]{8}", name)
    assert second.outputs["accountName"] == name
    assert first.id is not None and first.id.endswith(f"/storageAccounts/{name}")


def test_role_assignment_auto_name_is_a_guid() -> None:
    def declare() -> None:
        authorization.RoleAssignment(
            "reader",
            scope="/subscriptions/s/resourceGroups/rg",
            principal_id="p",
            role_definition_id="/providers/Microsoft.Authorization/roleDefinitions/r",
        )

    assignment = only(capture(declare), "azure-native:authorization:RoleAssignment")
    name = assignment.outputs["roleAssignmentName"]
    assert re.fullmatch(GUID, name)
    assert assignment.id == (
        f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/{name}"
    )


def test_computed_outputs_reach_the_program() -> None:
    seen: dict[str, object] = {}

    def declare() -> pulumi.Output:
        account = storage.StorageAccount(
            "sa",
            account_name="gpumodels",
            resource_group_name="rg",
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=storage.SkuName.STANDARD_ZRS),
        )
        identity = managedidentity.UserAssignedIdentity("id", resource_group_name="rg")
        vault = keyvault.Vault(
            "kv",
            vault_name="kv-gpu",
            resource_group_name="rg",
            properties=keyvault.VaultPropertiesArgs(
                tenant_id="t", sku=keyvault.SkuArgs(family="A", name=keyvault.SkuName.STANDARD)
            ),
        )
        cluster = containerservice.ManagedCluster(
            "aks", resource_name_="aks-gpu", resource_group_name="rg", location="eastus"
        )
        return pulumi.Output.all(
            account.primary_endpoints.blob,
            identity.principal_id,
            identity.client_id,
            vault.properties.vault_uri,
            cluster.fqdn,
            cluster.oidc_issuer_profile.issuer_url,
            cluster.identity_profile,
        ).apply(lambda values: seen.update(values=values))

    capture(declare)
    blob, principal, client, vault_uri, fqdn, issuer, profile = seen["values"]  # type: ignore[misc]
    assert blob == "https://gpumodels.blob.core.windows.net/"
    assert re.fullmatch(r"[0-9a-f-]{36}", principal) and principal != client
    assert vault_uri == "https://kv-gpu.vault.azure.net/"
    assert fqdn.startswith("aks-gpu-") and fqdn.endswith(".hcp.eastus.azmk8s.io")
    assert issuer.startswith("https://eastus.oic.prod-aks.azure.com/")
    assert re.fullmatch(r"[0-9a-f-]{36}", profile["kubeletidentity"]["object_id"])


def test_program_inputs_are_not_overwritten_by_computed_outputs() -> None:
    def declare() -> None:
        managedidentity.UserAssignedIdentity(
            "id", resource_group_name="rg", tags={"owner": "me"}
        )

    identity = only(capture(declare), "azure-native:managedidentity:UserAssignedIdentity")
    assert identity.outputs["tags"] == {"owner": "me"}
    assert identity.outputs["tenantId"] == answers()["tenant"]


def test_invokes_answer_client_config_and_a_valid_kubeconfig() -> None:
    seen: dict[str, object] = {}

    def declare() -> pulumi.Output:
        client = authorization.get_client_config_output()
        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name="rg", resource_name="aks-gpu"
        )
        return pulumi.Output.all(client.tenant_id, credentials.kubeconfigs).apply(
            lambda values: seen.update(values=values)
        )

    capture(declare)
    tenant, kubeconfigs = seen["values"]  # type: ignore[misc]
    assert tenant == answers()["tenant"]
    kubeconfig = yaml.safe_load(base64.b64decode(kubeconfigs[0]["value"]))
    assert kubeconfig["kind"] == "Config"
    assert kubeconfig["clusters"][0]["name"] == "aks-gpu"
    assert kubeconfig["clusters"][0]["cluster"]["server"].startswith("https://aks-gpu-")


def test_unknown_invoke_answers_empty_instead_of_echoing_its_arguments() -> None:
    seen: dict[str, object] = {}

    def declare() -> None:
        result = pulumi.runtime.invoke("azure-native:made:upFunction", {"answer": 42})
        seen["value"] = result.value

    capture(declare)
    # No result type in the SDK and no answer: nothing the program could mistake for ARM's.
    assert seen["value"] == {}


def test_unknown_azure_type_gets_a_generic_arm_id() -> None:
    def declare() -> None:
        pulumi.CustomResource(
            "azure-native:widgets:Gadget", "g", {"resourceGroupName": "rg-w", "gadgetName": "g1"}
        )

    (gadget,) = capture(declare)
    assert gadget.id == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-w/providers/Microsoft.Widgets/gadgets/g1"
    )


def test_non_azure_types_get_a_stable_id() -> None:
    registered = capture(lambda: pulumi.CustomResource("random:index:RandomPet", "pet", {}))
    assert registered[0].id and registered[0].id.startswith("pet-")


def test_resource_options_are_recorded() -> None:
    def declare() -> None:
        group = resources.ResourceGroup("rg", resource_group_name="rg-o")
        storage.StorageAccount(
            "sa",
            resource_group_name=group.name,
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=storage.SkuName.STANDARD_ZRS),
            opts=pulumi.ResourceOptions(
                protect=True,
                retain_on_delete=True,
                delete_before_replace=True,
                ignore_changes=["tags"],
            ),
        )
        identity = managedidentity.UserAssignedIdentity(
            "id", resource_group_name="rg-o", opts=pulumi.ResourceOptions(depends_on=[group])
        )
        del identity

    registered = capture(declare)
    group = only(registered, "azure-native:resources:ResourceGroup")
    account = only(registered, "azure-native:storage:StorageAccount")
    identity = only(registered, "azure-native:managedidentity:UserAssignedIdentity")
    assert account.options["protect"] is True
    assert account.options["retainOnDelete"] is True
    assert account.options["deleteBeforeReplace"] is True
    assert account.options["ignoreChanges"] == ["tags"]
    # The group reaches the account through an input: a dependency, not an explicit dependsOn.
    assert group.urn in account.dependencies and account.options["dependsOn"] == []
    assert account.property_dependencies["resourceGroupName"] == [group.urn]
    assert identity.options["dependsOn"] == [group.urn]
    assert group.options["protect"] is False


def test_explicit_provider_and_parent_are_recorded() -> None:
    def declare() -> None:
        component = pulumi.ComponentResource("test:index:Box", "box")
        provider = pulumi.ProviderResource("azure-native", "eu", {"location": "westeurope"})
        resources.ResourceGroup(
            "rg", opts=pulumi.ResourceOptions(parent=component, provider=provider)
        )

    registered = capture(declare)
    group = only(registered, "azure-native:resources:ResourceGroup")
    box = only(registered, "test:index:Box")
    assert group.parent == box.urn
    assert group.options["provider"] == "urn:pulumi:test::test::pulumi:providers:azure-native::eu"
    assert group.urn == (
        "urn:pulumi:test::test::test:index:Box$azure-native:resources:ResourceGroup::rg"
    )
    assert box.custom is False


def test_preview_leaves_computed_outputs_unknown() -> None:
    seen: dict[str, object] = {}

    def declare() -> None:
        account = storage.StorageAccount(
            "sa",
            resource_group_name="rg",
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=storage.SkuName.STANDARD_ZRS),
        )
        managedidentity.UserAssignedIdentity(
            "id", resource_group_name="rg", tags={"blob": account.primary_endpoints.blob}
        )
        account.primary_endpoints.blob.apply(lambda blob: seen.update(blob=blob))

    registered = capture(declare, preview=True)
    identity = only(registered, "azure-native:managedidentity:UserAssignedIdentity")
    assert identity.inputs["tags"]["blob"] == UNKNOWN
    assert all(r.id is None for r in registered)
    assert "blob" not in seen  # an apply on an unknown never runs, as in `pulumi preview`

    capture(declare, preview=False)
    assert seen["blob"].startswith("https://sa")


def test_secret_inputs_are_marked_secret() -> None:
    def declare() -> None:
        managedidentity.UserAssignedIdentity(
            "id", resource_group_name="rg", tags={"token": pulumi.Output.secret("hunter2")}
        )

    (identity,) = capture(declare)
    assert identity.inputs["tags"] == {"token": {SECRET_KEY: "hunter2"}}
    assert identity.to_json()["inputs"]["tags"] == {"token": "[secret]"}


def test_user_assigned_identities_come_back_as_arms_map() -> None:
    seen: dict[str, object] = {}

    def declare() -> None:
        identity = managedidentity.UserAssignedIdentity("id", resource_group_name="rg")
        vmss = compute.VirtualMachineScaleSet(
            "vmss",
            resource_group_name="rg",
            identity=compute.VirtualMachineScaleSetIdentityArgs(
                type=compute.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[identity.id],
            ),
        )
        pulumi.Output.all(identity.id, vmss.identity).apply(lambda v: seen.update(values=v))

    capture(declare)
    identity_id, vmss_identity = seen["values"]  # type: ignore[misc]
    assigned = vmss_identity["user_assigned_identities"]
    assert list(assigned) == [identity_id]
    assert re.fullmatch(GUID, assigned[identity_id]["principal_id"])
