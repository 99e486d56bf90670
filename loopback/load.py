"""A bounded, steady, mixed HTTP load against the stack on loopback, for the drills.

Four kinds of request, in a fixed rotation:
- `get_index`: GET /
- `get_note`:  GET /notes/{id} of a note this load created (read-your-writes)
- `post_note`: POST /notes with a fresh Idempotency-Key (the LB may retry it)
- `post_note_unkeyed`: POST /notes without one, as most apps' writes are (it must never
  reach two replicas; a failure mid-flight is the client's to see)

Every POST carries a fresh X-Request-Id, which the app records per delivery
(app/hastack_app/deliveries.py), so a drill can count requests delivered twice.

The load runs in a background thread (so a drill can kill things meanwhile) at a fixed
rate, and stops by itself after `max_requests` or `max_seconds`, whichever comes first.
It targets 127.0.0.1, or an address of a drill's own network namespaces (loopback/netns.py). Every request is recorded, with why it failed if it did:

    with MixedLoad(stack.url, max_seconds=15) as load:
        load.wait_for_requests(100)
        stack.apps[1].kill()
        ...
    report = load.report
    report.failed("get_note")   # -> [RequestResult(..., reason="HTTP 503: ...")]
"""

from __future__ import annotations

import asyncio
import itertools
import random
import ssl
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from .netns import is_drill_address

KINDS = ("get_index", "get_note", "post_note", "post_note_unkeyed")
GETS = ("get_index", "get_note")
POSTS = ("post_note", "post_note_unkeyed")
# Reads outnumber writes, as in most web apps: of every six requests, two are GET /,
# two read a note, two create one (with and without an idempotency key).
ROTATION = ("get_index", "get_note", "post_note", "get_index", "get_note", "post_note_unkeyed")
REQUEST_ID_HEADER = "X-Request-Id"
# No request may hang a drill; the LB itself answers within its own timeouts.
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RequestResult:
    kind: str
    started: float  # time.monotonic()
    ended: float
    ok: bool
    # Why it failed: "HTTP 503: <body>" or "<exception type>: <message>". None when ok.
    reason: str | None = None
    # post_note: the id of the note the server acknowledged (committed).
    note_id: str | None = None
    # The replica that answered (its X-Served-By header), when one did.
    served_by: str | None = None
    # POSTs: the X-Request-Id sent, under which the app records each delivery.
    request_id: str | None = None

    @property
    def latency_s(self) -> float:
        return self.ended - self.started


@dataclass
class LoadReport:
    results: list[RequestResult]
    started: float
    ended: float

    def of(self, kind: str, *, since: float = 0.0, until: float = float("inf")) -> list[RequestResult]:
        """Requests of `kind` that started in [since, until)."""
        return [r for r in self.results if r.kind == kind and since <= r.started < until]

    def failed(self, kind: str, **window: float) -> list[RequestResult]:
        return [r for r in self.of(kind, **window) if not r.ok]

    def failure_reasons(self, kind: str, **window: float) -> dict[str, int]:
        return dict(Counter(r.reason for r in self.failed(kind, **window)))

    def committed_note_ids(self) -> set[str]:
        """Notes whose creation the server acknowledged with 200/201."""
        return {r.note_id for r in self.results if r.kind in POSTS and r.ok and r.note_id}

    def request_ids(self, kind: str) -> set[str]:
        return {r.request_id for r in self.of(kind) if r.request_id}

    def in_flight(self, kind: str, moment: float) -> list[RequestResult]:
        """Requests of `kind` started before `moment` and not answered until after it."""
        return [r for r in self.of(kind) if r.started <= moment <= r.ended]

    def latency_percentile_s(self, kind: str, percentile: float) -> float:
        return nearest_rank(percentile, [r.latency_s for r in self.of(kind) if r.ok])

    @property
    def requests_per_second(self) -> float:
        return len(self.results) / max(self.ended - self.started, 1e-9)

    def summary(self) -> dict[str, dict]:
        """Per kind: counts, failure reasons and latency percentiles (ms), for reports."""
        return {kind: {
            "ok": sum(r.ok for r in self.of(kind)),
            "failed": len(self.failed(kind)),
            "failure_reasons": self.failure_reasons(kind),
            "p50_ms": round(self.latency_percentile_s(kind, 50) * 1000, 2),
            "p99_ms": round(self.latency_percentile_s(kind, 99) * 1000, 2),
        } for kind in KINDS}


@dataclass
class MixedLoad:
    base_url: str
    max_requests: int = 3000
    max_seconds: float = 20.0
    # Requests started per second, spread evenly; `concurrency` bounds those in flight.
    rate_per_s: float = 150.0
    concurrency: int = 16
    # The CA an https:// `base_url` is verified with (the stack's own); None: the system's.
    ca_file: str | None = None
    results: list[RequestResult] = field(default_factory=list, init=False)
    report: LoadReport | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        host = httpx.URL(self.base_url).host
        if host != "127.0.0.1" and not is_drill_address(host):
            raise ValueError(f"the drill load targets 127.0.0.1 or a drill namespace's address only, not {self.base_url}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run_in_thread, name="mixed-load", daemon=True)
        self._error: BaseException | None = None
        self._note_ids: list[str] = []

    def __enter__(self) -> MixedLoad:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> LoadReport:
        """Stop starting requests, wait for those in flight, and return the report."""
        self._stop.set()
        self._thread.join(timeout=REQUEST_TIMEOUT_S + 5)
        if self._error is not None:
            raise RuntimeError("the load generator failed") from self._error
        if self.report is None:
            self.report = LoadReport(results=list(self.results), started=self._started, ended=self._ended)
        return self.report

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait_for_requests(self, count: int, deadline_s: float = 30.0) -> None:
        """Poll until `count` more requests have completed from now on; raise if the load
        stops or the deadline passes first. This is how a drill lets load run a while."""
        target = len(self.results) + count
        deadline = time.monotonic() + deadline_s
        while len(self.results) < target:
            if self.done:
                raise RuntimeError(f"the load ended (bounded at {self.max_requests} requests / "
                                   f"{self.max_seconds}s) before {count} more requests completed")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} more requests not done after {deadline_s}s")
            time.sleep(0.01)

    def _run_in_thread(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # surfaced by stop()
            self._error = error
        finally:
            self._ended = time.monotonic()

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        verify = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S, limits=limits,
                                     verify=verify) as client:
            slots = asyncio.Semaphore(self.concurrency)
            in_flight: set[asyncio.Task] = set()
            kinds = itertools.cycle(ROTATION)
            interval = 1.0 / self.rate_per_s
            deadline = self._started + self.max_seconds
            for index in range(self.max_requests):
                start_at = self._started + index * interval
                if self._stop.is_set() or start_at >= deadline:
                    break
                await asyncio.sleep(max(0.0, start_at - time.monotonic()))
                await slots.acquire()
                task = asyncio.create_task(self._one(client, next(kinds)))
                task.add_done_callback(lambda _: slots.release())
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.gather(*in_flight)

    async def _one(self, client: httpx.AsyncClient, kind: str) -> None:
        if kind == "get_note" and not self._note_ids:
            kind = "post_note"  # nothing to read yet
        started = time.monotonic()
        note_id = served_by = request_id = None
        try:
            if kind == "get_index":
                response = await client.get("/")
            elif kind == "get_note":
                response = await client.get(f"/notes/{random.choice(self._note_ids)}")
            else:
                request_id = str(uuid.uuid4())
                key = {"Idempotency-Key": str(uuid.uuid4())} if kind == "post_note" else {}
                response = await client.post("/notes", json={"body": f"drill note {request_id}"},
                                             headers={REQUEST_ID_HEADER: request_id, **key})
            served_by = response.headers.get("x-served-by")
            ok = response.status_code in (200, 201)
            reason = None if ok else f"HTTP {response.status_code}: {response.text[:120]}"
            if ok and kind in POSTS:
                note_id = response.json()["id"]
                self._note_ids.append(note_id)
        except httpx.HTTPError as problem:
            ok, reason = False, f"{type(problem).__name__}: {problem}"
        self.results.append(RequestResult(kind, started, time.monotonic(), ok, reason, note_id, served_by, request_id))


def nearest_rank(percentile: float, values: list[float]) -> float:
    """The `percentile`th (0-100) of `values`, nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percentile / 100 * (len(ordered) - 1)))]
