"""Helpers for the Docker mocks tests: run Pulumi code under plan.engine's recording
monitor and read the recorded inputs the way the engine (and the policy pack) sees them."""

from __future__ import annotations

import re
from collections.abc import Callable

from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from plan import fakes
from plan.engine import PROJECT, PROJECT_DIR, ProgramRun, RecordedResource, RecordingMonitor

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
BUILT_IMAGE = "docker:index/image:Image"

# Every stack file the product ships; checks that must hold for all of them glob this.
SHIPPED_STACK_FILES = sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))


def run_components(build: Callable[[], None], stack: str = "dev") -> ProgramRun:
    """Run `build` (declares components, may `pulumi.export`) as plan.engine.run_program
    runs __main__.py: the same recording monitor and the same fakes."""
    run = ProgramRun()
    monitor = RecordingMonitor(fakes.ProviderFakes(), run)
    pulumi_settings.ROOT.set(None)
    pulumi_mocks.set_mocks(fakes.ProviderFakes(), project=PROJECT, stack=stack, preview=False, monitor=monitor)
    # set_mocks registers a root of its own; run_in_stack creates the real one.
    pulumi_settings.ROOT.set(None)
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()
    _sync_await(run_in_stack(build))
    return run


def env_of(container: RecordedResource) -> dict[str, str]:
    """A container's `envs` list (secrets unwrapped) as a dict."""
    return dict(entry.split("=", 1) for entry in container.inputs.get("envs", []))


def upload(container: RecordedResource, path_prefix: str) -> str:
    """The content of the one file uploaded under `path_prefix`."""
    found = [u["content"] for u in container.inputs.get("uploads", []) if u["file"].startswith(path_prefix)]
    assert len(found) == 1, f"{container.name}: expected one upload under {path_prefix}, found {len(found)}"
    return found[0]


def containers(run: ProgramRun, name_prefix: str) -> list[RecordedResource]:
    """Containers whose resource name starts with `name_prefix`, replica-1 before
    replica-10 (registration order is not deterministic)."""
    found = [r for r in run.of_type(CONTAINER) if r.name.startswith(name_prefix)]
    return sorted(found, key=lambda r: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", r.name)])


def app_replicas(run: ProgramRun) -> list[RecordedResource]:
    return containers(run, "app-")
