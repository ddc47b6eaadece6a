"""Azure Machine Learning rules: the workspace endpoint and the compute behind GPU training jobs.

Teams often run GPU training through Azure Machine Learning compute clusters instead of (or
next to) AKS and scale sets; `gpustack plan --program` judges their programs too. Both PSRule
for Azure and Checkov flag a public workspace endpoint and compute that accepts local
(key-based) authentication; the defaults these rules rely on are in
gpustack/data/policy_facts.yaml (machine_learning).
"""

from __future__ import annotations

from pulumi_policy import Severity

from policies.rulebook import (
    MANDATORY,
    Report,
    Resource,
    Rule,
    one_of,
    policy_fact,
    resource_rule,
)

WORKSPACE = "machinelearningservices:Workspace"
COMPUTE = "machinelearningservices:Compute"


@resource_rule(
    Rule(
        id="gpustack-ml-workspace-public-network-access",
        area="security",
        title="Azure Machine Learning workspaces disable public network access",
        why="The workspace endpoint reaches the datasets, models and GPU compute behind it; "
        "Azure leaves it public unless told otherwise, so one leaked token is enough from "
        "anywhere.",
        fix="Set public_network_access='Disabled' (and leave allow_public_access_when_behind_"
        "vnet unset or False); reach the workspace through a private endpoint.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/machine-learning/how-to-configure-private-link",
            "https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.ML.PublicAccess/",
        ),
        mirrors=("Azure.ML.PublicAccess", "CKV_AZURE_144"),
    ),
    WORKSPACE,
)
def ml_workspace_public_network_access(workspace: Resource, report: Report) -> None:
    access = workspace.get("publicNetworkAccess")
    if not one_of(access, "Disabled"):
        default = policy_fact("machine_learning")["workspace_public_network_access_default"]
        shown = f"not set (Azure's default is {default})" if access is None else repr(access)
        report(f"publicNetworkAccess is {shown}; set public_network_access='Disabled'")
    if workspace.get("allowPublicAccessWhenBehindVnet") is True:
        report("allowPublicAccessWhenBehindVnet is True; leave it unset or False")


@resource_rule(
    Rule(
        id="gpustack-ml-compute-local-auth-disabled",
        area="security",
        title="Azure Machine Learning compute disables local authentication",
        why="Local authentication lets jobs and users reach the compute with keys and SSH "
        "credentials that Entra ID does not know: no conditional access, no per-identity audit, "
        "no expiry, on the nodes that hold GPU time and training data.",
        fix="Set properties.disable_local_auth=True on every compute and authenticate with "
        "managed identities and Entra ID.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/machine-learning/how-to-create-attach-compute-cluster",
            "https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.ML.DisableLocalAuth/",
        ),
        mirrors=("Azure.ML.DisableLocalAuth", "CKV_AZURE_142"),
    ),
    COMPUTE,
)
def ml_compute_local_auth_disabled(compute: Resource, report: Report) -> None:
    # azure-native takes the compute's settings under `properties` (AmlCompute,
    # ComputeInstance, Kubernetes, ...); every compute type carries disableLocalAuth there.
    disabled = compute.get("properties", "disableLocalAuth")
    if disabled is not True:
        shown = "not set (local authentication is on)" if disabled is None else repr(disabled)
        report(f"properties.disableLocalAuth is {shown}; set it to True")


POLICIES = [
    ml_workspace_public_network_access,
    ml_compute_local_auth_disabled,
]
