"""`WorkloadIdentities`: a user-assigned identity per workload and its least-privilege roles.

Each grant names one built-in role (by its key in gpustack/data/role_definitions.yaml) at the
narrowest scope that works: one blob container, or the vault. Never a resource group or a
subscription.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, managedidentity

from components.conventions import ComponentContext, IdentityRef, child_options
from gpustack import facts

WORKLOADS = ("training", "inference", "nodes")

# Namespace for role assignment names: uuid5(scope | role | principal) is the same GUID on every
# run, like Bicep's guid(scope, principal, role), so a re-run never creates a duplicate.
# Source: https://learn.microsoft.com/azure/role-based-access-control/role-assignments-template
ROLE_ASSIGNMENT_NAMESPACE = uuid.UUID("6f1c2b8e-3d4a-5b6c-8d9e-0a1b2c3d4e5f")


@dataclass(frozen=True)
class AccessGrant:
    """One role for one workload identity, on one container or on the vault."""

    identity: str
    role: str
    container: str | None = None
    vault: bool = False

    def __post_init__(self) -> None:
        if (self.container is None) == (not self.vault):
            raise ValueError(
                f"grant {self.role} to {self.identity}: name exactly one scope, a container "
                "or the vault"
            )


def default_grants(containers: Sequence[str]) -> list[AccessGrant]:
    """The least-privilege plan: inference reads models; training reads data, writes checkpoints.

    Nodes read the containers BlobFuse2 and the Blob CSI driver mount read-only (models,
    datasets). Training and inference read secrets; nodes don't.
    """
    reader, writer = "storage_blob_data_reader", "storage_blob_data_contributor"
    grants = [
        AccessGrant("inference", reader, container="models"),
        AccessGrant("training", writer, container="checkpoints"),
        AccessGrant("training", reader, container="models"),
        AccessGrant("nodes", reader, container="models"),
        AccessGrant("training", "key_vault_secrets_user", vault=True),
        AccessGrant("inference", "key_vault_secrets_user", vault=True),
    ]
    if "datasets" in containers:
        grants += [
            AccessGrant("training", reader, container="datasets"),
            AccessGrant("nodes", reader, container="datasets"),
        ]
    return grants


@dataclass(frozen=True)
class WorkloadIdentitiesArgs:
    """The scopes grants may use: container ids by name and the vault id."""

    context: ComponentContext
    container_ids: Mapping[str, pulumi.Input[str]]
    vault_id: pulumi.Input[str]
    workloads: Sequence[str] = WORKLOADS
    grants: Sequence[AccessGrant] = field(default_factory=list)


def role_assignment_name(scope: str, role_definition_id: str, principal_id: str) -> str:
    """A GUID fixed by scope, role and principal: the same inputs give the same assignment."""
    seed = f"{scope}|{role_definition_id}|{principal_id}"
    return str(uuid.uuid5(ROLE_ASSIGNMENT_NAMESPACE, seed))


def assign_role(
    parent: pulumi.Resource,
    name: str,
    *,
    principal_id: pulumi.Input[str],
    role: str,
    scope: pulumi.Input[str],
) -> authorization.RoleAssignment:
    """A role assignment for a service principal (managed identity) at `scope`.

    `role` is a key of gpustack/data/role_definitions.yaml; other components use this too.
    """
    client = authorization.get_client_config_output()
    role_definition_id = client.subscription_id.apply(
        lambda subscription: facts.role_definition_resource_id(subscription, role)
    )
    assignment_name = pulumi.Output.all(scope, role_definition_id, principal_id).apply(
        lambda values: role_assignment_name(values[0], values[1], values[2])
    )
    return authorization.RoleAssignment(
        name,
        role_assignment_name=assignment_name,
        scope=scope,
        role_definition_id=role_definition_id,
        principal_id=principal_id,
        # A new identity may not have replicated in Entra ID yet; the type skips that lookup.
        # Source: https://learn.microsoft.com/azure/role-based-access-control/role-assignments-template
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        opts=child_options(parent),
    )


class WorkloadIdentities(pulumi.ComponentResource):
    """User-assigned identities for training, inference and nodes, with their role assignments."""

    refs: dict[str, IdentityRef]

    def __init__(
        self, name: str, args: WorkloadIdentitiesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:identity:WorkloadIdentities", name, None, opts)
        context = args.context
        self._check_grants(args)
        self.identities: dict[str, managedidentity.UserAssignedIdentity] = {}
        self.refs = {}
        for workload in args.workloads:
            identity = managedidentity.UserAssignedIdentity(
                f"{name}-{workload}",
                resource_group_name=context.resource_group_name,
                location=context.location,
                tags={**context.tags, "workload": workload},
                opts=child_options(self),
            )
            self.identities[workload] = identity
            self.refs[workload] = IdentityRef(
                id=identity.id, principal_id=identity.principal_id, client_id=identity.client_id
            )

        self.role_assignments: list[authorization.RoleAssignment] = []
        for grant in args.grants:
            scope = args.container_ids[grant.container] if grant.container else args.vault_id
            where = grant.container or "vault"
            self.role_assignments.append(
                assign_role(
                    self,
                    f"{name}-{grant.identity}-{grant.role}-{where}",
                    principal_id=self.identities[grant.identity].principal_id,
                    role=grant.role,
                    scope=scope,
                )
            )

        self.register_outputs(
            {
                "identityIds": {w: i.id for w, i in self.identities.items()},
                "clientIds": {w: i.client_id for w, i in self.identities.items()},
            }
        )

    @staticmethod
    def _check_grants(args: WorkloadIdentitiesArgs) -> None:
        for grant in args.grants:
            if grant.identity not in args.workloads:
                raise ValueError(
                    f"grant {grant.role} names identity {grant.identity!r}; "
                    f"known: {', '.join(args.workloads)}"
                )
            if grant.container is not None and grant.container not in args.container_ids:
                raise ValueError(
                    f"grant {grant.role} to {grant.identity} names container {grant.container!r}; "
                    f"the storage account has {', '.join(sorted(args.container_ids))}"
                )
            facts.role_definition_id(grant.role)  # an unknown role key fails here, by name
