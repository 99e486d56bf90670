"""Request counters and durations for Prometheus, through prometheus-client.

`GET /metrics` serves them in the text exposition format Prometheus scrapes. Requests are
labelled by the route's path template (`/notes/{id}`), never the raw path, so a client
cannot grow the number of series; paths that match no route count as `unmatched`.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

UNMATCHED = "unmatched"


class RequestMetrics:
    """The app's own registry (one per app instance, so tests can build several apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("hastack_http_requests", "HTTP requests answered, by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.durations = Histogram("hastack_http_request_duration_seconds", "Time to answer an HTTP request, by route",
                                   ["method", "route"], registry=self.registry)

    async def endpoint(self, request: Request) -> Response:
        # The 0.0.4 text format that Prometheus 2.42 negotiates (prometheus-client's
        # "latest" says 1.0.0, which only Prometheus 3 asks for).
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)


class RequestMetricsMiddleware:
    """Counts and times every HTTP request once its response has started."""

    def __init__(self, app, metrics: RequestMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = "500"  # the app raised before answering

        async def send_and_note_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = _route_template(scope)
            self.metrics.requests.labels(scope["method"], route, status).inc()
            self.metrics.durations.labels(scope["method"], route).observe(time.perf_counter() - started)


def _route_template(scope) -> str:
    for route in scope["app"].routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route.path
    return UNMATCHED
