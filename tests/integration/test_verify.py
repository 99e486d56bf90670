"""`python -m verify` against HAProxy (the rendered config) in front of real app processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from loopback.app import AppProcess
from loopback.certificates import issue_loopback_certificates
from loopback.haproxy import UP, LoopbackHaproxy, loopback_settings
from loopback.ports import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "verify", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@contextmanager
def load_balancer(replicas: list[AppProcess], workdir: Path, tls_bundle: Path | None = None) -> Iterator[LoopbackHaproxy]:
    """HAProxy from the rendered config in front of `replicas`, once it sees all UP
    (terminating HTTPS with `tls_bundle`, a certificate + key PEM, when given)."""
    settings = loopback_settings({replica.node_id: replica.port for replica in replicas}, "/readyz", tls_bundle=tls_bundle)
    with LoopbackHaproxy(settings, workdir) as haproxy:
        for replica in replicas:
            haproxy.wait_for_server(replica.node_id, UP, deadline_s=15)
        yield haproxy


def result_lines(output: str) -> dict[str, str]:
    """`{check letter: table row}` from verify's table."""
    return {line[:3]: line for line in output.splitlines() if line.startswith("(")}


@pytest.mark.usefixtures("haproxy_installed")
def test_verify_passes_against_haproxy_in_front_of_three_replicas(start_apps, fresh_database, workdir):
    replicas = start_apps(3, fresh_database)
    with load_balancer(replicas, workdir) as haproxy:
        verdict = run_verify(haproxy.url, "--replicas", "3")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    rows = result_lines(verdict.stdout)
    assert sorted(rows) == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    assert all("PASS" in row for row in rows.values()), verdict.stdout
    assert "app-0, app-1, app-2" in rows["(a)"]


@pytest.mark.usefixtures("haproxy_installed")
def test_verify_checks_an_https_stack_against_its_ca_and_refuses_it_without(start_apps, fresh_database, workdir):
    certificates = issue_loopback_certificates(workdir)
    replicas = start_apps(2, fresh_database)
    with load_balancer(replicas, workdir, certificates.bundle_file) as haproxy:
        trusted = run_verify(haproxy.url, "--replicas", "2", "--cacert", str(certificates.ca_file))
        untrusted = run_verify(haproxy.url, "--replicas", "2")
    assert haproxy.url.startswith("https://")
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert untrusted.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr, untrusted.stderr


@pytest.mark.usefixtures("haproxy_installed")
def test_verify_fails_and_says_why_when_one_replica_has_its_own_storage(start_apps, fresh_database, workdir):
    own_storage = workdir / "app-2-local"
    own_storage.mkdir()
    replicas = start_apps(3, fresh_database, storage_paths={"app-2": own_storage})
    with load_balancer(replicas, workdir) as haproxy:
        verdict = run_verify(haproxy.url, "--replicas", "3")
    assert verdict.returncode == 1, verdict.stdout + verdict.stderr
    rows = result_lines(verdict.stdout)
    assert "FAIL" in rows["(b)"] and "app-2" in rows["(b)"] and "STORAGE_PATH" in rows["(b)"], verdict.stdout
    assert all("PASS" in rows[check] for check in ("(a)", "(c)", "(d)", "(e)")), verdict.stdout
    assert "1 failed" in verdict.stdout


@pytest.mark.usefixtures("haproxy_installed")
def test_verify_fails_when_fewer_replicas_answer_than_expected(start_apps, fresh_database, workdir):
    replicas = start_apps(2, fresh_database)
    with load_balancer(replicas, workdir) as haproxy:
        verdict = run_verify(haproxy.url, "--replicas", "3", "--jobs-deadline", "5")
    assert verdict.returncode == 1
    rows = result_lines(verdict.stdout)
    assert "FAIL" in rows["(a)"] and "2/3" in rows["(a)"], verdict.stdout


@pytest.mark.parametrize("args, message", [
    ((), "the following arguments are required"),
    (("http://127.0.0.1:8080",), "--replicas"),
    (("http://127.0.0.1:8080", "--replicas", "0"), "must be > 0"),
    (("http://127.0.0.1:8080", "--replicas", "many"), "must be a number"),
    (("localhost:8080", "--replicas", "2"), "URL must look like http://host:port"),
])
def test_bad_arguments_get_one_line_and_exit_2(args, message):
    verdict = run_verify(*args)
    assert verdict.returncode == 2
    assert verdict.stdout == ""
    assert len(verdict.stderr.strip().splitlines()) == 1, verdict.stderr
    assert message in verdict.stderr


def test_an_unreachable_url_gets_one_line_and_exit_2():
    verdict = run_verify(f"http://127.0.0.1:{free_port()}", "--replicas", "2")
    assert verdict.returncode == 2
    assert verdict.stderr.strip().splitlines() == [verdict.stderr.strip()]
    assert "cannot reach" in verdict.stderr
