"""Connection pools for the writer and the reader databases.

DATABASE_URL is a libpq multi-host URL with target_session_attrs=read-write, so a new
connection always lands on the current primary. What keeps the pool healthy across a
failover is that it never hands out a dead connection: `check_connection` tests each
one on checkout and discards it if the old primary is gone.

libpq tries the hosts of a URL one after the other, and a lost machine answers nothing,
so every attempt that comes to it first waits out a timeout. The writer probe
(writer.py) therefore dials every host at once and tells the pool which one took the
writes: the writer pool dials that host first from then on, and drops its connections
to the former writer when the writer moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
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


def url_hosts(conninfo: str) -> list[tuple[str, str]]:
    """(host, port) of each host a libpq URL lists, in order ("" port: libpq's default)."""
    params = conninfo_to_dict(conninfo)
    hosts = str(params.get("host") or "").split(",")
    ports = str(params.get("port") or "").split(",")
    if len(ports) == 1:  # one port for every host (libpq's rule)
        ports = ports * len(hosts)
    return list(zip(hosts, ports))


def hosts_kwargs(hosts: list[tuple[str, str]]) -> dict[str, str]:
    """Connection kwargs that replace a URL's host list with `hosts`, in that order."""
    return {"host": ",".join(host for host, _ in hosts), "port": ",".join(port for _, port in hosts)}


class Database:
    """The writer pool, and a reader pool (the writer itself when no read URL is set)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.writer_hosts = url_hosts(settings.database_url)
        # The host that last took writes (the writer probe's finding); None: the URL's order.
        self.known_writer: tuple[str, str] | None = None
        # A write waits less for a connection than a read: while no primary exists the
        # wait can only end in a 503, which the client should get quickly (writer.py);
        # unless WRITER_WAIT_S asks writes to wait for a primary, which a checkout does
        # too (a primary's shutdown is often seen by a checkout before the probe).
        self.writer = self._pool(settings.database_url, "writer",
                                 max(min(settings.db_write_wait_s, settings.db_connect_timeout_s), settings.writer_wait_s),
                                 self._writer_kwargs)
        self.reader = (self.writer if settings.database_read_url == settings.database_url
                       else self._pool(settings.database_read_url, "reader", settings.db_connect_timeout_s))

    def _writer_kwargs(self) -> dict:
        """The writer pool's kwargs for its next connection: the known writer first."""
        kwargs = connection_kwargs(self.settings, "writer")
        if self.known_writer in self.writer_hosts:
            kwargs |= hosts_kwargs([self.known_writer, *(h for h in self.writer_hosts if h != self.known_writer)])
        return kwargs

    def _pool(self, conninfo: str, role: str, wait_s: float,
              kwargs: Callable[[], dict] | None = None) -> AsyncConnectionPool:
        return AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=self.settings.db_pool_max,
            kwargs=kwargs or connection_kwargs(self.settings, role),
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

    async def dedicated_connection(self, role: str, **kwargs: str) -> AsyncConnection:
        """A connection outside the pools, for session state such as advisory locks."""
        return await AsyncConnection.connect(self.settings.database_url,
                                             **connection_kwargs(self.settings, role) | kwargs)

    async def connect_to_writer(self, role: str, *, within_s: float, retry_every_s: float) -> AsyncConnection:
        """A writer connection, every host of DATABASE_URL dialled at once and each one
        again every `retry_every_s` while it refuses: the first that takes writes wins (and
        becomes `known_writer`), so a silent host costs nothing while another one answers,
        and a replica being promoted is found at once."""
        if len(self.writer_hosts) < 2:
            return await asyncio.wait_for(self.dedicated_connection(role), within_s)
        problems: dict[tuple[str, str], str] = {}

        async def attempt(host: tuple[str, str]) -> tuple[tuple[str, str], AsyncConnection]:
            while True:
                try:
                    return host, await self.dedicated_connection(role, **hosts_kwargs([host]))
                except psycopg.OperationalError as problem:
                    problems[host] = str(problem).strip()
                    await asyncio.sleep(retry_every_s)

        attempts = [asyncio.ensure_future(attempt(host)) for host in self.writer_hosts]
        winner: AsyncConnection | None = None
        try:
            done, _ = await asyncio.wait(attempts, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                raise psycopg.OperationalError(f"no host of DATABASE_URL took writes within {within_s:.0f} s: "
                                               + "; ".join(problems.values()))
            host, winner = next(iter(done)).result()
            if self.known_writer not in (None, host):
                # The writer moved: the pool's idle connections are to the former one,
                # which, on a lost machine, would hold each checkout until TCP gives up.
                await self.writer.drain()
            self.known_writer = host
            return winner
        finally:
            await _discard_other_attempts(attempts, winner)


async def _discard_other_attempts(attempts: list[asyncio.Future], kept: AsyncConnection | None) -> None:
    """Cancel the connection attempts still running and close those that also succeeded."""
    for attempt in attempts:
        attempt.cancel()
    for outcome in await asyncio.gather(*attempts, return_exceptions=True):
        if isinstance(outcome, tuple) and outcome[1] is not kept:
            await outcome[1].close()
