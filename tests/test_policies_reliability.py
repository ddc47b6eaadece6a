"""Reliability rules: recoverable storage, protected state, resilient AKS, diagnostics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace as dataclasses_replace
from typing import Any

import pytest
from pulumi_policy import ResourceValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from gpustack.engine import Plan
from policies import reliability
from tests.policy_runs import Declared, check_resource, check_stack

STORAGE = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
VAULT = "azure-native:keyvault:Vault"
CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"
FILE_SERVICE = "azure-native:storage:FileServiceProperties"
FILE_SHARE = "azure-native:storage:FileShare"
MAINTENANCE = "azure-native:containerservice:MaintenanceConfiguration"
SUBNET = "azure-native:network:Subnet"
APIM = "azure-native:apimanagement:ApiManagementService"

PROD = {"environment": "prod"}
STAGING = {"environment": "staging"}
DEV = {"environment": "dev"}
RETAIN = {"enabled": True, "days": 14}


def blob_service(**props: object) -> dict[str, object]:
    """A blob service with soft delete and versioning on, unless overridden."""
    return {"accountName": "modelsabc", "blobServicesName": "default",
            "deleteRetentionPolicy": RETAIN, "containerDeleteRetentionPolicy": RETAIN,
            "isVersioningEnabled": True, **props}


def test_storage_accounts_keep_deleted_blobs_and_containers() -> None:
    account = Declared(STORAGE, "models", {"accountName": "modelsabc"})
    service = Declared(BLOB_SERVICE, "models-blobs", blob_service(),
                       deps={"accountName": ["models"]})
    assert check_stack(reliability.storage_blob_soft_delete, [account, service]) == []
    ((message, urn),) = check_stack(reliability.storage_blob_soft_delete, [account])
    assert "no BlobServiceProperties" in message and urn == account.urn
    short = Declared(BLOB_SERVICE, "models-blobs",
                     blob_service(deleteRetentionPolicy={"enabled": True, "days": 3}),
                     deps={"accountName": ["models"]})
    ((message, urn),) = check_stack(reliability.storage_blob_soft_delete, [account, short])
    assert "deleteRetentionPolicy.days is 3, below 7" in message and urn == short.urn


def test_blob_service_is_matched_by_account_name_without_dependencies() -> None:
    account = Declared(STORAGE, "models", {"accountName": "modelsabc"})
    by_name = Declared(BLOB_SERVICE, "models-blobs", blob_service(
        containerDeleteRetentionPolicy={"enabled": False}))
    ((message, _),) = check_stack(reliability.storage_blob_soft_delete, [account, by_name])
    assert "containerDeleteRetentionPolicy.enabled is False" in message


def test_storage_accounts_version_blobs() -> None:
    account = Declared(STORAGE, "models", {"accountName": "modelsabc"})
    service = Declared(BLOB_SERVICE, "b", blob_service(), deps={"accountName": ["models"]})
    assert check_stack(reliability.storage_blob_versioning, [account, service]) == []
    off = Declared(BLOB_SERVICE, "b", blob_service(isVersioningEnabled=False),
                   deps={"accountName": ["models"]})
    ((message, _),) = check_stack(reliability.storage_blob_versioning, [account, off])
    assert "does not enable blob versioning" in message
    adls = Declared(STORAGE, "models", {"accountName": "modelsabc", "isHnsEnabled": True})
    assert check_stack(reliability.storage_blob_versioning, [adls, off]) == []


def test_stateful_resources_are_protected_in_prod_only() -> None:
    policy = reliability.reliability_protect_stateful
    assert check_resource(policy, VAULT, {}, config=PROD, protect=True) == []
    (message,) = check_resource(policy, VAULT, {}, config=PROD)
    assert "keyvault:Vault res holds state but is not protected" in message
    assert check_resource(policy, VAULT, {}, config=DEV) == []
    assert check_resource(policy, SUBNET, {}, config=PROD) == []


def test_prod_system_pool_runs_two_nodes_in_two_zones() -> None:
    policy = reliability.reliability_system_pool_zonal
    zonal = {"agentPoolProfiles": [{"name": "system", "mode": "System", "count": 3,
                                    "vmSize": "Standard_D4ds_v5",
                                    "availabilityZones": ["1", "2", "3"]}]}
    assert check_resource(policy, CLUSTER, zonal, config=PROD) == []
    single = {"agentPoolProfiles": [{"name": "system", "enableAutoScaling": True,
                                     "vmSize": "Standard_D4ds_v5",
                                     "minCount": 1, "maxCount": 3}]}
    (message,) = check_resource(policy, CLUSTER, single, config=PROD)
    assert "runs as few as 1 nodes and spans zones (none)" in message
    assert check_resource(policy, CLUSTER, single, config=DEV) == []
    separate = {"mode": "System", "count": 1, "availabilityZones": ["1", "2"]}
    assert check_resource(policy, AGENT_POOL, separate, config=PROD)
    # An unknown size is not asked for zones it may not have; the node count still counts.
    unknown = {"agentPoolProfiles": [{"name": "system", "mode": "System", "count": 2,
                                      "vmSize": "Standard_Z9_unknown"}]}
    assert check_resource(policy, CLUSTER, unknown, config=PROD) == []


def test_prod_clusters_use_the_standard_tier() -> None:
    policy = reliability.reliability_aks_standard_tier
    assert check_resource(policy, CLUSTER, {"sku": {"tier": "Standard"}}, config=PROD) == []
    (message,) = check_resource(policy, CLUSTER, {"sku": {"tier": "Free"}}, config=PROD)
    assert "sku.tier is 'Free'" in message
    assert check_resource(policy, CLUSTER, {}, config=DEV) == []


AUDIT_LOGS = {"logs": [{"categoryGroup": "audit", "enabled": True}]}


def test_storage_vaults_and_clusters_send_diagnostics() -> None:
    vault = Declared(VAULT, "kv", {"vaultName": "kv-gpu-dev"})
    cluster = Declared(CLUSTER, "aks", {"resourceName": "aks-gpu-dev"})
    account = Declared(STORAGE, "models", {"accountName": "modelsabc"})
    blobs = Declared(BLOB_SERVICE, "blobs", blob_service(), deps={"accountName": ["models"]})
    # The vault by dependency, the cluster by ARM id, storage through its blob service.
    vault_logs = Declared(DIAGNOSTICS, "kv-diag", {"resourceUri": "<from kv.id>", **AUDIT_LOGS},
                          deps={"resourceUri": ["kv"]})
    cluster_logs = Declared(DIAGNOSTICS, "aks-diag", {"resourceUri": (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/"
        "managedClusters/aks-gpu-dev"), **AUDIT_LOGS})
    blob_logs = Declared(DIAGNOSTICS, "blob-diag", {"resourceUri": "<from blobs.id>", **AUDIT_LOGS},
                         deps={"resourceUri": ["blobs"]})
    registry = Declared("azure-native:containerregistry:Registry", "acr",
                        {"registryName": "acrgpu"})
    registry_logs = Declared(DIAGNOSTICS, "acr-diag",
                             {"resourceUri": "<from acr.id>", **AUDIT_LOGS},
                             deps={"resourceUri": ["acr"]})
    everything = [vault, cluster, account, blobs, vault_logs, cluster_logs, blob_logs,
                  registry, registry_logs]
    assert check_stack(reliability.reliability_diagnostic_settings, everything) == []
    ((message, _),) = check_stack(reliability.reliability_diagnostic_settings,
                                  everything[:-1])
    assert "containerregistry:Registry acr has no diagnostic setting" in message
    missing = [vault, cluster, account, blobs, vault_logs, blob_logs]
    ((message, urn),) = check_stack(reliability.reliability_diagnostic_settings, missing)
    assert "aks has no diagnostic setting" in message and urn == cluster.urn


# Before: any diagnostic setting naming the resource passed, even one that sends metrics only
# or disables every log: no audit trail (PSRule Azure.KeyVault.Logs fails both).
def test_diagnostic_settings_without_enabled_logs_are_reported() -> None:
    vault = Declared(VAULT, "kv", {"vaultName": "kv-gpu-dev"})

    def setting(**props: Any) -> Declared:
        return Declared(DIAGNOSTICS, "kv-diag", {"resourceUri": "<from kv.id>", **props},
                        deps={"resourceUri": ["kv"]})

    metrics_only = setting(metrics=[{"category": "AllMetrics", "enabled": True}])
    disabled = setting(logs=[{"category": "AuditEvent", "enabled": False}])
    for bad in (metrics_only, disabled):
        ((message, urn),) = check_stack(reliability.reliability_diagnostic_settings, [vault, bad])
        assert "kv: its diagnostic settings enable no resource logs" in message
        assert urn == vault.urn
    for good in (setting(logs=[{"category": "AuditEvent", "enabled": True}]),
                 setting(logs=[{"categoryGroup": "allLogs"}])):  # enabled unset counts as on
        assert check_stack(reliability.reliability_diagnostic_settings, [vault, good]) == []
    # A second setting with logs covers the vault; an unknown category is noted in a preview.
    assert check_stack(reliability.reliability_diagnostic_settings,
                       [vault, metrics_only, dataclasses_replace(disabled, name="kv-logs",
                        props={**disabled.props, **AUDIT_LOGS})]) == []
    unknown = setting(logs=[{"category": UNKNOWN_STRING_VALUE, "enabled": True}])
    with pytest.raises(UnknownValueError):
        check_stack(reliability.reliability_diagnostic_settings, [vault, unknown])


def test_a_similar_name_is_not_a_diagnostics_match() -> None:
    cluster = Declared(CLUSTER, "aks", {"resourceName": "aks"})
    other = Declared(DIAGNOSTICS, "d", {"resourceUri": (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/"
        "managedClusters/aks-other")})
    assert check_stack(reliability.reliability_diagnostic_settings, [cluster, other])


def test_autoscaled_agent_pools_ignore_count() -> None:
    policy = reliability.reliability_autoscaler_owns_count
    pool = {"enableAutoScaling": True, "minCount": 0, "maxCount": 2, "count": 0}
    assert check_resource(policy, AGENT_POOL, pool, ignore_changes=["count"]) == []
    (message,) = check_resource(policy, AGENT_POOL, pool)
    assert "ignore_changes does not include 'count'" in message


def test_prod_storage_is_zone_redundant() -> None:
    policy = reliability.reliability_storage_zone_redundant
    assert check_resource(policy, STORAGE, {"sku": {"name": "Standard_ZRS"}}, config=PROD) == []
    assert check_resource(policy, STORAGE, {"sku": {"name": "Standard_LRS"}}, config=PROD)
    assert check_resource(policy, STORAGE, {"sku": {"name": "Standard_LRS"}}, config=DEV) == []


def test_every_reliability_rule_is_tested() -> None:
    assert {p.name for p in reliability.POLICIES} == {
        "gpustack-storage-blob-soft-delete", "gpustack-storage-blob-versioning",
        "gpustack-reliability-protect-stateful", "gpustack-reliability-system-pool-zonal",
        "gpustack-reliability-aks-standard-tier", "gpustack-reliability-diagnostic-settings",
        "gpustack-storage-file-share-soft-delete", "gpustack-aks-maintenance-window",
        "gpustack-aks-diagnostic-categories", "gpustack-aks-cni-subnet-size",
        "gpustack-reliability-autoscaler-owns-count",
        "gpustack-reliability-storage-zone-redundant",
        "gpustack-vm-monitoring-agent", "gpustack-apim-zone-redundant",
    }


PRODUCTION_RULES = [
    (reliability.reliability_protect_stateful, VAULT, {}),
    (reliability.reliability_system_pool_zonal, CLUSTER,
     {"agentPoolProfiles": [{"name": "system", "mode": "System", "count": 1}]}),
    (reliability.reliability_aks_standard_tier, CLUSTER, {"sku": {"tier": "Free"}}),
    (reliability.reliability_storage_zone_redundant, STORAGE, {"sku": {"name": "Standard_LRS"}}),
]


@pytest.mark.parametrize(("policy", "type_", "bad"), PRODUCTION_RULES,
                         ids=lambda v: getattr(v, "name", ""))
def test_production_rules_check_staging_by_default_and_follow_the_environments_setting(
    policy: ResourceValidationPolicy, type_: str, bad: dict
) -> None:
    assert check_resource(policy, type_, bad, config=STAGING)
    assert check_resource(policy, type_, bad, config=DEV) == []
    prod_only = {"environment": "staging", "environments": ["prod"]}
    assert check_resource(policy, type_, bad, config=prod_only) == []
    dev_too = {"environment": "dev", "environments": ["dev", "staging", "prod"]}
    assert check_resource(policy, type_, bad, config=dev_too)


def test_file_shares_need_share_soft_delete() -> None:
    account = Declared(STORAGE, "files", {"accountName": "filesabc"})
    share = Declared(FILE_SHARE, "home", {"accountName": "filesabc", "shareName": "home"})
    service = Declared(FILE_SERVICE, "fs", {"shareDeleteRetentionPolicy": RETAIN},
                       deps={"accountName": ["files"]})
    policy = reliability.storage_file_share_soft_delete
    assert check_stack(policy, [account, share, service]) == []
    assert check_stack(policy, [account]) == []  # no Azure Files: nothing to keep
    ((message, urn),) = check_stack(policy, [account, share])
    assert "has file shares but no FileServiceProperties" in message and urn == account.urn
    off = Declared(FILE_SERVICE, "fs", {"shareDeleteRetentionPolicy": {"enabled": False}},
                   deps={"accountName": ["files"]})
    ((message, _),) = check_stack(policy, [account, share, off])
    assert "shareDeleteRetentionPolicy.enabled is False" in message


def test_auto_upgrading_clusters_have_a_maintenance_window() -> None:
    cluster = Declared(CLUSTER, "aks", {"resourceName": "aks-gpu",
                                        "autoUpgradeProfile": {"upgradeChannel": "patch"}})
    window = Declared(MAINTENANCE, "mw", {"configName": "aksManagedAutoUpgradeSchedule"},
                      deps={"resourceName": ["aks"]})
    policy = reliability.aks_maintenance_window
    assert check_stack(policy, [cluster, window]) == []
    ((message, urn),) = check_stack(policy, [cluster])
    assert "upgrades automatically (patch) but has no maintenance configuration" in message
    assert urn == cluster.urn
    manual = Declared(CLUSTER, "aks", {"resourceName": "aks-gpu"})
    assert check_stack(policy, [manual]) == []


def aks_logs(*categories: str, metrics: bool = True) -> dict:
    """A diagnostic setting's inputs for the cluster `aks`."""
    return {"logs": [{"category": c, "enabled": True} for c in categories],
            "metrics": [{"category": "AllMetrics", "enabled": True}] if metrics else []}


def test_aks_diagnostics_collect_platform_and_admin_audit_logs() -> None:
    cluster = Declared(CLUSTER, "aks", {"resourceName": "aks-gpu"})
    policy = reliability.aks_diagnostic_categories
    good = Declared(DIAGNOSTICS, "d", aks_logs("kube-apiserver", "kube-audit-admin",
                                               "kube-controller-manager", "kube-scheduler",
                                               "cluster-autoscaler"),
                    deps={"resourceUri": ["aks"]})
    assert check_stack(policy, [cluster, good]) == []
    assert check_stack(policy, [cluster]) == []  # no setting: the other rule reports it
    thin = Declared(DIAGNOSTICS, "d", aks_logs("kube-audit", metrics=False),
                    deps={"resourceUri": ["aks"]})
    found = [message for message, _ in check_stack(policy, [cluster, thin])]
    assert len(found) == 2
    assert "do not collect kube-apiserver" in found[0] and "AllMetrics" in found[0]
    assert "collect kube-audit; collect kube-audit-admin instead" in found[1]
    everything = Declared(DIAGNOSTICS, "d", {"logs": [{"categoryGroup": "allLogs",
                                                       "enabled": True}],
                                             "metrics": [{"category": "AllMetrics"}]},
                          deps={"resourceUri": ["aks"]})
    ((message, _),) = check_stack(policy, [cluster, everything])
    assert "kube-audit (through allLogs)" in message


def test_node_subnet_mode_cni_needs_a_large_subnet() -> None:
    subnet_id = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
                 "virtualNetworks/v/subnets/snet-gpu")
    small = Declared(SUBNET, "gpu", {"subnetName": "snet-gpu", "addressPrefix": "10.0.4.0/24"})
    large = Declared(SUBNET, "gpu", {"subnetName": "snet-gpu", "addressPrefix": "10.0.4.0/22"})
    cluster = Declared(CLUSTER, "aks", {"resourceName": "aks-gpu", "networkProfile": {
        "networkPlugin": "azure"}, "agentPoolProfiles": [{"name": "system"}]})
    pool = Declared(AGENT_POOL, "t4", {"resourceName": "aks-gpu", "vnetSubnetID": subnet_id},
                    deps={"resourceName": ["aks"]})
    policy = reliability.aks_cni_subnet_size
    ((message, urn),) = check_stack(policy, [small, cluster, pool])
    assert "node subnet snet-gpu is 10.0.4.0/24; use /23 or larger" in message
    assert urn == cluster.urn
    assert check_stack(policy, [large, cluster, pool]) == []
    overlay = Declared(CLUSTER, "aks", {"resourceName": "aks-gpu", "networkProfile": {
        "networkPlugin": "azure", "networkPluginMode": "overlay"}})
    assert check_stack(policy, [small, overlay, pool]) == []


# --- the Azure Monitor Agent behind VM data collection rules -----------------------------------

VM = "azure-native:compute:VirtualMachine"
VMSS = "azure-native:compute:VirtualMachineScaleSet"
VM_EXTENSION = "azure-native:compute:VirtualMachineExtension"
VMSS_EXTENSION = "azure-native:compute:VirtualMachineScaleSetExtension"
DCRA = "azure-native:monitor:DataCollectionRuleAssociation"
RG_IDS = "/subscriptions/s/resourceGroups/rg/providers"
UAI = f"{RG_IDS}/Microsoft.ManagedIdentity/userAssignedIdentities/nodes"
LINUX_AGENT = {"publisher": "Microsoft.Azure.Monitor", "type": "AzureMonitorLinuxAgent",
               "typeHandlerVersion": "1.36", "enableAutomaticUpgrade": True,
               "settings": {"authentication": {"managedIdentity": {
                   "identifier-name": "mi_res_id", "identifier-value": UAI}}}}
LINUX = {"osProfile": {"computerName": "box", "linuxConfiguration": {
    "disablePasswordAuthentication": True}}}
USER_ASSIGNED = {"type": "UserAssigned", "userAssignedIdentities": [UAI]}


def _vm(**props: object) -> Declared:
    return Declared(VM, "box", {"vmName": "box", "identity": USER_ASSIGNED, **LINUX, **props})


def _association(target: str = "box", **props: object) -> Declared:
    return Declared(DCRA, "box-syslog", {"associationName": "syslog",
                                         "dataCollectionRuleId": "/dcr/syslog", **props},
                    deps={"resourceUri": [target]})


def _agent(machine: str = "box", **props: object) -> Declared:
    return Declared(VM_EXTENSION, f"{machine}-agent", {**LINUX_AGENT, **props},
                    deps={"vmName": [machine]})


def monitoring_agent(*resources: Declared) -> list[tuple[str, str | None]]:
    return check_stack(reliability.vm_monitoring_agent, list(resources))


def test_a_vm_with_a_collection_rule_and_no_agent_is_flagged() -> None:
    vm = _vm()
    ((message, urn),) = monitoring_agent(vm, _association())
    assert urn == vm.urn
    assert "VM box has a data collection rule association (box-syslog)" in message
    assert "no Microsoft.Azure.Monitor AzureMonitorLinuxAgent extension" in message
    assert monitoring_agent(vm, _association(), _agent()) == []


def test_the_agent_is_found_by_arm_ids_when_there_are_no_dependencies() -> None:
    """A foreign program that wires resources with literal ids and names."""
    vm_id = f"{RG_IDS}/Microsoft.Compute/virtualMachines/box"
    association = Declared(DCRA, "box-syslog", {"resourceUri": vm_id,
                                                "dataCollectionRuleId": "/dcr/syslog"})
    agent = Declared(VM_EXTENSION, "agent", {**LINUX_AGENT, "vmName": "box"})
    ((_, urn),) = monitoring_agent(_vm(), association)
    assert urn == _vm().urn
    assert monitoring_agent(_vm(), association, agent) == []
    elsewhere = Declared(VM_EXTENSION, "agent", {**LINUX_AGENT, "vmName": "other-box"})
    assert len(monitoring_agent(_vm(), association, elsewhere)) == 1


def test_machines_without_a_collection_rule_need_no_agent() -> None:
    assert monitoring_agent(_vm()) == []
    cluster = Declared(CLUSTER, "aks", {"resourceName": "aks"})
    assert monitoring_agent(_vm(), cluster, _association("aks")) == []


def test_another_extension_is_not_the_agent() -> None:
    driver = Declared(VM_EXTENSION, "box-driver", {"publisher": "Microsoft.HpcCompute",
                                                   "type": "NvidiaGpuDriverLinux"},
                      deps={"vmName": ["box"]})
    assert len(monitoring_agent(_vm(), _association(), driver)) == 1


def test_a_windows_vm_needs_the_windows_agent() -> None:
    windows = _vm(osProfile={"computerName": "box", "windowsConfiguration": {}})
    ((message, _),) = monitoring_agent(windows, _association(), _agent())
    assert "AzureMonitorWindowsAgent extension" in message
    assert monitoring_agent(windows, _association(),
                            _agent(type="AzureMonitorWindowsAgent")) == []
    # An OS the profile does not name: either agent will do.
    unknown = Declared(VM, "box", {"vmName": "box", "identity": USER_ASSIGNED})
    assert monitoring_agent(unknown, _association(), _agent()) == []


def test_a_scale_set_carries_the_agent_in_its_model_or_as_a_child() -> None:
    def scale_set(*extensions: dict[str, object]) -> Declared:
        profile: dict[str, object] = {**LINUX}
        if extensions:
            profile["extensionProfile"] = {"extensions": list(extensions)}
        return Declared(VMSS, "pool", {"vmScaleSetName": "pool", "identity": USER_ASSIGNED,
                                       "virtualMachineProfile": profile})

    association = _association("pool")
    ((message, urn),) = monitoring_agent(scale_set(), association)
    assert message.startswith("scale set pool has a data collection rule association")
    assert urn == scale_set().urn
    assert monitoring_agent(scale_set({"name": "ama", **LINUX_AGENT}), association) == []
    # ARM's own shape, properties nested, as exported templates write it.
    arm = {"name": "ama", "properties": LINUX_AGENT}
    assert monitoring_agent(scale_set(arm), association) == []
    child = Declared(VMSS_EXTENSION, "pool-ama", {**LINUX_AGENT, "vmScaleSetName": "pool"})
    assert monitoring_agent(scale_set(), association, child) == []


def test_the_agent_needs_an_identity_it_can_authenticate_as() -> None:
    association = _association()
    bare = {key: value for key, value in LINUX_AGENT.items() if key != "settings"}
    ((message, _),) = monitoring_agent(_vm(), association, _agent(settings=None))
    assert "does not name one in settings.authentication.managedIdentity" in message
    assert "'mi_res_id'" in message
    no_settings = Declared(VM_EXTENSION, "box-agent", bare, deps={"vmName": ["box"]})
    assert len(monitoring_agent(_vm(), association, no_settings)) == 1
    # A system-assigned identity is the agent's default: no settings needed.
    system = _vm(identity={"type": "SystemAssigned, UserAssigned",
                           "userAssignedIdentities": [UAI]})
    assert monitoring_agent(system, association, no_settings) == []
    ((message, _),) = monitoring_agent(_vm(identity=None), association, _agent())
    assert "without a managed identity" in message
    ((message, _),) = monitoring_agent(_vm(identity={"type": "None"}), association, _agent())
    assert "without a managed identity" in message


def monitoring_agent_in_preview(*resources: Declared) -> list[str]:
    """The violations reported before the rule notes, as the SDK does, a value it cannot know."""
    found: list[str] = []

    class Keep:
        def validate(self, args: object, report: Callable[..., None]) -> None:
            reliability.vm_monitoring_agent.validate(
                args, lambda m, urn=None: (found.append(m), report(m, urn)))

    with pytest.raises(UnknownValueError):
        check_stack(Keep(), list(resources))  # type: ignore[arg-type]
    return found


def test_values_computed_during_a_preview_are_noted_never_failed_nor_passed() -> None:
    association = _association()
    # The identity's id is computed, but the settings name it: that is known to be right.
    computed = {"authentication": {"managedIdentity": {
        "identifier-name": "mi_res_id", "identifier-value": UNKNOWN_STRING_VALUE}}}
    assert monitoring_agent(_vm(), association, _agent(settings=computed)) == []
    # Settings or identity unknown as a whole: noted, neither failed nor passed.
    assert monitoring_agent_in_preview(_vm(), association,
                                       _agent(settings=UNKNOWN_STRING_VALUE)) == []
    unknown_identity = _vm(identity={"type": UNKNOWN_STRING_VALUE})
    assert monitoring_agent_in_preview(unknown_identity, association,
                                       _agent(settings=None)) == []
    # What is known still decides: no agent at all is reported.
    assert len(monitoring_agent(unknown_identity, association)) == 1


# --- API Management zones -------------------------------------------------------------------


def apim(sku: str = "Premium", units: object = 2, location: object = "eastus",
         **props: object) -> dict[str, object]:
    """An API Management service's inputs."""
    return {"serviceName": "gateway", "location": location,
            "sku": {"name": sku, "capacity": units}, **props}


def apim_zones(props: dict[str, object], type_: str = APIM) -> list[str]:
    return check_resource(reliability.apim_zone_redundant, type_, props)


def test_premium_gateway_with_two_units_and_automatic_zones_passes() -> None:
    assert apim_zones(apim(units=2)) == []
    assert apim_zones(apim(units=3, zones=[])) == []


def test_premium_gateway_with_one_unit_in_a_zonal_region_is_flagged() -> None:
    assert apim_zones(apim(units=1)) == [
        "the primary location (eastus): 1 unit with automatic zone placement sits in one zone; "
        "use sku.capacity 2 or more"
    ]


def test_explicit_zones_need_two_zones_and_an_even_spread_of_units() -> None:
    assert apim_zones(apim(units=2, zones=["1", "2"])) == []
    assert apim_zones(apim(units=6, zones=["1", "2", "3"])) == []
    assert apim_zones(apim(units=1, zones=["1"])) == [
        "the primary location (eastus): zones 1 pin the gateway to one zone; list 2 or more "
        "zones, or none for automatic placement"
    ]
    assert apim_zones(apim(units=2, zones=["1", "2", "3"])) == [
        "the primary location (eastus): 2 units cannot spread evenly over zones 1, 2, 3; use a "
        "multiple of 3"
    ]
    assert apim_zones(apim(units=3, zones=["1", "2"]))


def test_additional_locations_are_checked_with_their_own_units_and_zones() -> None:
    extra = [{"location": "West Europe", "sku": {"name": "Premium", "capacity": 1}},
             {"location": "westus2", "sku": {"name": "Premium", "capacity": 2},
              "zones": ["1", "2"]},
             {"location": "westus", "sku": {"name": "Premium", "capacity": 1}}]
    assert apim_zones(apim(additionalLocations=extra)) == [
        "additionalLocations[0] (West Europe): 1 unit with automatic zone placement sits in "
        "one zone; use sku.capacity 2 or more"
    ]


def test_other_tiers_regions_without_zones_and_unknown_locations_are_exempt() -> None:
    assert apim_zones(apim(sku="Developer", units=1)) == []
    assert apim_zones(apim(sku="StandardV2", units=1)) == []
    assert apim_zones(apim(units=1, location="westus")) == []  # no availability zones there
    assert apim_zones(apim(units=1, location=None)) == []  # the resource group's, not known here
    assert apim_zones({"sku": {"name": "Premium"}}) == []
    assert apim_zones({}) == []
    assert apim_zones(apim(units=1, location="East US"))  # a display name is still eastus
    assert apim_zones(apim(units=1), type_="azure-native:apimanagement/v20240501:"
                      "ApiManagementService")


def apim_zones_in_preview(props: dict[str, object]) -> list[str]:
    """The violations reported before the rule notes, as the SDK does, a value it cannot know."""
    found: list[str] = []

    class Keep:
        def validate(self, args: object, report: Callable[..., None]) -> None:
            reliability.apim_zone_redundant.validate(
                args, lambda m, urn=None: (found.append(m), report(m)))

    with pytest.raises(UnknownValueError):
        check_resource(Keep(), APIM, props)  # type: ignore[arg-type]
    return found


def test_unknown_apim_values_during_preview_are_noted_never_flagged_nor_passed() -> None:
    assert apim_zones_in_preview(apim(sku=UNKNOWN_STRING_VALUE, units=1)) == []
    assert apim_zones_in_preview(apim(units=1, location=UNKNOWN_STRING_VALUE)) == []
    assert apim_zones_in_preview(apim(units=UNKNOWN_STRING_VALUE)) == []
    assert apim_zones_in_preview(apim(units=1, zones=UNKNOWN_STRING_VALUE)) == []
    # An unknown additional location leaves the primary one judged, then is noted.
    (message,) = apim_zones_in_preview(apim(units=1, additionalLocations=UNKNOWN_STRING_VALUE))
    assert message.startswith("the primary location (eastus): 1 unit")
    extra = [{"location": UNKNOWN_STRING_VALUE, "sku": {"name": "Premium", "capacity": 1}}]
    assert apim_zones_in_preview(apim(units=2, additionalLocations=extra)) == []


def test_the_stacks_gateways_pass_the_zone_rule(env_plan: Plan) -> None:
    (service,) = env_plan.by_type(APIM)
    assert check_resource(reliability.apim_zone_redundant, service.type, service.inputs) == []


def test_prod_gateway_is_premium_with_units_azure_spreads_over_zones(prod_plan: Plan) -> None:
    (service,) = prod_plan.by_type(APIM)
    assert service.inputs["sku"]["name"] == "Premium"
    assert service.inputs["sku"]["capacity"] >= 2
    assert not service.inputs.get("zones")


def test_a_storage_account_setting_with_metrics_only_still_counts() -> None:
    # An account emits metrics only; its logs come from its blob service's setting, which this
    # rule does not tell apart yet (docs/policies.md, Known gaps).
    account = Declared(STORAGE, "models", {"accountName": "modelsabc"})
    metrics = Declared(DIAGNOSTICS, "models-diag", {
        "resourceUri": "<from models.id>", "metrics": [{"category": "AllMetrics"}]},
        deps={"resourceUri": ["models"]})
    assert check_stack(reliability.reliability_diagnostic_settings, [account, metrics]) == []
