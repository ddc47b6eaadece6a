"""Pulumi mocks that answer like Azure: ARM ids, auto-names, computed outputs and invokes.

Three sources, in this order, and never overwriting a resource's own inputs:
1. the answer table (`data/mock_answers.yaml`): ARM ids and the outputs programs read, derived
   from the resource's inputs (a gateway's private IP from its subnet's prefix, a vault URI from
   its name);
2. generators for providers whose outputs follow from their inputs (`random`, `tls`, `command`);
3. the provider SDK's own classes (`gpustack.sdk_types`): every other output the type declares.

Under preview (`pulumi preview`), every output the engine cannot know is the wire's unknown
sentinel, `pulumi.runtime.rpc.UNKNOWN`, which the SDK turns into an unknown Output. In a full
plan, outputs are deterministic placeholders of the declared type, except values that would be
reported as facts about the world without being derivable from inputs (public IPs, provisioning
states): those stay unknown, so no program waits on a fake "Succeeded" and no report shows an
invented address.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as pulumi_config
from pulumi.runtime import rpc
from pulumi.runtime.rpc import UNKNOWN

from gpustack import placeholders, sdk_types, yaml_loader
from gpustack.hosts.sdk_shapes import PLACEHOLDER_DEPTH
from gpustack.sdk_types import Field
from gpustack.stack_outputs import StackOutputs, find_stack_outputs

ANSWERS_FILE = Path(__file__).parent / "data" / "mock_answers.yaml"
_PLACEHOLDER = re.compile(r"\{([a-zA-Z0-9_:.\-]+)\}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
_STACK_REFERENCE = "pulumi:pulumi:StackReference"
# Packages whose resources the planner answers like their providers (azure-native, kubernetes:
# own code; random, tls, command: generated values); dynamic resources have their own note.
_MODELLED_PACKAGES = frozenset({"azure-native", "kubernetes", "random", "tls", "command"})
_DYNAMIC_RESOURCES = ("pulumi-python:dynamic:Resource", "pulumi-nodejs:dynamic:Resource")
_SUBNET = "azure-native:network:Subnet"
_VNET = "azure-native:network:VirtualNetwork"
_NIC = "azure-native:network:NetworkInterface"
_CONTAINER_APP = "azure-native:app:ContainerApp"
_CONTAINER_GROUP = "azure-native:containerinstance:ContainerGroup"
_PUBLIC_IP = "azure-native:network:PublicIPAddress"
_NETWORK_TYPES = "azure-native:network:"
_K8S_YAML_DECODE = "kubernetes:yaml:decode"
_DISABLE_DEFAULT_PROVIDERS = "pulumi:disable-default-providers"
WHOLLY_UNKNOWN_KEY = "__unknown__"
"""An invoke answer `{WHOLLY_UNKNOWN_KEY: UNKNOWN}` means the whole result is unknown: the
monitor answers it with `ResourceInvokeResponse.unknown`, as the engine does for an invoke on
resources still being created. (A typed result cannot carry unknown fields: the SDK's result
classes check each field's type.)"""
# Depth to which nested output types get placeholders; ARM responses rarely nest deeper.
_MAX_DEPTH = PLACEHOLDER_DEPTH


@functools.cache
def answers() -> dict[str, Any]:
    """The answer table, loaded once."""
    return yaml_loader.read(ANSWERS_FILE)


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
    if style == "logical":
        # Types the provider names after the resource itself (a storage Blob).
        return logical_name
    return f"{logical_name}{stable_hex(urn)}"


def is_unknown(value: Any) -> bool:
    """True for the wire's unknown sentinel."""
    return isinstance(value, str) and value == UNKNOWN


def contains_unknown(value: Any) -> bool:
    """True when the sentinel appears anywhere in `value`."""
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return is_unknown(value)


def kubeconfig(cluster: str, location: str, seed: str, fqdn: str | None = None) -> str:
    """A valid, base64-encoded kubeconfig for a cluster, as listManagedCluster*Credentials gives.

    Its server is the cluster's API server, `https://<fqdn>:443`, when the plan knows the fqdn.
    """
    server = fqdn or f"{cluster}-{stable_hex(seed)}.hcp.{location}.azmk8s.io"
    fake_ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMOCK\n-----END CERTIFICATE-----\n")
    text = "\n".join(
        [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            "- cluster:",
            f"    certificate-authority-data: {fake_ca.decode()}",
            f"    server: https://{server}:443",
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


class ProviderCheckFailure(Exception):
    """What the provider's Check refuses before anything is created (a required property
    missing): `pulumi preview` fails on it too, so the plan does, naming the resource."""


class InvokeRefused(Exception):
    """What the engine refuses for an invoke (its package's default provider disabled): the
    program's call fails with it, where the program made it."""


class AzureMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes the way Azure Resource Manager would.

    `config` is the stack config (`namespace:key` -> text); when None the mocks read the config
    the Pulumi runtime of this process holds, which is what the in-process engine sets.
    """

    def __init__(
        self,
        preview: bool = False,
        config: Mapping[str, str] | None = None,
        stack_outputs: Sequence[StackOutputs] = (),
    ) -> None:
        self.preview = preview
        self.table = answers()
        self.config = config
        self.stack_outputs = list(stack_outputs)
        """Other stacks' outputs the user gave (`--stack-outputs`), for `StackReference`s."""
        self._stack_outputs_read: set[str] = set()
        self.shapes = sdk_types.Shapes()
        """What each type declares: the program's own SDK where its process described it."""
        self.notes: list[str] = []
        """What the mocks could not answer faithfully (e.g. Helm charts not rendered), once each."""
        self._providers: dict[str, dict[str, Any]] = {}
        self._group_locations: dict[str, Any] = {}
        self._locations: dict[tuple[Any, Any], Any] = {}
        self._fqdns: dict[tuple[Any, Any], str] = {}
        self._states: dict[str, dict[str, Any]] = {}
        """Each Azure resource's planned state by lower-cased ARM id, for `get<Type>` reads."""
        self._subnet_prefixes: dict[str, str] = {}
        self._pending: set[str] = set()
        self._unknown_fields = re.compile(self.table["unknown_fields"])
        self._rules = [(re.compile(r["match"]), r["value"]) for r in self.table["placeholders"]]
        self._generators: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
            "random:index/randomPassword:RandomPassword": _random_password,
            "random:index/randomString:RandomString": _random_string,
            "random:index/randomPet:RandomPet": _random_pet,
            "random:index/randomId:RandomId": _random_id,
            "random:index/randomInteger:RandomInteger": _random_integer,
            "random:index/randomUuid:RandomUuid": _random_uuid,
            "random:index/randomBytes:RandomBytes": _random_bytes,
            "random:index/randomShuffle:RandomShuffle": _random_shuffle,
            "tls:index/privateKey:PrivateKey": _tls_private_key,
            "command:local:Command": _command,
            "command:remote:Command": _command,
        }

    # --- resources -------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.custom is None:
            # A read (`Resource.get`, a stack reference): always a custom resource.
            if args.typ == _STACK_REFERENCE:
                return self._stack_reference(args)
            return self._read(args)
        if not args.custom:
            return "", {}
        urn = self._urn(args)
        if args.typ.startswith("pulumi:providers:"):
            provider_id = stable_uuid(urn)
            self._providers[provider_id] = dict(args.inputs)
            return provider_id, dict(args.inputs)
        if args.typ.startswith("kubernetes:"):
            return self._kubernetes(args, urn)
        if args.typ.startswith("azure-native:"):
            return self._azure(args, urn)
        return self._other_package(args, urn)

    def checked_inputs(
        self, token: str, inputs: Mapping[str, Any], provider: str = ""
    ) -> dict[str, Any]:
        """The inputs after the provider's Check: azure-native fills in a missing `location`.

        The engine hands these checked inputs to policy packs; the offline engine records them
        so cost and policy see the region the real provider would use.
        """
        checked = dict(inputs)
        if token.startswith("azure-native:") and "location" not in checked:
            location = self._default_location(token, checked, provider)
            if location is not None:
                checked["location"] = location
            elif token == _RESOURCE_GROUP:
                # A group's location is required by ARM and it has no group to inherit one
                # from: azure-native's Check fails, with this advice (provider.go validateType).
                raise ProviderCheckFailure(
                    "missing required property 'location'. Either set it explicitly or "
                    "configure it with 'pulumi config set azure-native:location <value>'."
                )
        return checked

    def _azure(self, args: pulumi.runtime.MockResourceArgs, urn: str) -> tuple[str, dict]:
        spec = self.table["types"].get(args.typ) or self._generic_spec(args.typ, args.inputs)
        try:
            inputs = self.checked_inputs(args.typ, args.inputs, args.provider)
        except ProviderCheckFailure as failure:
            # As the engine words a failed Check.
            raise ProviderCheckFailure(
                f"{args.typ} resource '{args.name}' has a problem: {failure}"
            ) from None
        name_property = spec["name_property"]
        # `import_` (`ResourceOptions(import_=<ARM id>)`): the resource exists with that id,
        # which the engine knows in preview too; its name is the id's last segment.
        imported = args.resource_id if str(args.resource_id or "").startswith("/") else ""
        name = (
            inputs.get(name_property)
            or (imported.rstrip("/").rsplit("/", 1)[-1] if imported else None)
            or args.resource_id
            or auto_name(args.name, urn, spec.get("name_style", "suffix"))
        )
        if imported:
            self.note(
                f"{args.typ} {args.name}: imported ({imported}); Azure's state of it is read "
                "on import, offline the plan takes the program's inputs"
            )
        state = dict(inputs)
        state[name_property] = name
        if isinstance(name, str):
            self._pending.add(name.lower())
        if args.typ == _RESOURCE_GROUP:
            self._group_locations[name] = state.get("location", UNKNOWN)
        self._locations[(inputs.get("resourceGroupName"), name)] = state.get("location", UNKNOWN)
        _identity_as_arm_returns_it(state, urn, self.preview)
        if self.preview:
            # `pulumi preview` knows a new resource's inputs and auto-name, never its outputs,
            # not even those nested in an input object (a vault's properties.vaultUri).
            _fill_missing(state, _unknown_leaves(spec.get("outputs", {})))
            self._fill_declared(args.typ, state, urn)
            self._unknown_nested(self.shapes.resource_outputs(args.typ), state, 1)
            return imported, state
        context = self._context(urn, name, inputs, args.provider)
        resource_id = imported or self._render(spec["id"], context)
        self._pending.add(resource_id.lower())
        for key, value in (("name", name), ("id", resource_id), ("type", _arm_type(resource_id))):
            state.setdefault(key, value)
        # azure-native's Check sets it to the API version the SDK class was generated from.
        version = self.shapes.api_version(args.typ)
        if version:
            state.setdefault("azureApiVersion", version)
        _fill_missing(state, self._render(copy.deepcopy(spec.get("outputs", {})), context))
        self._fill_declared(args.typ, state, urn)
        self._inline_child_ids(args.typ, resource_id, state)
        self._container_host_names(args.typ, name, state)
        self._fill_nested(self.shapes.resource_outputs(args.typ), state, urn, 1)
        fqdn = state.get("fqdn")
        if isinstance(fqdn, str) and not is_unknown(fqdn):
            self._fqdns[(inputs.get("resourceGroupName"), name)] = fqdn
        self._remember_subnets(args.typ, resource_id, inputs)
        self._states[resource_id.lower()] = dict(state)
        return resource_id, _mark_secret(state, self.shapes.secret_outputs(args.typ))

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
        self._fill_declared(args.typ, state, urn)
        if self.preview:
            return "", state
        return (f"{namespace}/{name}" if namespace else name), state

    def _other_package(self, args: pulumi.runtime.MockResourceArgs, urn: str) -> tuple[str, dict]:
        """random, tls, command and any other package: generated outputs, then declared ones."""
        state = dict(args.inputs)
        package = args.typ.split(":", 1)[0]
        if args.typ in _DYNAMIC_RESOURCES:
            # The engine runs a dynamic provider's own create/diff code; a plan runs none.
            self.note(
                f"{args.typ} {args.name}: a dynamic provider's code is not run offline; the "
                "outputs it would compute are not in this plan"
            )
        elif package not in _MODELLED_PACKAGES:
            # Planned, but nothing downstream understands it: say so, or a clean policy verdict
            # would read as covering these resources too (pulumi-azure's VMs, for example).
            self.note(
                f"package {package}: its resources are planned from their inputs only (its "
                "provider is not modelled offline); the policy pack, cost and GPU capacity "
                "do not cover them"
            )
        generate = self._generators.get(args.typ)
        if not self.preview and generate is not None:
            for key, value in generate(urn, dict(args.inputs)).items():
                state.setdefault(key, value)
        self._fill_declared(args.typ, state, urn)
        if self.preview:
            return "", state
        resource_id = str(state.get("id") or f"{args.name}-{stable_hex(urn)}")
        return resource_id, _mark_secret(state, self.shapes.secret_outputs(args.typ))

    def _stack_reference(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        """Another stack's outputs: as given, else unknown under preview and none in a full plan.

        The engine reads them from the backend; offline there is no backend and no other
        stack's state, unless the user gave its outputs (`--stack-outputs`, what `pulumi stack
        output --json` prints): then they are what the backend would answer. Otherwise, under
        preview a value taken from them is unknown, as a new resource's output is, and a
        callback on it does not run. A full plan cannot carry unknowns (the SDK reads them as
        None), so the stack has no outputs: `get_output` gives None and `require_output` fails
        with the SDK's own message, and this note says why.
        """
        name = str(args.inputs.get("name") or args.resource_id or args.name)
        given = find_stack_outputs(name, self.stack_outputs, pulumi.get_project())
        if given is not None:
            self._stack_outputs_read.add(given.stack)
            state = {
                "name": name,
                "outputs": dict(given.outputs),
                "secretOutputNames": list(given.secret_names),
            }
            return str(args.resource_id or name), state
        self.note(
            f"stack reference {name}: its outputs are unknown offline (no backend to read "
            "them from); give them with --stack-outputs STACK=FILE (`pulumi stack output "
            "--json`), or plan with --preview to keep values taken from them unknown"
        )
        if self.preview:
            state = {"name": name, "outputs": UNKNOWN, "secretOutputNames": UNKNOWN}
        else:
            state = {"name": name, "outputs": {}, "secretOutputNames": []}
        return str(args.resource_id or name), state

    def _read(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        """`Resource.get(name, id)`: an existing resource, which the engine reads from the cloud.

        Offline nothing exists to read: its id (and, for ARM ids, its name) is what the program
        gave; every property is unknown, in both modes, never invented.
        """
        resource_id = str(args.resource_id or "")
        state = dict(args.inputs)
        if args.typ.startswith("azure-native:") and resource_id.startswith("/"):
            state.setdefault("id", resource_id)
            state.setdefault("name", resource_id.rstrip("/").rsplit("/", 1)[-1])
        for field in self.shapes.resource_outputs(args.typ):
            state.setdefault(field.name, UNKNOWN)
        self.note(
            f"{args.typ} {args.name}: read from an existing resource; its properties are "
            "unknown offline"
        )
        return resource_id, state

    def _fill_declared(self, token: str, state: dict[str, Any], urn: str) -> None:
        """Every output the SDK declares and the state lacks: unknown, or a typed placeholder.

        Nested output types get their always-present fields only, which keeps the answer small.
        """
        for field in self.shapes.resource_outputs(token):
            if field.name in state:
                continue
            if self.preview:
                state[field.name] = UNKNOWN
            else:
                state[field.name] = self._placeholder(field, f"{urn}:{field.name}", 0)

    def _unknown_nested(self, fields: tuple[Field, ...], state: dict[str, Any], depth: int) -> None:
        """Under preview, every output field an input object lacks is unknown, at any depth.

        azure-native previews a new resource from its inputs, mapped onto the output shape: a
        property the inputs do not give is unknown, also inside objects and lists of objects
        the program did give (a VNet's inline `subnets[0].id`, a NIC's
        `ipConfigurations[0].privateIPAddress`). Source: pulumi-azure-native
        provider/pkg/convert/previewOutputs.go `PreviewOutputs`. Without this the SDK reads
        such a field as absent (None, or `undefined` in Node.js), not as unknown.
        """
        self._complete_nested(fields, state, "", depth, self._unknown_fields_of)

    def _fill_nested(
        self, fields: tuple[Field, ...], state: dict[str, Any], seed: str, depth: int
    ) -> None:
        """In a full plan, what ARM always returns inside an object the program gave.

        A response type's always-present fields (an ingress's `fqdn`, an IP configuration's
        `etag`) get placeholders of their type, as top-level outputs do; programs build strings
        from them, and None fails `Output.concat`. A field that would be unknown (a state, an
        address no input gives) is left out: an unknown inside the object would make all of it,
        ids included, unknown to the program.
        """
        self._complete_nested(fields, state, seed, depth, self._filled_object)

    def _complete_nested(
        self,
        fields: tuple[Field, ...],
        state: dict[str, Any],
        seed: str,
        depth: int,
        complete: Callable[[str, dict[str, Any], str, int], dict[str, Any]],
    ) -> None:
        """`complete` each object (and each object in a list) that `state` gives for a field
        of a described object type; `seed` names the place, for deterministic placeholders."""
        if depth > _MAX_DEPTH:
            return
        for field in fields:
            value = state.get(field.name)
            if field.object_type is None:
                continue
            at = f"{seed}.{field.name}"
            if field.kind == "object" and isinstance(value, dict):
                state[field.name] = complete(field.object_type, value, at, depth)
            elif field.kind == "list" and isinstance(value, list):
                state[field.name] = [
                    complete(field.object_type, item, f"{at}[{i}]", depth)
                    if isinstance(item, dict)
                    else item
                    for i, item in enumerate(value)
                ]

    def _filled_object(
        self, reference: str, value: dict[str, Any], seed: str, depth: int
    ) -> dict[str, Any]:
        fields = self.shapes.described_object_fields(reference)
        if fields is None:
            return value
        filled = dict(value)
        for field in fields:
            if field.optional or filled.get(field.name) is not None:
                continue
            placeholder = self._placeholder(field, f"{seed}.{field.name}", depth)
            if not contains_unknown(placeholder):
                filled[field.name] = placeholder
        self._fill_nested(fields, filled, seed, depth + 1)
        return filled

    def _unknown_fields_of(
        self, reference: str, value: dict[str, Any], seed: str, depth: int
    ) -> dict[str, Any]:
        fields = self.shapes.described_object_fields(reference)
        if fields is None:
            return value
        filled = dict(value)
        for field in fields:
            if filled.get(field.name) is None:
                filled[field.name] = UNKNOWN
        self._unknown_nested(fields, filled, depth + 1)
        return filled

    def _placeholder(self, field: Field, seed: str, depth: int) -> Any:
        """A deterministic value of the field's declared type (unknown for state and facts)."""
        if self._unknown_fields.search(field.name):
            return UNKNOWN
        for pattern, value in self._rules:
            if pattern.search(field.name) and field.kind == "str":
                return self._rule_value(value, seed)
        if field.kind == "str":
            return stable_uuid(seed)
        if field.kind == "enum" and field.enum_value is not None:
            # The SDK instantiates the enum from the answer: only a member's value will do.
            return field.enum_value
        if field.kind in ("int", "float"):
            return 0 if field.kind == "int" else 0.0
        if field.kind == "bool":
            return False
        if field.kind == "object" and field.object_type is not None:
            return self._object_placeholder(field.object_type, seed, depth + 1)
        if field.kind == "list":
            if field.object_type is not None and depth < _MAX_DEPTH:
                return [self._object_placeholder(field.object_type, f"{seed}[0]", depth + 1)]
            return []
        if field.kind == "map":
            return {}
        return UNKNOWN

    def _object_placeholder(self, reference: str, seed: str, depth: int) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            return {}
        return {
            field.name: self._placeholder(field, f"{seed}.{field.name}", depth)
            for field in self.shapes.object_fields(reference)
            if not field.optional
        }

    @staticmethod
    def _rule_value(kind: str, seed: str) -> Any:
        if kind == "uuid":
            return stable_uuid(seed)
        if kind == "secret":
            return placeholders.secret_text(seed)
        if kind == "url":
            return f"https://placeholder-{stable_hex(seed)}.invalid/"
        if kind == "hostname":
            return f"placeholder-{stable_hex(seed)}.invalid"
        if kind == "pem":
            return placeholders.pem("CERTIFICATE", seed)
        return UNKNOWN

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

    def _inline_child_ids(self, token: str, resource_id: str, state: dict[str, Any]) -> None:
        """ARM's ids for child resources given inline (a VNet's `subnets`, a NIC's
        `ipConfigurations`, an NSG's `securityRules`): `<parent id>/<property>/<name>`.

        Microsoft.Network returns every inline child with its id, and programs read it
        (`vnet.subnets[0].id` into a NIC); echoing the input without it leaves None. A NIC's
        ip configuration also gets its private address from its subnet, as Azure assigns it
        (dynamic allocation), when the subnet is one this plan declares; else it has none.
        Source: https://learn.microsoft.com/rest/api/virtualnetwork/virtual-networks/get and
        https://learn.microsoft.com/rest/api/virtualnetwork/network-interfaces/get
        """
        if not token.startswith(_NETWORK_TYPES):
            return
        for field in self.shapes.resource_outputs(token):
            items = state.get(field.name)
            if field.kind != "list" or field.object_type is None or not isinstance(items, list):
                continue
            child_fields = self.shapes.described_object_fields(field.object_type) or ()
            if not any(f.name == "id" for f in child_fields):
                continue
            children = []
            for item in items:
                name = item.get("name") if isinstance(item, dict) else None
                if isinstance(name, str) and not is_unknown(name) and not item.get("id"):
                    item = {**item, "id": f"{resource_id}/{field.name}/{name}"}
                if token == _NIC and isinstance(item, dict) and not item.get("privateIPAddress"):
                    address = self._address_in_subnet(item, "subnet.id")
                    # Only a derivable address: an unknown inside the item would make the whole
                    # list unknown to the program, the ids above included.
                    if not is_unknown(address):
                        item = {**item, "privateIPAddress": address}
                children.append(item)
            state[field.name] = children

    def _container_host_names(self, token: str, name: Any, state: dict[str, Any]) -> None:
        """The DNS names Container Apps, Container Instances and public IPs give, in input objects.

        A container app with ingress answers on `<app>.<environment's default domain>`
        (`<app>.internal.<domain>` without external ingress), a public container group with a
        DNS label on `<label>.<region>.azurecontainer.io`; see the answer table's sources.
        Programs build their URLs from these (`Output.concat("https://", ...fqdn)`), which fails
        on None; an environment the plan does not make gives a `.invalid` placeholder domain.
        """
        if token == _CONTAINER_APP:
            ingress = _value_at(state, "configuration.ingress")
            environment_id = state.get("managedEnvironmentId") or state.get("environmentId")
            environment = (
                self._states.get(environment_id.lower())
                if isinstance(environment_id, str)
                else None
            )
            domain = environment.get("defaultDomain") if environment else None
            known = isinstance(domain, str) and not is_unknown(domain) and isinstance(name, str)
            if not known:
                # An environment this plan does not make: its domain is Azure's; a name of the
                # right shape that says so, never None for a program to concatenate.
                domain = f"placeholder-{stable_hex(str(environment_id))}.invalid"
            if isinstance(name, str) and isinstance(ingress, dict) and not ingress.get("fqdn"):
                internal = "" if ingress.get("external") else "internal."
                fqdn = f"{name}.{internal}{domain}"
                configuration = {**state["configuration"], "ingress": {**ingress, "fqdn": fqdn}}
                state["configuration"] = configuration
            if known:
                state["latestRevisionFqdn"] = f"{name}--{stable_hex(str(name))}.{domain}"
        elif token == _CONTAINER_GROUP:
            address = state.get("ipAddress")
            if isinstance(address, dict):
                label, location = address.get("dnsNameLabel"), state.get("location")
                named = isinstance(label, str) and isinstance(location, str)
                if named and not is_unknown(label) and not is_unknown(location):
                    # Its `ip` is Azure's to choose: left out, never invented (an unknown
                    # inside the object would make the whole of it unknown, fqdn included).
                    fqdn = f"{label}.{_region(location)}.azurecontainer.io"
                    state["ipAddress"] = {**address, "fqdn": fqdn}
        elif token == _PUBLIC_IP:
            # A public IP with a DNS label answers on `<label>.<region>.cloudapp.azure.com`
            # (https://learn.microsoft.com/azure/virtual-network/ip-services/public-ip-addresses#dns-name-label);
            # programs export it as the server's address (azure-ts-webserver, vm-scaleset).
            dns = state.get("dnsSettings")
            if isinstance(dns, dict) and not dns.get("fqdn"):
                label, location = dns.get("domainNameLabel"), state.get("location")
                named = isinstance(label, str) and isinstance(location, str)
                if named and not is_unknown(label) and not is_unknown(location):
                    fqdn = f"{label}.{_region(location)}.cloudapp.azure.com"
                    state["dnsSettings"] = {**dns, "fqdn": fqdn}

    def _remember_subnets(self, token: str, resource_id: str, inputs: Mapping[str, Any]) -> None:
        """Subnet ids and prefixes, so resources placed in a subnet get addresses from it."""
        if token == _SUBNET:
            self._subnet_prefixes[resource_id.lower()] = _first_prefix(inputs)
        elif token == _VNET:
            for subnet in inputs.get("subnets") or []:
                if isinstance(subnet, dict) and isinstance(subnet.get("name"), str):
                    key = f"{resource_id}/subnets/{subnet['name']}".lower()
                    self._subnet_prefixes[key] = _first_prefix(subnet)

    # --- provider settings -----------------------------------------------------------------

    def _provider_setting(self, key: str, provider: str) -> Any:
        """`location`/`subscriptionId` of the resource's provider, as azure-native reads them.

        An explicit provider uses its own arguments; the default provider reads the stack's
        `azure-native:<key>` config.
        """
        provider_id = provider.rsplit("::", 1)[-1] if provider else ""
        if provider_id in self._providers:
            return self._providers[provider_id].get(key)
        if self.config is not None:
            return self.config.get(f"azure-native:{key}")
        return pulumi_config.get_config(f"azure-native:{key}")

    def default_provider_denied(self, token: str) -> str | None:
        """The engine's refusal when `token`'s package has its default provider disabled
        (`pulumi:disable-default-providers`, a list of packages or `*`), else None.

        The message is the engine's (pulumi/pulumi pkg/resource/deploy/source_eval.go,
        `diag.GetDefaultProviderDenied`).
        """
        package = token.split(":", 1)[0]
        if package == "pulumi":
            return None  # the engine's own builtins (StackReference) have no default to deny
        if self.config is not None:
            raw = self.config.get(_DISABLE_DEFAULT_PROVIDERS)
        else:
            raw = pulumi_config.get_config(_DISABLE_DEFAULT_PROVIDERS)
        try:
            disabled = json.loads(raw) if raw else []
        except ValueError:
            disabled = [raw]
        if not isinstance(disabled, list) or not ({package, "*"} & set(map(str, disabled))):
            return None
        return (
            f"Default provider for '{package}' disabled. '{token}' must use an explicit "
            "provider."
        )

    def _default_location(self, token: str, inputs: Mapping[str, Any], provider: str) -> Any:
        """azure-native's Check: the provider's `location`, else the resource group's.

        Source: pulumi-azure-native provider/pkg/provider/provider.go `getDefaultLocation`
        (provider config first, then the location of the named resource group, unknown while
        that group's name is unknown). A group this program does not create would be looked up
        in ARM; offline that location is unknown.
        """
        if "location" not in self.shapes.resource_inputs(token):
            return None
        configured = self._provider_setting("location", provider)
        if configured:
            return configured
        group = inputs.get("resourceGroupName")
        if group is None:
            return None
        if is_unknown(group) or not isinstance(group, str):
            return UNKNOWN
        return self._group_locations.get(group, UNKNOWN)

    def _subscription(self, provider: str) -> str:
        """The subscription in ARM ids: the provider's, unless it is secret or not a GUID.

        A secret subscription id (an explicit provider's `subscription_id` from
        `require_secret`) never reaches the plan in plain text, and the stand-in a `secure:`
        value gets offline is no subscription id at all: ids then use the placeholder
        subscription, and a note says so.
        """
        configured = self._provider_setting("subscriptionId", provider)
        if configured is None or configured == "":
            return self.table["subscription"]
        plain = isinstance(configured, str) and not is_unknown(configured)
        if plain and _GUID.fullmatch(configured):
            return configured
        self.note(
            "azure-native subscriptionId is secret, unknown or not a GUID offline: ARM ids in "
            f"this plan use the placeholder subscription {self.table['subscription']}"
        )
        return self.table["subscription"]

    # --- invokes ---------------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        token = args.token
        if token == _K8S_YAML_DECODE:
            return _decoded_manifests(args.args), []
        spec = self.table["invokes"].get(token)
        if self.preview and self._reads_pending(args.args):
            # The engine declines an invoke on resources this update creates: wholly unknown.
            return self._unknown_result(), []
        if spec is not None:
            answer = self._known_invoke(args, spec)
            unknown = sorted(key for key, value in answer.items() if contains_unknown(value))
            if unknown:
                # Something no input determines (a group this program does not create): the
                # cloud would answer it, the plan cannot, and says so.
                self.note(
                    f"{token}({_described_args(args.args)}): {', '.join(unknown)} unknown "
                    "offline (read from a resource this program does not create)"
                )
            if self.preview and unknown:
                # A typed result cannot carry an unknown field (the SDK checks each field's
                # type): part of it unknown (an existing group's location) makes it all unknown.
                return self._unknown_result(), []
            return answer, []
        if token in self.table["empty_invokes"]:
            entry = self.table["empty_invokes"][token]
            self.note(entry["note"])
            answer = entry["preview"] if self.preview else entry["answer"]
            # `result` unknown, not the whole answer: the SDK reads `.get("result", [])`.
            return self._render(copy.deepcopy(answer), {"_seed": token, "_inputs": {}}), []
        if self.preview:
            return self._unknown_result(), []
        fields = self.shapes.invoke_result_fields(token)
        if fields is None:
            self.note(f"{token}: no result type in the installed SDK; answered empty")
            return {}, []
        seed = f"{token}:{sorted(args.args.items())!r}"
        answer = {f.name: self._placeholder(f, f"{seed}:{f.name}", 0) for f in fields}
        # A getter's `name` is the name it was asked for (`publicIpAddressName` -> `name`).
        names = [v for k, v in args.args.items() if k.endswith("Name") and k != "resourceGroupName"]
        if "name" in answer and len(names) == 1 and isinstance(names[0], str):
            answer["name"] = names[0]
        self._answer_as_the_resource(args, seed, fields, answer)
        return answer, []

    def _answer_as_the_resource(
        self,
        args: pulumi.runtime.MockCallArgs,
        seed: str,
        fields: tuple[Field, ...],
        answer: dict[str, Any],
    ) -> None:
        """`get<Type>` reads one resource: its ARM id, and what the answer table says of it.

        The getter's arguments are the resource's own inputs (`resourceGroupName`,
        `virtualNetworkName`, `subnetName`), so its id is the one the resource would have,
        never a GUID that a program then passes on as a subnet id. A resource this plan
        creates answers with the values it was planned with (one `vaultUri`, not two).
        """
        package, module, member = args.token.split(":")
        if package != "azure-native" or not member.startswith("get") or len(member) < 4:
            return
        token = f"{package}:{module}:{member[3:]}"
        spec = self.table["types"].get(token)
        if spec is None and self.shapes.resource_outputs(token):
            spec = self._generic_spec(token, args.args)
        name = args.args.get(spec["name_property"]) if spec is not None else None
        if spec is None or not isinstance(name, str) or is_unknown(name):
            return
        declared = {field.name for field in fields}
        context = self._context(seed, name, args.args, args.provider)
        resource_id = self._render(spec["id"], context)
        created = self._states.get(resource_id.lower()) if isinstance(resource_id, str) else None
        if created is not None:
            answer.update(
                {k: copy.deepcopy(v) for k, v in created.items() if k in declared}
            )
            return
        rendered = self._render(copy.deepcopy(spec.get("outputs", {})), context)
        for key, value in rendered.items():
            if key not in declared:
                continue
            if isinstance(value, dict) and isinstance(answer.get(key), dict):
                answer[key] = {**answer[key], **value}
            else:
                answer[key] = value
        for key, value in (("id", resource_id), ("name", name)):
            if key in declared:
                answer[key] = value

    def _known_invoke(self, args: pulumi.runtime.MockCallArgs, spec: Any) -> dict:
        seed = f"{args.token}:{sorted(args.args.items())!r}"
        group = args.args.get("resourceGroupName")
        resource = args.args.get("resourceName")
        location = (
            args.args.get("location")
            or self._locations.get((group, resource))
            or self._group_locations.get(group, UNKNOWN)
        )
        context = self._context(seed, resource or "", args.args, args.provider)
        context["location"] = location
        # The server name in a kubeconfig is a placeholder, never reported; it needs a region.
        region = "region-unknown" if is_unknown(location) else location
        context["kubeconfig"] = kubeconfig(
            resource or "cluster", region, seed, self._fqdns.get((group, resource))
        )
        context.update({f"arg:{key}": value for key, value in args.args.items()})
        # One account's keys are the same in every invoke that answers them (a Cosmos DB
        # account's listDatabaseAccountKeys and the AccountKey= of its connection strings).
        module = args.token.rsplit(":", 1)[0]
        context["_secret_seed"] = f"{module}:{sorted(args.args.items())!r}"
        return self._render(copy.deepcopy(spec), context)

    @staticmethod
    def _unknown_result() -> dict:
        return {WHOLLY_UNKNOWN_KEY: UNKNOWN}

    def _reads_pending(self, arguments: Mapping[str, Any]) -> bool:
        return any(
            isinstance(v, str) and v.lower() in self._pending for v in arguments.values()
        )

    def note_unread_stack_outputs(self) -> None:
        """A note for each `--stack-outputs` stack no `StackReference` named (a typo, often)."""
        for given in self.stack_outputs:
            if given.stack not in self._stack_outputs_read:
                self.note(
                    f"--stack-outputs {given.stack}: no StackReference in the program names "
                    "this stack, so its outputs were not used"
                )

    def note(self, message: str) -> None:
        """Record, once, something the plan could not answer as the cloud would."""
        if message not in self.notes:
            self.notes.append(message)

    # --- templates -------------------------------------------------------------------------

    def _context(
        self, seed: str, name: str, inputs: Mapping[str, Any], provider: str = ""
    ) -> dict[str, Any]:
        context: dict[str, Any] = {
            "name": name,
            "subscription": self._subscription(provider),
            "tenant": self.table["tenant"],
            "location": inputs.get("location", UNKNOWN),
            "rg": inputs.get("resourceGroupName", "rg"),
            "dns_prefix": inputs.get("dnsPrefix") or inputs.get("fqdnSubdomain") or name,
            "hash8": stable_hex(seed),
            "_seed": seed,
            "_inputs": inputs,
        }
        context.update({f"input:{key}": value for key, value in inputs.items()})
        return context

    def _render(self, template: Any, context: dict[str, Any]) -> Any:
        """Fill `{placeholders}`; a string with any unknown part is unknown as a whole."""
        if isinstance(template, dict):
            return {key: self._render(value, context) for key, value in template.items()}
        if isinstance(template, list):
            return [self._render(value, context) for value in template]
        if not isinstance(template, str):
            return template
        unknown = False

        def substitute(match: re.Match[str]) -> str:
            nonlocal unknown
            key = match.group(1)
            if key == "unknown":
                value: Any = UNKNOWN
            elif key.startswith("uuid:"):
                value = stable_uuid(f"{context['_seed']}:{key}")
            elif key.startswith("secret:"):
                seed = context.get("_secret_seed", context["_seed"])
                value = placeholders.secret_text(f"{seed}:{key}")
            elif key.startswith("subnet_ip:"):
                value = self._address_in_subnet(context["_inputs"], key.split(":", 1)[1])
            else:
                value = context.get(key, "")
            if is_unknown(value):
                unknown = True
                return ""
            return value if isinstance(value, str) else str(value)

        rendered = _PLACEHOLDER.sub(substitute, template)
        return UNKNOWN if unknown else rendered

    def _address_in_subnet(self, inputs: Mapping[str, Any], path: str) -> Any:
        """The first address Azure hands out in the subnet at input `path`, else unknown.

        Azure reserves the first four addresses of every subnet (network, gateway, two for DNS):
        https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq#are-there-any-restrictions-on-using-ip-addresses-within-these-subnets
        """
        subnet_id = _value_at(inputs, path)
        if not isinstance(subnet_id, str):
            return UNKNOWN
        prefix = self._subnet_prefixes.get(subnet_id.lower())
        if not prefix:
            return UNKNOWN
        network = ipaddress.ip_network(prefix, strict=False)
        if network.num_addresses <= 5:
            return UNKNOWN
        return str(network.network_address + 4)

    @staticmethod
    def _urn(args: pulumi.runtime.MockResourceArgs) -> str:
        return f"{pulumi.get_stack()}::{pulumi.get_project()}::{args.typ}::{args.name}"


def _described_args(arguments: Mapping[str, Any]) -> str:
    """`resourceGroupName=shared-rg`: an invoke's plain string arguments, for a note."""
    return ", ".join(
        f"{key}={value}"
        for key, value in sorted(arguments.items())
        if isinstance(value, str) and not is_unknown(value)
    )


def _decoded_manifests(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """pulumi-kubernetes' `kubernetes:yaml:decode`: the provider parses the YAML text it is
    given, no cluster involved, so a `yaml.ConfigFile`/`ConfigGroup` declares its resources
    offline too, in both modes (the provider answers it under `pulumi preview` as well)."""
    text = arguments.get("text")
    if not isinstance(text, str) or is_unknown(text):
        return {"result": UNKNOWN}
    try:
        return {"result": yaml_loader.decode_manifests(text)}
    except yaml.YAMLError as error:
        # The provider refuses it, and the program fails, as under `pulumi preview`.
        message = f"{_K8S_YAML_DECODE}: the YAML does not parse: {error}"
        raise ProviderCheckFailure(message) from None


# --- generators for providers whose outputs follow from inputs -----------------------------
# Output names and defaults: the pulumi-random, pulumi-tls and pulumi-command SDK classes.


def _random_password(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    result = placeholders.password(seed, inputs)
    return {"result": result, "bcryptHash": placeholders.bcrypt_shape(seed), "id": "none"}


def _random_string(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    result = placeholders.password(seed, inputs)
    return {"result": result, "id": result}


def _random_pet(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"id": placeholders.pet_name(seed, inputs)}


def _random_id(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return placeholders.random_id(seed, inputs)


def _random_integer(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    value = placeholders.random_integer(seed, inputs)
    return {"result": value, "id": str(value)}


def _random_uuid(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    value = placeholders.uuid_text(seed)
    return {"result": value, "id": value}


def _random_bytes(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    raw = placeholders.stream(seed, int(inputs.get("length", 32)))
    return {"base64": base64.b64encode(raw).decode(), "hex": raw.hex()}


def _random_shuffle(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    items = list(inputs.get("inputs") or [])
    order = placeholders.stream(seed, len(items))
    shuffled = [item for _, item in sorted(zip(order, range(len(items)), strict=True))]
    values = [items[i] for i in shuffled]
    count = inputs.get("resultCount")
    return {"results": values[: int(count)] if count is not None else values}


def _tls_private_key(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return placeholders.tls_private_key(seed, inputs)


def _command(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    # What a command prints is unknowable offline, so it stays unknown in a full plan too, as a
    # public IP does: programs parse it (`json.loads(cmd.stdout)`, `int(...)`), and a made-up
    # text would fail a program that is right.
    return {"stdout": UNKNOWN, "stderr": UNKNOWN}


# --- ARM shapes ----------------------------------------------------------------------------


def _identity_as_arm_returns_it(state: dict[str, Any], urn: str, preview: bool) -> None:
    """ARM answers `identity.userAssignedIdentities` as a map of id -> {principalId, clientId}.

    azure-native v3 takes a list of ids as input but reads back ARM's map; echoing the list would
    break the SDK's output types. Source: https://learn.microsoft.com/rest/api/managedidentity/
    and the `UserAssignedIdentityResponse` output type of each azure-native resource.
    """
    identity = state.get("identity")
    if not isinstance(identity, dict):
        return
    identity = state["identity"] = dict(identity)
    assigned = identity.get("userAssignedIdentities")
    if isinstance(assigned, list):
        if any(not isinstance(item, str) or is_unknown(item) for item in assigned):
            identity["userAssignedIdentities"] = UNKNOWN
            return
        identity["userAssignedIdentities"] = {
            item: {
                "principalId": UNKNOWN if preview else stable_uuid(f"{item}:principal"),
                "clientId": UNKNOWN if preview else stable_uuid(f"{item}:client"),
            }
            for item in assigned
        }
    if "SystemAssigned" in str(identity.get("type", "")):
        identity.setdefault("principalId", UNKNOWN if preview else stable_uuid(f"{urn}:principal"))
        identity.setdefault("tenantId", UNKNOWN if preview else answers()["tenant"])


def _mark_secret(state: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """Wrap the named outputs in the wire's secret signature, as the engine would."""
    for name in names:
        if name in state and not is_unknown(state[name]):
            state[name] = {rpc._special_sig_key: rpc._special_secret_sig, "value": state[name]}
    return state


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


def _first_prefix(properties: Mapping[str, Any]) -> str:
    prefix = properties.get("addressPrefix")
    if not prefix and properties.get("addressPrefixes"):
        prefix = properties["addressPrefixes"][0]
    return prefix if isinstance(prefix, str) and not is_unknown(prefix) else ""


def _region(location: str) -> str:
    """ARM's region name, as DNS names carry it: "West US 2" -> "westus2"."""
    return "".join(location.split()).lower()


def _value_at(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _fill_missing(target: dict[str, Any], computed: Mapping[str, Any]) -> None:
    """Add computed outputs without overwriting what the program set."""
    for key, value in computed.items():
        if key not in target or target[key] is None:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            target[key] = dict(target[key])
            _fill_missing(target[key], value)
