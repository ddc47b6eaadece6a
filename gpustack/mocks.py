"""Pulumi mocks that answer like Azure: ARM ids, auto-names, computed outputs and invokes.

The answers are data (`data/mock_answers.yaml`), one entry per resource type or invoke; a type
or invoke the data does not know gets a generic, ARM-shaped answer instead of an error.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.rpc import UNKNOWN

ANSWERS_FILE = Path(__file__).parent / "data" / "mock_answers.yaml"
_PLACEHOLDER = re.compile(r"\{([a-zA-Z0-9_:.\-]+)\}")


@functools.cache
def answers() -> dict[str, Any]:
    """The answer table, loaded once."""
    return yaml.safe_load(ANSWERS_FILE.read_text())


def stable_hex(seed: str, length: int = 8) -> str:
    """Hex characters derived from `seed`: random-looking, identical on every run."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def stable_uuid(seed: str) -> str:
    """A UUID derived from `seed`."""
    return str(uuid.UUID(hashlib.sha256(seed.encode()).hexdigest()[:32], version=4))


def auto_name(logical_name: str, urn: str, style: str = "suffix") -> str:
    """The Azure name azure-native would generate when the program sets none."""
    if style == "uuid":
        return stable_uuid(urn)
    return f"{logical_name}{stable_hex(urn)}"


def kubeconfig(cluster: str, location: str, seed: str) -> str:
    """A valid, base64-encoded kubeconfig for a cluster, as listManagedCluster*Credentials gives."""
    fake_ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMOCK\n-----END CERTIFICATE-----\n")
    text = "\n".join(
        [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            "- cluster:",
            f"    certificate-authority-data: {fake_ca.decode()}",
            f"    server: https://{cluster}-{stable_hex(seed)}.hcp.{location}.azmk8s.io:443",
            f"  name: {cluster}",
            "contexts:",
            "- context:",
            f"    cluster: {cluster}",
            f"    user: clusterUser_{cluster}",
            f"  name: {cluster}",
            f"current-context: {cluster}",
            "users:",
            f"- name: clusterUser_{cluster}",
            "  user:",
            "    exec:",
            "      apiVersion: client.authentication.k8s.io/v1beta1",
            "      command: kubelogin",
            "      args: [get-token, --login, azurecli, --server-id,"
            " 6dae42f8-4368-4678-94ff-3960e28e3630]",
            "",
        ]
    )
    return base64.b64encode(text.encode()).decode()


class AzureMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes the way Azure Resource Manager would."""

    def __init__(self, preview: bool = False) -> None:
        self.preview = preview
        self.table = answers()

    # --- resources -------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:
            return "", {}
        urn = self._urn(args)
        if args.typ.startswith("pulumi:providers:"):
            return stable_uuid(urn), dict(args.inputs)
        if args.typ.startswith("kubernetes:"):
            return self._kubernetes(args, urn)
        if args.typ.startswith("azure-native:"):
            return self._azure(args, urn)
        # Unknown packages: echo the inputs with a stable id, as the Pulumi docs' mocks do.
        return ("" if self.preview else f"{args.name}-{stable_hex(urn)}"), dict(args.inputs)

    def _azure(self, args: pulumi.runtime.MockResourceArgs, urn: str) -> tuple[str, dict]:
        spec = self.table["types"].get(args.typ) or self._generic_spec(args.typ, args.inputs)
        inputs = dict(args.inputs)
        name_property = spec["name_property"]
        name = inputs.get(name_property) or args.resource_id or auto_name(
            args.name, urn, spec.get("name_style", "suffix")
        )
        state = dict(inputs)
        state[name_property] = name
        _identity_as_arm_returns_it(state, urn)
        if self.preview:
            # `pulumi preview` knows a new resource's inputs and auto-name, never its outputs,
            # not even those nested in an input object (a vault's properties.vaultUri).
            _fill_missing(state, _unknown_leaves(spec.get("outputs", {})))
            return "", state
        context = self._context(urn, name, inputs)
        resource_id = self._render(spec["id"], context)
        state.update({"name": name, "id": resource_id, "type": _arm_type(resource_id)})
        _fill_missing(state, self._render(copy.deepcopy(spec.get("outputs", {})), context))
        return resource_id, state

    def _kubernetes(self, args: pulumi.runtime.MockResourceArgs, urn: str) -> tuple[str, dict]:
        state = copy.deepcopy(dict(args.inputs))
        metadata = state.setdefault("metadata", {}) if "metadata" in state or _is_k8s_object(
            args.typ
        ) else None
        name = args.name
        namespace = ""
        if isinstance(metadata, dict):
            if not metadata.get("name"):
                metadata["name"] = f"{args.name}-{stable_hex(urn)}"
            name = metadata["name"]
            namespace = metadata.get("namespace") or ""
        if self.preview:
            return "", state
        return (f"{namespace}/{name}" if namespace else name), state

    def _generic_spec(self, token: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        _, module, type_name = token.split(":")
        namespace = self.table["namespaces"].get(
            module.split("/")[0], f"Microsoft.{module.split('/')[0].capitalize()}"
        )
        lower = type_name[0].lower() + type_name[1:]
        candidates = [f"{lower}Name", "resourceName", "name"]
        name_property = next((c for c in candidates if c in inputs), candidates[0])
        return {
            "name_property": name_property,
            "id": "/subscriptions/{subscription}/resourceGroups/{rg}/providers/"
            f"{namespace}/{lower}s/{{name}}",
        }

    # --- invokes ---------------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        spec = self.table["invokes"].get(args.token)
        if spec is None:
            # A sensible generic answer: echo the arguments, so programs that read them work.
            return dict(args.args), []
        seed = f"{args.token}:{sorted(args.args.items())!r}"
        location = args.args.get("location") or self.table["default_location"]
        context = self._context(seed, args.args.get("resourceName", ""), args.args)
        context["location"] = location
        context["kubeconfig"] = kubeconfig(args.args.get("resourceName", "cluster"), location, seed)
        context.update({f"arg:{key}": value for key, value in args.args.items()})
        return self._render(copy.deepcopy(spec), context), []

    # --- templates -------------------------------------------------------------------------

    def _context(self, seed: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        context: dict[str, Any] = {
            "name": name,
            "subscription": self.table["subscription"],
            "tenant": self.table["tenant"],
            "location": inputs.get("location") or self.table["default_location"],
            "rg": inputs.get("resourceGroupName", "rg"),
            "hash8": stable_hex(seed),
            "_seed": seed,
        }
        context.update({f"input:{key}": value for key, value in inputs.items()})
        return context

    def _render(self, template: Any, context: dict[str, Any]) -> Any:
        if isinstance(template, dict):
            return {key: self._render(value, context) for key, value in template.items()}
        if isinstance(template, list):
            return [self._render(value, context) for value in template]
        if not isinstance(template, str):
            return template

        def substitute(match: re.Match[str]) -> str:
            key = match.group(1)
            if key.startswith("uuid:"):
                return stable_uuid(f"{context['_seed']}:{key}")
            value = context.get(key, "")
            return value if isinstance(value, str) else str(value)

        return _PLACEHOLDER.sub(substitute, template)

    @staticmethod
    def _urn(args: pulumi.runtime.MockResourceArgs) -> str:
        return f"{pulumi.get_stack()}::{pulumi.get_project()}::{args.typ}::{args.name}"


def _identity_as_arm_returns_it(state: dict[str, Any], urn: str) -> None:
    """ARM answers `identity.userAssignedIdentities` as a map of id -> {principalId, clientId}.

    azure-native v3 takes a list of ids as input but reads back ARM's map; echoing the list would
    break the SDK's output types. Source: https://learn.microsoft.com/rest/api/managedidentity/
    and the `UserAssignedIdentityResponse` output type of each azure-native resource.
    """
    identity = state.get("identity")
    if not isinstance(identity, dict):
        return
    assigned = identity.get("userAssignedIdentities")
    if isinstance(assigned, list):
        if any(not isinstance(item, str) or item == UNKNOWN for item in assigned):
            identity["userAssignedIdentities"] = UNKNOWN
            return
        identity["userAssignedIdentities"] = {
            item: {
                "principalId": stable_uuid(f"{item}:principal"),
                "clientId": stable_uuid(f"{item}:client"),
            }
            for item in assigned
        }
    if "SystemAssigned" in str(identity.get("type", "")):
        identity.setdefault("principalId", stable_uuid(f"{urn}:system-principal"))
        identity.setdefault("tenantId", answers()["tenant"])


def _is_k8s_object(token: str) -> bool:
    # Helm releases and YAML helpers carry no metadata of their own.
    return not token.startswith(("kubernetes:helm.sh", "kubernetes:yaml"))


def _arm_type(resource_id: str) -> str:
    """`Microsoft.Network/virtualNetworks/subnets` from an ARM id."""
    parts = resource_id.strip("/").split("/")
    if "providers" not in parts:
        return "Microsoft.Resources/resourceGroups"
    start = len(parts) - 1 - parts[::-1].index("providers")
    tail = parts[start + 1 :]
    return "/".join([tail[0], *tail[1::2]])


def _unknown_leaves(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The shape of `outputs` with every value unknown, as a provider's preview answers."""
    return {
        key: _unknown_leaves(value) if isinstance(value, Mapping) else UNKNOWN
        for key, value in outputs.items()
    }


def _fill_missing(target: dict[str, Any], computed: Mapping[str, Any]) -> None:
    """Add computed outputs without overwriting what the program set."""
    for key, value in computed.items():
        if key not in target or target[key] is None:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _fill_missing(target[key], value)
