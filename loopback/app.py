"""The reference app (app/hastack_app) as real OS processes on 127.0.0.1.

Each replica is started the way the Docker platform starts a container: its own
process running `python -m hastack_app`, with NODE_ID, PORT, DATABASE_URL,
DATABASE_READ_URL and STORAGE_PATH in its environment.

    with app_cluster(3, database_url(pg.port, "shop"), storage, log_dir) as replicas:
        replicas[0].wait_ready()
        httpx.get(replicas[0].url + "/jobs/stats")
        replicas[1].kill()          # SIGKILL: a crash
        replicas[2].terminate()     # SIGTERM: drain, then graceful shutdown

`app_cluster` reaps every process it started, whatever happens inside the block;
`start_app` returns one `AppProcess` whose `stop()` the caller must call.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .ports import free_port

APP_DIR = Path(__file__).resolve().parent.parent / "app"

# Faster than the production defaults, so tests are quick: poll for jobs often, run
# maintenance often, skip the drain unless a test asks for it. Override per test.
LOOPBACK_ENV = {
    "JOB_POLL_S": "0.05",
    "MAINTENANCE_INTERVAL_S": "0.5",
    "SHUTDOWN_DRAIN_S": "0",
    "SHUTDOWN_GRACE_S": "2",
    "DB_POOL_MAX": "4",
    "MIGRATE_DEADLINE_S": "20",
}

# Variables the platform owns; never inherited from the environment running the tests.
_PLATFORM_ENV = ("NODE_ID", "PORT", "DATABASE_URL", "DATABASE_READ_URL", "STORAGE_PATH",
                 "CONTAINER_APP_REPLICA_NAME")


def database_url(hosts: int | Sequence[tuple[str, int]], dbname: str, *, user: str = "postgres",
                 target_session_attrs: str = "read-write", ca_file: Path | None = None,
                 client_options: Mapping[str, str] | None = None) -> str:
    """A libpq URL like the Docker platform passes: every DB host listed, libpq picking
    by `target_session_attrs` (read-write for DATABASE_URL, prefer-standby for reads).
    `hosts` is a port on 127.0.0.1, or (host, port) pairs. With `ca_file`, TLS verified
    against that CA (`sslmode=verify-full`), as the Docker platform's URLs ask; with
    `client_options`, those libpq parameters too (a platform's timeouts)."""
    pairs = [("127.0.0.1", hosts)] if isinstance(hosts, int) else hosts
    hostlist = ",".join(f"{host}:{port}" for host, port in pairs)
    tls = f"&sslmode=verify-full&sslrootcert={ca_file}" if ca_file else ""
    extra = "".join(f"&{name}={value}" for name, value in (client_options or {}).items())
    return f"postgresql://{user}@{hostlist}/{dbname}?target_session_attrs={target_session_attrs}{tls}{extra}"


@dataclass
class AppProcess:
    """One replica: its identity, port, environment and process."""

    node_id: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait_live(self, deadline_s: float = 30.0) -> None:
        """Poll /livez until 200. The app serves only after its migrations ran."""
        self._wait_for("/livez", deadline_s)

    def wait_ready(self, deadline_s: float = 30.0) -> None:
        """Poll /readyz until 200 (database and shared storage usable)."""
        self._wait_for("/readyz", deadline_s)

    def _wait_for(self, path: str, deadline_s: float) -> None:
        deadline = time.monotonic() + deadline_s
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.node_id} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                response = httpx.get(self.url + path, timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as problem:
                last = repr(problem)
            time.sleep(0.05)
        raise TimeoutError(f"{self.node_id} {path} not 200 after {deadline_s}s ({last}):\n{self.log_tail()}")

    def terminate(self) -> None:
        """SIGTERM: the app drains, finishes in-flight requests and exits. Returns at once."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL (a crash), and reap."""
        if self.running:
            self.process.kill()
        self.process.wait(timeout=10)

    def wait_exit(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.node_id} still running {timeout_s}s after SIGTERM:\n{self.log_tail()}") from None

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if still running after `grace_s`; always reaps."""
        self.terminate()
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path.exists():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


def start_app(node_id: str, *, database_url: str, storage_path: Path, log_dir: Path,
              read_url: str | None = None, extra_env: Mapping[str, str] | None = None,
              port: int | None = None) -> AppProcess:
    """Start one replica without waiting for it (see `wait_live`), on `port` (a restart
    behind an LB that knows the old one) or a free one."""
    port = port or free_port()
    env = {key: value for key, value in os.environ.items() if key not in _PLATFORM_ENV}
    env.update(LOOPBACK_ENV)
    env.update({
        "NODE_ID": node_id,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": database_url,
        "DATABASE_READ_URL": read_url or database_url,
        "STORAGE_PATH": str(storage_path),
        "PYTHONPATH": str(APP_DIR),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra_env or {})
    log_path = log_dir / f"{node_id}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "hastack_app"], cwd=APP_DIR, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return AppProcess(node_id=node_id, port=port, env=env, log_path=log_path, process=process)


@contextmanager
def app_cluster(replicas: int, database_url: str, storage_path: Path, log_dir: Path, *,
                read_url: str | None = None, extra_env: Mapping[str, str] | None = None,
                storage_paths: Mapping[str, Path] | None = None,
                wait: bool = True) -> Iterator[list[AppProcess]]:
    """Start `replicas` processes app-0..app-N-1 at once, all sharing `storage_path`
    unless `storage_paths` gives a node its own; wait until each is live (unless
    `wait=False`). On exit, stop them all in parallel and reap every one."""
    processes: list[AppProcess] = []
    try:
        for index in range(replicas):
            node_id = f"app-{index}"
            processes.append(start_app(
                node_id, database_url=database_url, read_url=read_url, log_dir=log_dir,
                storage_path=(storage_paths or {}).get(node_id, storage_path), extra_env=extra_env))
        if wait:
            for process in processes:
                process.wait_live()
        yield processes
    finally:
        stop_all(processes)


def stop_all(processes: Sequence[AppProcess], grace_s: float = 10.0) -> None:
    """SIGTERM every process at once, then SIGKILL whatever is left after `grace_s`."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
