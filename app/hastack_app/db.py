"""Connection pools for the writer and the reader databases.

DATABASE_URL is a libpq multi-host URL with target_session_attrs=read-write, so a new
connection always lands on the current primary. What keeps the pool healthy across a
failover is that it never hands out a dead connection: `check_connection` tests each
one on checkout and discards it if the old primary is gone.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from .config import Settings

# How long one background reconnect of a pool keeps retrying before it gives up.
# psycopg_pool waits 1 s, 2 s, 4 s, ... between tries with no cap, so a long-lived retry
# would find a new primary late: after the ~6 s of a Patroni failover the next try is
# up to 8 s away. Once a retry gives up, the next checkout (a request, the LB's
# readiness check, the job worker's poll) starts a fresh one at once, so the pool tries
# about once a second for as long as the outage lasts.
RECONNECT_RETRY_S = 1.0


def connection_kwargs(settings: Settings, role: str) -> dict:
    # application_name makes each replica's sessions visible in pg_stat_activity,
    # which is how /maintenance reports which node holds the singleton lock. The node
    # id goes last: Postgres truncates the name at 63 bytes.
    return {
        "autocommit": True,
        "connect_timeout": max(1, round(settings.db_connect_timeout_s)),
        "application_name": f"hastack:{role}:{settings.node_id}",
    }


class Database:
    """The writer pool, and a reader pool (the writer itself when no read URL is set)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # A write waits less for a connection than a read: while no primary exists the
        # wait can only end in a 503, which the client should get quickly (writer.py).
        self.writer = self._pool(settings.database_url, "writer",
                                 min(settings.db_write_wait_s, settings.db_connect_timeout_s))
        self.reader = (self.writer if settings.database_read_url == settings.database_url
                       else self._pool(settings.database_read_url, "reader", settings.db_connect_timeout_s))

    def _pool(self, conninfo: str, role: str, wait_s: float) -> AsyncConnectionPool:
        return AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=self.settings.db_pool_max,
            kwargs=connection_kwargs(self.settings, role),
            check=AsyncConnectionPool.check_connection,
            # A request waits this long for a connection before failing, rather than
            # queueing forever while the database is down.
            timeout=wait_s,
            reconnect_timeout=RECONNECT_RETRY_S,
            max_idle=60,
            open=False,
            name=f"{role}-pool",
        )

    async def open(self) -> None:
        # wait=False: a replica may start while its database is still failing over;
        # readiness reports that instead of the process crashing.
        await self.writer.open(wait=False)
        if self.reader is not self.writer:
            await self.reader.open(wait=False)

    async def close(self) -> None:
        await self.writer.close()
        if self.reader is not self.writer:
            await self.reader.close()

    async def dedicated_connection(self, role: str) -> AsyncConnection:
        """A connection outside the pools, for session state such as advisory locks."""
        return await AsyncConnection.connect(self.settings.database_url,
                                             **connection_kwargs(self.settings, role))
