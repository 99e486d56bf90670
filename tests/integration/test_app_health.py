"""Liveness, readiness and identity of a real app process."""

from __future__ import annotations

import httpx
import pytest

from loopback.app import database_url
from loopback.ports import wait_until

pytestmark = pytest.mark.integration


def test_readyz_turns_503_when_the_db_stops_while_livez_stays_200(start_apps, pg_disposable):
    with pg_disposable.connect() as conn:
        conn.execute("CREATE DATABASE shop")
    (replica,) = start_apps(1, database_url(pg_disposable.port, "shop"), extra_env={"READY_TIMEOUT_S": "1"})
    replica.wait_ready()

    pg_disposable.stop()
    wait_until(lambda: httpx.get(f"{replica.url}/readyz", timeout=5).status_code == 503, 10, "readyz 503")
    not_ready = httpx.get(f"{replica.url}/readyz", timeout=5)
    assert not_ready.json()["reason"].startswith("database:"), not_ready.json()
    assert not_ready.elapsed.total_seconds() < 3  # bounded by READY_TIMEOUT_S, not a libpq default
    assert httpx.get(f"{replica.url}/livez", timeout=5).status_code == 200

    # The database comes back: the pool drops its dead connections and recovers.
    pg_disposable.start()
    replica.wait_ready(deadline_s=15)


def test_readyz_is_503_when_shared_storage_is_unusable(start_apps, fresh_database, workdir):
    (replica,) = start_apps(1, fresh_database, storage_path=workdir / "not-mounted")
    answer = httpx.get(f"{replica.url}/readyz", timeout=5)
    assert answer.status_code == 503
    assert answer.json()["reason"].startswith("storage:"), answer.json()


def test_every_response_names_the_node_that_served_it(start_apps, fresh_database):
    (replica,) = start_apps(1, fresh_database)
    index = httpx.get(replica.url + "/")
    assert index.json()["node_id"] == "app-0"
    assert {"hostname", "version"} <= set(index.json())
    for path in ("/", "/livez", "/readyz", "/no-such-route", "/files/.bad", f"/notes/{'0' * 32}"):
        assert httpx.get(replica.url + path).headers["x-served-by"] == "app-0", path
