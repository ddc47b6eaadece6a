"""Reliability rules: recoverable data, protected state, a resilient control plane, telemetry."""

from __future__ import annotations

import ipaddress
from typing import Any

from pulumi_policy import Severity
from pulumi_policy.proxy import UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError

from gpustack import facts, regions
from policies.rulebook import (
    ADVISORY,
    MANDATORY,
    PRODUCTION_LIKE,
    UNKNOWNS,
    Deferred,
    Report,
    Resource,
    Rule,
    Stack,
    StackReport,
    dig,
    environment_scope,
    has_no_blob_service,
    in_scope,
    items,
    known_size,
    lower,
    names,
    node_pools,
    number,
    one_of,
    plain,
    policy_fact,
    resource_rule,
    stack_rule,
    zoneless_region,
)

STORAGE = "storage:StorageAccount"
BLOB_SERVICE = "storage:BlobServiceProperties"
VAULT = "keyvault:Vault"
CLUSTER = "containerservice:ManagedCluster"
AGENT_POOL = "containerservice:AgentPool"
DIAGNOSTICS = "monitor:DiagnosticSetting"
REGISTRY = "containerregistry:Registry"
API_MANAGEMENT = "apimanagement:ApiManagementService"

# How a diagnostic setting or blob service names the resource it belongs to: the ARM type
# segment and the input holding the resource's name.
_ARM_NAMES = {
    STORAGE: ("storageAccounts", "accountName"),
    VAULT: ("vaults", "vaultName"),
    CLUSTER: ("managedClusters", "resourceName"),
    REGISTRY: ("registries", "registryName"),
}


def _blob_services(stack: Stack, account: Resource) -> list[Resource]:
    return [
        service
        for service in stack.of(BLOB_SERVICE)
        if stack.refers_to(service, "accountName", account, *_ARM_NAMES[STORAGE])
    ]


@stack_rule(
    Rule(
        id="gpustack-storage-blob-soft-delete",
        area="reliability",
        title="Storage accounts keep deleted blobs and containers for a while",
        why="Checkpoints and datasets are overwritten and deleted by jobs all day; blob and "
        "container soft delete turn a bad script into a restore instead of a re-training run.",
        fix="Declare storage.BlobServiceProperties for the account with "
        "delete_retention_policy and container_delete_retention_policy enabled for at least "
        "minimumDays.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/storage/blobs/soft-delete-blob-overview",),
        mirrors=("Azure.Storage.SoftDelete", "Azure.Storage.ContainerSoftDelete", "CKV2_AZURE_38"),
        settings={
            "minimumDays": {
                "type": "integer",
                "minimum": 1,
                "maximum": 365,
                "default": 7,
                "description": "Fewest days deleted blobs and containers are kept.",
            }
        },
    )
)
def storage_blob_soft_delete(stack: Stack, report: StackReport) -> None:
    minimum = stack.config["minimumDays"]
    for account in stack.of(STORAGE):
        if has_no_blob_service(account):
            continue  # FileStorage: file shares only (gpustack-storage-file-share-soft-delete)
        services = _blob_services(stack, account)
        if not services:
            report(f"{account.name} has no BlobServiceProperties, so soft delete is off",
                   account.urn)
            continue
        for service in services:
            for policy in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
                enabled = service.get(policy, "enabled")
                days = number(service.get(policy, "days"))
                if enabled is not True:
                    report(f"{service.name}: {policy}.enabled is {enabled!r}", service.urn)
                elif days is not None and days < minimum:
                    report(f"{service.name}: {policy}.days is {days:g}, below {minimum:g}",
                           service.urn)


@stack_rule(
    Rule(
        id="gpustack-storage-blob-versioning",
        area="reliability",
        title="Storage accounts version blobs",
        why="Versioning keeps the previous model or checkpoint when a job overwrites it; a "
        "lifecycle rule deletes old versions so it does not grow without bound.",
        fix="Set is_versioning_enabled=True on the account's BlobServiceProperties, with a "
        "lifecycle rule for old versions (not available with a hierarchical namespace).",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/storage/blobs/versioning-overview",),
    )
)
def storage_blob_versioning(stack: Stack, report: StackReport) -> None:
    for account in stack.of(STORAGE):
        if account.get("isHnsEnabled") is True or has_no_blob_service(account):
            continue  # no versioning on hierarchical-namespace (ADLS Gen2) or FileStorage accounts
        services = _blob_services(stack, account)
        if not any(service.get("isVersioningEnabled") is True for service in services):
            report(f"{account.name} does not enable blob versioning", account.urn)


@resource_rule(
    Rule(
        id="gpustack-reliability-protect-stateful",
        area="reliability",
        title="Stateful resources are protected in production-like environments",
        why="A rename or a bad refactor turns into delete-and-recreate; `protect` makes Pulumi "
        "refuse to delete storage, vaults, clusters and workspaces that hold data.",
        fix="Pass ResourceOptions(protect=True, retain_on_delete=True) to data-holding "
        "resources in prod (stateful_options in components/conventions.py).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://www.pulumi.com/docs/iac/concepts/options/protect/",),
        settings=environment_scope(*PRODUCTION_LIKE),
    ),
)
def reliability_protect_stateful(resource: Resource, report: Report) -> None:
    if not in_scope(resource.config):
        return
    if resource.kind in policy_fact("stateful_types")["types"] and not resource.protect:
        report(f"{resource.kind} {resource.name} holds state but is not protected")


@resource_rule(
    Rule(
        id="gpustack-reliability-system-pool-zonal",
        area="reliability",
        title="AKS system pools run at least 2 nodes across zones in production-like environments",
        why="CoreDNS, metrics-server and the GPU software's controllers live on the system "
        "pool; one node or one zone is one failure away from a cluster that cannot schedule.",
        fix="Set the system pool's min_count (or count) to 2 or more and availability_zones "
        "to 2 or more zones.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/aks/use-system-pools",
            "https://learn.microsoft.com/azure/aks/availability-zones",
        ),
        mirrors=("Azure.AKS.MinNodeCount", "Azure.AKS.AvailabilityZone"),
        settings={
            **environment_scope(*PRODUCTION_LIKE),
            "minimumNodes": {"type": "integer", "minimum": 1, "default": 2},
            "minimumZones": {"type": "integer", "minimum": 1, "maximum": 3, "default": 2},
        },
    ),
    CLUSTER,
    AGENT_POOL,
)
def reliability_system_pool_zonal(resource: Resource, report: Report) -> None:
    if not in_scope(resource.config):
        return
    pools = node_pools(resource)
    for index, pool in enumerate(pools):
        # AKS makes a cluster's first inline pool a System pool when mode is left out.
        system = pool.is_system or (pool.inline and index == 0 and pool.get("mode") is None)
        if not system:
            continue
        problems = []
        floor = pool.floor if pool.floor is not None else number(pool.get("count"))
        if floor is None:
            problems.append("sets no node count (AKS's default is 1)")
        elif floor < resource.config["minimumNodes"]:
            problems.append(f"runs as few as {floor:g} nodes")
        zones = {str(z) for z in items(pool.get("availabilityZones"))}
        # Zones are demanded only of sizes the catalog lists as zonal: an unknown size is
        # reported by gpustack-vm-size-known, and a regional-only size cannot span zones.
        # Nor of a cluster declared in a region without availability zones.
        known = known_size(pool.size)
        zonal = known is not None and known.zonal and not zoneless_region(resource)
        if zonal and len(zones) < resource.config["minimumZones"]:
            problems.append(f"spans zones {names(sorted(zones))}")
        if problems:
            report(f"system {pool.label} {' and '.join(problems)}; use at least "
                   f"{resource.config['minimumNodes']:g} nodes in "
                   f"{resource.config['minimumZones']:g} zones")


@resource_rule(
    Rule(
        id="gpustack-reliability-aks-standard-tier",
        area="reliability",
        title="AKS clusters use the Standard (or Premium) tier in production-like environments",
        why="The Free tier has no uptime SLA and a smaller API server; production clusters get "
        "the financially backed 99.95% SLA with availability zones.",
        fix="Set sku=ManagedClusterSKUArgs(name='Base', tier='Standard').",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/free-standard-pricing-tiers",),
        mirrors=("Azure.AKS.UptimeSLA", "CKV_AZURE_170"),
        settings=environment_scope(*PRODUCTION_LIKE),
    ),
    CLUSTER,
)
def reliability_aks_standard_tier(cluster: Resource, report: Report) -> None:
    if not in_scope(cluster.config):
        return
    tier = cluster.get("sku", "tier")
    if not one_of(tier, "Standard", "Premium"):
        shown = "not set (Free)" if tier is None else repr(tier)
        report(f"sku.tier is {shown}; use 'Standard'")


@stack_rule(
    Rule(
        id="gpustack-reliability-diagnostic-settings",
        area="reliability",
        title="Storage accounts, Key Vaults, AKS clusters and registries send diagnostics to a "
        "workspace",
        why="Without resource logs there is no audit trail of who read a secret, a model or an "
        "image, and no API server or autoscaler logs to debug a stuck GPU pool.",
        fix="Add a monitor.DiagnosticSetting for the resource (for storage, its blob service) "
        "that sends allLogs and AllMetrics to the Log Analytics workspace.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings",),
        mirrors=(
            "Azure.KeyVault.Logs",
            "Azure.AKS.AuditLogs",
            "Azure.ACR.Logs",
            "Azure.ACR.AuditLogs",
            "CKV2_AZURE_21",
        ),
    )
)
def reliability_diagnostic_settings(stack: Stack, report: StackReport) -> None:
    by_target: dict[str, list[Resource]] = {}
    for setting in stack.of(DIAGNOSTICS):
        for urn in stack.referenced(setting, "resourceUri", _ARM_NAMES):
            by_target.setdefault(urn, []).append(setting)
    deferred = Deferred()  # categories unknown during a preview are noted, not passed
    for kind in _ARM_NAMES:
        for target in stack.of(kind):
            mine = by_target.get(target.urn, [])
            if not mine:
                report(f"{kind} {target.name} has no diagnostic setting", target.urn)
                continue
            # A setting with metrics only, or with every log disabled, records no audit trail
            # (PSRule Azure.KeyVault.Logs, Azure.ACR.AuditLogs and Azure.AKS.AuditLogs want
            # enabled logs). A storage account itself emits metrics only: its logs come from
            # its services' settings, which are not told apart here yet.
            if kind == STORAGE:
                continue
            collected = [deferred.check(_collected, setting) for setting in mine]
            if any(found is None for found in collected):
                continue
            if not any(logs for logs, _ in collected):
                report(f"{kind} {target.name}: its diagnostic settings enable no resource logs "
                       "(metrics only, or every log disabled)", target.urn)
    deferred.finish()


@resource_rule(
    Rule(
        id="gpustack-reliability-autoscaler-owns-count",
        area="reliability",
        title="Autoscaled AgentPools leave their node count to the autoscaler",
        why="With the autoscaler on, every `pulumi up` would reset the live node count to the "
        "declared one, scaling busy GPU pools down mid-job.",
        fix="Add ResourceOptions(ignore_changes=['count']) to autoscaled AgentPool resources.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/cluster-autoscaler",),
    ),
    AGENT_POOL,
)
def reliability_autoscaler_owns_count(pool: Resource, report: Report) -> None:
    if pool.get("enableAutoScaling") is True and "count" not in pool.ignore_changes:
        report("enableAutoScaling is True but ignore_changes does not include 'count'")


@resource_rule(
    Rule(
        id="gpustack-reliability-storage-zone-redundant",
        area="reliability",
        title="Storage is zone-redundant in production-like environments",
        why="LRS keeps all copies in one datacenter; a zone outage would take the training "
        "data and model registry with it.",
        fix="Use sku name Standard_ZRS, Standard_GZRS or Standard_RAGZRS (Premium_ZRS for "
        "premium accounts).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/storage/common/storage-redundancy",),
        mirrors=("CKV_AZURE_206",),
        settings=environment_scope(*PRODUCTION_LIKE),
    ),
    STORAGE,
)
def reliability_storage_zone_redundant(account: Resource, report: Report) -> None:
    if not in_scope(account.config) or zoneless_region(account):
        return  # ZRS needs a region with availability zones
    sku = account.get("sku", "name")
    if not isinstance(sku, str) or "zrs" not in sku.lower():
        report(f"sku.name is {sku!r}; use a zone-redundant SKU (ZRS, GZRS or RAGZRS)")



FILE_SERVICE = "storage:FileServiceProperties"
FILE_SHARE = "storage:FileShare"
MAINTENANCE = "containerservice:MaintenanceConfiguration"


@stack_rule(
    Rule(
        id="gpustack-storage-file-share-soft-delete",
        area="reliability",
        title="Storage accounts with file shares keep deleted shares for a while",
        why="Shared datasets and home directories on Azure Files are deleted by a script as "
        "easily as blobs; share soft delete turns that into a restore.",
        fix="Declare storage.FileServiceProperties for the account with "
        "share_delete_retention_policy enabled for at least minimumDays.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/storage/files/storage-files-prevent-file-share-deletion",),
        mirrors=("Azure.Storage.FileShareSoftDelete",),
        settings={
            "minimumDays": {
                "type": "integer",
                "minimum": 1,
                "maximum": 365,
                "default": 7,
                "description": "Fewest days deleted file shares are kept.",
            }
        },
    )
)
def storage_file_share_soft_delete(stack: Stack, report: StackReport) -> None:
    minimum = stack.config["minimumDays"]
    segments = _ARM_NAMES[STORAGE]
    for account in stack.of(STORAGE):
        shares = [s for s in stack.of(FILE_SHARE)
                  if stack.refers_to(s, "accountName", account, *segments)]
        services = [s for s in stack.of(FILE_SERVICE)
                    if stack.refers_to(s, "accountName", account, *segments)]
        if not shares and not services:
            continue  # no Azure Files here
        if not services:
            report(f"{account.name} has file shares but no FileServiceProperties, so share soft "
                   "delete is off", account.urn)
        for service in services:
            enabled = service.get("shareDeleteRetentionPolicy", "enabled")
            days = number(service.get("shareDeleteRetentionPolicy", "days"))
            if enabled is not True:
                report(f"{service.name}: shareDeleteRetentionPolicy.enabled is {enabled!r}",
                       service.urn)
            elif days is not None and days < minimum:
                report(f"{service.name}: shareDeleteRetentionPolicy.days is {days:g}, below "
                       f"{minimum:g}", service.urn)


@stack_rule(
    Rule(
        id="gpustack-aks-maintenance-window",
        area="reliability",
        title="AKS clusters that upgrade automatically have a maintenance window",
        why="Without a window, auto-upgrades and node image rollouts drain GPU nodes whenever "
        "AKS chooses, in the middle of training runs.",
        fix="Declare a containerservice.MaintenanceConfiguration named "
        "aksManagedAutoUpgradeSchedule (and aksManagedNodeOSUpgradeSchedule) for the cluster.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/planned-maintenance",),
        mirrors=("Azure.AKS.MaintenanceWindow",),
    )
)
def aks_maintenance_window(stack: Stack, report: StackReport) -> None:
    scheduled: set[str] = set()
    for configuration in stack.of(MAINTENANCE):
        scheduled |= stack.referenced(configuration, "resourceName",
                                      {CLUSTER: _ARM_NAMES[CLUSTER]})
    deferred = Deferred()  # a channel unknown during a preview is noted, not passed
    for cluster in stack.of(CLUSTER):
        channel = deferred.check(cluster.get, "autoUpgradeProfile", "upgradeChannel")
        if channel is None or one_of(channel, "none"):
            continue
        if cluster.urn not in scheduled:
            report(f"{cluster.name} upgrades automatically ({channel}) but has no maintenance "
                   "configuration", cluster.urn)
    deferred.finish()


def _collected(setting: Resource) -> tuple[set[str], set[str]]:
    """The enabled log categories (and category groups) and metric categories of a setting.

    Raises `UnknownValueError` when a list or a category is unknown during a preview: what is
    missing cannot be told then.
    """
    logs, metrics = set(), set()
    for entry in items(plain(setting.get("logs"))):
        if entry.get("enabled") is False:
            continue
        for key in ("category", "categoryGroup"):
            if isinstance(entry.get(key), str):
                logs.add(_known_text(entry[key], "logs").lower())
    for entry in items(plain(setting.get("metrics"))):
        if entry.get("enabled") is not False and isinstance(entry.get("category"), str):
            metrics.add(_known_text(entry["category"], "metrics").lower())
    return logs, metrics


def _known_text(value: str, where: str) -> str:
    if value in UNKNOWNS:
        raise UnknownValueError(value, [where, "category"])
    return value


@stack_rule(
    Rule(
        id="gpustack-aks-diagnostic-categories",
        area="reliability",
        title="AKS diagnostic settings collect control-plane, autoscaler and admin audit logs",
        why="Debugging a GPU pool that will not scale needs the autoscaler and API server logs; "
        "investigating a change needs the admin audit log. kube-audit, which adds every get "
        "and list call, multiplies ingestion cost for little more.",
        fix="Send kube-apiserver, kube-controller-manager, kube-scheduler, cluster-autoscaler "
        "and kube-audit-admin logs and AllMetrics; leave kube-audit (and so allLogs) out.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/monitor-aks-reference",),
        mirrors=("Azure.AKS.PlatformLogs", "Azure.AKS.AuditAdmin"),
    )
)
def aks_diagnostic_categories(stack: Stack, report: StackReport) -> None:
    wanted = policy_fact("aks_log_categories")
    clusters = {CLUSTER: _ARM_NAMES[CLUSTER]}
    by_cluster: dict[str, list[Resource]] = {}
    for setting in stack.of(DIAGNOSTICS):
        for urn in stack.referenced(setting, "resourceUri", clusters):
            by_cluster.setdefault(urn, []).append(setting)
    deferred = Deferred()  # categories unknown during a preview are noted, not reported
    for cluster in stack.of(CLUSTER):
        mine = by_cluster.get(cluster.urn, [])
        if not mine:
            continue  # gpustack-reliability-diagnostic-settings reports the missing setting
        collected = [deferred.check(_collected, setting) for setting in mine]
        if any(found is None for found in collected):
            continue
        logs, metrics = set(), set()
        for more_logs, more_metrics in (found for found in collected if found is not None):
            logs |= more_logs
            metrics |= more_metrics
        every = "alllogs" in logs
        missing = [c for c in [*wanted["platform"], wanted["audit"]]
                   if not every and c.lower() not in logs]
        if wanted["platform_metrics"].lower() not in metrics:
            missing.append(wanted["platform_metrics"])
        if missing:
            report(f"{cluster.name}: diagnostic settings do not collect {names(missing)}",
                   cluster.urn)
        if every or wanted["costly_audit"].lower() in logs:
            report(f"{cluster.name}: diagnostic settings collect {wanted['costly_audit']}"
                   f"{' (through allLogs)' if every else ''}; collect "
                   f"{wanted['audit']} instead", cluster.urn)
    deferred.finish()


SUBNET = "network:Subnet"
VNET = "network:VirtualNetwork"


def _subnet_prefixes(stack: Stack, subnet_id: Any) -> list[str]:
    """Address prefixes of the subnet an ARM id names, standalone or inline in a VNet."""
    found = []
    for subnet in stack.of(SUBNET):
        if stack.id_refers_to(subnet_id, subnet, "subnets", "subnetName"):
            found += [str(p) for p in [subnet.known("addressPrefix"),
                                       *items(subnet.known("addressPrefixes"))] if p]
    reference = str(subnet_id or "").lower()
    for vnet in stack.of(VNET):
        for inline in items(vnet.known("subnets")):
            name = str(inline.get("name") or "").lower()
            if name and reference.endswith(f"/subnets/{name}"):
                found += [str(p) for p in [inline.get("addressPrefix"),
                                           *items(inline.get("addressPrefixes"))] if p]
    return found


@stack_rule(
    Rule(
        id="gpustack-aks-cni-subnet-size",
        area="reliability",
        title="AKS node subnets are large enough when pods take subnet IPs",
        why="With Azure CNI in node-subnet mode every pod reserves a subnet IP up front (max "
        "pods per node); a small subnet runs out when GPU pools scale out, and growing it means "
        "rebuilding the pools.",
        fix="Give the node subnets a /23 or larger prefix, or use network_plugin_mode='overlay' "
        "so pod IPs come from the pod CIDR.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/configure-azure-cni",),
        mirrors=("Azure.AKS.CNISubnetSize",),
        settings={
            "maximumPrefixLength": {
                "type": "integer",
                "minimum": 8,
                "maximum": 29,
                "default": policy_fact("aks_cni_subnet")["maximum_prefix_length"],
                "description": "Longest node subnet prefix accepted (23 means /23 or larger).",
            }
        },
    )
)
def aks_cni_subnet_size(stack: Stack, report: StackReport) -> None:
    longest = stack.config["maximumPrefixLength"]
    for cluster in stack.of(CLUSTER):
        if not one_of(cluster.known("networkProfile", "networkPlugin"), "azure") or one_of(
            cluster.known("networkProfile", "networkPluginMode"), "overlay"
        ):
            continue  # pod IPs do not come from the node subnet
        pools = [pool for pool in stack.of(AGENT_POOL)
                 if stack.refers_to(pool, "resourceName", cluster, *_ARM_NAMES[CLUSTER])]
        subnet_ids = [dig(p, "vnetSubnetID") for p in items(cluster.known("agentPoolProfiles"))]
        subnet_ids += [pool.known("vnetSubnetID") for pool in pools]
        # name -> prefixes of the node subnets, by ARM id when it is known, and by property
        # dependency on a Subnet resource when the id is unknown (a preview, or any program
        # that passes subnet.id): the subnet's own prefix is usually a literal.
        node_subnets: dict[str, list[str]] = {}
        for subnet_id in {str(s) for s in subnet_ids if s}:
            node_subnets[subnet_id.rsplit("/", 1)[-1]] = _subnet_prefixes(stack, subnet_id)
        subnets = {subnet.urn: subnet for subnet in stack.of(SUBNET)}
        depended = cluster.depends_on("agentPoolProfiles").union(
            *(pool.depends_on("vnetSubnetID") for pool in pools))
        for urn in sorted(depended & set(subnets)):
            subnet = subnets[urn]
            name = str(subnet.known("subnetName") or subnet.known("name") or subnet.name)
            node_subnets.setdefault(name, [str(p) for p in [
                subnet.known("addressPrefix"), *items(subnet.known("addressPrefixes"))] if p])
        for name, prefixes in sorted(node_subnets.items()):
            for prefix in prefixes:
                try:
                    length = ipaddress.ip_network(prefix, strict=False).prefixlen
                except ValueError:
                    continue
                if length > longest:
                    report(f"{cluster.name}: node subnet {name} is {prefix}; use "
                           f"/{longest:g} or larger, or CNI overlay", cluster.urn)


# --- the Azure Monitor Agent behind VM data collection rules ---------------------------------

VM = "compute:VirtualMachine"
SCALE_SET = "compute:VirtualMachineScaleSet"
VM_EXTENSION = "compute:VirtualMachineExtension"
SCALE_SET_EXTENSION = "compute:VirtualMachineScaleSetExtension"
DCR_ASSOCIATION = "monitor:DataCollectionRuleAssociation"

# How an association or an extension names its machine: ARM type segment and name input.
_MACHINE_NAMES = {
    VM: ("virtualMachines", "vmName"),
    SCALE_SET: ("virtualMachineScaleSets", "vmScaleSetName"),
}
# The input of an extension resource that names its machine, by extension kind.
_EXTENSION_OWNER = {
    VM_EXTENSION: (VM, "vmName"),
    SCALE_SET_EXTENSION: (SCALE_SET, "vmScaleSetName"),
}


def _machines(stack: Stack, source: Resource, prop: str, *kinds: str) -> set[str]:
    """VMs or scale sets `source`'s input `prop` designates: by dependency, else by ARM id."""
    direct = {urn for urn in source.depends_on(prop)
              if urn in stack.by_urn and stack.by_urn[urn].kind in kinds}
    if direct:
        return direct
    return stack.named_by(source.known(prop), {kind: _MACHINE_NAMES[kind] for kind in kinds})


def _machine_profile(machine: Resource, *path: str) -> Any:
    """A known VM property, read from a scale set's virtualMachineProfile when it is one."""
    if machine.is_a(SCALE_SET):
        return machine.known("virtualMachineProfile", *path)
    return machine.known(*path)


def _guest_os(machine: Resource) -> str | None:
    """'linux' or 'windows' from the OS profile, OS disk or image; None when none says."""
    for os_name in ("linux", "windows"):
        if _machine_profile(machine, "osProfile", f"{os_name}Configuration") is not None:
            return os_name
    os_type = _machine_profile(machine, "storageProfile", "osDisk", "osType")
    if one_of(os_type, "Linux", "Windows"):
        return os_type.lower()
    # Windows marketplace images say it when the program leaves the OS profile bare.
    publisher = _machine_profile(machine, "storageProfile", "imageReference", "publisher")
    return "windows" if one_of(publisher, *policy_fact("windows_images")["publishers"]) else None


def _extension_field(extension: Any, key: str) -> Any:
    """An extension's property: flat as azure-native takes it, or under ARM's `properties`."""
    value = dig(extension, key)
    return value if value is not None else dig(extension, "properties", key)


def _extensions_by_machine(stack: Stack) -> dict[str, list[Any]]:
    """Every extension of the stack by its machine's URN: scale set models and child resources."""
    found: dict[str, list[Any]] = {}
    for scale_set in stack.of(SCALE_SET):
        inline = items(scale_set.known("virtualMachineProfile", "extensionProfile", "extensions"))
        found.setdefault(scale_set.urn, []).extend(inline)
    for kind, (owner, name_input) in _EXTENSION_OWNER.items():
        for extension in stack.of(kind):
            props = extension.plain_view()["inputs"]
            for urn in _machines(stack, extension, name_input, owner):
                found.setdefault(urn, []).append(props)
    return found


def _names_its_identity(extension: Any) -> bool | None:
    """Whether the agent's settings name the identity to authenticate as; None if unknown."""
    settings = _extension_field(extension, "settings")
    if settings is not None and not isinstance(settings, dict):
        return None  # computed during a preview
    identity = dig(settings, "authentication", "managedIdentity")
    return bool(dig(identity, "identifier-name")) and dig(identity, "identifier-value") is not None


def _identity_type(machine: Resource) -> str | None:
    """The machine's identity type, lowercased ('' for none); None while it is unknown."""
    try:
        value = machine.get("identity", "type")
    except UnknownValueError:
        return None
    return value.lower() if isinstance(value, str) else ""


@stack_rule(
    Rule(
        id="gpustack-vm-monitoring-agent",
        area="reliability",
        title="VMs and scale sets with a data collection rule run the Azure Monitor Agent",
        why="A data collection rule association only says what to collect; the Azure Monitor "
        "Agent extension collects it, authenticating with the machine's managed identity. "
        "Without the agent, or without an identity it can use, GPU XID errors in syslog never "
        "reach the workspace and the alerts built on them stay silent.",
        fix="Install the Microsoft.Azure.Monitor AzureMonitorLinuxAgent extension "
        "(AzureMonitorWindowsAgent on Windows): a compute.VirtualMachineExtension for a VM, an "
        "entry in a scale set's extension_profile. Give the machine a managed identity; with "
        "user-assigned identities only, name one in the extension's "
        "settings.authentication.managedIdentity (identifier-name 'mi_res_id', "
        "identifier-value its resource id). components.GpuVmPool does all of this with "
        "monitoring_agent=True.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/azure-monitor/agents/azure-monitor-agent-manage",
            "https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.VM.AMA/",
            "https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.VMSS.AMA/",
        ),
        mirrors=("Azure.VM.AMA", "Azure.VMSS.AMA"),
    )
)
def vm_monitoring_agent(stack: Stack, report: StackReport) -> None:
    associated: dict[str, list[str]] = {}
    for association in stack.of(DCR_ASSOCIATION):
        for urn in _machines(stack, association, "resourceUri", VM, SCALE_SET):
            associated.setdefault(urn, []).append(association.name)
    if not associated:
        return
    agent = facts.load("azure_monitor")["monitoring_agent"]
    extensions = _extensions_by_machine(stack)
    # An identity or agent settings unknown during a preview are noted once every machine
    # that can be judged has been.
    deferred = Deferred()
    for machine in stack.of(VM, SCALE_SET):
        if machine.urn not in associated:
            continue
        guest = _guest_os(machine)
        wanted = [agent["types"][guest]] if guest else list(agent["types"].values())
        agents = [
            extension for extension in extensions.get(machine.urn, [])
            if one_of(_extension_field(extension, "publisher"), agent["publisher"])
            and one_of(_extension_field(extension, "type"), *wanted)
        ]
        what = "scale set" if machine.is_a(SCALE_SET) else "VM"
        links = names(sorted(associated[machine.urn]))
        if not agents:
            report(f"{what} {machine.name} has a data collection rule association ({links}) but "
                   f"no {agent['publisher']} {' or '.join(wanted)} extension: nothing collects",
                   machine.urn)
            continue
        identity = _identity_type(machine)
        if identity is None:
            deferred.error = deferred.error or UnknownValueError(
                UNKNOWN_STRING_VALUE, [machine.name, "identity", "type"])
            continue
        if "assigned" not in identity:
            report(f"{what} {machine.name} runs the Azure Monitor Agent without a managed "
                   "identity to authenticate with; add one", machine.urn)
            continue
        named = [_names_its_identity(extension) for extension in agents]
        if "systemassigned" in identity or True in named:
            continue
        if None in named:
            deferred.error = deferred.error or UnknownValueError(
                UNKNOWN_OBJECT_VALUE, [machine.name, "extension settings"])
            continue
        report(f"{what} {machine.name} has only user-assigned identities and its Azure "
               "Monitor Agent does not name one in settings.authentication.managedIdentity "
               f"(identifier-name '{agent['identity_identifier_name']}')", machine.urn)
    deferred.finish()


@resource_rule(
    Rule(
        id="gpustack-apim-zone-redundant",
        area="reliability",
        title="Premium API Management spreads at least 2 units over availability zones in "
        "regions that have them",
        why="One unit, or units pinned to one zone, go down with that zone, and with them the "
        "inference gateway in front of every GPU pool; two or more units over zones keep it "
        "answering through a zone outage.",
        fix="Set sku.capacity to 2 or more and leave zones empty (Azure spreads the units over "
        "zones), or list 2 or more zones with a capacity that is a multiple of their number; "
        "the same for each additional location.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=(
            "https://learn.microsoft.com/azure/api-management/enable-availability-zone-support",
            "https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.APIM.AvailabilityZone/",
        ),
        mirrors=("Azure.APIM.AvailabilityZone",),
    ),
    API_MANAGEMENT,
)
def apim_zone_redundant(service: Resource, report: Report) -> None:
    zone_facts = policy_fact("apim_zone_redundancy")
    # An unknown tier raises at once (the SDK notes the rule could not run). Unknown locations,
    # units or zones leave that place for the note after the known places are judged.
    sku = service.get("sku", "name")
    if not one_of(sku, *zone_facts["skus"]):
        return  # zone redundancy is a Premium feature; other tiers are not judged
    zonal = regions.availability_zone_regions()
    deferred = Deferred()
    places = [("the primary location", service.props, service.get("sku"))]
    for index, extra in enumerate(deferred.each(deferred.check(service.get,
                                                               "additionalLocations"))):
        places.append((f"additionalLocations[{index}]", extra,
                       deferred.check(dig, extra, "sku")))
    for label, place, place_sku in places:
        problem = deferred.check(_apim_zone_problem, place, place_sku, zonal, zone_facts)
        if problem:
            report(f"{label} ({dig(place, 'location')}): {problem}")
    deferred.finish()


def _apim_zone_problem(place: Any, sku: Any, zonal: frozenset[str],
                       zone_facts: dict[str, Any]) -> str | None:
    # ARM accepts display names ("East US") as locations; the region list has ARM names.
    region = (lower(dig(place, "location")) or "").replace(" ", "")
    if region not in zonal:
        return None  # no zones in this region (or a location that is not known here)
    units = number(dig(sku, "capacity"))
    zones = [str(zone) for zone in items(dig(place, "zones"))]
    if not zones:
        if units is not None and units < zone_facts["minimum_units"]:
            return (f"{units:g} unit with automatic zone placement sits in one zone; use "
                    f"sku.capacity {zone_facts['minimum_units']} or more")
        return None
    if len(zones) < zone_facts["minimum_zones"]:
        return (f"zones {names(zones)} pin the gateway to one zone; list "
                f"{zone_facts['minimum_zones']} or more zones, or none for automatic placement")
    if units is not None and (units < len(zones) or units % len(zones)):
        return (f"{units:g} units cannot spread evenly over zones {names(zones)}; use a "
                f"multiple of {len(zones)}")
    return None


POLICIES = [
    storage_blob_soft_delete,
    storage_blob_versioning,
    reliability_protect_stateful,
    reliability_system_pool_zonal,
    reliability_aks_standard_tier,
    reliability_diagnostic_settings,
    reliability_autoscaler_owns_count,
    reliability_storage_zone_redundant,
    storage_file_share_soft_delete,
    aks_maintenance_window,
    aks_diagnostic_categories,
    aks_cni_subnet_size,
    vm_monitoring_agent,
    apim_zone_redundant,
]

