"""Load-balancer throughput, three paths side by side in one run, with wrk (2 threads) at
16 and 64 connections, ROUNDS interleaved rounds each:

- `direct`: straight to one backend, the ceiling;
- `lb_per_request`: the rendered haproxy.cfg with `loadBalancer.serverKeepAlive: false`,
  one new connection to a replica per request (hastack's only mode before issue 14);
- `lb_reuse`: the rendered haproxy.cfg as shipped, keep-alive with `http-reuse safe`.

The two backends are HAProxy processes answering every request themselves
(`http-request return`), so the figures measure the LB and not an app. Then
`idle_pool_drain` measures how long the LB keeps idle connections to a replica after a
burst of 64, the bound the app's keep-alive timeout must exceed (docs/render.md).

    uv run python -m bench lb_throughput

Needs haproxy, wrk and ss (apt-get install -y haproxy wrk iproute2). Every process binds
127.0.0.1; each wrk run lasts WRK_SECONDS.
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

from app.hastack_app.config import APP_KEEP_ALIVE_S
from loopback.binaries import find
from loopback.haproxy import LoopbackHaproxy, loopback_settings
from loopback.ports import free_port, wait_for_port, wait_until

CONNECTIONS = (16, 64)
WRK_SECONDS = 5
WRK_THREADS = 2
# Rounds of every (path, connections) run, interleaved so that a busy moment on the 2-core
# machine hits every path alike. A path's figure is its median round; a ratio is the
# median of the ratios taken within each round.
ROUNDS = 3

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def fast_backend_cfg(port: int) -> str:
    """A backend that answers every request itself: what `haproxy -f` serves here."""
    return "\n".join([
        "defaults",
        "    mode http",
        "    timeout connect 1s",
        "    timeout client 30s",
        "    timeout server 30s",
        "frontend fast",
        f"    bind 127.0.0.1:{port}",
        '    http-request return status 200 content-type text/plain string "ok"',
        "",
    ])


@contextmanager
def fast_backend(workdir: Path):
    port = free_port()
    config = workdir / f"fast-{port}.cfg"
    config.write_text(fast_backend_cfg(port))
    process = subprocess.Popen([find("haproxy"), "-db", "-f", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, 10)
        yield port
    finally:
        process.kill()
        process.wait(timeout=10)


def wrk(url: str, connections: int) -> dict:
    """requests/s and p50/p99 latency (ms) of one bounded wrk run against `url`."""
    out = subprocess.run([find("wrk"), f"-t{WRK_THREADS}", f"-c{connections}", f"-d{WRK_SECONDS}s", "--latency", url],
                         capture_output=True, text=True, timeout=WRK_SECONDS + 30, check=True).stdout
    latency = {pct: float(value) * UNIT_MS[unit]
               for pct, value, unit in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.M)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": round(latency["50"], 3),
        "p99_ms": round(latency["99"], 3),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "none",
    }


def median_round(runs: list[dict]) -> dict:
    """The run with the median requests/s, whole (its latencies belong to it)."""
    return sorted(runs, key=lambda run: run["requests_per_s"])[len(runs) // 2]


def round_ratios(rounds: dict[tuple[str, int], list[dict]], connections: int) -> dict:
    """Reuse over per-request, taken within each round (runs seconds apart, under the same
    load), then the median over the rounds."""
    pairs = list(zip(rounds[("lb_per_request", connections)], rounds[("lb_reuse", connections)],
                     rounds[("direct", connections)]))
    throughput = [reuse["requests_per_s"] / today["requests_per_s"] for today, reuse, _ in pairs]
    p50 = [reuse["p50_ms"] / today["p50_ms"] for today, reuse, _ in pairs]
    of_direct = [reuse["requests_per_s"] / direct["requests_per_s"] for _, reuse, direct in pairs]
    return {
        "throughput_ratio": round(statistics.median(throughput), 2),
        "p50_ratio": round(statistics.median(p50), 2),
        "reuse_vs_direct_throughput": round(statistics.median(of_direct), 2),
        "rounds_throughput_ratio": [round(r, 2) for r in throughput],
        "rounds_p50_ratio": [round(r, 2) for r in p50],
    }


def established_to(port: int) -> int:
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def idle_pool_drain_s(lb_url: str, backend_ports: list[int]) -> float:
    """Seconds from the end of a 64-connection burst until the LB holds no connection to any backend."""
    wrk(lb_url, 64)
    return wait_until(lambda: sum(established_to(p) for p in backend_ports) == 0, 5 * APP_KEEP_ALIVE_S,
                      "the LB's idle pool drained", interval_s=0.25)


def main() -> int:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hastack-lb-bench-")))
        ports = [stack.enter_context(fast_backend(workdir)) for _ in range(2)]
        # As the shipped stacks: reads (wrk's GETs) go to the read backend.
        settings = dataclasses.replace(loopback_settings({f"app-{i}": port for i, port in enumerate(ports)}, "/readyz"),
                                       read_health_path="/readyz/read")
        lbs = {}
        for path, keep_alive in (("lb_per_request", False), ("lb_reuse", True)):
            lb_dir = workdir / path
            lb_dir.mkdir()
            lb = LoopbackHaproxy(dataclasses.replace(settings, frontend_port=free_port(), stats_port=free_port(),
                                                     server_keep_alive=keep_alive), lb_dir)
            stack.enter_context(lb)
            for name in (backend.name for backend in settings.backends):
                lb.wait_for_server(name, "UP", deadline_s=10)
            lbs[path] = lb.url + "/"
        urls = {"direct": f"http://127.0.0.1:{ports[0]}/", **lbs}
        rounds: dict[tuple[str, int], list[dict]] = {}
        for _ in range(ROUNDS):
            for connections in CONNECTIONS:
                for path, url in urls.items():
                    rounds.setdefault((path, connections), []).append(wrk(url, connections))
        figures = {key: median_round(runs) for key, runs in rounds.items()}
        for (path, connections), result in figures.items():
            print(json.dumps({"bench": "lb_throughput", "path": path, "connections": connections, **result,
                              "rounds_requests_per_s": [run["requests_per_s"] for run in rounds[(path, connections)]]}))
        for connections in CONNECTIONS:
            print(json.dumps({"bench": "lb_throughput", "figure": "reuse_vs_per_request", "connections": connections,
                              **round_ratios(rounds, connections)}))
        drained = idle_pool_drain_s(lbs["lb_reuse"], ports)
        print(json.dumps({"bench": "lb_throughput", "figure": "idle_pool_drain_s", "value": round(drained, 1),
                          "app_keep_alive_s": APP_KEEP_ALIVE_S, "connections": 64}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
