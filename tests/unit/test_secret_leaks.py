"""No generated secret reaches a resource input or a stack output in plaintext.

Every pulumi-random password resolves under the fakes to `fake-secret-<name>`, and every
pulumi-tls private key to one fake key, so any occurrence of that prefix or of the key's
text outside a Pulumi secret wrapper is a leak: into a container env, an uploaded file, a
label, a URL, an exported output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from plan.engine import PROJECT_DIR, SECRET_SIG, SECRET_SIG_KEY, ProgramRun, is_secret, run_program, run_stack_file, stack_file_config
from plan.fakes import FAKE_SECRET_PREFIX, fake_tls_key_marker
from tests.unit.mock_run import CONFIGURED_TLS, CONFIGURED_TLS_SECRET_KEYS, SHIPPED_STACK_FILES


def patroni_dev() -> ProgramRun:
    """The dev stack with `database.failover: patroni`: its own containers, env and uploads."""
    raw = stack_file_config(PROJECT_DIR / "Pulumi.dev.yaml")
    raw["hastack:database"] = json.dumps({**json.loads(raw["hastack:database"]), "failover": "patroni"})
    return run_program(raw, "dev")


def dev_with_configured_certificate() -> ProgramRun:
    """The dev stack serving a certificate and key from (secret) stack config."""
    raw = stack_file_config(PROJECT_DIR / "Pulumi.dev.yaml")
    load_balancer = json.loads(raw["hastack:loadBalancer"])
    raw["hastack:loadBalancer"] = json.dumps({**load_balancer, "tls": {**load_balancer["tls"], **CONFIGURED_TLS}})
    return run_program(raw, "dev", secret_keys=CONFIGURED_TLS_SECRET_KEYS)


# Every shipped stack file, plus the variations whose resources no shipped file declares.
SCANNED_RUNS: dict[str, Callable[[], ProgramRun]] = {
    **{path.name: (lambda path=path: run_stack_file(path)) for path in SHIPPED_STACK_FILES},
    "Pulumi.dev.yaml with failover patroni": patroni_dev,
    "Pulumi.dev.yaml with a configured certificate": dev_with_configured_certificate,
}


def find_secret_values(value: Any, path: str = "", inside_secret: bool = False) -> tuple[list[str], set[str]]:
    """(paths where a fake secret appears in plaintext, fake secrets seen inside a wrapper)."""
    leaks: list[str] = []
    wrapped: set[str] = set()
    if isinstance(value, dict):
        now_secret = inside_secret or is_secret(value)
        for key, item in value.items():
            more_leaks, more_wrapped = find_secret_values(item, f"{path}.{key}", now_secret)
            leaks += more_leaks
            wrapped |= more_wrapped
    elif isinstance(value, list):
        for index, item in enumerate(value):
            more_leaks, more_wrapped = find_secret_values(item, f"{path}[{index}]", inside_secret)
            leaks += more_leaks
            wrapped |= more_wrapped
    elif isinstance(value, str) and (FAKE_SECRET_PREFIX in value or fake_tls_key_marker() in value):
        if inside_secret:
            wrapped.add(value)
        else:
            leaks.append(path)
    return leaks, wrapped


def test_the_scan_finds_a_plaintext_secret_and_accepts_a_wrapped_one():
    wrapped_value = {SECRET_SIG_KEY: SECRET_SIG, "value": ["A=fake-secret-x"]}
    leaks, wrapped = find_secret_values({"envs": ["B=fake-secret-y", wrapped_value]})
    assert leaks == [".envs[0]"]
    assert wrapped == {"A=fake-secret-x"}


def test_every_shipped_stack_file_is_scanned():
    assert any(path.name == "Pulumi.dev.yaml" for path in SHIPPED_STACK_FILES)


@pytest.mark.parametrize("program_run", SCANNED_RUNS.values(), ids=SCANNED_RUNS.keys())
def test_no_generated_secret_is_plaintext_in_any_input_or_output(program_run):
    run = program_run()
    generated = {f"{FAKE_SECRET_PREFIX}{r.name}" for r in run.of_type("random:index/randomPassword:RandomPassword")}
    assert generated, "the stack generates no secrets, so this scan proves nothing"

    leaks: list[str] = []
    wrapped: set[str] = set()
    for resource in run.resources:
        more_leaks, more_wrapped = find_secret_values(resource.wire_inputs, resource.name)
        leaks += more_leaks
        wrapped |= more_wrapped
    output_leaks, output_wrapped = find_secret_values(run.wire_outputs, "outputs")
    leaks += output_leaks
    wrapped |= output_wrapped

    assert leaks == []
    # The secrets do flow into inputs and outputs (wrapped), so the scan had something to find.
    assert wrapped, "no generated secret reached any input or output"
    if run.of_type("tls:index/privateKey:PrivateKey"):
        assert any(fake_tls_key_marker() in value for value in wrapped), "no private key was scanned"
