"""SIGTERM: drain (readiness 503, job handed back), then finish in-flight requests."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from loopback.ports import wait_until

pytestmark = pytest.mark.integration


def test_sigterm_returns_the_claimed_job_to_the_queue(start_apps, fresh_database):
    # Stale reclaim effectively off: only the shutdown path can requeue the job.
    replicas = start_apps(2, fresh_database, extra_env={"JOB_STALE_AFTER_S": "600", "SHUTDOWN_DRAIN_S": "2"})
    by_node = {replica.node_id: replica for replica in replicas}
    job_id = httpx.post(f"{replicas[0].url}/jobs", json={"payload": {"work_s": 3.0}}).json()["ids"][0]

    def job(url: str) -> dict:
        return httpx.get(f"{url}/jobs/{job_id}", timeout=5).json()

    wait_until(lambda: job(replicas[0].url)["status"] == "processing", 10, "job claimed")
    leaving = by_node[job(replicas[0].url)["node_id"]]
    staying = next(replica for replica in replicas if replica is not leaving)
    assert "connection" not in httpx.get(f"{leaving.url}/livez", timeout=5).headers
    leaving.terminate()

    # While draining, the leaving replica still serves but reports not ready, and asks
    # the LB not to keep its connection (no idle connection to a stopping replica).
    wait_until(lambda: httpx.get(f"{leaving.url}/readyz", timeout=5).status_code == 503, 5, "readyz 503 while draining")
    draining = httpx.get(f"{leaving.url}/livez", timeout=5)
    assert draining.status_code == 200
    assert draining.headers["connection"] == "close"
    wait_until(lambda: job(staying.url)["status"] == "done", 15, "job finished by the staying replica")
    finished = job(staying.url)
    assert finished["node_id"] == staying.node_id
    assert finished["completions"] == 1
    leaving.wait_exit(10)



def test_a_request_in_flight_at_sigterm_completes(start_apps, fresh_database, shared_storage):
    (replica,) = start_apps(1, fresh_database, extra_env={"SHUTDOWN_DRAIN_S": "0.5", "SHUTDOWN_GRACE_S": "5"})
    first_chunk_sent = threading.Event()

    def slow_upload():
        # A slow client: the body trickles in over ~1.5 s, past the drain.
        yield b"a" * 1000
        first_chunk_sent.set()
        for _ in range(10):
            time.sleep(0.15)
            yield b"b" * 1000

    with ThreadPoolExecutor(max_workers=1) as pool:
        upload = pool.submit(httpx.put, f"{replica.url}/files/slow.bin", content=slow_upload(), timeout=15)
        assert first_chunk_sent.wait(5)
        replica.terminate()
        assert upload.result(timeout=15).status_code == 201
    replica.wait_exit(10)
    assert (shared_storage / "slow.bin").stat().st_size == 11_000
