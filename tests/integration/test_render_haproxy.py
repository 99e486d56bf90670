"""The rendered haproxy.cfg, run by Debian's real haproxy on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.render.haproxy import Backend, HaproxySettings, render_haproxy_cfg
from loopback.haproxy import DOWN, UP, LoopbackHaproxy, check_config, loopback_settings
from loopback.ports import free_port, wait_until
from loopback.recording_replica import WRITE_READY_PATH, DeathToken, ReceiptLog, RecordingReplica

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("haproxy_installed")]

HEALTH_PATH = WRITE_READY_PATH  # what the stand-ins answer 200 or 503 on
# HA target for ejection is 1 s; the default checks (500 ms, fall 2) need about 0.75 s.
EJECTION_LIMIT_S = 1.5


@pytest.fixture
def two_apps() -> Iterator[list[RecordingReplica]]:
    """Stand-ins for app replicas: GET / answers with the name, /readyz 200 or 503 as
    `writer_ready` says (loopback/recording_replica.py)."""
    apps = [RecordingReplica(f"app-{index}", ReceiptLog(), DeathToken()) for index in range(2)]
    try:
        yield apps
    finally:
        for app in apps:
            app.stop()


@pytest.fixture
def balancer(two_apps: list[RecordingReplica], tmp_path: Path) -> Iterator[LoopbackHaproxy]:
    settings = loopback_settings({app.name: app.port for app in two_apps}, HEALTH_PATH)
    with LoopbackHaproxy(settings, tmp_path) as lb:
        for app in two_apps:
            lb.wait_for_server(app.name, UP, deadline_s=5)
        yield lb


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def served_by(url: str) -> tuple[int, str]:
    """(status, the replica that answered) for GET `url`."""
    status, body = get(url)
    return status, json.loads(body)["served_by"] if status == 200 else body


@pytest.mark.parametrize("resolver", [None, "127.0.0.11:53"], ids=["loopback", "docker-dns"])
@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_rendered_cfg_passes_haproxy_check(replicas: int, resolver: str | None, tmp_path: Path) -> None:
    # With Docker's resolver the addresses are aliases that do not resolve here, which
    # is exactly the "replica not created yet" case the config must accept.
    backends = tuple(
        Backend(f"app-{i}", f"app-{i}" if resolver else "127.0.0.1", 8000 if resolver else 8000 + i)
        for i in range(replicas)
    )
    settings = HaproxySettings(frontend_port=8080, stats_port=8404, backends=backends, health_path="/readyz",
                               interval_ms=500, fall=2, rise=2, timeout_check_ms=1000, resolver=resolver,
                               stats_socket=str(tmp_path / "admin.sock"))
    result = check_config(render_haproxy_cfg(settings), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in (result.stdout + result.stderr).splitlines()
                if "WARNING" in line and "could not resolve address" not in line]
    assert warnings == []


def test_haproxy_starts_while_backend_names_do_not_resolve(tmp_path: Path) -> None:
    # A resolver on a free loopback port nobody answers: the names stay unresolved.
    settings = HaproxySettings(frontend_port=free_port(), stats_port=free_port(),
                               backends=(Backend("app-0", "app-0.invalid", 8000),), health_path=HEALTH_PATH,
                               interval_ms=500, fall=2, rise=2, timeout_check_ms=1000,
                               resolver=f"127.0.0.1:{free_port()}", bind_address="127.0.0.1")
    with LoopbackHaproxy(settings, tmp_path) as lb:
        assert lb.server_states()["app-0"].startswith("MAINT")
        status, _ = get(lb.url + "/")
        assert status == 503


def test_haproxy_stats_port_serves_prometheus_metrics_and_its_own_health(balancer: LoopbackHaproxy) -> None:
    status, metrics = get(balancer.stats_url + "/metrics")
    assert status == 200
    assert 'haproxy_server_status{proxy="app",server="app-0",state="UP"} 1' in metrics
    assert get(balancer.stats_url + "/healthz") == (200, "ok")


def test_haproxy_balances_and_ejects_an_unready_server(balancer: LoopbackHaproxy,
                                                       two_apps: list[RecordingReplica]) -> None:
    answered_by = {served_by(balancer.url + "/")[1] for _ in range(6)}
    assert answered_by == {"app-0", "app-1"}

    two_apps[1].writer_ready = False
    ejection_s = balancer.wait_for_server("app-1", DOWN, deadline_s=5)
    print(f"haproxy ejection after /readyz turned 503: {ejection_s:.3f} s")
    assert ejection_s <= EJECTION_LIMIT_S
    assert {served_by(balancer.url + "/") for _ in range(6)} == {(200, "app-0")}

    two_apps[1].writer_ready = True
    readd_s = balancer.wait_for_server("app-1", UP, deadline_s=5)
    print(f"haproxy re-add after /readyz turned 200: {readd_s:.3f} s")


def test_haproxy_retries_a_dead_server_without_failing_requests(balancer: LoopbackHaproxy,
                                                                 two_apps: list[RecordingReplica]) -> None:
    # Until app-1 is marked down, roundrobin still sends it requests; each must be
    # retried on app-0 instead of failing.
    results: list[tuple[int, str]] = []
    stop_load = threading.Event()

    def steady_load() -> None:
        while not stop_load.is_set():
            results.append(get(balancer.url + "/"))

    load = threading.Thread(target=steady_load)
    load.start()
    try:
        wait_until(lambda: len(results) >= 10, deadline_s=5, what="load is flowing")
        two_apps[1].kill()
        ejection_s = balancer.wait_for_server("app-1", DOWN, deadline_s=5)
        sent_at_ejection = len(results)
        wait_until(lambda: len(results) >= sent_at_ejection + 10, deadline_s=5, what="load after ejection")
    finally:
        stop_load.set()
        load.join(timeout=10)
    print(f"haproxy ejection after connection refused: {ejection_s:.3f} s; {len(results)} GETs")
    assert ejection_s <= EJECTION_LIMIT_S
    failed = [result for result in results if result[0] != 200]
    assert failed == []
