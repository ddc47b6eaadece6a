"""`SecretsVault`: a Key Vault with Azure RBAC, purge protection and no public network access."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, keyvault

from components.conventions import (
    ComponentContext,
    PrivateEndpointTarget,
    child_options,
    stateful_options,
)
from components.diagnostics import send_diagnostics
from components.private_link import PrivateLink, PrivateLinkArgs

# Key Vault names: 3-24 characters. azure-native auto-names a resource by appending 8 random
# characters to its logical name, so the logical name keeps to 16.
# Source: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftkeyvault
VAULT_NAME_MAX = 24
AUTONAME_SUFFIX_LENGTH = 8


@dataclass(frozen=True)
class KeyVaultRef:
    """A vault handed to other components (customer-managed keys, role assignments)."""

    id: pulumi.Input[str]
    name: pulumi.Input[str]
    uri: pulumi.Input[str]


@dataclass(frozen=True)
class SecretsVaultArgs:
    """Soft-delete window, private endpoint target, and the explicit loosenings."""

    context: ComponentContext
    private_endpoints: PrivateEndpointTarget | None = None
    soft_delete_retention_days: int = 90
    # Let Azure's trusted services (Azure Storage reading a customer-managed key) through the
    # firewall. They still need an RBAC role on the key; off unless a CMK needs it.
    trusted_services_bypass: bool = False
    # Dev-only loosening: public IPv4 addresses or CIDRs allowed through the vault firewall.
    allowed_ip_ranges: Sequence[str] = ()


class SecretsVault(pulumi.ComponentResource):
    """A Key Vault only reachable through its private endpoint, authorized by Azure RBAC."""

    id: pulumi.Output[str]
    name: pulumi.Output[str]
    uri: pulumi.Output[str]

    def __init__(
        self, name: str, args: SecretsVaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:security:SecretsVault", name, None, opts)
        context = args.context
        logical_name = f"{name}-kv"
        if len(logical_name) > VAULT_NAME_MAX - AUTONAME_SUFFIX_LENGTH:
            raise ValueError(
                f"SecretsVault name {name!r} is too long: {logical_name!r} plus the "
                f"{AUTONAME_SUFFIX_LENGTH}-character auto-name suffix exceeds {VAULT_NAME_MAX}"
            )
        client = authorization.get_client_config_output()
        public = bool(args.allowed_ip_ranges)
        self.vault = keyvault.Vault(
            logical_name,
            resource_group_name=context.resource_group_name,
            location=context.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=client.tenant_id,
                sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
                # Data-plane access by Azure RBAC role assignments, never access policies.
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=args.soft_delete_retention_days,
                # Irreversible once on: a deleted vault or key can't be purged before retention.
                enable_purge_protection=True,
                enabled_for_deployment=False,
                enabled_for_disk_encryption=False,
                enabled_for_template_deployment=False,
                public_network_access="Enabled" if public else "Disabled",
                network_acls=keyvault.NetworkRuleSetArgs(
                    default_action=keyvault.NetworkRuleAction.DENY,
                    bypass=(
                        keyvault.NetworkRuleBypassOptions.AZURE_SERVICES
                        if args.trusted_services_bypass
                        else keyvault.NetworkRuleBypassOptions.NONE
                    ),
                    ip_rules=[keyvault.IPRuleArgs(value=ip) for ip in args.allowed_ip_ranges],
                ),
            ),
            tags=dict(context.tags),
            opts=stateful_options(self, context),
        )
        send_diagnostics(self, logical_name, self.vault, context)

        self.private_link: PrivateLink | None = None
        if args.private_endpoints is not None:
            self.private_link = PrivateLink(
                f"{name}-vault",
                PrivateLinkArgs(
                    context=context,
                    private_endpoints=args.private_endpoints,
                    resource_id=self.vault.id,
                    target="vault",
                ),
                opts=child_options(self),
            )

        self.id = self.vault.id
        self.name = self.vault.name
        self.uri = self.vault.properties.apply(lambda props: props.vault_uri)
        self.ref = KeyVaultRef(id=self.id, name=self.name, uri=self.uri)
        self.register_outputs({"id": self.id, "name": self.name, "uri": self.uri})

    @property
    def private_dns_zone_ids(self) -> dict[str, pulumi.Output[str]]:
        """The vault's private DNS zones by name, for later endpoints to reuse."""
        return dict(self.private_link.zone_ids) if self.private_link else {}
