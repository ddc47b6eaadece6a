"""Verdicts on resources other teams' programs declare, in shapes our own stacks never use.

Each case is a shape a foreign Pulumi program (Python with dict literals, TypeScript, an older
azure-native SDK, a versioned module type) sends: a property left out for Azure's default, an
enum in another case, a value unknown during a preview, a child resource instead of an inline
block. The defaults and catalogue behaviours each test relies on are recorded with their
sources in gpustack/data/policy_facts.yaml.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pulumi_policy import ResourceValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from gpustack.analyzer import PolicyPackSession
from gpustack.engine import run_plan
from policies import network, platform_services, reliability, security
from tests.conftest import FIXTURES, ROOT
from tests.policy_runs import Declared, check_resource, check_stack
from tests.test_policies_platform import CASES as PLATFORM_CASES
from tests.test_policies_security import CASES as SECURITY_CASES

STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
VM = "azure-native:compute:VirtualMachine"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
EXTENSION = "azure-native:compute:VirtualMachineExtension"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"

WINDOWS_IMAGE = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                 "sku": "2022-datacenter-azure-edition", "version": "latest"}
UBUNTU_IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
                "version": "latest"}


def inbound(**overrides: Any) -> dict[str, Any]:
    """An NSG rule allowing TCP 22 inbound from the Internet unless overridden."""
    return {"name": "r", "priority": 100, "direction": "Inbound", "access": "Allow",
            "protocol": "Tcp", "sourceAddressPrefix": "Internet", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "22", **overrides}


# --- Windows VMs that leave windowsConfiguration out ---------------------------------------


def windows_vm(**storage: Any) -> dict[str, Any]:
    """A Windows VM as a foreign program declares it: password, no windowsConfiguration."""
    return {"hardwareProfile": {"vmSize": "Standard_NV36ads_A10_v5"},
            "osProfile": {"computerName": "viz", "adminUsername": "azureuser",
                          "adminPassword": "not-checked-here"},
            "storageProfile": storage}


@pytest.mark.parametrize("storage", [
    {"imageReference": WINDOWS_IMAGE},
    {"imageReference": {**WINDOWS_IMAGE, "publisher": "microsoftwindowsdesktop",
                        "offer": "windows-11"}},
    {"osDisk": {"osType": "Windows", "createOption": "FromImage"},
     "imageReference": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/"
                              "galleries/g/images/win-viz/versions/1.0.0"}},
], ids=["marketplace-server", "desktop-lowercase", "gallery-image-ostype"])
def test_windows_vm_without_windows_configuration_is_not_held_to_ssh_keys(
        storage: dict[str, Any]) -> None:
    # Before: read as Linux, three faults reported (password, no key, password auth on).
    assert check_resource(security.vm_ssh_keys_only, VM, windows_vm(**storage)) == []


def test_windows_scale_set_without_windows_configuration_is_not_held_to_ssh_keys() -> None:
    vm = windows_vm(imageReference=WINDOWS_IMAGE)
    scale_set = {"sku": {"name": "Standard_NV36ads_A10_v5", "capacity": 1},
                 "virtualMachineProfile": {"osProfile": vm["osProfile"],
                                           "storageProfile": vm["storageProfile"]}}
    assert check_resource(security.vm_ssh_keys_only, SCALE_SET, scale_set) == []


def test_linux_vm_with_a_password_and_no_linux_configuration_is_still_reported() -> None:
    linux = {**windows_vm(imageReference=UBUNTU_IMAGE)}
    (message,) = check_resource(security.vm_ssh_keys_only, VM, linux)
    assert "osProfile sets adminPassword" in message
    assert "disablePasswordAuthentication is not True" in message
    explicit = {**linux, "osProfile": {**linux["osProfile"], "linuxConfiguration": {
        "disablePasswordAuthentication": False}}}
    assert check_resource(security.vm_ssh_keys_only, VM, explicit)


def test_windows_image_vm_with_the_linux_monitoring_agent_collects_nothing() -> None:
    # Before: no OS profile and no osType read as "either agent will do", so the Linux agent
    # on a Windows image passed.
    vm = Declared(VM, "viz", {"vmName": "viz", "identity": {"type": "SystemAssigned"},
                              "storageProfile": {"imageReference": WINDOWS_IMAGE}})
    association = Declared("azure-native:monitor:DataCollectionRuleAssociation", "viz-syslog",
                           {"dataCollectionRuleId": "/dcr/syslog"}, deps={"resourceUri": ["viz"]})
    agent = {"publisher": "Microsoft.Azure.Monitor", "type": "AzureMonitorLinuxAgent"}
    linux_agent = Declared(EXTENSION, "viz-agent", agent, deps={"vmName": ["viz"]})
    ((message, _),) = check_stack(reliability.vm_monitoring_agent,
                                  [vm, association, linux_agent])
    assert "AzureMonitorWindowsAgent extension" in message
    windows_agent = Declared(EXTENSION, "viz-agent", {**agent, "type": "AzureMonitorWindowsAgent"},
                             deps={"vmName": ["viz"]})
    assert check_stack(reliability.vm_monitoring_agent, [vm, association, windows_agent]) == []


def test_flexible_scale_set_without_a_vm_profile_needs_no_identity_of_its_own() -> None:
    # Before: "identity.type is None" on a scale set that only groups separately declared VMs.
    grouping = {"orchestrationMode": "Flexible", "platformFaultDomainCount": 1}
    assert check_resource(security.vm_managed_identity, SCALE_SET, grouping) == []
    with_profile = {**grouping, "sku": {"name": "Standard_D4s_v5", "capacity": 2},
                    "virtualMachineProfile": {"osProfile": {"computerNamePrefix": "w"}}}
    assert check_resource(security.vm_managed_identity, SCALE_SET, with_profile)


# --- NSG rules: protocols without ports, every spelling of "anyone" ------------------------


@pytest.mark.parametrize("protocol", ["Icmp", "icmp", "Esp", "Ah"])
def test_portless_protocol_from_the_internet_opens_no_management_port(protocol: str) -> None:
    # Before: destinationPortRange '*' on an ICMP rule was read as every TCP port.
    props = {"securityRules": [inbound(protocol=protocol, destinationPortRange="*",
                                       sourceAddressPrefix="*")]}
    assert check_resource(security.nsg_no_internet_management_ports, NSG, props) == []


@pytest.mark.parametrize("protocol", ["Tcp", "*", "Udp"])
def test_port_carrying_protocols_still_open_management_ports(protocol: str) -> None:
    props = inbound(protocol=protocol, destinationPortRange="20-30")
    (message,) = check_resource(security.nsg_no_internet_management_ports, SECURITY_RULE, props)
    assert "ports 22 from the Internet" in message


def test_internet_inbound_icmp_is_reported_without_inventing_ports() -> None:
    props = {"securityRules": [inbound(name="ping", protocol="Icmp", destinationPortRange="*",
                                       sourceAddressPrefix="*")]}
    (message,) = check_resource(network.nsg_no_internet_inbound, NSG, props)
    assert message == "rule 'ping' allows Icmp from the Internet"


@pytest.mark.parametrize("source", ["0.0.0.0/0", " 0.0.0.0/0", "10.0.0.0/0", "::/0", "any",
                                    "INTERNET"])
def test_every_spelling_of_anyone_is_the_internet(source: str) -> None:
    props = inbound(sourceAddressPrefix=None, sourceAddressPrefixes=["10.1.0.0/16", source])
    assert check_resource(security.nsg_no_internet_management_ports, SECURITY_RULE, props)
    web = inbound(sourceAddressPrefix=source, destinationPortRange="8888")
    assert check_resource(network.nsg_no_internet_inbound, SECURITY_RULE, web)


@pytest.mark.parametrize("source", ["10.0.0.0/8", "VirtualNetwork", "AzureLoadBalancer",
                                    "203.0.113.0/24"])
def test_bounded_sources_are_not_the_internet(source: str) -> None:
    props = inbound(sourceAddressPrefix=source)
    assert check_resource(security.nsg_no_internet_management_ports, SECURITY_RULE, props) == []


NSG_ID = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
          "networkSecurityGroups/gpu-nsg")


@pytest.mark.parametrize("by_id", [True, False], ids=["by-arm-id", "by-dependency"])
def test_nsg_attached_to_a_scale_set_nic_configuration_is_associated(by_id: bool) -> None:
    # Before: only subnets, NICs and VNets counted, so a scale set's NSG was "not associated".
    nsg = Declared(NSG, "gpu-nsg", {"networkSecurityGroupName": "gpu-nsg", "securityRules": []})
    config = {"name": "nic", "networkSecurityGroup": {"id": NSG_ID if by_id else
                                                        UNKNOWN_STRING_VALUE}}
    scale_set = Declared(SCALE_SET, "gpu", {"virtualMachineProfile": {"networkProfile": {
        "networkInterfaceConfigurations": [config]}}},
        deps={} if by_id else {"virtualMachineProfile": ["gpu-nsg"]})
    assert check_stack(network.nsg_associated, [nsg, scale_set]) == []
    vm = Declared(VM, "box", {"networkProfile": {"networkInterfaceConfigurations": [
        {**config, "networkSecurityGroup": {"id": NSG_ID}}]}})
    assert check_stack(network.nsg_associated, [nsg, vm]) == []
    assert check_stack(network.nsg_associated, [nsg, Declared(VM, "other", {})])


# --- API-version defaults on versioned module types ------------------------------------------


def test_vault_on_api_2026_02_01_defaults_to_rbac_when_unset() -> None:
    versioned = "azure-native:keyvault/v20260201:Vault"
    # Before: "enableRbacAuthorization is not set" although Azure creates it with RBAC.
    assert check_resource(security.keyvault_rbac_authorization, versioned, {"properties": {}}) == []
    off = {"properties": {"enableRbacAuthorization": False}}
    assert check_resource(security.keyvault_rbac_authorization, versioned, off)


@pytest.mark.parametrize("type_", [VAULT, "azure-native:keyvault/v20241101:Vault",
                                   "azure-native:keyvault/v20230701:Vault"])
def test_vault_on_older_apis_uses_access_policies_when_unset(type_: str) -> None:
    (message,) = check_resource(security.keyvault_rbac_authorization, type_, {"properties": {}})
    assert "enableRbacAuthorization is not set (access policies)" in message


def test_storage_on_an_api_before_2019_04_01_allows_http_when_unset() -> None:
    # Before: every unset enableHttpsTrafficOnly was read as the 2019-04-01 default (true).
    old = "azure-native:storage/v20181101:StorageAccount"
    (message,) = check_resource(security.storage_https_only, old, {"kind": "StorageV2"})
    assert "API version 2018-11-01 defaults it to false" in message
    assert check_resource(security.storage_https_only, old, {"enableHttpsTrafficOnly": True}) == []
    for current in (STORAGE, "azure-native:storage/v20230101:StorageAccount"):
        assert check_resource(security.storage_https_only, current, {"kind": "StorageV2"}) == []


@pytest.mark.parametrize("access", ["SecuredByPerimeter", "securedbyperimeter", "Disabled"])
def test_storage_behind_a_network_security_perimeter_has_no_public_endpoint(access: str) -> None:
    # Before: SecuredByPerimeter was reported as a public endpoint.
    props = {"publicNetworkAccess": access}
    assert check_resource(security.storage_public_network_access, STORAGE, props) == []


def test_storage_with_public_access_enabled_is_still_reported() -> None:
    (message,) = check_resource(security.storage_public_network_access, STORAGE,
                                {"publicNetworkAccess": "Enabled"})
    assert "publicNetworkAccess is 'Enabled'" in message


# --- FileStorage accounts hold no blobs ------------------------------------------------------

FILE_STORAGE = {"kind": "FileStorage", "sku": {"name": "Premium_ZRS"}, "accountName": "homes"}


def test_file_storage_account_is_not_held_to_blob_rules() -> None:
    # Before: reported for blob soft delete and anonymous blob access it cannot have.
    account = Declared(STORAGE, "homes", FILE_STORAGE)
    assert check_stack(reliability.storage_blob_soft_delete, [account]) == []
    assert check_stack(reliability.storage_blob_versioning, [account]) == []
    assert check_resource(security.storage_blob_public_access, STORAGE, FILE_STORAGE) == []


def test_blob_accounts_of_every_other_kind_are_still_held_to_blob_rules() -> None:
    for kind in ("StorageV2", "BlockBlobStorage", "storagev2"):
        props = {"kind": kind, "accountName": "data"}
        account = Declared(STORAGE, "data", props)
        assert check_stack(reliability.storage_blob_soft_delete, [account])
        assert check_resource(security.storage_blob_public_access, STORAGE, props)


def test_blob_soft_delete_on_a_separate_child_resource_is_seen() -> None:
    account = Declared(STORAGE, "data", {"kind": "StorageV2"})
    service = Declared(BLOB_SERVICE, "data-blobs", {
        "accountName": UNKNOWN_STRING_VALUE, "blobServicesName": "default",
        "deleteRetentionPolicy": {"enabled": True, "days": 14},
        "containerDeleteRetentionPolicy": {"enabled": True, "days": 14},
    }, deps={"accountName": ["data"]})
    assert check_stack(reliability.storage_blob_soft_delete, [account, service]) == []
    off = Declared(BLOB_SERVICE, "data-blobs", {
        **service.props, "deleteRetentionPolicy": {"enabled": False}}, deps=service.deps)
    (found,) = check_stack(reliability.storage_blob_soft_delete, [account, off])
    assert "deleteRetentionPolicy.enabled is False" in found[0]


# --- values unknown during a preview ---------------------------------------------------------


def test_extension_settings_unknown_during_preview_are_not_passed_silently() -> None:
    # A SAS or storage key computed from another resource is unknown during a preview.
    # Before: the rule read the sentinel as harmless text and passed.
    settings = {"commandToExecute": UNKNOWN_STRING_VALUE, "fileUris": ["https://x/setup.sh"]}
    with pytest.raises(UnknownValueError):
        check_resource(security.vm_no_plaintext_secrets, EXTENSION, {"settings": settings})
    inline = {"hardwareProfile": {"vmSize": "Standard_D4s_v5"},
              "extensionProfile": {"extensions": [{"name": "init", "settings": settings}]}}
    scale_set = {"sku": {"name": "Standard_D4s_v5"}, "virtualMachineProfile": inline}
    with pytest.raises(UnknownValueError):
        check_resource(security.vm_no_plaintext_secrets, SCALE_SET, scale_set)


def test_known_credential_is_reported_even_when_other_settings_are_unknown() -> None:
    settings = {"a": UNKNOWN_STRING_VALUE, "b": "password=Sup3rSecretValue"}
    (message,) = check_resource(security.vm_no_plaintext_secrets, EXTENSION,
                                {"settings": settings})
    assert "password or key assignment" in message


# --- cosmetic: numbers arrive as floats ------------------------------------------------------


def test_unmanaged_data_disk_is_named_by_its_lun_as_written() -> None:
    vm = {"storageProfile": {"dataDisks": [{"lun": 3, "createOption": "Empty",
                                            "vhd": {"uri": "https://sa/vhds/d.vhd"}}]}}
    (message,) = check_resource(security.vm_managed_disks, VM, vm)
    assert message.startswith("data disk 3 is an unmanaged VHD")


# --- shapes that were already judged right (kept as regression cover) ------------------------

POLICIES_BY_ENUM_CASE: list[tuple[ResourceValidationPolicy, str, dict[str, Any]]] = [
    (security.storage_min_tls, STORAGE, {"minimumTlsVersion": "tls1_2"}),
    (security.storage_public_network_access, STORAGE, {"publicNetworkAccess": "disabled"}),
    (security.storage_network_default_deny, STORAGE, {"networkRuleSet": {"defaultAction": "deny"}}),
    (security.keyvault_public_network_access, VAULT,
     {"properties": {"publicNetworkAccess": "DISABLED"}}),
    (security.aks_network_policy, "azure-native:containerservice:ManagedCluster",
     {"networkProfile": {"networkPolicy": "Cilium"}}),
    (security.disk_no_public_access, "azure-native:compute:Disk",
     {"networkAccessPolicy": "denyall"}),
    (security.storage_container_private, "azure-native:storage:BlobContainer",
     {"publicAccess": "none"}),
]


@pytest.mark.parametrize(("policy", "type_", "props"), POLICIES_BY_ENUM_CASE,
                         ids=[p.name for p, _, _ in POLICIES_BY_ENUM_CASE])
def test_enum_values_compare_case_insensitively_as_arm_does(
        policy: ResourceValidationPolicy, type_: str, props: dict[str, Any]) -> None:
    assert check_resource(policy, type_, props) == []


ABSENT_IS_A_FAULT: list[tuple[ResourceValidationPolicy, str, dict[str, Any], str]] = [
    (security.storage_min_tls, STORAGE, {}, "the API's default is TLS1_0"),
    (security.storage_blob_public_access, STORAGE, {"kind": "StorageV2"}, "not set"),
    (security.storage_shared_key_disabled, STORAGE, {}, "default allows it"),
    (security.storage_public_network_access, STORAGE, {}, "default is Enabled"),
    (security.keyvault_purge_protection, VAULT, {"properties": {}}, "not set"),
    (security.keyvault_public_network_access, VAULT, {"properties": {}}, "default is Enabled"),
    (security.aks_local_accounts_disabled, "azure-native:containerservice:ManagedCluster", {},
     "disableLocalAccounts is not set"),
    (security.aks_network_policy, "azure-native:containerservice:ManagedCluster",
     {"networkProfile": {"networkPlugin": "azure", "networkDataplane": "cilium"}},
     "networkPolicy is not set"),
    (security.aks_api_server_access, "azure-native:containerservice:ManagedCluster", {},
     "the API server is public"),
    (security.acr_public_network_access, "azure-native:containerregistry:Registry",
     {"sku": {"name": "Premium"}}, "default is Enabled"),
]


@pytest.mark.parametrize(("policy", "type_", "props", "says"), ABSENT_IS_A_FAULT,
                         ids=[p.name for p, _, _, _ in ABSENT_IS_A_FAULT])
def test_absent_property_whose_azure_default_is_insecure_is_reported(
        policy: ResourceValidationPolicy, type_: str, props: dict[str, Any], says: str) -> None:
    (message,) = check_resource(policy, type_, props)
    assert says in message


ABSENT_IS_SAFE: list[tuple[ResourceValidationPolicy, str, dict[str, Any]]] = [
    (security.storage_https_only, STORAGE, {}),
    (security.keyvault_soft_delete_retention, VAULT, {"properties": {}}),
    (security.acr_admin_user_disabled, "azure-native:containerregistry:Registry", {}),
    (security.acr_anonymous_pull_disabled, "azure-native:containerregistry:Registry", {}),
    (security.storage_cross_tenant_replication, STORAGE, {}),
    (security.storage_container_private, "azure-native:storage:BlobContainer", {}),
]


@pytest.mark.parametrize(("policy", "type_", "props"), ABSENT_IS_SAFE,
                         ids=[p.name for p, _, _ in ABSENT_IS_SAFE])
def test_absent_property_whose_azure_default_is_secure_passes(
        policy: ResourceValidationPolicy, type_: str, props: dict[str, Any]) -> None:
    assert check_resource(policy, type_, props) == []


def test_aks_rbac_left_unset_is_azure_rbac_on() -> None:
    cluster = {"aadProfile": {"managed": True, "enableAzureRBAC": True}}
    assert check_resource(security.aks_entra_azure_rbac,
                          "azure-native:containerservice:ManagedCluster", cluster) == []
    off = {**cluster, "enableRBAC": False}
    assert check_resource(security.aks_entra_azure_rbac,
                          "azure-native:containerservice:ManagedCluster", off)


# --- NSG rules with values unknown during a preview -------------------------------------------


class Capture:
    """A policy whose violations are kept even when it ends by raising UnknownValueError."""

    def __init__(self, policy: ResourceValidationPolicy) -> None:
        self.policy = policy
        self.found: list[str] = []

    def validate(self, args: Any, report: Any) -> None:
        def keep(message: str, urn: str | None = None) -> None:
            self.found.append(message)
            report(message, urn)

        self.policy.validate(args, keep)


OPERATOR_RULE = inbound(name="ops", sourceAddressPrefix=UNKNOWN_STRING_VALUE)


@pytest.mark.parametrize("policy", [security.nsg_no_internet_management_ports,
                                    network.nsg_no_internet_inbound], ids=lambda p: p.name)
def test_known_open_rule_is_reported_although_another_rule_is_unknown(
        policy: ResourceValidationPolicy) -> None:
    # Before: the unknown source of one rule stopped the whole rule at once, so the known
    # every-port-from-anywhere rule went unreported and a preview gate passed.
    props = {"securityRules": [OPERATOR_RULE,
                               inbound(name="wide", sourceAddressPrefix="*",
                                       destinationPortRange="*")]}
    capture = Capture(policy)
    with pytest.raises(UnknownValueError):
        check_resource(capture, NSG, props)  # type: ignore[arg-type]
    assert len(capture.found) == 1 and "'wide'" in capture.found[0]


def test_one_known_internet_source_decides_although_another_is_unknown() -> None:
    props = inbound(sourceAddressPrefix=UNKNOWN_STRING_VALUE, sourceAddressPrefixes=["*"])
    (message,) = check_resource(security.nsg_no_internet_management_ports, SECURITY_RULE, props)
    assert "ports 22 from the Internet" in message
    bounded = inbound(sourceAddressPrefix=UNKNOWN_STRING_VALUE,
                      sourceAddressPrefixes=["10.0.0.0/8"])
    with pytest.raises(UnknownValueError):
        check_resource(security.nsg_no_internet_management_ports, SECURITY_RULE, bounded)


def test_bastion_ingress_is_not_reported_while_the_gateway_manager_rule_is_unknown() -> None:
    props = {"securityRules": [
        inbound(name="AllowHttpsInbound", destinationPortRange="443"),
        inbound(name="AllowGatewayManagerInbound", sourceAddressPrefix=UNKNOWN_STRING_VALUE,
                destinationPortRange="443"),
    ]}
    capture = Capture(network.nsg_no_internet_inbound)
    with pytest.raises(UnknownValueError):
        check_resource(capture, NSG, props)  # type: ignore[arg-type]
    assert capture.found == []


# --- every rule with a good/bad pair: enum case and versioned tokens change no verdict -------

_ENUM = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Values that are names or identifiers, not ARM enums: their case is the user's.
_NOT_ENUMS = {"name", "adminUsername", "computerName", "username", "tenantId", "principalId",
              "value", "keyData", "path", "id", "displayName"}


def recased(value: Any, change: Any, key: str | None = None) -> Any:
    """`value` with every enum-like string value passed through `change`."""
    if isinstance(value, dict):
        return {k: recased(item, change, k) for k, item in value.items()}
    if isinstance(value, list):
        return [recased(item, change, key) for item in value]
    if isinstance(value, str) and _ENUM.match(value) and key not in _NOT_ENUMS:
        return change(value)
    return value


def versioned(type_: str) -> str:
    """The same type on a pinned API version, as a versioned module declares it."""
    package, module, name = type_.split(":")
    return f"{package}:{module}/v20240101:{name}"


PAIRED = [*SECURITY_CASES, *PLATFORM_CASES]


@pytest.mark.parametrize("case", PAIRED, ids=[f"{c.policy.name}-{i}" for i, c in enumerate(PAIRED)])
def test_enum_case_and_versioned_tokens_do_not_change_a_verdict(case: Any) -> None:
    # Before: an API Management policy with format 'XML' was skipped as "not XML".
    for props, expected in ((case.good, False), (case.bad, True)):
        for change in (str.lower, str.upper):
            found = check_resource(case.policy, case.type, recased(props, change),
                                   config=case.config)
            assert bool(found) is expected, (change.__name__, found)
        found = check_resource(case.policy, versioned(case.type), props, config=case.config)
        assert bool(found) is expected, ("versioned", found)


def test_known_open_api_server_range_is_reported_although_another_range_is_unknown() -> None:
    # Before: one operator CIDR unknown during a preview hid the known 0.0.0.0/0 beside it.
    cluster = {"apiServerAccessProfile": {"authorizedIPRanges": [UNKNOWN_STRING_VALUE,
                                                                  "0.0.0.0/0"]}}
    capture = Capture(security.aks_api_server_access)
    with pytest.raises(UnknownValueError):
        check_resource(capture, "azure-native:containerservice:ManagedCluster",  # type: ignore[arg-type]
                       cluster)
    assert capture.found == ["authorizedIPRanges includes 0.0.0.0/0, which admits every address"]
    only_unknown = {"apiServerAccessProfile": {"authorizedIPRanges": [UNKNOWN_STRING_VALUE]}}
    capture = Capture(security.aks_api_server_access)
    with pytest.raises(UnknownValueError):
        check_resource(capture, "azure-native:containerservice:ManagedCluster",  # type: ignore[arg-type]
                       only_unknown)
    assert capture.found == []  # not "empty": a range is there, just not known yet


# --- end to end: a foreign program through the SDK, the offline engine and the Analyzer -------

# For the rules the shapes exercise: exactly the resources each must report.
PROGRAM_VERDICTS = {
    "gpustack-vm-ssh-keys-only": {"linux-vm"},  # not the Windows VM beside it
    "gpustack-nsg-no-internet-management-ports": {"ssh-range"},  # not the ICMP rule
    "gpustack-nsg-no-internet-inbound": {"ping-nsg", "ssh-range"},
    "gpustack-nsg-associated": {"open-nsg"},  # ping-nsg is on the scale set's NIC config
    "gpustack-storage-public-network-access": {"fileshares"},  # perimeter has no public access
    "gpustack-storage-blob-public-access": {"perimeter"},  # FileStorage has no blobs
    "gpustack-storage-blob-soft-delete": {"perimeter"},
}


@pytest.fixture(scope="module")
def program_verdicts() -> dict[str, set[str]]:
    """Rule -> names of the resources it reports on tests/fixtures/programs/foreign_shapes."""
    plan = run_plan(FIXTURES / "programs" / "foreign_shapes", "dev")
    with PolicyPackSession(ROOT / "policies") as session:
        result = session.run([r.analyzer_view() for r in plan.resources], {})
    found: dict[str, set[str]] = {}
    for violation in result.violations:
        name = violation.urn.rsplit("::", 1)[-1] if violation.urn else "(stack)"
        found.setdefault(violation.rule, set()).add(name)
    return found


@pytest.mark.parametrize("rule_id", sorted(PROGRAM_VERDICTS))
def test_foreign_program_gets_the_verdicts_it_is_owed(
        program_verdicts: dict[str, set[str]], rule_id: str) -> None:
    assert program_verdicts.get(rule_id, set()) == PROGRAM_VERDICTS[rule_id]


def test_api_server_ranges_that_add_up_to_every_address_are_reported() -> None:
    # Before: 0.0.0.0/1 and 128.0.0.0/1 passed, no single range being /0.
    split = {"apiServerAccessProfile": {"authorizedIPRanges": ["0.0.0.0/1", "128.0.0.0/1"]}}
    (message,) = check_resource(security.aks_api_server_access,
                                "azure-native:containerservice:ManagedCluster", split)
    assert "together admit every IPv4 address" in message
    office = {"apiServerAccessProfile": {"authorizedIPRanges": ["0.0.0.0/1", "203.0.113.0/24"]}}
    assert check_resource(security.aks_api_server_access,
                          "azure-native:containerservice:ManagedCluster", office) == []


def test_subnet_delegated_to_dedicated_hsm_needs_no_nsg() -> None:
    # Before: reported, although Dedicated HSM subnets take no NSG (PSRule exempts them too).
    hsm = {"name": "hsm", "addressPrefix": "10.50.9.0/24", "delegations": [
        {"name": "hsm", "serviceName": "Microsoft.HardwareSecurityModules/dedicatedHSMs"}]}
    vnet = {"subnets": [hsm, {"name": "gpu", "addressPrefix": "10.50.1.0/24"}]}
    (message,) = check_resource(network.subnet_nsg, "azure-native:network:VirtualNetwork", vnet)
    assert "subnet 'gpu' has no networkSecurityGroup" in message
    assert check_resource(network.subnet_nsg, "azure-native:network:Subnet",
                          {**hsm, "subnetName": "hsm"}) == []
    netapp = {**hsm, "delegations": [{"name": "anf", "serviceName": "Microsoft.Netapp/volumes"}]}
    assert check_resource(network.subnet_nsg, "azure-native:network:Subnet", netapp)



# --- presence is known before the value: generated passwords, public IP ids, expiry dates ----

LINUX_VM = {"hardwareProfile": {"vmSize": "Standard_NC4as_T4_v3"},
            "storageProfile": {"imageReference": UBUNTU_IMAGE},
            "osProfile": {"computerName": "train", "adminUsername": "azureuser",
                          "linuxConfiguration": {
                              "disablePasswordAuthentication": True,
                              "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/k",
                                                      "keyData": "ssh-ed25519 AAAA"}]}}}}


def test_generated_password_unknown_during_preview_is_still_a_password() -> None:
    # Before: admin_password=RandomPassword(...).result is unknown in a preview, so the rule
    # could not run and the preview gate passed a VM with password sign-in.
    vm = {**LINUX_VM, "osProfile": {**LINUX_VM["osProfile"],
                                    "adminPassword": UNKNOWN_STRING_VALUE}}
    (message,) = check_resource(security.vm_ssh_keys_only, VM, vm)
    assert message == "osProfile sets adminPassword"
    assert check_resource(security.vm_ssh_keys_only, VM, LINUX_VM) == []


def test_ssh_keys_computed_elsewhere_count_as_keys() -> None:
    computed = {**LINUX_VM, "osProfile": {**LINUX_VM["osProfile"], "linuxConfiguration": {
        "disablePasswordAuthentication": True, "ssh": {"publicKeys": UNKNOWN_STRING_VALUE}}}}
    assert check_resource(security.vm_ssh_keys_only, VM, computed) == []
    empty = {**LINUX_VM, "osProfile": {**LINUX_VM["osProfile"], "linuxConfiguration": {
        "disablePasswordAuthentication": True, "ssh": {"publicKeys": []}}}}
    (message,) = check_resource(security.vm_ssh_keys_only, VM, empty)
    assert message == "no SSH public keys are set"


def test_public_ip_attached_by_an_output_is_reported_during_preview() -> None:
    # Before: a NIC whose publicIPAddress is an Output (unknown in a preview) could not be
    # judged, so the preview gate passed a NIC with a public IP.
    nic = {"ipConfigurations": [{"name": "ip", "publicIPAddress": UNKNOWN_STRING_VALUE}]}
    (message,) = check_resource(security.vm_no_public_ip, "azure-native:network:NetworkInterface",
                                nic)
    assert "IP configuration 'ip' attaches a public IP address" in message
    config = {"name": "ip", "publicIPAddressConfiguration": UNKNOWN_STRING_VALUE}
    scale_set = {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": [
        {"name": "nic", "ipConfigurations": [config]}]}}}
    assert check_resource(security.vm_no_public_ip, SCALE_SET, scale_set)


def test_secret_expiry_computed_during_preview_is_an_expiry() -> None:
    secret = {"properties": {"value": "x", "attributes": {"expires": UNKNOWN_STRING_VALUE}}}
    assert check_resource(security.keyvault_expiry, "azure-native:keyvault:Secret", secret) == []


def test_apim_subnet_named_by_an_output_is_a_subnet_during_preview() -> None:
    # Before: the subnet id, unknown until the subnet exists, made the rule "can't run" (as in
    # this project's own prod preview).
    apim = {"virtualNetworkType": "Internal",
            "virtualNetworkConfiguration": {"subnetResourceId": UNKNOWN_STRING_VALUE}}
    assert check_resource(security.apim_internal_vnet,
                          "azure-native:apimanagement:ApiManagementService", apim) == []
    (message,) = check_resource(security.apim_internal_vnet,
                                "azure-native:apimanagement:ApiManagementService",
                                {"virtualNetworkType": "Internal"})
    assert "names no subnet" in message


def test_subnet_nsg_attached_by_an_output_is_attached_during_preview() -> None:
    subnet = {"subnetName": "gpu", "networkSecurityGroup": UNKNOWN_STRING_VALUE}
    assert check_resource(network.subnet_nsg, "azure-native:network:Subnet", subnet) == []
    (message,) = check_resource(network.subnet_nsg, "azure-native:network:Subnet",
                                {"subnetName": "gpu"})
    assert "subnet 'gpu' has no networkSecurityGroup" in message



def test_known_public_ip_is_reported_although_another_nic_configuration_is_unknown() -> None:
    # Before: one NIC configuration unknown as a whole hid the public IP of the known one.
    scale_set = {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": [
        UNKNOWN_STRING_VALUE,
        {"name": "nic", "ipConfigurations": [{"name": "ip", "publicIPAddressConfiguration": {
            "name": "pip"}}]},
    ]}}}
    capture = Capture(security.vm_no_public_ip)
    with pytest.raises(UnknownValueError):
        check_resource(capture, SCALE_SET, scale_set)  # type: ignore[arg-type]
    assert capture.found == ["NIC 'nic' IP configuration 'ip' creates a public IP address"]


def test_stack_rules_pair_versioned_children_with_versioned_parents() -> None:
    account = Declared("azure-native:storage/v20230101:StorageAccount", "data",
                       {"kind": "StorageV2", "accountName": "data"})
    service = Declared("azure-native:storage/v20220901:BlobServiceProperties", "data-blobs", {
        "accountName": "data", "blobServicesName": "default",
        "deleteRetentionPolicy": {"enabled": True, "days": 7},
        "containerDeleteRetentionPolicy": {"enabled": True, "days": 7}})
    assert check_stack(reliability.storage_blob_soft_delete, [account, service]) == []
    setting = Declared("azure-native:insights/v20210501preview:DiagnosticSetting", "data-diag",
                       {"resourceUri": "/subscriptions/s/resourceGroups/rg/providers/"
                                       "Microsoft.Storage/storageAccounts/data",
                        "logs": [{"categoryGroup": "allLogs", "enabled": True}]})
    assert check_stack(reliability.reliability_diagnostic_settings, [account, setting]) == []
    assert check_stack(reliability.reliability_diagnostic_settings, [account])



@pytest.mark.parametrize("location", ["northcentralus", "North Central US", "westcentralus"])
def test_system_pool_in_a_region_without_zones_is_not_asked_for_zones(location: str) -> None:
    # Before: a production cluster in a region without availability zones was told to spread
    # its system pool over zones it cannot use.
    pool = {"name": "system", "mode": "System", "vmSize": "Standard_D4ds_v5", "count": 3}
    cluster = {"location": location, "agentPoolProfiles": [pool]}
    assert check_resource(reliability.reliability_system_pool_zonal,
                          "azure-native:containerservice:ManagedCluster", cluster) == []
    zonal = {**cluster, "location": "eastus"}
    (message,) = check_resource(reliability.reliability_system_pool_zonal,
                                "azure-native:containerservice:ManagedCluster", zonal)
    assert "spans zones (none)" in message



def test_standard_public_ip_in_a_region_without_zones_is_not_asked_for_zones() -> None:
    address = {"sku": {"name": "Standard"}, "location": "northcentralus"}
    assert check_resource(network.public_ip_zone_redundant,
                          "azure-native:network:PublicIPAddress", address) == []
    assert check_resource(network.public_ip_zone_redundant,
                          "azure-native:network:PublicIPAddress", {**address, "location": "eastus"})



def test_registry_and_storage_in_a_region_without_zones_are_not_asked_for_zones() -> None:
    registry = {"sku": {"name": "Premium"}, "location": "northcentralus",
                "policies": {"retentionPolicy": {"status": "enabled"}}}
    assert check_resource(security.acr_premium_resilience,
                          "azure-native:containerregistry:Registry", registry) == []
    (message,) = check_resource(security.acr_premium_resilience,
                                "azure-native:containerregistry:Registry",
                                {**registry, "location": "westeurope"})
    assert "zoneRedundancy is not 'Enabled'" in message
    account = {"sku": {"name": "Standard_GRS"}, "location": "North Central US"}
    assert check_resource(reliability.reliability_storage_zone_redundant, STORAGE, account) == []
    assert check_resource(reliability.reliability_storage_zone_redundant, STORAGE,
                          {**account, "location": "eastus2"})



def test_plans_and_gateways_in_a_region_without_zones_are_not_asked_for_zones() -> None:
    plan = {"sku": {"name": "P1v3", "tier": "PremiumV3", "capacity": 3},
            "location": "northcentralus"}
    assert check_resource(platform_services.appservice_plan_zone_redundant,
                          "azure-native:web:AppServicePlan", plan) == []
    assert check_resource(platform_services.appservice_plan_zone_redundant,
                          "azure-native:web:AppServicePlan", {**plan, "location": "eastus"})
    gateway = {"gatewayType": "Vpn", "sku": {"name": "VpnGw2", "tier": "VpnGw2"},
               "location": "westcentralus"}
    assert check_resource(platform_services.gateway_zone_redundant_sku,
                          "azure-native:network:VirtualNetworkGateway", gateway) == []
    assert check_resource(platform_services.gateway_zone_redundant_sku,
                          "azure-native:network:VirtualNetworkGateway",
                          {**gateway, "location": "westeurope"})


def test_aks_diagnostic_categories_unknown_during_preview_are_noted_not_reported() -> None:
    # Before: logs computed from a list Output read as "collects nothing" and were reported.
    cluster = Declared("azure-native:containerservice:ManagedCluster", "aks",
                       {"resourceName": "aks"})
    setting = Declared("azure-native:monitor:DiagnosticSetting", "aks-diag",
                       {"logs": UNKNOWN_STRING_VALUE, "metrics": [{"category": "AllMetrics"}]},
                       deps={"resourceUri": ["aks"]})
    capture = Capture(reliability.aks_diagnostic_categories)
    with pytest.raises(UnknownValueError):
        check_stack(capture, [cluster, setting])  # type: ignore[arg-type]
    assert capture.found == []
    known = Declared(setting.type, setting.name, {**setting.props, "logs": []}, deps=setting.deps)
    (found,) = check_stack(reliability.aks_diagnostic_categories, [cluster, known])
    assert "do not collect" in found[0]


def test_maintenance_window_rule_notes_an_unknown_upgrade_channel() -> None:
    cluster = Declared("azure-native:containerservice:ManagedCluster", "aks",
                       {"resourceName": "aks",
                        "autoUpgradeProfile": {"upgradeChannel": UNKNOWN_STRING_VALUE}})
    capture = Capture(reliability.aks_maintenance_window)
    with pytest.raises(UnknownValueError):
        check_stack(capture, [cluster])  # type: ignore[arg-type]
    assert capture.found == []


def test_private_endpoint_rule_notes_a_public_access_setting_unknown_during_preview() -> None:
    account = Declared(STORAGE, "data", {"accountName": "data",
                                         "publicNetworkAccess": UNKNOWN_STRING_VALUE})
    capture = Capture(network.private_endpoint_for_private_services)
    with pytest.raises(UnknownValueError):
        check_stack(capture, [account])  # type: ignore[arg-type]
    assert capture.found == []
    closed = Declared(STORAGE, "data", {"accountName": "data", "publicNetworkAccess": "Disabled"})
    assert check_stack(network.private_endpoint_for_private_services, [closed])


def test_cni_node_subnet_passed_as_an_output_is_still_sized() -> None:
    # Before: a pool whose vnetSubnetID is subnet.id (unknown in a preview) was not matched
    # to its subnet, so a /24 node subnet under Azure CNI passed.
    small = Declared("azure-native:network:Subnet", "gpu",
                     {"subnetName": "snet-gpu", "addressPrefix": "10.0.4.0/24"})
    cluster = Declared("azure-native:containerservice:ManagedCluster", "aks", {
        "resourceName": "aks-gpu", "networkProfile": {"networkPlugin": "azure"},
        "agentPoolProfiles": [{"name": "system", "vnetSubnetID": UNKNOWN_STRING_VALUE}]},
        deps={"agentPoolProfiles": ["gpu"]})
    ((message, _),) = check_stack(reliability.aks_cni_subnet_size, [small, cluster])
    assert "node subnet snet-gpu is 10.0.4.0/24" in message
    pool = Declared("azure-native:containerservice:AgentPool", "t4",
                    {"resourceName": "aks-gpu", "vnetSubnetID": UNKNOWN_STRING_VALUE},
                    deps={"resourceName": ["aks"], "vnetSubnetID": ["gpu"]})
    bare = Declared(cluster.type, "aks", {"resourceName": "aks-gpu",
                                          "networkProfile": {"networkPlugin": "azure"}})
    ((message, _),) = check_stack(reliability.aks_cni_subnet_size, [small, bare, pool])
    assert "node subnet snet-gpu is 10.0.4.0/24" in message
