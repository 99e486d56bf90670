"""A durable job queue in Postgres that runs each job once across all replicas.

- Every replica runs one `Worker`. It claims with `FOR UPDATE SKIP LOCKED`, so
  concurrent workers never block on, or take, the same queued row.
- A claim bumps `attempts`; completion is fenced on that attempt number, so a worker
  whose job was reclaimed (it looked dead) cannot also complete it.
- A worker that dies mid-job leaves its row in `processing`. The maintenance task
  (one replica at a time, see maintenance.py) puts rows older than
  JOB_STALE_AFTER_S back to `queued`, or `failed` after JOB_MAX_ATTEMPTS.
- On shutdown a worker returns the job it holds to `queued` at once instead of
  leaving it for the stale reclaim.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from psycopg.rows import dict_row

from .background import BackgroundTask
from .db import Database

log = logging.getLogger("hastack_app.jobs")


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    attempt: int
    payload: dict[str, Any]


async def enqueue(db: Database, count: int, payload: dict[str, Any], batch: str | None) -> list[str]:
    async with db.writer.connection() as conn:
        cur = await conn.execute(
            """INSERT INTO jobs (batch, payload)
               SELECT %s, %s::jsonb FROM generate_series(1, %s) RETURNING id""",
            (batch, json.dumps(payload), count))
        return [str(row[0]) for row in await cur.fetchall()]


async def get_job(db: Database, job_id: str) -> dict[str, Any] | None:
    async with db.writer.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """SELECT j.id::text, j.batch, j.status, j.node_id, j.attempts, j.started_at,
                      j.finished_at, j.error,
                      (SELECT count(*) FROM job_completions c WHERE c.job_id = j.id) AS completions
               FROM jobs j WHERE j.id = %s""", (job_id,))
        return await cur.fetchone()


async def stats(db: Database, batch: str | None) -> dict[str, Any]:
    """Counts per status and, for finished jobs, per node; plus how many jobs completed
    more than once (must always be 0)."""
    async with db.writer.connection() as conn:
        by_status = dict(await (await conn.execute(
            """SELECT status, count(*) FROM jobs WHERE %(batch)s::text IS NULL OR batch = %(batch)s
               GROUP BY status""", {"batch": batch})).fetchall())
        by_node = dict(await (await conn.execute(
            """SELECT node_id, count(*) FROM jobs
               WHERE status = 'done' AND (%(batch)s::text IS NULL OR batch = %(batch)s)
               GROUP BY node_id""", {"batch": batch})).fetchall())
        (completed_more_than_once,) = await (await conn.execute(
            """SELECT count(*) FROM (
                   SELECT c.job_id FROM job_completions c JOIN jobs j ON j.id = c.job_id
                   WHERE %(batch)s::text IS NULL OR j.batch = %(batch)s
                   GROUP BY c.job_id HAVING count(*) > 1) AS dup""", {"batch": batch})).fetchone()
    statuses = {status: by_status.get(status, 0) for status in ("queued", "processing", "done", "failed")}
    return {"batch": batch, "total": sum(statuses.values()), "by_status": statuses,
            "done_by_node": by_node, "completed_more_than_once": completed_more_than_once}


class Worker(BackgroundTask):
    """Claims and runs jobs until stopped. One per replica."""

    task_name = "job-worker"

    def __init__(self, db: Database):
        self.db = db
        self.node_id = db.settings.node_id
        self.current: ClaimedJob | None = None

    async def stop(self) -> None:
        """Stop claiming and hand the job in flight back to the queue. Idempotent."""
        await self._cancel()
        if self.current is not None:
            await self._release(self.current)
            self.current = None

    async def _run(self) -> None:
        poll_s = self.db.settings.job_poll_s
        while True:
            try:
                job = await self._claim_even_if_stopped()
            except Exception as error:  # database down or failing over: keep trying, gently
                log.warning("claiming a job failed: %s", error)
                await asyncio.sleep(max(poll_s, 1.0))
                continue
            if job is None:
                await asyncio.sleep(poll_s)
                continue
            self.current = job
            try:
                await self._work(job)
            except Exception as error:  # the job's own failure; the worker carries on
                await self._finish(job, "failed", f"{type(error).__name__}: {error}")
            else:
                await self._finish(job, "done")
            self.current = None

    async def _claim_even_if_stopped(self) -> ClaimedJob | None:
        """`_claim`, run to the end even when `stop()` cancels the worker meanwhile: the
        UPDATE commits as soon as the server runs it, so an abandoned claim would leave
        its job in `processing` until the stale reclaim. Finished, the job is
        `current`, and `stop()` hands it back to the queue."""
        claim = asyncio.ensure_future(self._claim())
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            self.current = await claim
            raise

    async def _claim(self) -> ClaimedJob | None:
        async with self.db.writer.connection() as conn:
            row = await (await conn.execute(
                """UPDATE jobs SET status = 'processing', node_id = %s, started_at = now(),
                                  attempts = attempts + 1
                   WHERE id = (SELECT id FROM jobs WHERE status = 'queued'
                               ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
                   RETURNING id::text, attempts, payload""", (self.node_id,))).fetchone()
        return ClaimedJob(*row) if row else None

    async def _work(self, job: ClaimedJob) -> None:
        # The reference workload: wait a while. A payload may set its own duration so
        # tests and `verify` can hold a job in flight long enough to kill a worker.
        await asyncio.sleep(float(job.payload.get("work_s", self.db.settings.job_work_s)))

    async def _finish(self, job: ClaimedJob, status: str, error: str | None = None) -> None:
        """Record the outcome, fenced on the attempt: if the job was reclaimed meanwhile,
        this run's outcome is dropped and the newer attempt's stands."""
        try:
            async with self.db.writer.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    """UPDATE jobs SET status = %s, error = %s, finished_at = now()
                       WHERE id = %s AND status = 'processing' AND attempts = %s""",
                    (status, error, job.id, job.attempt))
                if cur.rowcount == 0:
                    log.warning("job %s attempt %s was reclaimed before it finished; dropped",
                                job.id, job.attempt)
                elif status == "done":
                    await conn.execute(
                        "INSERT INTO job_completions (job_id, node_id, attempt) VALUES (%s, %s, %s)",
                        (job.id, self.node_id, job.attempt))
        except Exception as problem:  # database lost: the job stays processing until reclaimed
            log.warning("recording job %s as %s failed; the stale reclaim will retry it: %s",
                        job.id, status, problem)

    async def _release(self, job: ClaimedJob) -> None:
        try:
            async with self.db.writer.connection() as conn:
                await conn.execute(
                    """UPDATE jobs SET status = 'queued', node_id = NULL, started_at = NULL
                       WHERE id = %s AND status = 'processing' AND attempts = %s""",
                    (job.id, job.attempt))
            log.info("returned job %s to the queue on shutdown", job.id)
        except Exception as error:  # the stale reclaim will get it instead
            log.warning("could not return job %s to the queue: %s", job.id, error)


async def reclaim_stale(conn, stale_after_s: float, max_attempts: int) -> int:
    """Requeue jobs whose worker has held them longer than `stale_after_s` (it is
    presumed dead); give up on jobs that already used `max_attempts`."""
    cur = await conn.execute(
        """UPDATE jobs SET status = CASE WHEN attempts >= %(max)s THEN 'failed' ELSE 'queued' END,
                          error = CASE WHEN attempts >= %(max)s
                                       THEN 'gave up after ' || attempts || ' attempts' END,
                          node_id = CASE WHEN attempts >= %(max)s THEN node_id END,
                          started_at = CASE WHEN attempts >= %(max)s THEN started_at END,
                          finished_at = CASE WHEN attempts >= %(max)s THEN now() END
           WHERE status = 'processing' AND started_at < now() - make_interval(secs => %(stale)s)""",
        {"max": max_attempts, "stale": stale_after_s})
    return cur.rowcount
