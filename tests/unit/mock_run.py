"""Helpers for the Docker mocks tests: run Pulumi code under plan.engine's recording
monitor and read the recorded inputs the way the engine (and the policy pack) sees them."""

from __future__ import annotations

import re
from collections.abc import Callable

from plan.engine import PROJECT_DIR, ProgramRun, RecordedResource, run_under_mocks
from plan.fakes import FAKE_SECRET_PREFIX

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
BUILT_IMAGE = "docker:index/image:Image"

# Every stack file the product ships; checks that must hold for all of them glob this.
SHIPPED_STACK_FILES = sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))


# A certificate and key as a user sets them (`pulumi config set --secret --path ...`): the
# key carries the fake-secret prefix, so the leak scan finds it wherever it escapes.
CONFIGURED_TLS = {
    "certificate": "-----BEGIN CERTIFICATE-----\nY29uZmlndXJlZA==\n-----END CERTIFICATE-----\n",
    "key": f"-----BEGIN PRIVATE KEY-----\n{FAKE_SECRET_PREFIX}configured-tls-key\n-----END PRIVATE KEY-----\n",
}
# The raw key that then holds a secret: Pulumi marks the whole top-level key.
CONFIGURED_TLS_SECRET_KEYS = ["hastack:loadBalancer"]


def run_components(build: Callable[[], None], stack: str = "dev") -> ProgramRun:
    """Run `build` (declares components, may `pulumi.export`) the way plan.engine runs
    __main__.py: the same recording monitor and the same fakes."""
    return run_under_mocks(build, stack)


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
