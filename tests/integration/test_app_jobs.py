"""The job queue across real app processes sharing one real postgres."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from loopback.ports import wait_until

pytestmark = pytest.mark.integration


def job_stats(url: str, batch: str) -> dict:
    return httpx.get(f"{url}/jobs/stats", params={"batch": batch}, timeout=5).json()


def wait_for_batch(url: str, batch: str, count: int, deadline_s: float) -> dict:
    """Poll until every job of `batch` finished; returns the final stats."""
    def finished() -> int:
        by_status = job_stats(url, batch)["by_status"]
        return by_status["done"] + by_status["failed"]

    wait_until(lambda: finished() >= count, deadline_s, f"{count} jobs of batch {batch} finished", interval_s=0.1)
    return job_stats(url, batch)


def test_500_jobs_run_exactly_once_across_3_workers(start_apps, fresh_database):
    replicas = start_apps(3, fresh_database, extra_env={"JOB_WORK_S": "0.005"})
    started = time.monotonic()
    created = httpx.post(f"{replicas[0].url}/jobs", json={"count": 500, "batch": "five-hundred"}, timeout=10)
    assert created.status_code == 202

    stats = wait_for_batch(replicas[1].url, "five-hundred", 500, deadline_s=60)
    elapsed = time.monotonic() - started

    assert stats["by_status"] == {"queued": 0, "processing": 0, "done": 500, "failed": 0}
    assert stats["completed_more_than_once"] == 0
    assert set(stats["done_by_node"]) == {"app-0", "app-1", "app-2"}, stats["done_by_node"]
    assert sum(stats["done_by_node"].values()) == 500
    # Independent of the app's own counting: one completion row per job, no more.
    with psycopg.connect(fresh_database) as conn:
        runs = conn.execute("SELECT count(*), count(DISTINCT job_id) FROM job_completions").fetchone()
        attempts = conn.execute("SELECT max(attempts) FROM jobs").fetchone()[0]
    assert runs == (500, 500)
    assert attempts == 1
    print(f"500 jobs in {elapsed:.2f}s, per node: {stats['done_by_node']}")


def test_job_of_a_sigkilled_worker_is_reclaimed_and_finished_by_another(start_apps, fresh_database):
    # Jobs are presumed dead after 1.5 s; the job itself takes 1 s, so only a dead
    # worker's job goes stale.
    replicas = start_apps(3, fresh_database, extra_env={"JOB_STALE_AFTER_S": "1.5"})
    by_node = {replica.node_id: replica for replica in replicas}
    job_id = httpx.post(f"{replicas[0].url}/jobs", json={"payload": {"work_s": 1.0}}).json()["ids"][0]

    def job() -> dict:
        return httpx.get(f"{replicas[0].url}/jobs/{job_id}", timeout=5).json()

    wait_until(lambda: job()["status"] == "processing", 10, "job claimed")
    first_worker = job()["node_id"]
    by_node[first_worker].kill()
    survivor = next(replica for replica in replicas if replica.running)

    wait_until(lambda: httpx.get(f"{survivor.url}/jobs/{job_id}", timeout=5).json()["status"] == "done",
               20, "reclaimed job done")
    finished = httpx.get(f"{survivor.url}/jobs/{job_id}").json()
    assert finished["node_id"] != first_worker
    assert finished["attempts"] == 2
    assert finished["completions"] == 1


def test_only_one_process_holds_the_maintenance_lock(start_apps, fresh_database):
    replicas = start_apps(3, fresh_database)

    def views() -> list[dict]:
        return [httpx.get(f"{replica.url}/maintenance", timeout=5).json()
                for replica in replicas if replica.running]

    wait_until(lambda: any(view["holds_lock"] for view in views()), 10, "a maintenance lock holder")
    first = views()
    holders = [replica.node_id for replica, view in zip(replicas, first) if view["holds_lock"]]
    assert len(holders) == 1, first
    # Postgres agrees: every replica sees the same session holding the lock.
    assert {view["holder"] for view in first} == {holders[0]}

    # The holder dies; its session ends, so exactly one other replica takes over.
    next(replica for replica in replicas if replica.node_id == holders[0]).kill()
    wait_until(lambda: any(view["holds_lock"] for view in views()), 10, "a new maintenance lock holder")
    after = views()
    assert sum(view["holds_lock"] for view in after) == 1, after
    assert len({view["holder"] for view in after}) == 1
    assert after[0]["holder"] != holders[0]


def test_a_failing_job_is_marked_failed_and_the_worker_carries_on(start_apps, fresh_database):
    (replica,) = start_apps(1, fresh_database)
    bad, good = (httpx.post(f"{replica.url}/jobs", json={"payload": payload, "batch": "mixed"}).json()["ids"][0]
                 for payload in ({"work_s": "not a number"}, {}))
    stats = wait_for_batch(replica.url, "mixed", 2, deadline_s=10)
    assert stats["by_status"]["failed"] == 1 and stats["by_status"]["done"] == 1
    failed = httpx.get(f"{replica.url}/jobs/{bad}").json()
    assert failed["status"] == "failed" and "ValueError" in failed["error"]
    assert httpx.get(f"{replica.url}/jobs/{good}").json()["status"] == "done"


def test_a_stale_job_is_given_up_after_max_attempts(start_apps, fresh_database):
    replicas = start_apps(2, fresh_database, extra_env={"JOB_STALE_AFTER_S": "0.5", "JOB_MAX_ATTEMPTS": "1"})
    job_id = httpx.post(f"{replicas[0].url}/jobs", json={"payload": {"work_s": 30}}).json()["ids"][0]

    def job(url: str) -> dict:
        return httpx.get(f"{url}/jobs/{job_id}", timeout=5).json()

    wait_until(lambda: job(replicas[0].url)["status"] == "processing", 10, "job claimed")
    victim = next(replica for replica in replicas if replica.node_id == job(replicas[0].url)["node_id"])
    victim.kill()
    survivor = next(replica for replica in replicas if replica.running)
    wait_until(lambda: job(survivor.url)["status"] == "failed", 10, "job given up")
    assert job(survivor.url)["error"] == "gave up after 1 attempts"
    assert job(survivor.url)["completions"] == 0
