"""`gpustack plan --program` on programs written the way other teams write them.

Each fixture follows public examples (pulumi/examples azure-py-* and azure-ts-*, the
`pulumi new` templates), not this project's style: inline subnets read back by id, App Service
with its publishing credentials, Application Insights connection strings, Key Vault secrets, an
existing resource group read with an invoke, AKS credentials fed to a Kubernetes provider,
`export = async () => {...}`, and SDKs pinned years back (azure-native 2.x in Python,
@pulumi/pulumi 3.96 in TypeScript). Each program is planned once per mode for the whole module.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gpustack.engine import SECRET_KEY, Plan
from gpustack.hosts import nodejs
from gpustack.mocks import answers
from gpustack.project import load_project
from gpustack.report import plan_document, render_json
from tests.conftest import PROGRAMS, program_plan

EXISTING_GROUP_NOTE = (
    "azure-native:resources:getResourceGroup(resourceGroupName=shared-services): location "
    "unknown offline (read from a resource this program does not create)"
)


def one(plan: Plan, token: str) -> str:
    """The id of the one resource of type `token`."""
    (resource,) = plan.by_type(token)
    assert resource.id is not None
    return resource.id


@pytest.fixture(scope="module")
def node_and_npm() -> None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"`{tool}` is not on PATH: planning TypeScript programs needs it")


# --- inline child resources (a VNet's subnets, a NIC's ip configurations) -----------------------


def test_inline_subnets_get_arm_ids_and_a_nic_its_address_from_one() -> None:
    plan = program_plan("py_foreign")
    vnet = one(plan, "azure-native:network:VirtualNetwork")
    assert plan.outputs["subnetId"] == f"{vnet}/subnets/apps"
    # The first address Azure hands out in 10.20.1.0/24.
    assert plan.outputs["nicAddress"] == "10.20.1.4"
    (nic,) = plan.by_type("azure-native:network:NetworkInterface")
    (config,) = nic.outputs["ipConfigurations"]
    assert config["id"] == f"{nic.id}/ipConfigurations/ipconfig1"


def test_under_preview_a_field_an_input_object_lacks_is_unknown_not_absent() -> None:
    # azure-native previews nested fields the inputs do not give as unknown; absent, the SDK
    # read them as None and the stack output vanished.
    outputs = program_plan("py_foreign", preview=True).outputs
    assert outputs["subnetId"] == "<computed>"
    assert outputs["nicAddress"] == "<computed>"


# --- App Service, Application Insights, Key Vault, AKS ----------------------------------------


def test_a_web_app_answers_with_its_arm_id_host_name_and_deployment_user() -> None:
    plan = program_plan("py_foreign")
    name = plan.outputs["appName"]
    assert one(plan, "azure-native:web:WebApp").endswith(f"/providers/Microsoft.Web/sites/{name}")
    assert "/providers/Microsoft.Web/serverfarms/" in one(plan, "azure-native:web:AppServicePlan")
    assert plan.outputs["appHost"] == f"{name}.azurewebsites.net"
    assert plan.outputs["appUrl"] == f"https://{name}.azurewebsites.net"
    assert plan.outputs["publishingUser"] == f"${name}"
    # Outbound addresses are Azure's to choose: never a made-up value.
    assert plan.outputs["outboundIps"] == "<computed>"


def test_a_deployment_slot_is_a_child_of_its_app_and_answers_on_its_host_name() -> None:
    # Before: ".../Microsoft.Web/webAppSlots/<app name>" (the app's name taken for the slot's)
    # and a made-up host name.
    plan = program_plan("py_foreign")
    name = plan.outputs["appName"]
    assert plan.outputs["slotId"] == one(plan, "azure-native:web:WebApp") + "/slots/staging"
    assert plan.outputs["slotHost"] == f"{name}-staging.azurewebsites.net"


def test_an_application_insights_connection_string_carries_its_key_and_region() -> None:
    plan = program_plan("py_foreign")
    connection = plan.outputs["insightsConnection"]
    assert connection.startswith(f"InstrumentationKey={plan.outputs['insightsKey']};")
    assert "IngestionEndpoint=https://westeurope-1.in.applicationinsights.azure.com/" in connection
    assert "/providers/Microsoft.Insights/components/" in one(
        plan, "azure-native:applicationinsights:Component"
    )
    # The app setting holds the same string the component answered.
    (app,) = plan.by_type("azure-native:web:WebApp")
    (setting,) = app.inputs["siteConfig"]["appSettings"]
    assert setting["value"] == connection


def test_a_key_vault_secret_lives_under_its_vault() -> None:
    plan = program_plan("py_foreign")
    vault = one(plan, "azure-native:keyvault:Vault")
    assert plan.outputs["secretId"].startswith(f"{vault}/secrets/sql-password")
    # Its properties carry the secret value, so the engine keeps the whole object secret.
    assert plan.outputs["secretUri"] == "[secret]"


def test_the_cluster_fqdn_starts_with_its_dns_prefix_and_the_kubeconfig_points_at_it() -> None:
    outputs = program_plan("py_foreign").outputs
    assert outputs["clusterFqdn"].startswith("examplesaks-")
    assert outputs["clusterFqdn"].endswith(".hcp.westeurope.azmk8s.io")
    assert outputs["kubeconfigServer"] == f"https://{outputs['clusterFqdn']}:443"


def test_a_static_websites_blob_lands_in_web_under_its_own_name() -> None:
    # Before: the container was a made-up GUID and the blob got a random suffix, which the
    # provider never adds to a blob.
    plan = program_plan("py_foreign")
    account = plan.outputs["siteAccount"]
    assert plan.outputs["indexUrl"] == f"https://{account}.blob.core.windows.net/$web/index.html"
    assert one(plan, "azure-native:storage:Blob").endswith(
        f"/storageAccounts/{account}/blobServices/default/containers/$web/blobs/index.html"
    )


def test_a_sql_server_answers_on_its_documented_host_name_and_its_connection_stays_secret() -> (
    None
):
    plan = program_plan("py_foreign")
    assert plan.outputs["sqlFqdn"] == f"{plan.outputs['sqlServerName']}.database.windows.net"
    assert plan.outputs["sqlConnection"] == "[secret]"
    assert one(plan, "azure-native:sql:Database").startswith(
        one(plan, "azure-native:sql:Server") + "/databases/db"
    )


def test_a_service_bus_answers_its_endpoint_and_a_connection_string_of_the_right_shape() -> None:
    outputs = program_plan("py_foreign").outputs
    name = outputs["busName"]
    assert outputs["busEndpoint"] == f"https://{name}.servicebus.windows.net:443/"
    assert outputs["busConnectionPrefix"] == (
        f"Endpoint=sb://{name}.servicebus.windows.net/;"
        "SharedAccessKeyName=RootManageSharedAccessKey"
    )


def test_child_resources_of_data_services_sit_under_their_parents_arm_id() -> None:
    # Before: flat, made-up paths (".../providers/Microsoft.Cosmosdb/sqlResourceSqlDatabases/
    # <name>", ".../Microsoft.Synapse/ipFirewallRules/<name>"), which programs pass on as scopes.
    plan = program_plan("py_foreign")
    outputs = plan.outputs
    account = one(plan, "azure-native:cosmosdb:DatabaseAccount")
    database = one(plan, "azure-native:cosmosdb:SqlResourceSqlDatabase")
    assert database.startswith(f"{account}/sqlDatabases/cosmos-db")
    assert outputs["cosmosContainerId"].startswith(f"{database}/containers/items")
    workspace = one(plan, "azure-native:synapse:Workspace")
    assert workspace.endswith(f"/providers/Microsoft.Synapse/workspaces/{outputs['workspaceName']}")
    assert outputs["synapseFirewallId"].startswith(f"{workspace}/firewallRules/allowAll")
    assert outputs["sqlPoolId"].startswith(f"{workspace}/sqlPools/SQLPOOL1")
    assert outputs["sqlFirewallId"].startswith(
        one(plan, "azure-native:sql:Server") + "/firewallRules/allow-azure"
    )
    assert outputs["busQueueId"].startswith(
        one(plan, "azure-native:servicebus:Namespace") + "/queues/orders"
    )


def test_services_get_their_registered_namespace_and_redis_its_host_name() -> None:
    # Before: "Microsoft.Redis/rediss/<name>" and "Microsoft.Eventgrid/...": the module's name
    # capitalized, which is not the namespace ARM registers (Microsoft.Cache, EventGrid).
    plan = program_plan("py_foreign")
    outputs = plan.outputs
    assert "/providers/Microsoft.Cache/redis/cache" in outputs["cacheId"]
    name = outputs["cacheId"].rsplit("/", 1)[1]
    assert outputs["cacheHost"] == f"{name}.redis.cache.windows.net:6380"
    assert "/providers/Microsoft.EventGrid/topics/events" in outputs["topicId"]


def test_a_cosmos_connection_string_carries_the_accounts_own_key() -> None:
    # Before: listDatabaseAccountKeys and listDatabaseAccountConnectionStrings made up two
    # different keys for one account.
    outputs = program_plan("py_foreign").outputs
    assert outputs["cosmosConnection"].endswith(f";AccountKey={outputs['cosmosKey']};")


def test_a_synapse_workspace_answers_on_its_documented_endpoints() -> None:
    # Before: an empty map, so `connectivity_endpoints["dev"]` failed the program (KeyError).
    outputs = program_plan("py_foreign").outputs
    name = outputs["workspaceName"]
    assert outputs["synapseDev"] == f"https://{name}.dev.azuresynapse.net"
    assert outputs["synapseSql"] == f"{name}.sql.azuresynapse.net"


def test_container_apps_and_groups_answer_on_their_documented_host_names() -> None:
    # Before: the app's ingress had no fqdn, and Output.concat("https://", None) failed the
    # program (TypeError: sequence item 1: expected str instance, NoneType found).
    outputs = program_plan("py_foreign").outputs
    domain = outputs["environmentDomain"]
    assert domain.endswith(".westeurope.azurecontainerapps.io")
    assert outputs["containerAppUrl"] == f"https://{outputs['containerAppName']}.{domain}"
    assert outputs["containerGroupFqdn"] == "hello-aci.westeurope.azurecontainer.io"
    # In another team's environment: internal ingress, a domain the plan cannot know.
    shared = outputs["sharedAppUrl"]
    assert shared.startswith(f"https://{outputs['sharedAppName']}.internal.placeholder-")
    assert shared.endswith(".invalid")


def test_a_certificates_validity_window_is_unknown_not_a_guid() -> None:
    assert program_plan("py_foreign").outputs["certExpires"] == "<computed>"


def test_a_secure_config_value_never_reaches_the_plan_in_plain_text() -> None:
    plan = program_plan("py_foreign")
    project = load_project(PROGRAMS / "py_foreign", "dev")
    document = render_json(plan_document(plan))
    for key in ("sqlPassword", "drSubscriptionId"):
        value = project.config[f"foreign-webapp:{key}"]
        assert value and value not in document, key
    (secret,) = plan.by_type("azure-native:keyvault:Secret")
    password = project.config["foreign-webapp:sqlPassword"]
    assert secret.inputs["properties"]["value"] == {SECRET_KEY: password}


def test_a_secret_subscription_id_gives_ids_in_the_placeholder_subscription() -> None:
    # Before: the secret (the stand-in for a `secure:` value) was pasted into every ARM id of
    # the provider's resources, as a Python dict: "/subscriptions/{'4dabf1...': ..., 'value':
    # '<the secret>'}/resourceGroups/...".
    plan = program_plan("py_foreign")
    subscription = answers()["subscription"]
    assert plan.outputs["drGroupId"].startswith(f"/subscriptions/{subscription}/resourceGroups/dr")
    assert plan.outputs["drLocation"] == "swedencentral"
    assert any("subscriptionId is secret" in note for note in plan.notes)


def test_a_getter_answers_with_the_resources_arm_id_and_its_planned_values() -> None:
    # Before: `get_subnet(...).id` was a GUID, which programs pass on as a subnet id, and a
    # vault read back with get_vault had a second, made-up URI.
    plan = program_plan("py_foreign")
    subscription = answers()["subscription"]
    assert plan.outputs["hubSubnetId"] == (
        f"/subscriptions/{subscription}/resourceGroups/network-rg/providers/"
        "Microsoft.Network/virtualNetworks/hub/subnets/aks"
    )
    assert "hubSubnetPrefix" not in plan.outputs  # another team's address range: not invented
    assert plan.outputs["vaultUriRead"] == plan.outputs["vaultUri"]
    assert plan.outputs["vaultUri"] == f"https://{plan.outputs['vaultName']}.vault.azure.net/"


@pytest.mark.parametrize("preview", [False, True])
def test_an_imported_resource_keeps_the_id_it_was_imported_with(preview: bool) -> None:
    # Before: a made-up id in the placeholder subscription, and the whole ARM id as its name.
    legacy = "/subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/legacy-rg"
    plan = program_plan("py_foreign", preview=preview)
    assert plan.outputs["legacyId"] == legacy
    (group,) = [r for r in plan.resources if r.name == "legacy"]
    assert group.id == legacy
    imported = "azure-native:resources:ResourceGroup legacy: imported"
    assert any(note.startswith(imported) for note in plan.notes)


# --- reading a resource group this program does not create -----------------------------------


def test_reading_an_existing_group_plans_under_preview_and_says_what_is_unknown() -> None:
    # Before: the invoke's typed result carried an unknown location and the program failed
    # with "TypeError: Expected argument 'location' to be a str".
    preview = program_plan("py_foreign", preview=True)
    assert preview.outputs["sharedLocation"] == "<computed>"
    assert EXISTING_GROUP_NOTE in preview.notes
    full = program_plan("py_foreign")
    assert "sharedLocation" not in full.outputs  # None: never an invented region
    assert EXISTING_GROUP_NOTE in full.notes


# --- a program pinned to azure-native 2.x (its own virtualenv) --------------------------------


def test_an_old_sdk_program_reads_inline_ids_and_connection_strings_from_its_own_shapes() -> None:
    plan = program_plan("py_old_sdk_foreign")
    vnet = one(plan, "azure-native:network:VirtualNetwork")
    assert plan.outputs["subnetId"] == f"{vnet}/subnets/default"
    assert plan.outputs["nicAddress"] == "10.40.2.4"
    connection = plan.outputs["insightsConnection"]
    assert connection.startswith(f"InstrumentationKey={plan.outputs['insightsKey']};")
    assert "/providers/Microsoft.Insights/components/appi-old" in one(
        plan, "azure-native:insights:Component"
    )
    assert EXISTING_GROUP_NOTE in plan.notes


def test_an_old_sdk_program_previews_with_unknowns_where_arm_computes() -> None:
    outputs = program_plan("py_old_sdk_foreign", preview=True).outputs
    assert outputs["subnetId"] == outputs["nicAddress"] == "<computed>"


# --- TypeScript ---------------------------------------------------------------------------------


def test_an_async_typescript_program_reads_inline_ids_and_host_names(node_and_npm: None) -> None:
    plan = program_plan("ts_foreign")
    vnet = one(plan, "azure-native:network:VirtualNetwork")
    app = one(plan, "azure-native:web:WebApp")
    assert plan.outputs["subnetId"] == f"{vnet}/subnets/apps"
    assert plan.outputs["nicAddress"] == "10.30.1.4"
    assert plan.outputs["appUrl"] == f"https://{app.rsplit('/', 1)[1]}.azurewebsites.net"


def test_a_typescript_preview_keeps_nested_unknowns_as_stack_outputs(node_and_npm: None) -> None:
    # Before: `undefined`, and Node.js dropped them ("Undefined value (subnetId) will not show
    # as a stack output").
    outputs = program_plan("ts_foreign", preview=True).outputs
    assert outputs["subnetId"] == outputs["nicAddress"] == "<computed>"


def test_a_typescript_full_plan_keeps_what_azure_computes_unknown(node_and_npm: None) -> None:
    # Outside a dry run the Node.js SDK read an unknown output as `undefined`: the callback
    # `provisioningState.apply(s => s.toLowerCase())` threw a TypeError and failed the plan,
    # where the Python twin's callback does not run and the output reads "<computed>".
    plan = program_plan("ts_foreign")
    assert plan.outputs["ordersAccountState"] == "<computed>"


def test_a_resource_in_a_components_args_keeps_its_place_in_a_full_plan(
    node_and_npm: None,
) -> None:
    # The SDK sends the group in the component's args as a resource reference and, in a full
    # plan, reads it back by constructing the group again (`opts.urn`, no registration): the
    # plan listed the group last, after everything the program built from it.
    names = [r.name for r in program_plan("ts_foreign").resources]
    assert names == [r.name for r in program_plan("ts_foreign", preview=True).resources]
    assert names == [
        "foreign-ts-dev", "core", "core-vnet", "core-nic", "plan", "app",
        "orders", "orders-cosmos", "orders-db", "orders-items",
    ]  # fmt: skip


def test_an_exported_resource_reads_alike_in_a_preview_and_a_full_plan(node_and_npm: None) -> None:
    # In a preview the SDK marks an exported resource with "@isPulumiResource" for the
    # engine's diff; the CLI never shows it, and neither does the plan.
    full = program_plan("ts_foreign").outputs["group"]
    preview = program_plan("ts_foreign", preview=True).outputs["group"]
    assert "@isPulumiResource" not in preview
    assert sorted(preview) == sorted(full)
    assert full["id"] == one(program_plan("ts_foreign"), "azure-native:resources:ResourceGroup")
    assert preview["id"] == "<computed>"


def test_cosmos_sql_databases_and_containers_keep_the_names_the_program_gives(
    node_and_npm: None,
) -> None:
    # Before: auto-named (`orders-db2dd02c02`) under a made-up Microsoft.Cosmosdb namespace, so
    # the container was given that name as its `databaseName`.
    plan = program_plan("ts_foreign")
    account = one(plan, "azure-native:cosmosdb:DatabaseAccount")
    database = one(plan, "azure-native:cosmosdb:SqlResourceSqlDatabase")
    assert database == f"{account}/sqlDatabases/orders"
    assert plan.outputs["ordersContainerId"] == f"{database}/containers/items"
    (container,) = plan.by_type("azure-native:cosmosdb:SqlResourceSqlContainer")
    assert container.inputs["databaseName"] == "orders"


def test_a_2023_nodejs_sdk_program_is_listed_in_constructor_order(node_and_npm: None) -> None:
    # @pulumi/pulumi 3.96 has no cmd/run/instrumentation; the preload used to give up on it, so
    # the plan listed resources in the order their requests arrived ("first" is delayed).
    plan = program_plan("ts_old_sdk")
    assert [r.name for r in plan.resources] == ["first", "second", "third"]
    assert plan.outputs["names"].startswith("late-")
    assert plan.outputs["password"] == "[secret]"


def test_a_nodejs_error_that_refers_to_itself_reads_without_inspects_marker(
    tmp_path: Path,
) -> None:
    # What @pulumi/pulumi logs for `requireOutput` of a missing stack output: Node's
    # util.inspect marks the self-referencing error with `<ref *1>`, which is no part of it.
    logged = (
        "Running program '/work/app' failed with an unhandled exception:\n"
        "<ref *1> Error: error serializing property \"resourceGroupName\": Required output "
        "'resourceGroupName' does not exist on stack 'organization/network/dev'.\n"
        "    at /work/app/node_modules/@pulumi/pulumi/runtime/rpc.js:120:27"
    )
    error = nodejs.describe_failure(tmp_path, 1, [logged], "")
    assert str(error).startswith('the program failed: Error: error serializing property "')
    assert "<ref" not in str(error)
