"""`GpuTeam`: a namespace with a GPU quota and a workload identity holding only its data roles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import authorization, managedidentity

from components.conventions import ComponentContext, child_options
from gpustack import facts

# Kubernetes quotas extended resources (GPUs) through `requests.` only: they cannot overcommit.
# Source: https://kubernetes.io/docs/concepts/policy/resource-quotas/#resource-quota-for-extended-resources
GPU_QUOTA_KEY = "requests.nvidia.com/gpu"
# Workload identity: the service account annotation, the token audience, the subject format.
# Source: https://learn.microsoft.com/azure/aks/workload-identity-overview
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
TOKEN_AUDIENCE = "api://AzureADTokenExchange"


def service_account_subject(namespace: str, service_account: str) -> str:
    """The token subject AKS's OIDC issuer signs for a service account."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def container_scope(storage_account_id: str, container: str) -> str:
    """ARM id of one blob container: the narrowest scope a Storage Blob Data role takes."""
    return f"{storage_account_id}/blobServices/default/containers/{container}"


@dataclass(frozen=True)
class GpuTeamArgs:
    """One team: its namespace, GPU quota, container defaults, and the data it may touch."""

    context: ComponentContext
    provider: k8s.Provider
    namespace: str
    oidc_issuer_url: pulumi.Input[str]
    gpu_quota: int
    read_containers: Sequence[str] = ()
    write_containers: Sequence[str] = ()
    key_vault_secrets: bool = False
    service_account: str = "workload"
    default_cpu_request: str = "500m"
    default_memory_request: str = "1Gi"
    default_memory_limit: str = "8Gi"
    # From the storage and secrets area; None declares no roles on it.
    storage_account_id: pulumi.Input[str] | None = None
    vault_id: pulumi.Input[str] | None = None


class GpuTeam(pulumi.ComponentResource):
    """A team's share of the cluster: GPUs by quota, Azure data by least-privilege roles."""

    namespace: str
    identity_client_id: pulumi.Output[str]
    identity_principal_id: pulumi.Output[str]
    role_assignments: list[authorization.RoleAssignment]

    def __init__(
        self, name: str, args: GpuTeamArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:aks:GpuTeam", name, None, opts)
        context = args.context
        self.namespace = args.namespace
        kube = {"provider": args.provider}

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace, labels={"team": args.namespace}
            ),
            opts=child_options(self, **kube),
        )
        self.quota = k8s.core.v1.ResourceQuota(
            f"{name}-gpu-quota",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="gpu-quota", namespace=namespace.metadata.name
            ),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard={GPU_QUOTA_KEY: str(args.gpu_quota)}),
            opts=child_options(self, **kube),
        )
        # Containers without requests would escape fair sharing and the scheduler's packing.
        k8s.core.v1.LimitRange(
            f"{name}-defaults",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="container-defaults", namespace=namespace.metadata.name
            ),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default_request={
                            "cpu": args.default_cpu_request,
                            "memory": args.default_memory_request,
                        },
                        default={"memory": args.default_memory_limit},
                    )
                ]
            ),
            opts=child_options(self, **kube),
        )

        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=f"id-{name}",
            resource_group_name=context.resource_group_name,
            location=context.location,
            tags=dict(context.tags),
            opts=child_options(self),
        )
        managedidentity.FederatedIdentityCredential(
            f"{name}-federation",
            federated_identity_credential_resource_name=f"{args.namespace}-{args.service_account}",
            resource_name_=identity.name,
            resource_group_name=context.resource_group_name,
            issuer=args.oidc_issuer_url,
            subject=service_account_subject(args.namespace, args.service_account),
            audiences=[TOKEN_AUDIENCE],
            opts=child_options(self),
        )
        k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.service_account,
                namespace=namespace.metadata.name,
                annotations={CLIENT_ID_ANNOTATION: identity.client_id},
            ),
            opts=child_options(self, **kube),
        )

        self.role_assignments = []
        if args.storage_account_id is not None:
            account = pulumi.Output.from_input(args.storage_account_id)
            grants = [(c, "storage_blob_data_reader") for c in args.read_containers]
            grants += [(c, "storage_blob_data_contributor") for c in args.write_containers]
            for container, role in grants:
                scope = account.apply(
                    lambda account_id, c=container: container_scope(account_id, c)
                )
                self.role_assignments.append(
                    self._grant(f"{name}-{container}-{role}", identity, role, scope)
                )
        if args.key_vault_secrets and args.vault_id is not None:
            self.role_assignments.append(
                self._grant(
                    f"{name}-vault-secrets-user",
                    identity,
                    "key_vault_secrets_user",
                    pulumi.Output.from_input(args.vault_id),
                )
            )

        self.identity_client_id = identity.client_id
        self.identity_principal_id = identity.principal_id
        self.register_outputs(
            {
                "namespace": self.namespace,
                "identityClientId": self.identity_client_id,
                "identityPrincipalId": self.identity_principal_id,
            }
        )

    def _grant(
        self,
        resource_name: str,
        identity: managedidentity.UserAssignedIdentity,
        role: str,
        scope: pulumi.Output[str],
    ) -> authorization.RoleAssignment:
        # The role definition lives in the subscription that holds the scope.
        return authorization.RoleAssignment(
            resource_name,
            principal_id=identity.principal_id,
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=scope.apply(
                lambda scope_id: facts.role_definition_resource_id(scope_id.split("/")[2], role)
            ),
            scope=scope,
            opts=child_options(self),
        )
