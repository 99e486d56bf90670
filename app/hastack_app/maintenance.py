"""Periodic maintenance that must run on exactly one replica at a time.

Every replica runs this loop; only the one holding the session-level advisory lock
MAINTENANCE_LOCK does the work. The lock lives on a dedicated connection (a pooled
one could be handed to a request and lose or leak it), so if the holder dies its
connection closes, Postgres releases the lock, and another replica takes over on its
next tick.
"""

from __future__ import annotations

import asyncio
import logging

from psycopg import AsyncConnection

from .background import BackgroundTask
from .db import Database
from .jobs import reclaim_stale
from .locks import MAINTENANCE_LOCK

log = logging.getLogger("hastack_app.maintenance")

_LOCK_CLASSID, _LOCK_OBJID = MAINTENANCE_LOCK >> 32, MAINTENANCE_LOCK & 0xFFFFFFFF


class Maintenance(BackgroundTask):
    task_name = "maintenance"

    def __init__(self, db: Database):
        self.db = db
        self.holds_lock = False
        self._conn: AsyncConnection | None = None

    async def stop(self) -> None:
        await self._cancel()
        await self._disconnect()  # releases the lock for the next replica at once

    async def _run(self) -> None:
        interval = self.db.settings.maintenance_interval_s
        while True:
            try:
                await self._tick()
            except Exception as error:  # connection lost: the lock went with it
                log.warning("maintenance tick failed: %s", error)
                await self._disconnect()
            await asyncio.sleep(interval)

    async def _tick(self) -> None:
        if self._conn is None or self._conn.closed:
            self.holds_lock = False
            self._conn = await self.db.dedicated_connection("maintenance")
        if not self.holds_lock:
            (self.holds_lock,) = await (await self._conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (MAINTENANCE_LOCK,))).fetchone()
            if self.holds_lock:
                log.info("this replica now runs maintenance")
        if self.holds_lock:
            settings = self.db.settings
            reclaimed = await reclaim_stale(self._conn, settings.job_stale_after_s,
                                            settings.job_max_attempts)
            if reclaimed:
                log.warning("reclaimed %d stale jobs", reclaimed)

    async def _disconnect(self) -> None:
        self.holds_lock = False
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


async def lock_holder(db: Database) -> str | None:
    """NODE_ID of the replica holding the maintenance lock, as Postgres sees it."""
    async with db.writer.connection() as conn:
        row = await (await conn.execute(
            """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                 AND l.classid = %s::oid AND l.objid = %s::oid
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
            (_LOCK_CLASSID, _LOCK_OBJID))).fetchone()
    if row is None:
        return None
    # application_name is "hastack:maintenance:<node_id>" (see db.connection_kwargs)
    return row[0].split(":", 2)[-1]
