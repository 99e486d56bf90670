"""The swarm platform's rendered haproxy.cfg, run by Debian's real haproxy: it passes
`haproxy -c` (with HTTPS too, its certificate made by the real openssl), and its
`server-template` over `tasks.<service>` finds the app's tasks through a DNS server
(loopback/dns.py, standing in for Docker's embedded DNS), follows tasks that come and go,
and health-checks each one; with TLS, HTTPS through those tasks verifies against the CA."""

from __future__ import annotations

import dataclasses
import json
import ssl
import urllib.request
from collections import Counter
from pathlib import Path

import httpx
import pytest

from components.config import HealthCheckConfig, LoadBalancerConfig, LoadBalancerTlsConfig
from components.render.haproxy import READ_BACKEND, render_haproxy_cfg
from components.swarm.common import secret_path
from components.swarm.load_balancer import CERTIFICATE_SECRET, LoadBalancerArgs, haproxy_settings
from loopback.certificates import LoopbackCertificates, issue_loopback_certificates
from loopback.dns import TaskDns
from loopback.haproxy import DOWN, UP, LoopbackHaproxy, check_config
from loopback.ports import free_port, wait_until
from loopback.recording_replica import READ_READY_PATH, WRITE_READY_PATH, DeathToken, ReceiptLog, RecordingReplica

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("haproxy_installed")]

APP_SERVICE = "hastack-onprem-app"
TASKS = f"tasks.{APP_SERVICE}"
# Three "tasks" on three loopback addresses, one port, as Swarm gives tasks on an overlay.
TASK_ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
DISCOVERY_DEADLINE_S = 10


def swarm_settings(app_port: int, tls: bool = False):
    config = LoadBalancerConfig(health_check=HealthCheckConfig(), tls=LoadBalancerTlsConfig(enabled=tls))
    args = LoadBalancerArgs(config=config, networks=(), app_service=APP_SERVICE, app_port=app_port, app_replicas=3,
                            health_path=WRITE_READY_PATH, read_health_path=READ_READY_PATH)
    return haproxy_settings(args)


@pytest.fixture
def certificates(tmp_path: Path) -> LoopbackCertificates:
    directory = tmp_path / "tls"
    directory.mkdir()
    return issue_loopback_certificates(directory)


def test_rendered_swarm_config_passes_haproxy_check(tmp_path):
    """Exactly what the LB service's config holds, Docker's DNS address included."""
    text = render_haproxy_cfg(swarm_settings(8000))
    # Both backends, writes and reads, are the same tasks from DNS, each with its own check.
    assert text.count(f"server-template app 6 {TASKS}:8000 check") == 2
    result = check_config(text, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_swarm_config_with_tls_passes_haproxy_check(tmp_path, certificates):
    """The TLS config as shipped, its `crt` (the Swarm secret's mount) pointing at a real
    certificate + key PEM, which `haproxy -c` loads."""
    text = render_haproxy_cfg(swarm_settings(8000, tls=True))
    mounted = secret_path(CERTIFICATE_SECRET)
    assert text.count(f"bind *:8443 ssl crt {mounted} ") == 1
    result = check_config(text.replace(mounted, str(certificates.bundle_file)), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def addresses_up(lb: LoopbackHaproxy, backend: str = "app") -> list[str]:
    """The task addresses (without the port) of the template's servers that are UP."""
    return sorted(address.rsplit(":", 1)[0] for address, status in lb.servers_by_address(backend).items() if status == UP)


def served_by(url: str, count: int, method: str = "GET") -> Counter:
    names = Counter()
    for _ in range(count):
        request = urllib.request.Request(url + "/notes", method=method, data=b"{}" if method == "POST" else None,
                                         headers={"Idempotency-Key": "k"} if method == "POST" else {})
        with urllib.request.urlopen(request, timeout=5) as response:
            names[json.loads(response.read())["served_by"]] += 1
    return names


def test_dns_discovery_finds_follows_and_checks_the_tasks(tmp_path):
    port = free_port()
    log, token = ReceiptLog(), DeathToken()
    apps = [RecordingReplica(f"task-{index}", log, token, host=address, port=port) for index, address in enumerate(TASK_ADDRESSES)]
    try:
        with TaskDns({TASKS: TASK_ADDRESSES[:2]}) as dns:
            settings = dataclasses.replace(swarm_settings(port), resolver=dns.nameserver, bind_address="127.0.0.1",
                                           frontend_port=free_port(), stats_port=free_port())
            with LoopbackHaproxy(settings, tmp_path) as lb:
                # Two tasks in DNS: two servers up, with their task addresses; the rest wait in MAINT.
                wait_until(lambda: addresses_up(lb) == addresses_up(lb, READ_BACKEND) == TASK_ADDRESSES[:2], DISCOVERY_DEADLINE_S,
                           "the two DNS records as servers UP in both backends", interval_s=0.1)
                assert served_by(lb.url, 20) == Counter({"task-0": 10, "task-1": 10})
                assert served_by(lb.url, 10, "POST") == Counter({"task-0": 5, "task-1": 5})

                # A task is scheduled (a start-first update, a rescheduled replica): it joins.
                dns.set_tasks(TASKS, TASK_ADDRESSES)
                wait_until(lambda: addresses_up(lb) == addresses_up(lb, READ_BACKEND) == TASK_ADDRESSES, DISCOVERY_DEADLINE_S,
                           "the third record as a server UP", interval_s=0.1)
                assert set(served_by(lb.url, 30)) == {"task-0", "task-1", "task-2"}

                # A task in DNS is checked like any server: without a writer it gets no writes,
                # and still serves reads.
                apps[1].writer_ready = False
                wait_until(lambda: lb.servers_by_address()[f"{TASK_ADDRESSES[1]}:{port}"] == DOWN, DISCOVERY_DEADLINE_S,
                           "the task without a writer DOWN for writes", interval_s=0.1)
                assert "task-1" not in served_by(lb.url, 12, "POST")
                assert "task-1" in served_by(lb.url, 12)

                # A task leaves DNS (its node died, Swarm removed it): its server goes away.
                dns.set_tasks(TASKS, [TASK_ADDRESSES[0], TASK_ADDRESSES[2]])
                wait_until(lambda: f"{TASK_ADDRESSES[1]}:{port}" not in lb.servers_by_address(READ_BACKEND), DISCOVERY_DEADLINE_S,
                           "the removed record's server released", interval_s=0.1)
                assert set(served_by(lb.url, 20)) == {"task-0", "task-2"}
                assert dns.records.queries > 0
    finally:
        for app in apps:
            app.stop()


def test_https_reaches_the_dns_discovered_tasks_and_verifies_against_the_ca(tmp_path, certificates):
    port = free_port()
    log, token = ReceiptLog(), DeathToken()
    apps = [RecordingReplica(f"task-{index}", log, token, host=address, port=port) for index, address in enumerate(TASK_ADDRESSES)]
    try:
        with TaskDns({TASKS: TASK_ADDRESSES}) as dns:
            settings = swarm_settings(port, tls=True)
            tls_port = free_port()
            settings = dataclasses.replace(
                settings, resolver=dns.nameserver, bind_address="127.0.0.1", frontend_port=free_port(), stats_port=free_port(),
                # On loopback the container port is the published one.
                tls=dataclasses.replace(settings.tls, port=tls_port, public_port=tls_port, certificate_file=str(certificates.bundle_file)))
            with LoopbackHaproxy(settings, tmp_path) as lb:
                wait_until(lambda: addresses_up(lb) == addresses_up(lb, READ_BACKEND) == TASK_ADDRESSES, DISCOVERY_DEADLINE_S,
                           "the three DNS records as servers UP in both backends", interval_s=0.1)
                with httpx.Client(verify=ssl.create_default_context(cafile=str(certificates.ca_file)), timeout=5) as client:
                    served = Counter(client.get(lb.url + "/notes").json()["served_by"] for _ in range(12))
                    answer = client.get(lb.url + "/")
                    assert answer.headers["strict-transport-security"] == f"max-age={settings.tls.hsts_max_age_s}"
                    assert served == Counter({"task-0": 4, "task-1": 4, "task-2": 4})
                    # Plain HTTP only redirects, to the HTTPS port, keeping the method and body.
                    redirect = client.post(lb.http_url + "/notes?x=1", json={})
                    assert redirect.status_code == 308
                    assert redirect.headers["location"] == f"https://127.0.0.1:{tls_port}/notes?x=1"
                # A client that does not trust the stack CA is refused the handshake.
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    httpx.get(lb.url + "/", verify=ssl.create_default_context(), timeout=5)
    finally:
        for app in apps:
            app.stop()
