"""The stack-on-loopback harness (loopback/stack.py) that every drill runs on: it comes
up as the Docker platform wires it, and tears down without a trace."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest

from loopback.processes import process_tree
from loopback.stack import run_loopback_stack

pytestmark = pytest.mark.integration


def test_stack_serves_through_the_lb_with_every_db_node_in_the_app_urls(loopback_stack):
    served_by = {httpx.get(loopback_stack.url + "/", timeout=5).headers["x-served-by"] for _ in range(6)}
    assert served_by == {"app-0", "app-1", "app-2"}
    nodes = f"127.0.0.1:{loopback_stack.primary.port},127.0.0.1:{loopback_stack.replica.port}"
    verified = f"&sslmode=verify-full&sslrootcert={loopback_stack.ca_file}"
    assert f"@{nodes}/" in loopback_stack.writer_url and loopback_stack.writer_url.endswith("read-write" + verified)
    assert f"@{nodes}/" in loopback_stack.reader_url and loopback_stack.reader_url.endswith("prefer-standby" + verified)
    assert all(app.env["DATABASE_URL"] == loopback_stack.writer_url for app in loopback_stack.apps)


def test_the_apps_metrics_are_denied_at_the_lb_and_still_answer_on_each_replica(loopback_stack):
    """Debian's haproxy with the rendered haproxy.cfg in front of the real app: /metrics, however
    spelt, gets HAProxy's 404 (no replica is asked), while each replica answers it directly,
    as Prometheus scrapes it."""
    for path in ("/metrics", "/metrics?x=1", "/%6detrics", "/metrics/"):
        answer = httpx.get(loopback_stack.url + path, timeout=5)
        assert answer.status_code == 404 and "x-served-by" not in answer.headers, path
    for app in loopback_stack.apps:
        direct = httpx.get(f"http://127.0.0.1:{app.port}/metrics", timeout=5)
        assert direct.status_code == 200 and "hastack_http_requests_total" in direct.text
    # Any other path still reaches the app.
    assert httpx.get(loopback_stack.url + "/", timeout=5).headers["x-served-by"].startswith("app-")


@pytest.mark.usefixtures("stack_binaries_installed")
def test_teardown_ends_every_process_and_removes_every_dir():
    with run_loopback_stack() as stack:
        # A restarted app and a restarted DB replica must be cleaned up as well.
        stack.apps[0].kill()
        stack.restart_app(0)
        stack.replica.kill()
        stack.db.start_replica(0)
        started = stack.pids()
        dirs = [stack.root, stack.db.root]
        # haproxy + workers, 3 apps, 2 postmasters with their backends.
        assert len(started) > 10, started
    assert process_tree(started) == set(), "processes left running after the stack stopped"
    assert [path for path in dirs if path.exists()] == []
    assert all(path.parent == Path(tempfile.gettempdir()) for path in dirs), dirs
