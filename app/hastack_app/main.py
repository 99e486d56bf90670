"""The ASGI app: routes, the X-Served-By header, and the startup/shutdown sequence.

Run it with `python -m hastack_app` (see __main__.py), which adds the drain step on
SIGTERM; `uvicorn --factory hastack_app.main:create_app` also works, without the drain.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
import uuid
from contextlib import asynccontextmanager
from datetime import datetime

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response
from starlette.routing import Route

from . import deliveries, files, jobs, notes
from .config import VERSION, Settings
from .db import Database
from .maintenance import Maintenance, lock_holder
from .metrics import RequestMetrics, RequestMetricsMiddleware
from .migrations import migrate
from .writer import RETRY_AFTER_S, WriterHealth, WriterUnavailable, check_writer

log = logging.getLogger("hastack_app")

MAX_JOBS_PER_REQUEST = 1000
MAX_IDEMPOTENCY_KEY_LENGTH = 200


class JSONResponse(StarletteJSONResponse):
    """JSON that also carries the timestamps of database rows (as ISO 8601)."""

    def render(self, content) -> bytes:
        return json.dumps(content, default=_iso_timestamp, separators=(",", ":")).encode()


def _iso_timestamp(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Runtime:
    """Everything with a lifetime: pools, the job worker, the maintenance loop."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings)
        self.worker = jobs.Worker(self.db)
        self.maintenance = Maintenance(self.db)
        self.writer_health = WriterHealth(self.db)
        self.draining = False

    async def start(self) -> None:
        await migrate(self.db)
        await self.db.open()
        self.writer_health.start()
        self.worker.start()
        self.maintenance.start()
        log.info("node %s ready to serve (version %s)", self.settings.node_id, VERSION)

    async def begin_drain(self) -> None:
        """Shutdown, first step: /readyz turns 503 so the LB stops sending new requests,
        and the job in hand goes back to the queue for another replica. Requests keep
        being served meanwhile."""
        self.draining = True
        await self.worker.stop()

    async def stop(self) -> None:
        await self.begin_drain()
        await self.maintenance.stop()
        await self.writer_health.stop()
        await self.db.close()


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("body must be JSON") from None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def needs_writer(handler):
    """For endpoints that need the primary: answered 503 + Retry-After at once while no
    primary is known (writer.py); a database error marks it down for the next requests.
    A write carrying X-Request-Id is recorded (deliveries.py) before it runs."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        state = runtime(request)
        await state.writer_health.require()
        try:
            request_id = request.headers.get(deliveries.REQUEST_ID_HEADER)
            if request_id and request.method not in SAFE_METHODS:
                await deliveries.record(state.db, state.writer_health, request_id, request.method, request.url.path)
            return await handler(request)
        except psycopg.OperationalError as problem:  # includes PoolTimeout
            state.writer_health.mark_down(problem)
            raise

    return guarded


# ----------------------------------------------------------------- identity and health


async def index(request: Request) -> JSONResponse:
    return JSONResponse({"node_id": runtime(request).settings.node_id,
                         "hostname": socket.gethostname(), "version": VERSION})


async def livez(request: Request) -> JSONResponse:
    # Deliberately no database or storage check: a DB outage must not make the
    # platform restart every replica at once.
    return JSONResponse({"live": True})


async def _check_any_node(db: Database, timeout_s: float) -> None:
    """The reader URL (prefer-standby over every node) reaches some node, of either role."""
    async with db.reader.connection(timeout=timeout_s) as conn:
        await conn.execute("SELECT 1")


async def readyz(request: Request) -> JSONResponse:
    """Ready for every request: the writer (a primary) and the shared storage answer, and
    the writer probe agrees, since writes are refused while it says the writer is down."""
    state = runtime(request)

    async def check_writer_known_up(db: Database, timeout_s: float) -> None:
        state.writer_health.require_known()
        await check_writer(db, timeout_s)

    return await _readiness(state, check_writer_known_up)


async def readyz_read(request: Request) -> JSONResponse:
    """Ready for reads: any DB node and the shared storage answer. Stays 200 while no
    primary exists, so the LB's read backend keeps serving GETs during a failover."""
    return await _readiness(runtime(request), _check_any_node)


async def _readiness(state: Runtime, check_database) -> JSONResponse:
    if state.draining:
        return JSONResponse({"ready": False, "reason": "shutting down"}, status_code=503)
    timeout = state.settings.ready_timeout_s
    checks = {
        "database": check_database(state.db, timeout),
        "storage": asyncio.to_thread(files.probe, state.settings.storage_path, state.settings.node_id),
    }
    outcomes = await asyncio.gather(*(asyncio.wait_for(check, timeout) for check in checks.values()),
                                    return_exceptions=True)
    problems = {name: (f"no answer within {timeout}s" if isinstance(outcome, TimeoutError)
                       else f"{type(outcome).__name__}: {outcome}")
                for name, outcome in zip(checks, outcomes) if isinstance(outcome, BaseException)}
    if problems:
        reason = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)
    return JSONResponse({"ready": True})


# ----------------------------------------------------------------- files


async def put_file(request: Request) -> Response:
    state = runtime(request)
    name = request.path_params["name"]
    try:
        files.check_name(name)
    except files.UnsafeName as problem:
        return error(400, str(problem))
    limit = state.settings.max_file_bytes
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            return error(413, f"file is larger than {limit} bytes")
    await asyncio.to_thread(files.write_atomically, state.settings.storage_path, name, bytes(data))
    return JSONResponse({"name": name, "bytes": len(data)}, status_code=201)


async def get_file(request: Request) -> Response:
    name = request.path_params["name"]
    try:
        data = await asyncio.to_thread(files.read, runtime(request).settings.storage_path, name)
    except files.UnsafeName as problem:
        return error(400, str(problem))
    if data is None:
        return error(404, f"no file named {name!r}")
    return Response(data, media_type="application/octet-stream")


async def delete_file(request: Request) -> Response:
    name = request.path_params["name"]
    try:
        deleted = await asyncio.to_thread(files.delete, runtime(request).settings.storage_path, name)
    except files.UnsafeName as problem:
        return error(400, str(problem))
    return Response(status_code=204) if deleted else error(404, f"no file named {name!r}")


# ----------------------------------------------------------------- notes


@needs_writer
async def create_note(request: Request) -> Response:
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        return error(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    try:
        body = (await json_body(request)).get("body")
    except ValueError as problem:
        return error(400, str(problem))
    if not isinstance(body, str):
        return error(400, "'body' must be a string")
    try:
        result = await notes.create(runtime(request).db, runtime(request).writer_health, body, key)
    except notes.IdempotencyConflict:
        return error(409, "Idempotency-Key was already used with a different body")
    return JSONResponse(result.note, status_code=201 if result.created else 200,
                        headers={} if result.created else {"Idempotent-Replayed": "true"})


async def get_note(request: Request) -> Response:
    try:
        note_id = str(uuid.UUID(request.path_params["id"]))
    except ValueError:
        return error(404, "no such note")
    note, source = await notes.get(runtime(request).db, note_id, runtime(request).writer_health)
    if note is None:
        return error(404, "no such note")
    return JSONResponse(note, headers={"X-Read-From": source})


# ----------------------------------------------------------------- jobs


@needs_writer
async def create_jobs(request: Request) -> Response:
    try:
        body = await json_body(request)
    except ValueError as problem:
        return error(400, str(problem))
    count, payload, batch = body.get("count", 1), body.get("payload", {}), body.get("batch")
    if not isinstance(count, int) or not 1 <= count <= MAX_JOBS_PER_REQUEST:
        return error(400, f"'count' must be an integer from 1 to {MAX_JOBS_PER_REQUEST}")
    if not isinstance(payload, dict):
        return error(400, "'payload' must be a JSON object")
    if batch is not None and not isinstance(batch, str):
        return error(400, "'batch' must be a string")
    ids = await jobs.enqueue(runtime(request).db, count, payload, batch)
    return JSONResponse({"ids": ids, "batch": batch}, status_code=202)


@needs_writer
async def job_stats(request: Request) -> JSONResponse:
    return JSONResponse(await jobs.stats(runtime(request).db, request.query_params.get("batch")))


@needs_writer
async def get_job(request: Request) -> Response:
    try:
        job_id = str(uuid.UUID(request.path_params["id"]))
    except ValueError:
        return error(404, "no such job")
    job = await jobs.get_job(runtime(request).db, job_id)
    return error(404, "no such job") if job is None else JSONResponse(job)


@needs_writer
async def maintenance(request: Request) -> JSONResponse:
    state = runtime(request)
    return JSONResponse({"holds_lock": state.maintenance.holds_lock,
                         "holder": await lock_holder(state.db)})


# ----------------------------------------------------------------- wiring


def unavailable(message: str) -> JSONResponse:
    """503 with Retry-After: the client may retry, with its Idempotency-Key for a write."""
    return JSONResponse({"error": message}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
    return unavailable("database unavailable")


async def no_writer(request: Request, exc: Exception) -> JSONResponse:
    return unavailable("no primary database right now (failover in progress); retry later")


class ServedByMiddleware:
    """Adds `X-Served-By: <NODE_ID>` to every response, so clients and `verify` can
    see which replica the load balancer picked."""

    def __init__(self, app, node_id: str):
        self.app = app
        self.header = (b"x-served-by", node_id.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_header(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)


class CloseWhileDrainingMiddleware:
    """Once the replica drains, every response says `Connection: close`: the load
    balancer puts none of its connections back in its idle pool, so none is picked for
    a new request at the moment the app stops (docs/render.md, connection reuse)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        runtime_state = getattr(scope.get("app").state, "runtime", None) if scope["type"] == "http" else None
        if runtime_state is None:
            return await self.app(scope, receive, send)

        async def send_closing(message):
            if message["type"] == "http.response.start" and runtime_state.draining:
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, receive, send_closing)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    metrics = RequestMetrics()

    @asynccontextmanager
    async def lifespan(app: Starlette):
        app.state.runtime = Runtime(settings)
        await app.state.runtime.start()
        try:
            yield
        finally:
            await app.state.runtime.stop()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/livez", livez),
            Route("/readyz", readyz),
            Route("/readyz/read", readyz_read),
            # `:path` so a name with an (encoded) slash reaches the check and gets 400.
            Route("/files/{name:path}", put_file, methods=["PUT"]),
            Route("/files/{name:path}", get_file, methods=["GET"]),
            Route("/files/{name:path}", delete_file, methods=["DELETE"]),
            Route("/notes", create_note, methods=["POST"]),
            Route("/notes/{id}", get_note),
            Route("/jobs", create_jobs, methods=["POST"]),
            Route("/jobs/stats", job_stats),
            Route("/jobs/{id}", get_job),
            Route("/maintenance", maintenance),
            Route("/metrics", metrics.endpoint),
        ],
        # Covers psycopg_pool.PoolTimeout too (a subclass): no connection in time.
        exception_handlers={psycopg.OperationalError: database_unavailable, WriterUnavailable: no_writer},
        lifespan=lifespan,
    )
    app.add_middleware(ServedByMiddleware, node_id=settings.node_id)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.add_middleware(CloseWhileDrainingMiddleware)
    return app
