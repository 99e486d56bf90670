"""The checks `verify` runs, each through the load balancer only.

A check never needs to address a replica directly: it repeats a request until the
LB has spread it over every replica, and reads `X-Served-By` to tell them apart.
Each check returns a `CheckResult`; an HTTP error inside a check fails that check
rather than stopping the run.
"""

from __future__ import annotations

import functools
import ssl
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import httpx

SERVED_BY = "x-served-by"


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


Outcome = tuple[bool, str]  # passed, detail


def check(title: str):
    """Turn `fn(stack, replicas, ...) -> (passed, detail)` into a check that returns a
    titled CheckResult, and fails (instead of raising) when a request errors or the
    answer is not the app's JSON, e.g. because a replica died mid-check."""
    def decorate(fn):
        @functools.wraps(fn)
        def run(stack: Stack, replicas: int, **kwargs) -> CheckResult:
            try:
                passed, detail = fn(stack, replicas, **kwargs)
            except (httpx.HTTPError, ValueError, KeyError) as problem:
                passed, detail = False, f"{type(problem).__name__}: {problem}"
            return CheckResult(title, passed, detail)
        return run
    return decorate


class Stack:
    """HTTP client for the stack's URL. A fresh connection per request and no cookies,
    so neither connection reuse nor cookie affinity can pin requests to one replica."""

    def __init__(self, url: str, timeout_s: float, ca_file: str | None = None):
        self.url = url.rstrip("/")
        verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self.client = httpx.Client(timeout=timeout_s, limits=httpx.Limits(max_keepalive_connections=0), verify=verify)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = self.client.request(method, self.url + path, **kwargs)
        self.client.cookies.clear()
        return response

    def spread(self, method: str, path: str, replicas: int, **kwargs) -> list[httpx.Response]:
        """Repeat a request until every expected replica answered at least twice (so an
        unexpected extra replica shows up too), or a generous attempt limit is reached."""
        responses: list[httpx.Response] = []
        seen: Counter[str | None] = Counter()
        for _ in range(10 * replicas + 10):
            response = self.request(method, path, **kwargs)
            responses.append(response)
            seen[served_by(response)] += 1
            if len(seen) >= replicas and min(seen.values()) >= 2:
                break
        return responses

    def close(self) -> None:
        self.client.close()


def served_by(response: httpx.Response) -> str | None:
    return response.headers.get(SERVED_BY)


def _names(nodes) -> str:
    return ", ".join(sorted(str(node) for node in nodes)) or "none"


@check("(a) responses come from every replica")
def every_replica_answers(stack: Stack, replicas: int) -> Outcome:
    responses = stack.spread("GET", "/", replicas)
    nodes = {served_by(r) for r in responses}
    if None in nodes:
        return (False, f"a response had no {SERVED_BY} header: is this the hastack app?")
    failed = [r for r in responses if r.status_code != 200]
    if failed:
        return (False, f"GET / answered {failed[0].status_code} via {served_by(failed[0])}")
    detail = f"{len(nodes)}/{replicas} replicas answered: {_names(nodes)}"
    return (len(nodes) == replicas, detail if len(nodes) <= replicas
                       else f"expected {replicas} replicas, saw {len(nodes)}: {_names(nodes)}")


@check("(b) a file written via one replica reads back via another")
def files_are_shared(stack: Stack, replicas: int) -> Outcome:
    file_name = f"verify-{uuid.uuid4().hex}.txt"
    content = f"written by verify {file_name}".encode()
    written = stack.request("PUT", f"/files/{file_name}", content=content)
    writer = served_by(written)
    if written.status_code != 201:
        return (False, f"PUT /files answered {written.status_code} via {writer}: {written.text[:200]}")
    try:
        readers: dict[str | None, int] = {}
        for response in stack.spread("GET", f"/files/{file_name}", replicas):
            ok = response.status_code == 200 and response.content == content
            # A node that failed once stays failed, whatever it answers later.
            if readers.get(served_by(response), 200) == 200:
                readers[served_by(response)] = 200 if ok else response.status_code
    finally:
        stack.request("DELETE", f"/files/{file_name}")
    others = sorted(str(node) for node in readers if node != writer)
    unreadable = {node: status for node, status in readers.items() if status != 200}
    if unreadable:
        reasons = ", ".join(f"{node} ({'wrong content' if status == 200 else status})"
                            for node, status in sorted(unreadable.items(), key=str))
        return (False, f"written via {writer}; not readable via {reasons}: "
                                        "is every replica's STORAGE_PATH the same shared mount?")
    if not others:
        return (False, f"written via {writer}, but no other replica answered the reads")
    return (True, f"written via {writer}, read back via {', '.join(others)}")


@check("(c) a note reads back; an idempotent retry returns it")
def notes_survive_retries(stack: Stack, replicas: int) -> Outcome:
    key = f"verify-{uuid.uuid4().hex}"
    body = {"body": f"note written by verify ({key})"}
    headers = {"Idempotency-Key": key}
    created = stack.request("POST", "/notes", json=body, headers=headers)
    if created.status_code != 201:
        return (False, f"POST /notes answered {created.status_code}: {created.text[:200]}")
    note_id = created.json()["id"]
    read = stack.request("GET", f"/notes/{note_id}")
    if read.status_code != 200 or read.json().get("body") != body["body"]:
        return (False, f"note {note_id} created via {served_by(created)} but GET answered "
                                        f"{read.status_code} via {served_by(read)}")
    retry_nodes = set()
    for retry in stack.spread("POST", "/notes", replicas, json=body, headers=headers):
        retry_nodes.add(served_by(retry))
        if retry.status_code != 200 or retry.json().get("id") != note_id:
            return (False, f"retry with the same Idempotency-Key via {served_by(retry)} "
                                            f"answered {retry.status_code} {retry.text[:120]} (want 200, id {note_id})")
    return (True, f"note created via {served_by(created)}, read via {served_by(read)}; "
                                   f"retries via {_names(retry_nodes)} returned the same note")


@check("(d) a batch of jobs runs exactly once, on every replica")
def jobs_run_once(stack: Stack, replicas: int, deadline_s: float = 60.0) -> Outcome:
    batch = f"verify-{uuid.uuid4().hex}"
    count = 10 * replicas
    # Each job takes a moment, so an idle replica has time to claim its share.
    created = stack.request("POST", "/jobs", json={"count": count, "batch": batch, "payload": {"work_s": 0.1}})
    if created.status_code != 202:
        return (False, f"POST /jobs answered {created.status_code}: {created.text[:200]}")
    deadline = time.monotonic() + deadline_s
    while True:
        stats = stack.request("GET", "/jobs/stats", params={"batch": batch}).json()
        finished = stats["by_status"]["done"] + stats["by_status"]["failed"]
        if finished >= count or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    by_node = stats["done_by_node"]
    spread = ", ".join(f"{node} {n}" for node, n in sorted(by_node.items()))
    problems = []
    if stats["by_status"]["done"] != count:
        problems.append(f"{stats['by_status']['done']}/{count} done after {deadline_s}s ({stats['by_status']})")
    if stats["completed_more_than_once"]:
        problems.append(f"{stats['completed_more_than_once']} jobs completed more than once")
    if len(by_node) < replicas:
        problems.append(f"only {len(by_node)} of {replicas} replicas ran jobs")
    if problems:
        return (False, "; ".join(problems) + (f" (done by: {spread})" if spread else ""))
    return (True, f"{count}/{count} done, each exactly once: {spread}")


@check("(e) every replica is ready")
def every_replica_ready(stack: Stack, replicas: int) -> Outcome:
    ready: dict[str | None, str] = {}
    for response in stack.spread("GET", "/readyz", replicas):
        node = served_by(response)
        if response.status_code != 200:
            ready[node] = f"{response.status_code} {response.text[:120]}"
        ready.setdefault(node, "ready")
    unready = {node: state for node, state in ready.items() if state != "ready"}
    if unready:
        return (False, "; ".join(f"{node}: {state}" for node, state in unready.items()))
    if len(ready) < replicas:
        return (False, f"only {len(ready)} of {replicas} replicas answered /readyz "
                                        f"({_names(ready)}); the LB routes around unready ones")
    return (True, f"/readyz 200 from {_names(ready)}")

