"""Run the hastack program under Pulumi mocks and record what the engine would see.

This is the offline stand-in for `pulumi preview`: the real program and the real
provider SDKs run, but a recording monitor answers the RPCs. Each RegisterResource
request is kept whole, so tests, the plan and the policy pack all look at the same
camelCase inputs and resource options (protect, parent, dependsOn, ...) that the
engine hands to a CrossGuard pack.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from . import fakes

PROJECT = "hastack"
PROJECT_DIR = Path(__file__).resolve().parent.parent
PROGRAM = PROJECT_DIR / "__main__.py"

# How the Pulumi wire format marks a secret value.
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


@dataclass
class RecordedResource:
    """One RegisterResource request, as the engine (and a policy pack) receives it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    # Inputs in wire form: camelCase keys, secrets still wrapped in their signature.
    wire_inputs: dict[str, Any]
    dependencies: list[str]
    protect: bool
    delete_before_replace: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    provider: str

    @property
    def inputs(self) -> dict[str, Any]:
        """Inputs with secrets unwrapped: what a policy reads as `args.props`."""
        return unwrap_secrets(self.wire_inputs)


@dataclass
class ProgramRun:
    """Everything one run of the program registered, in registration order."""

    resources: list[RecordedResource] = field(default_factory=list)
    # Stack outputs in wire form (secrets still wrapped).
    wire_outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> RecordedResource:
        found = self.of_type(type_token)
        assert len(found) == 1, f"expected one {type_token}, found {len(found)}"
        return found[0]

    def by_name(self, name: str) -> RecordedResource:
        return next(r for r in self.resources if r.name == name)

    def by_urn(self, urn: str) -> RecordedResource:
        return next(r for r in self.resources if r.urn == urn)

    @property
    def outputs(self) -> dict[str, Any]:
        return unwrap_secrets(self.wire_outputs)


def is_secret(value: Any) -> bool:
    """Is this wire-form value a Pulumi secret (wrapped in the secret signature)?"""
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def unwrap_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if is_secret(value):
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def _struct_to_dict(struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct, preserving_proto_field_name=True) if struct else {}


def _mark_secret_outputs(state, secret_keys) -> None:
    """Wrap the outputs a provider declares secret, as the engine does (the stock mock does not)."""
    for key in secret_keys:
        if key in state.fields and not _is_wire_secret(state.fields[key]):
            plain = json_format.MessageToDict(state.fields[key])
            state.fields[key].Clear()
            json_format.ParseDict({SECRET_SIG_KEY: SECRET_SIG, "value": plain}, state.fields[key])


def _is_wire_secret(value) -> bool:
    return value.HasField("struct_value") and SECRET_SIG_KEY in value.struct_value.fields


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that keeps every registration request and the stack outputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks, run: ProgramRun):
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        _mark_secret_outputs(response.object, request.additionalSecretOutputs)
        if request.type != "pulumi:pulumi:Stack":
            self.run.resources.append(
                RecordedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=request.custom,
                    parent=request.parent,
                    wire_inputs=_struct_to_dict(request.object),
                    dependencies=list(request.dependencies),
                    protect=bool(request.protect),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    retain_on_delete=bool(request.retainOnDelete),
                    ignore_changes=list(request.ignoreChanges),
                    provider=request.provider,
                )
            )
        return response

    def RegisterResourceOutputs(self, request):
        if "::pulumi:pulumi:Stack::" in request.urn:
            self.run.wire_outputs = _struct_to_dict(request.outputs)
        return super().RegisterResourceOutputs(request)


class ProgramError(Exception):
    """The program stopped with an error (for example invalid stack config).

    `run` holds whatever was registered before it stopped (for config errors: nothing).
    """

    def __init__(self, message: str, run: ProgramRun):
        super().__init__(message)
        self.run = run


def run_under_mocks(
    build: Callable[[], None],
    stack: str,
    config: dict[str, str] | None = None,
    *,
    preview: bool = False,
    run: ProgramRun | None = None,
    secret_keys: list[str] | None = None,
) -> ProgramRun:
    """Run `build` inside a fresh root stack, under the recording monitor and the fakes,
    recording into `run` (a new one by default).

    `config` is what the engine passes a program: `{"hastack:app": "<json>", ...}`, with
    `secret_keys` naming the keys that hold a `--secret` value.
    Each call starts from clean runtime state, so runs in one process do not mix.
    Exceptions from `build` propagate; `run` then holds what was registered before.
    """
    run = run if run is not None else ProgramRun()
    monitor = RecordingMonitor(fakes.ProviderFakes(), run)
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config or {}), list(secret_keys or []))
    pulumi_mocks.set_mocks(fakes.ProviderFakes(), project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    # set_mocks registers a root of its own; run_in_stack creates the real one.
    pulumi_settings.ROOT.set(None)
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()
    _sync_await(run_in_stack(build))
    return run


def run_program(config: dict[str, str], stack: str, *, preview: bool = False,
                secret_keys: list[str] | None = None) -> ProgramRun:
    """Run `__main__.py` for `stack` with raw Pulumi config (`secret_keys`: the keys set
    with `--secret`, decrypted in `config` as the engine hands them over), under mocks.

    Raises ProgramError with the program's message when it fails.
    """

    def program() -> None:
        runpy.run_path(str(PROGRAM), run_name="__main__")

    run = ProgramRun()
    try:
        return run_under_mocks(program, stack, config, preview=preview, run=run, secret_keys=secret_keys)
    except pulumi.RunError as err:
        raise ProgramError(str(err), run) from None


def stack_file_config(path: Path) -> dict[str, str]:
    """Read a Pulumi.<stack>.yaml as the engine passes it: objects JSON-encoded, scalars as text.

    Project-level defaults in Pulumi.yaml are applied first, as the CLI does.
    """
    import yaml

    merged: dict[str, Any] = {}
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text()) or {}
    for key, spec in (project.get("config") or {}).items():
        if isinstance(spec, dict) and "default" in spec:
            merged[key if ":" in key else f"{PROJECT}:{key}"] = spec["default"]
    stack_doc = yaml.safe_load(Path(path).read_text()) or {}
    merged.update(stack_doc.get("config") or {})
    return {key: _as_engine_text(value) for key, value in merged.items()}


def _as_engine_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def run_stack_file(path: Path, stack: str | None = None) -> ProgramRun:
    """Run the program for a stack file, the stack name taken from `Pulumi.<stack>.yaml`."""
    path = Path(path)
    name = stack or path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return run_program(stack_file_config(path), name)
