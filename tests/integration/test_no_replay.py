"""No request performed twice: the rendered haproxy.cfg, run by Debian's real haproxy on
127.0.0.1, in front of replicas that record every request they receive and can die
holding one (loopback/recording_replica.py)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from components.config import HealthCheckConfig, RetryConfig
from components.render.haproxy import APP_BACKEND
from loopback.haproxy import DOWN, UP, LoopbackHaproxy, loopback_settings
from loopback.ports import wait_until
from loopback.recording_replica import (
    READ_READY_PATH,
    REQUEST_ID_HEADER,
    WRITE_READY_PATH,
    DeathToken,
    ReceiptLog,
    RecordingReplica,
    recording_replicas,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("haproxy_installed")]

REPLICAS = 3
# Checks slow enough that a replica that died during a test is still UP in HAProxy's
# view when the next request comes: what a request meets in the ~0.75 s before ejection.
SLOW_CHECKS = HealthCheckConfig(interval_ms=60_000, fall=10)


@dataclass
class Edge:
    lb: LoopbackHaproxy
    replicas: list[RecordingReplica]
    log: ReceiptLog
    token: DeathToken

    def send(self, method: str, headers: dict[str, str] | None = None, path: str = "/orders") -> tuple[httpx.Response, list[str]]:
        """One request through the LB; its response and the replicas that received it."""
        request_id = str(uuid.uuid4())
        response = httpx.request(method, self.lb.url + path, headers={REQUEST_ID_HEADER: request_id, **(headers or {})},
                                 content=b'{"amount": 1}' if method == "POST" else None, timeout=10)
        return response, self.log.receivers(request_id)


@contextmanager
def start_edge(workdir: Path, health: HealthCheckConfig, keep_alive: bool = False, **settings) -> Iterator[Edge]:
    log, token = ReceiptLog(), DeathToken()
    with recording_replicas(REPLICAS, log, token, keep_alive=keep_alive) as replicas:
        lb_settings = loopback_settings({r.name: r.port for r in replicas}, WRITE_READY_PATH, health, **settings)
        with LoopbackHaproxy(lb_settings, workdir) as lb:
            # "UP 1/10" before the first check: taking traffic, which is all a test needs.
            wait_until(lambda: all(state.startswith(UP) for state in lb.server_states().values()), 10, "servers UP")
            # HAProxy spreads the first checks over `inter` (server i at i/n of it) and starts a
            # server's health at `rise`, so a first check that fails marks it DOWN at once, whatever
            # `fall`. The first server is checked at startup: wait for that check, or a test that
            # kills it may meet it DOWN (seen in CI). The others are not checked within a test.
            first = replicas[0].name
            wait_until(lambda: lb.stats()[first]["check_status"] != "INI", 10, f"{first}'s first check")
            yield Edge(lb, replicas, log, token)


@pytest.fixture
def edge(workdir: Path) -> Iterator[Edge]:
    with start_edge(workdir, SLOW_CHECKS) as running:
        yield running


def test_a_post_without_key_reaches_exactly_one_replica_and_the_client_sees_the_error(edge):
    edge.token.arm()  # the replica that receives it dies without answering
    response, receivers = edge.send("POST")

    assert len(receivers) == 1, f"delivered to {receivers}"
    assert response.status_code == 502, response.text
    assert next(r for r in edge.replicas if r.name == receivers[0]).dead
    # The replica is still UP for HAProxy (slow checks): the next POST is not lost
    # either, whichever server roundrobin picks; a refused connection is retried.
    followers = [edge.send("POST") for _ in range(REPLICAS)]
    assert [(r.status_code, len(to)) for r, to in followers] == [(201, 1)] * REPLICAS


def test_a_post_with_an_idempotency_key_is_retried_on_another_replica(edge):
    edge.token.arm()
    response, receivers = edge.send("POST", {"Idempotency-Key": str(uuid.uuid4())})

    assert response.status_code == 201, response.text
    assert len(receivers) == 2 and receivers[0] != receivers[1], receivers
    assert response.json()["served_by"] == receivers[1]


def test_an_empty_idempotency_key_does_not_make_a_post_retryable(edge):
    edge.token.arm()
    response, receivers = edge.send("POST", {"Idempotency-Key": ""})
    assert (response.status_code, len(receivers)) == (502, 1), receivers


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_an_idempotent_method_is_retried_and_answered(edge, method):
    edge.token.arm()
    response, receivers = edge.send(method)

    assert response.status_code == 200, response.text
    assert len(receivers) == 2 and receivers[0] != receivers[1], receivers


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_without_key_are_not_retried_after_reaching_a_replica(edge, method):
    edge.token.arm()
    response, receivers = edge.send(method)
    assert (response.status_code, len(receivers)) == (502, 1), receivers


def test_a_post_whose_connection_was_refused_is_retried_and_performed_once(edge):
    dead = edge.replicas[0]
    dead.kill()  # nothing listens on its port; HAProxy still has it UP (slow checks)
    assert edge.lb.server_states()[dead.name].startswith(UP)
    sent = [edge.send("POST") for _ in range(2 * REPLICAS)]

    assert [r.status_code for r, _ in sent] == [201] * len(sent)
    assert all(len(receivers) == 1 and receivers[0] != dead.name for _, receivers in sent), sent
    # roundrobin did pick the dead server, and HAProxy redispatched from it
    assert int(edge.lb.stats()[dead.name]["wredis"]) > 0


@pytest.mark.parametrize(("method", "headers", "retried"), [
    ("PUT", {}, True),
    ("OPTIONS", {}, False),
    ("POST", {"X-Once": "k1"}, True),
    ("POST", {"Idempotency-Key": "k2"}, False),
], ids=["PUT-listed", "OPTIONS-not-listed", "POST-own-key-header", "POST-default-header-unset"])
def test_configured_methods_and_header_name_are_what_haproxy_applies(workdir, method, headers, retried):
    retry = RetryConfig(idempotent_methods=["GET", "PUT"], idempotency_key_header="X-Once")
    with start_edge(workdir, SLOW_CHECKS, retry=retry) as edge:
        edge.token.arm()
        response, receivers = edge.send(method, headers)
    assert (response.status_code < 300, len(receivers)) == ((True, 2) if retried else (False, 1)), response


def test_reads_are_served_while_no_replica_can_write_and_writes_reach_one_replica_that_can_read(workdir):
    """Part of issue 9's degraded mode: reads route to the backend checked on the read
    path; with every writer out, a write goes there too, to exactly one replica, which
    answers it itself (the app: 503 + Retry-After, or the write once it finds the new
    primary), instead of HAProxy's own 503 until `rise` checks pass after the failover."""
    with start_edge(workdir, HealthCheckConfig(), read_health_path=READ_READY_PATH) as edge:
        for replica in edge.replicas:
            replica.writer_ready = False
        for replica in edge.replicas:
            edge.lb.wait_for_server(replica.name, DOWN, deadline_s=5, backend=APP_BACKEND)
        reads = [edge.send(method) for method in ("GET", "HEAD", "OPTIONS") * 3]
        write, write_receivers = edge.send("POST")

    assert [r.status_code for r, _ in reads] == [200] * len(reads)
    # The replica's own answer (it has no writer: 503), delivered to one replica only.
    assert write.status_code == 503 and len(write_receivers) == 1, (write.status_code, write_receivers)
    assert write.json()["served_by"] == write_receivers[0]


# Writers flap in and out this often, and the clients run this long: enough for a few
# dozen mark-downs and ups of every write server while requests are on their way to it.
FLAP_S = 0.7
FLAP_FOR_S = 8.0
CLIENTS = 4


def test_keyed_writes_on_kept_client_connections_always_get_a_status_while_writers_flap(workdir):
    """Issue 14: HAProxy answers a kept-alive client with no response at all when a
    request it sent on a *reused* server connection fails (the connection killed as its
    server was marked down), so that the client may retry (haproxy#1423, #2375). A
    keyed write whose retries met replicas answering 503 then ends with no status.
    Writes keep one server connection per request, so every write gets its 201 or a 503;
    reads reuse connections and must not be hurt by the flapping either."""
    with start_edge(workdir, HealthCheckConfig(), keep_alive=True, read_health_path=READ_READY_PATH) as edge:
        stop = threading.Event()

        def flap_writers() -> None:
            while not stop.wait(FLAP_S):
                for replica in edge.replicas:
                    replica.writer_ready = not replica.writer_ready

        outcomes: Counter[str] = Counter()
        deadline = time.monotonic() + FLAP_FOR_S

        def client() -> None:
            with httpx.Client(base_url=edge.lb.url, timeout=10) as kept:  # one client connection, reused
                while time.monotonic() < deadline:
                    for method in ("POST", "GET"):
                        try:
                            response = kept.request(method, "/orders", content=b"{}" if method == "POST" else None,
                                                    headers={"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {})
                            outcomes[f"{method} {response.status_code}"] += 1
                        except httpx.TransportError as problem:
                            outcomes[f"{method} {type(problem).__name__}"] += 1

        flapper = threading.Thread(target=flap_writers)
        flapper.start()
        clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        stop.set()
        flapper.join()
        mark_downs = sum(int(row["chkdown"]) for name, row in edge.lb.stats(APP_BACKEND).items() if name != "BACKEND")

    assert mark_downs >= 2 * REPLICAS, f"the writers flapped too little to test anything: {mark_downs} mark-downs"
    assert outcomes["POST 201"] > 0 and outcomes["POST 503"] > 0, outcomes
    assert set(outcomes) <= {"POST 201", "POST 503", "GET 200"}, outcomes
