"""The reference app's /metrics: request counters and durations by route template, in
the exposition format Prometheus scrapes (parsed back with prometheus-client's own parser)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from app.hastack_app.config import Settings
from app.hastack_app.main import create_app

ENV = {"DATABASE_URL": "postgresql://app@db:5432/app", "STORAGE_PATH": "/tmp", "NODE_ID": "app-0"}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_requests_are_counted_and_timed_by_route_template_not_raw_path():
    # Without the lifespan (no `with`): /livez and /metrics need no database.
    client = TestClient(create_app(Settings.from_env(ENV)))
    for _ in range(3):
        assert client.get("/livez").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/notes/not-a-uuid").status_code == 404

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    assert found[("hastack_http_requests_total", (("method", "GET"), ("route", "/livez"), ("status", "200")))] == 3
    assert found[("hastack_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert found[("hastack_http_requests_total", (("method", "GET"), ("route", "/notes/{id}"), ("status", "404")))] == 1
    assert found[("hastack_http_request_duration_seconds_count", (("method", "GET"), ("route", "/livez")))] == 3
    assert not any("not-a-uuid" in str(labels) or "/no/such" in str(labels) for _, labels in found)


def test_each_app_has_its_own_registry():
    first, second = (TestClient(create_app(Settings.from_env(ENV))) for _ in range(2))
    first.get("/livez")
    assert "route=\"/livez\"" not in second.get("/metrics").text
