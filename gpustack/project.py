"""Read a Pulumi project and one stack's config the way the Pulumi CLI does."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpustack.placeholders import secret_text
from gpustack.yaml_loader import DuplicateKeyError, PulumiYamlLoader

ConfigOverride = tuple[str, str, bool]
"""`--config KEY=VALUE` on the command line: (key, value, secret)."""


# Runtimes `gpustack plan` can start (gpustack/hosts/); Pulumi's `runtime.name` values.
SUPPORTED_RUNTIMES = ("python", "nodejs")


PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml")
"""The names the Pulumi CLI accepts for a project file, in the order it looks."""


class ProjectError(Exception):
    """The directory is not a runnable Pulumi project, or the stack file is unusable."""


@dataclass(frozen=True)
class StackProject:
    """A Pulumi project with one stack's config, ready to run.

    `runtime` is `Pulumi.yaml`'s `runtime.name` and `runtime_options` its `runtime.options`
    (e.g. `{"virtualenv": ".venv", "toolchain": "pip"}`). `main` is the entry point: the
    `__main__.py` file for Python, the `main` file or directory for Node.js.
    """

    name: str
    program_dir: Path
    main: Path
    stack: str
    stack_file: Path
    config: dict[str, str]
    secret_keys: list[str]
    runtime: str = "python"
    runtime_options: dict[str, Any] = field(default_factory=dict, compare=False)
    notes: tuple[str, ...] = ()
    """What was assumed while reading the project (no stack file): shown as the plan's notes."""


def load_project(
    program_dir: Path, stack: str, overrides: Sequence[ConfigOverride] = ()
) -> StackProject:
    """Load `Pulumi.yaml` and `Pulumi.<stack>.yaml` from `program_dir`, then apply overrides."""
    program_dir = program_dir.resolve()
    project_file = _find_project_file(program_dir)
    spec = _read_yaml(project_file)
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ProjectError(f"{project_file}: `name` is required")
    runtime = spec.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if runtime_name not in SUPPORTED_RUNTIMES:
        allowed = ", ".join(SUPPORTED_RUNTIMES)
        raise ProjectError(
            f"{project_file}: runtime is {runtime_name!r}; gpustack plan runs {allowed} programs"
        )
    options = runtime.get("options") if isinstance(runtime, dict) else None
    if options is not None and not isinstance(options, dict):
        raise ProjectError(f"{project_file}: `runtime.options` must be a mapping")
    main = _entry_point(program_dir, spec.get("main"), runtime_name)
    config_dir = program_dir / spec.get("stackConfigDir", ".")
    stack_file = _stack_file(config_dir, stack)
    stack_spec = _read_yaml(stack_file) if stack_file.exists() else {}
    notes: tuple[str, ...] = ()
    if not stack_file.exists():
        notes = (
            f"no stack file ({stack_file.name}): stack {stack} has only the project's config "
            "defaults and --config values, as a new stack (`pulumi stack init`) would",
        )
    project_config = _section(project_file, spec, "config")
    stack_config = _section(stack_file, stack_spec, "config")
    _check_declared_config(
        name, stack, project_file, stack_file, project_config, stack_config, overrides
    )
    config, secret_keys = _config(name, project_config, stack_config, overrides)
    return StackProject(
        name,
        program_dir,
        main,
        stack,
        stack_file,
        config,
        secret_keys,
        runtime=runtime_name,
        runtime_options=dict(options or {}),
        notes=notes,
    )


def find_program(start: Path) -> Path | None:
    """The closest directory at or above `start` holding a Pulumi.yaml, or None.

    The Pulumi CLI finds its project the same way (`DetectProjectPathFrom` walks up from the
    working directory), so `gpustack plan` and `pulumi preview` plan the same program.
    """
    start = start.resolve()
    for directory in (start, *start.parents):
        if any((directory / name).is_file() for name in PROJECT_FILES):
            return directory
    return None


def available_stacks(program_dir: Path) -> list[str]:
    """Stacks with a `Pulumi.<stack>.yaml` file beside the project file."""
    return sorted(
        {
            path.name[len("Pulumi.") :].rsplit(".", 1)[0]
            for pattern in ("Pulumi.*.yaml", "Pulumi.*.yml")
            for path in program_dir.glob(pattern)
        }
    )


def _find_project_file(program_dir: Path) -> Path:
    for candidate in PROJECT_FILES:
        if (program_dir / candidate).exists():
            return program_dir / candidate
    raise ProjectError(f"{program_dir}: no Pulumi.yaml here; pass --program <project dir>")


def _entry_point(program_dir: Path, main: str | None, runtime: str) -> Path:
    target = program_dir / main if main else program_dir
    if runtime != "python":
        # Node.js resolves its entry (package.json `main`, index.ts/js) in its own host.
        if not target.exists():
            raise ProjectError(f"{program_dir}: `main` {main!r} does not exist")
        return target
    entry = target / "__main__.py" if target.is_dir() else target
    if not entry.exists():
        raise ProjectError(f"{program_dir}: no program entry point ({entry.name} not found)")
    return entry


def _stack_file(config_dir: Path, stack: str) -> Path:
    """The stack's config file; a path that does not exist when the project has none at all.

    A stack's file is optional to Pulumi (a stack made with `pulumi stack init` and no `pulumi
    config set` has none, and public examples often ship without one), so a project with no
    stack file plans with an empty stack config. Where other stacks have files, a missing one
    is far more likely a mistyped `--stack`, and is refused with the stacks that exist.
    """
    for suffix in (".yaml", ".yml"):
        path = config_dir / f"Pulumi.{stack}{suffix}"
        if path.exists():
            return path
    known = available_stacks(config_dir)
    if not known:
        return config_dir / f"Pulumi.{stack}.yaml"
    raise ProjectError(
        f"no stack file Pulumi.{stack}.yaml in {config_dir} (stacks here: {', '.join(known)})"
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        # A safe loader (no arbitrary Python objects) with the duplicate-key check, reading
        # scalars as the Pulumi CLI does (`yes` and `22:00` are text; see PulumiYamlLoader).
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=PulumiYamlLoader)
    except UnicodeDecodeError:
        raise ProjectError(f"{path}: not a text file (not UTF-8); expected YAML") from None
    except OSError as error:
        raise ProjectError(f"{path}: cannot read ({error.strerror})") from None
    except DuplicateKeyError as error:
        raise ProjectError(f"{path.name}, {error}") from None
    except yaml.YAMLError as error:
        raise ProjectError(f"{path.name}: not valid YAML ({error})") from None
    except RecursionError:
        raise ProjectError(f"{path.name}: nested too deeply to read") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ProjectError(f"{path.name}: expected a mapping at the top level")
    return loaded


def _section(path: Path, spec: dict[str, Any], key: str) -> dict[str, Any]:
    """A top-level mapping section such as `config:`; absent or empty is {}."""
    value = spec.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProjectError(
            f"{path.name}: `{key}:` must be a mapping of `namespace:key: value` entries, "
            f"not a {type(value).__name__}"
        )
    odd = [repr(name) for name in value if not isinstance(name, str)]
    if odd:
        raise ProjectError(f"{path.name}: `{key}:` keys must be text; got {', '.join(odd)}")
    return value


def parse_override(text: str, secret: bool = False) -> ConfigOverride:
    """`KEY=VALUE` as `pulumi up --config` takes it; the key may be `namespace:key`."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        flag = "--config-secret" if secret else "--config"
        raise ProjectError(
            f"{flag} {text!r}: expected KEY=VALUE, e.g. azure-native:location=eastus"
        )
    return key.strip(), value, secret


def _config(
    project: str,
    project_config: dict[str, Any],
    stack_config: dict[str, Any],
    overrides: Sequence[ConfigOverride] = (),
) -> tuple[dict[str, str], list[str]]:
    """Merge project defaults, stack values and overrides into the CLI's config map.

    Keys are `namespace:key`, values text (objects and arrays as JSON). A `secure:` value cannot
    be decrypted without the stack's secrets provider: it becomes a placeholder (32 bytes as
    base64, derived from the key, so programs that decode it as a key still work) and the key is
    secret. As the Pulumi CLI does for structured config, a `secure:` value nested in an object
    or array makes the whole key secret. An override replaces the value; a key that was secret
    stays secret.
    """
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, declared in project_config.items():
        default = declared.get("default") if isinstance(declared, dict) else declared
        if isinstance(declared, dict) and "value" in declared:
            default = declared["value"]
        if default is not None:
            values[_qualify(project, key)] = _encode(default)
    for key, value in stack_config.items():
        full_key = _qualify(project, key)
        decrypted, secure = _without_secure_values(value, full_key)
        values[full_key] = _encode(decrypted)
        if secure:
            secret_keys.append(full_key)
    for key, value, secret in overrides:
        full_key = _qualify(project, key)
        values[full_key] = value
        if secret and full_key not in secret_keys:
            secret_keys.append(full_key)
    return values, secret_keys


def _check_declared_config(
    project: str,
    stack: str,
    project_file: Path,
    stack_file: Path,
    project_config: dict[str, Any],
    stack_config: dict[str, Any],
    overrides: Sequence[ConfigOverride],
) -> None:
    """Refuse what the Pulumi CLI refuses before it runs a program: a project key `Pulumi.yaml`
    declares with no `default` or `value` that the stack does not set, then a stack value not
    of its declared `type:` or in plain text where it is declared `secret: true` (pulumi/pulumi
    `sdk/go/common/workspace/config.go`, `mergeConfig` and `validateStackConfigValue`).
    """
    given: dict[str, tuple[Any, str]] = {}
    for key, value in stack_config.items():
        given[_qualify(project, key)] = (value, stack_file.name)
    secret_overrides = set()
    for key, value, secret in overrides:
        given[_qualify(project, key)] = (value, "--config")
        if secret:
            secret_overrides.add(_qualify(project, key))
    declarations = {
        key: declared for key, declared in project_config.items() if isinstance(declared, dict)
    }  # others are `key: value`, the short form of `value:`
    missing = [
        key
        for key, declared in declarations.items()
        if _qualify(project, key) not in given
        and declared.get("default") is None
        and declared.get("value") is None
        and _qualify(project, key).startswith(f"{project}:")
    ]
    if missing:
        _refuse_missing(stack, project_file, stack_file, missing)
    # Then, in the CLI's order (sorted keys), each given value against its declared type.
    for key in sorted(declarations):
        declared = declarations[key]
        found = given.get(_qualify(project, key))
        if found is None or "type" not in declared:
            continue
        value, where = found
        secure = _without_secure_values(value, key)[1] or (
            where == "--config" and _qualify(project, key) in secret_overrides
        )
        if declared.get("secret") and not secure:
            raise ProjectError(
                f"{where}: key '{_qualify(project, key)}' is declared `secret: true` in "
                f"{project_file.name} but given in plain text; Pulumi refuses the stack "
                f"(\"Stack '{stack}' with configuration key '{key}' must be encrypted as it's "
                f'secret"). Set it with `pulumi config set --secret` (here: --config-secret).'
            )
        type_name = declared["type"]
        if secure or _is_of_config_type(value, type_name):
            continue
        raise ProjectError(
            f"{where}: key '{_qualify(project, key)}' is {json.dumps(value)}, but "
            f"{project_file.name} declares it `type: {type_name}`; Pulumi refuses the stack "
            f"(\"Stack '{stack}' with configuration key '{key}' must be of type "
            f"'{type_name}'\"). Give a value of that type."
        )


def _refuse_missing(stack: str, project_file: Path, stack_file: Path, missing: list[str]) -> None:
    names = [f"'{name}'" for name in sorted(missing)]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    plural, them = ("values", "them") if len(names) > 1 else ("value", "it")
    raise ProjectError(
        f"Stack '{stack}' is missing configuration {plural} {listed}: {project_file.name} "
        f"declares {them} with no `default`, and the Pulumi CLI refuses such a stack; set "
        f"{them} in {stack_file.name} or with --config KEY=VALUE."
    )


def _is_of_config_type(value: Any, type_name: Any) -> bool:
    """Whether a stack value passes Pulumi's `ValidateConfigValue` for a declared scalar type.

    The CLI hands scalars over as text: an integer is text `strconv.Atoi` reads, a boolean is
    `true` or `false`, a string any scalar. Other types (arrays) are not checked here.
    """
    if isinstance(value, dict | list):
        return type_name not in ("string", "integer", "boolean")
    text = _encode(value)
    if type_name == "integer":
        return re.fullmatch(r"[+-]?[0-9]+", text) is not None
    if type_name == "boolean":
        return text in ("true", "false")
    return True


def _without_secure_values(value: Any, seed: str) -> tuple[Any, bool]:
    """`value` with each `{secure: ...}` replaced by a placeholder; True when there was one."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return secret_text(seed), True
    if isinstance(value, dict):
        pairs = {k: _without_secure_values(v, f"{seed}.{k}") for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_without_secure_values(v, f"{seed}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def _qualify(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _encode(value: Any) -> str:
    """The CLI hands scalars over as text and objects and arrays as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        # Go's JSON encoding, which the CLI uses for numbers: 2.0 is handed over as "2".
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)
