"""The out-of-process engine: programs run in their own runtime against our gRPC monitor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpustack.engine import Plan, ProgramError, capture, run_plan
from gpustack.hosts.python import STAMP, interpreter
from gpustack.project import load_project
from gpustack.report import plan_document, render_json
from tests.conftest import ENVIRONMENTS, FIXTURES, ROOT, planned, previewed

PROGRAMS = FIXTURES / "programs"
_out_of_process: dict[str, Plan] = {}


def out_of_process(stack: str) -> Plan:
    """This project's plan through `gpustack plan`'s path, once per session."""
    if stack not in _out_of_process:
        _out_of_process[stack] = run_plan(ROOT, stack)
    return _out_of_process[stack]


def plan_bytes(plan: Plan) -> str:
    return render_json(plan_document(plan))


def gpustack_plan(
    program: Path, *args: str, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpustack", "plan", "--program", str(program), "--no-policy",
         "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_out_of_process_plan_is_byte_identical_to_in_process(stack: str) -> None:
    assert plan_bytes(out_of_process(stack)) == plan_bytes(planned(stack))


def test_preview_plans_are_identical_too() -> None:
    in_process = run_plan(ROOT, "dev", preview=True, in_process=True)
    assert plan_bytes(previewed("dev")) == plan_bytes(in_process)


CALLBACK_PROGRAM = """
import pulumi
import pulumi_random as random

slow = pulumi.Config().require("slow")
gate = random.RandomPet("gate")


def make(prefix):
    first = random.RandomPet(f"{prefix}-first")
    random.RandomPet(f"{prefix}-second", prefix=first.id)


for prefix in ("a", "b"):
    # The slow one's callback waits for an RPC answer; the other runs at once.
    value = pulumi.Output.from_input(prefix)
    if prefix == slow:
        value = gate.id.apply(lambda _, p=prefix: p)
    value.apply(make)
random.RandomPet("top")
"""


@pytest.mark.parametrize("in_process", [False, True])
def test_resources_made_in_callbacks_are_listed_in_the_same_order_whichever_runs_first(
    tmp_path: Path, in_process: bool
) -> None:
    # Before: in the order the callbacks happened to run, which the timing of RPC answers
    # decides (1 run in 6 differed for two `apply`s that each create resources).
    (tmp_path / "Pulumi.yaml").write_text("name: callbacks\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(CALLBACK_PROGRAM)
    orders = []
    for slow in ("a", "b"):
        (tmp_path / "Pulumi.dev.yaml").write_text(f"config:\n  callbacks:slow: {slow}\n")
        plan = run_plan(tmp_path, "dev", in_process=in_process)
        orders.append([r.name for r in plan.resources])
    expected = ["gate", "top", "a-first", "a-second", "b-first", "b-second"]
    assert orders == [expected, expected]


def test_same_program_gives_the_same_resource_order_run_after_run() -> None:
    first = out_of_process("prod")
    again = run_plan(ROOT, "prod")
    assert [r.urn for r in again.resources] == [r.urn for r in first.resources]
    assert plan_bytes(again) == plan_bytes(first)


def test_resources_come_in_constructor_order_parents_first() -> None:
    plan = out_of_process("prod")
    seen: set[str] = set()
    for resource in plan.resources:
        assert resource.parent is None or resource.parent in seen or "pulumi:pulumi:Stack" in (
            resource.parent
        ), resource.urn
        seen.add(resource.urn)


def test_a_later_in_process_plan_gets_its_own_root_stack() -> None:
    capture(lambda: None, project="first", stack="one")
    plan = run_plan(FIXTURES / "foreign_program", "dev", in_process=True)
    top_level = {r.parent for r in plan.resources if "$" not in r.urn.split("::")[2]}
    stack = "urn:pulumi:dev::foreign-inference::pulumi:pulumi:Stack::foreign-inference-dev"
    assert top_level == {stack}


def test_an_old_sdk_program_is_planned_in_its_own_virtualenv() -> None:
    # The first run creates tests/fixtures/programs/py_old_sdk/.venv from its requirements.txt
    # (pulumi 3.96, azure-native 2.21: minutes on a cold cache); later runs reuse it.
    program = PROGRAMS / "py_old_sdk"
    result = gpustack_plan(program, timeout=2400)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["outputs"]["python"] == str(program / ".venv" / "bin" / "python")
    by_name = {r["name"]: r for r in document["resources"]}
    assert by_name["legacy-ip"]["inputs"]["publicIPAllocationMethod"] == "Static"
    assert by_name["legacy-appinsights"]["type"] == "azure-native:insights:Component"
    assert "/components/legacy-appinsights" in by_name["legacy-appinsights"]["id"]


def test_an_old_sdk_programs_lambda_error_names_its_line() -> None:
    result = gpustack_plan(PROGRAMS / "py_old_sdk_lambda", timeout=2400)
    assert result.returncode == 2
    assert "KeyError: 'rg-old'" in result.stderr
    assert "at __main__.py:7" in result.stderr
    assert "Traceback" not in result.stderr


def test_duplicate_urn_fails_with_exit_2_naming_the_urn() -> None:
    result = gpustack_plan(PROGRAMS / "py_duplicate_urn")
    assert result.returncode == 2
    urn = "urn:pulumi:dev::duplicate::azure-native:resources:ResourceGroup::rg"
    assert f"Duplicate resource URN '{urn}'" in result.stderr
    assert "(declared at __main__.py:5 and __main__.py:6)" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_duplicate_urn_is_refused_in_process_too() -> None:
    with pytest.raises(ProgramError, match="Duplicate resource URN"):
        run_plan(PROGRAMS / "py_duplicate_urn", "dev", in_process=True)


@pytest.mark.parametrize(
    ("stack", "says"),
    [
        ("zero", "the program called sys.exit(0)"),
        ("three", "the program called sys.exit(3)"),
        ("interrupt", "KeyboardInterrupt"),
    ],
)
def test_a_program_ending_the_process_fails_the_plan(stack: str, says: str) -> None:
    result = gpustack_plan(PROGRAMS / "py_exit", "--stack", stack)
    assert result.returncode == 2
    assert result.stderr.startswith("error: the program failed: ")
    assert says in result.stderr
    assert "at __main__.py:1" in result.stderr  # line 11 or 12: where it exited
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_error_in_an_apply_lambda_names_the_file_and_the_lambda_line() -> None:
    result = gpustack_plan(PROGRAMS / "py_lambda_error")
    assert result.returncode == 2
    assert "KeyError: 'lambda'" in result.stderr
    assert "at __main__.py:8" in result.stderr
    assert "group.name.apply(lambda name" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_mode_shows_the_traceback_down_to_the_lambda() -> None:
    result = gpustack_plan(PROGRAMS / "py_lambda_error", GPUSTACK_DEBUG="1")
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert 'py_lambda_error/__main__.py", line 8, in <lambda>' in result.stderr


def test_slow_callbacks_and_side_effects_finish_before_the_plan(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    result = gpustack_plan(PROGRAMS / "py_callbacks", GPUSTACK_TEST_MARKER=str(marker))
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "rg-callbacks"
    document = json.loads(result.stdout)
    (tagged,) = [r for r in document["resources"] if r["name"] == "tagged"]
    assert tagged["inputs"]["tags"] == {"source": "after-rg-callbacks"}
    assert "warning: callbacks fixture: the tags are computed late" in result.stderr


def test_a_program_running_too_long_is_stopped() -> None:
    # Starting Python and importing the SDKs alone takes longer than this.
    result = gpustack_plan(PROGRAMS / "py_callbacks", GPUSTACK_PLAN_TIMEOUT="0.3")
    assert result.returncode == 2
    assert "the program did not finish within 0.3 s and was stopped" in result.stderr
    assert "Traceback" not in result.stderr


def test_unbounded_output_is_stopped_and_fails_the_plan() -> None:
    result = gpustack_plan(PROGRAMS / "py_noisy")
    assert result.returncode == 2
    assert "wrote more than 8 MB to stdout and was stopped" in result.stderr
    assert len(result.stderr) < 10_000
    assert result.stdout == ""


def test_a_missing_module_is_the_environments_fault() -> None:
    result = gpustack_plan(PROGRAMS / "py_missing_module")
    assert result.returncode == 2
    assert result.stderr.startswith("error: the program's environment is not usable: ")
    assert "No module named 'pulumi_not_installed_anywhere'" in result.stderr
    assert "at __main__.py:3" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_module_requirements_txt_lists_but_no_virtualenv_has_says_to_name_one(
    tmp_path: Path,
) -> None:
    # Before: "add it to requirements.txt", where it already was: a project naming no
    # virtualenv (as many public examples) runs with gpustack's own interpreter.
    (tmp_path / "Pulumi.yaml").write_text("name: needs-azuread\nruntime: python\n")
    (tmp_path / "requirements.txt").write_text("pulumi>=3.0.0\npulumi_AzureAD>=5.0.0\n")
    (tmp_path / "__main__.py").write_text("import pulumi_azuread\n")
    result = gpustack_plan(tmp_path)
    assert result.returncode == 2
    assert "No module named 'pulumi_azuread'" in result.stderr
    assert "requirements.txt lists it" in result.stderr
    assert "runtime.options.virtualenv" in result.stderr
    assert "add it to requirements.txt" not in result.stderr


def test_virtualenv_is_created_once_and_reinstalled_when_requirements_change(
    tmp_path: Path,
) -> None:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: venvs\nruntime:\n  name: python\n  options:\n    virtualenv: env\n"
    )
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text("")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing to install\n")
    project = load_project(tmp_path, "dev")

    python = interpreter(project, [])
    assert python == tmp_path / "env" / "bin" / "python" and python.exists()
    stamp = tmp_path / "env" / STAMP
    created = stamp.read_text()
    first_mtime = python.resolve().stat().st_mtime_ns

    assert interpreter(project, []) == python
    assert stamp.read_text() == created

    requirements.write_text("# still nothing, but changed\n")
    assert interpreter(project, []) == python
    assert stamp.read_text() != created
    assert python.resolve().stat().st_mtime_ns == first_mtime  # reused, not recreated


def test_a_named_virtualenv_that_cannot_be_built_falls_back_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: novenv\nruntime:\n  name: python\n  options:\n    virtualenv: missing\n"
    )
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text("")
    notes: list[str] = []
    assert interpreter(load_project(tmp_path, "dev"), notes) == Path(sys.executable)
    assert "requirements.txt" in notes[0] and "'missing'" in notes[0]


def test_monitor_answers_feature_probes_honestly_and_keeps_the_root_and_logs() -> None:
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, resource_pb2, resource_pb2_grpc

    from gpustack.mocks import AzureMocks
    from gpustack.monitor_server import MonitorServer

    with MonitorServer(AzureMocks(), "proj", "dev") as server:
        channel = grpc.insecure_channel(server.address)
        monitor = resource_pb2_grpc.ResourceMonitorStub(channel)
        engine = engine_pb2_grpc.EngineStub(channel)

        def supports(feature: str) -> bool:
            request = resource_pb2.SupportsFeatureRequest(id=feature)
            return monitor.SupportsFeature(request).hasSupport

        # Features that need the engine to call back into the program are refused, so the SDK
        # fails loudly instead of the plan silently skipping them.
        assert supports("secrets") and supports("resourceReferences") and supports("aliasSpecs")
        assert not supports("transforms") and not supports("resourceHooks")
        assert not supports("outputValues") and not supports("someFutureFeature")
        info = monitor.GetDeploymentInfo(empty_pb2.Empty())
        assert resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS in info.supportedFeatures
        assert resource_pb2.RESOURCE_MONITOR_FEATURE_TRANSFORMS not in info.supportedFeatures

        stack = monitor.RegisterResource(
            resource_pb2.RegisterResourceRequest(type="pulumi:pulumi:Stack", name="proj-dev")
        )
        assert stack.urn == "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev"
        engine.SetRootResource(engine_pb2.SetRootResourceRequest(urn=stack.urn))
        root = engine.GetRootResource(engine_pb2.GetRootResourceRequest())
        assert root.urn == stack.urn
        engine.Log(engine_pb2.LogRequest(severity=engine_pb2.WARNING, message="careful"))
        channel.close()
    assert [(entry.severity, entry.message) for entry in server.logs] == [("WARNING", "careful")]
    assert server.registrations == []  # the root stack is not a planned resource


def test_a_urn_constructed_twice_keeps_the_place_of_its_first_construction() -> None:
    from gpustack.engine import PlannedResource, in_constructor_order

    def planned(name: str) -> PlannedResource:
        return PlannedResource(
            urn=f"urn:pulumi:dev::p::t::{name}", type="t", name=name, parent=None,
            custom=True, inputs={}, options={}, id=None, source=None,
        )  # fmt: skip

    group, app = planned("group"), planned("app")
    # The Node.js SDK constructs a resource again when it reads a reference to it back.
    order = [group.urn, app.urn, group.urn]
    assert [r.name for r in in_constructor_order([app, group], order)] == ["group", "app"]


def test_a_resource_declared_through_a_package_subclass_names_the_programs_line() -> None:
    # `new k8s.Provider(...)` or `new azure.Provider(...)` in TypeScript: the Node.js SDK's
    # source position is the package's own file; the stack it sends holds the program's line.
    from pulumi.runtime.proto import resource_pb2, source_pb2

    from gpustack.engine import _declared_at

    def at(path: str, line: int) -> source_pb2.SourcePosition:
        return source_pb2.SourcePosition(uri=f"file://{path}", line=line)

    package = "/work/app/node_modules/@pulumi/provider.ts"
    program = "/work/my app/cluster.ts"
    request = resource_pb2.RegisterResourceRequest(
        sourcePosition=at(package, 60),
        stackTrace=source_pb2.StackTrace(
            frames=[
                source_pb2.StackFrame(pc=at(package, 60)),
                source_pb2.StackFrame(pc=at(program.replace(" ", "%20"), 38)),
            ]
        ),
    )
    assert _declared_at(request) == (program, 38)
    # A position in the program's own files is the SDK's answer as it stands.
    request.sourcePosition.CopyFrom(at("/work/app/index.ts", 7))
    assert _declared_at(request) == ("/work/app/index.ts", 7)
    assert _declared_at(resource_pb2.RegisterResourceRequest()) is None


def test_the_monitor_hands_the_mocks_a_resource_reference_as_its_id() -> None:
    # A TypeScript component's args carry a resource as a reference. The planner has imported
    # azure-native's Python SDK (for the program's shapes), so the SDK's deserializer used to
    # construct a Python ResourceGroup from it, whose read had no engine ("Task was destroyed
    # but it is pending!" on stderr); the mocks get what they get for a Python program.
    import grpc
    import pulumi_azure_native.resources  # noqa: F401  (registers the module, as shapes do)
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import resource_pb2, resource_pb2_grpc

    from gpustack.engine import _RESOURCE_SIG, _SIG_KEY
    from gpustack.mocks import AzureMocks
    from gpustack.monitor_server import MonitorServer

    seen: list[object] = []

    class Recording(AzureMocks):
        def new_resource(self, args):  # type: ignore[no-untyped-def]
            seen.append(args.inputs.get("group"))
            return super().new_resource(args)

    group_urn = "urn:pulumi:dev::proj::azure-native:resources:ResourceGroup::rg"
    group_id = "/subscriptions/s/resourceGroups/rg"
    reference = {_SIG_KEY: _RESOURCE_SIG, "urn": group_urn, "id": group_id}
    props = struct_pb2.Struct()
    props.update({"group": reference})
    with MonitorServer(Recording(), "proj", "dev") as server:
        channel = grpc.insecure_channel(server.address)
        monitor = resource_pb2_grpc.ResourceMonitorStub(channel)
        monitor.RegisterResource(
            resource_pb2.RegisterResourceRequest(
                type="examples:cosmos:OrdersStore", name="orders", object=props
            )
        )
        channel.close()
    assert seen == [group_id]
    assert server.planner_faults == []
    # The plan records the reference as the engine shows it: the resource's URN.
    assert server.registrations[0].inputs == {"group": group_urn}


# --- Python toolchains: which interpreter, as Pulumi picks it ----------------------------------


def toolchain_program(directory: Path, runtime_options: str) -> Path:
    """A one-resource program that exports the interpreter running it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text(
        f"name: toolchain\nruntime:\n  name: python\n  options:\n{runtime_options}"
    )
    (directory / "Pulumi.dev.yaml").write_text("config:\n  azure-native:location: eastus\n")
    (directory / "__main__.py").write_text(
        "import sys\nimport pulumi\nfrom pulumi_azure_native import resources\n"
        "resources.ResourceGroup('rg')\npulumi.export('python', sys.executable)\n"
    )
    return directory


def borrowed_virtualenv(venv: Path) -> None:
    """A virtualenv that sees this interpreter's packages (no install, no network)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    import sysconfig

    (site,) = list(venv.glob("lib/python*/site-packages"))
    (site / "planner.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


def test_the_uv_toolchain_runs_the_projects_dot_venv(tmp_path: Path) -> None:
    program = toolchain_program(tmp_path / "uvprog", "    toolchain: uv\n")
    borrowed_virtualenv(program / ".venv")
    result = gpustack_plan(program)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outputs"]["python"] == str(program / ".venv/bin/python")


def test_the_uv_toolchain_puts_the_virtualenv_next_to_uv_lock(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text("version = 1\n")
    program = toolchain_program(tmp_path / "infra" / "gpu", "    toolchain: uv\n")
    borrowed_virtualenv(tmp_path / ".venv")
    result = gpustack_plan(program)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outputs"]["python"] == str(tmp_path / ".venv/bin/python")


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ("    toolchain: uv\n", "does not exist and `uv` is not on PATH"),
        ("    toolchain: poetry\n", "uses the poetry toolchain and `poetry` is not on PATH"),
        ("    toolchain: conda\n", "Pulumi's Python toolchains are pip, poetry and uv"),
    ],
)
def test_a_toolchain_that_cannot_run_is_the_environments_fault(
    tmp_path: Path, options: str, says: str
) -> None:
    program = toolchain_program(tmp_path / "prog", options)
    path = os.pathsep.join(str(Path(p)) for p in [Path(sys.executable).parent, "/usr/bin", "/bin"])
    result = gpustack_plan(program, PATH=path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: the program's environment is not usable: ")
    assert says in result.stderr
    assert "Traceback" not in result.stderr
