"""HAProxy on 127.0.0.1, run from the rendered haproxy.cfg, and its view of each server.

The drills and tests start it in front of processes on loopback and then ask "is
server X UP?" through the admin stats socket, so ejection is measured from HAProxy's
own point of view rather than guessed from client errors.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import signal
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from components.config import HealthCheckConfig, LoadBalancerTlsConfig, RetryConfig
from components.render.haproxy import APP_BACKEND, Backend, HaproxySettings, TlsTermination, render_haproxy_cfg

from .binaries import find
from .netns import is_drill_address
from .ports import free_port, wait_for_port, wait_until

# `show stat` status column values that mean the server takes traffic / does not.
# Transitional states read "UP 1/2" (up, one failed check) or "DOWN 1/2" (down, one good one).
UP = "UP"
DOWN = "DOWN"


def loopback_settings(backend_ports: Mapping[str, int], health_path: str,
                      health: HealthCheckConfig | None = None, tls_bundle: Path | None = None, *,
                      read_health_path: str | None = None, retry: RetryConfig | None = None) -> HaproxySettings:
    """Settings for an LB on 127.0.0.1 in front of `{server name: port}`, with the
    health-check timing and retry rules the Docker stack gets from the same config (its
    defaults if None), and HTTPS with the certificate + key PEM `tls_bundle` when given."""
    health = health or HealthCheckConfig()
    retry = retry or RetryConfig()
    tls = None
    if tls_bundle:
        tls_port = free_port()
        tls = TlsTermination(port=tls_port, certificate_file=str(tls_bundle), public_port=tls_port,
                             hsts_max_age_s=LoadBalancerTlsConfig().hsts_max_age_seconds)
    return HaproxySettings(
        frontend_port=free_port(),
        stats_port=free_port(),
        backends=tuple(Backend(name, "127.0.0.1", port) for name, port in backend_ports.items()),
        health_path=health_path,
        interval_ms=health.interval_ms,
        fall=health.fall,
        rise=health.rise,
        timeout_check_ms=health.timeout_ms,
        bind_address="127.0.0.1",
        tls=tls,
        read_health_path=read_health_path,
        idempotent_methods=tuple(retry.idempotent_methods),
        idempotency_key_header=retry.idempotency_key_header,
    )


def check_config(config_text: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run `haproxy -c` on `config_text`; the result carries haproxy's verdict and messages."""
    path = workdir / "haproxy-check.cfg"
    path.write_text(config_text)
    return subprocess.run([find("haproxy"), "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)


class LoopbackHaproxy:
    """One haproxy process (master-worker, foreground) with an admin socket in `workdir`."""

    def __init__(self, settings: HaproxySettings, workdir: Path):
        if settings.bind_address != "127.0.0.1" and not is_drill_address(settings.bind_address):
            raise ValueError("the loopback LB binds 127.0.0.1 or a drill namespace's address (loopback/netns.py) only")
        self.settings = dataclasses.replace(settings, stats_socket=str(workdir / "haproxy-admin.sock"))
        self.workdir = workdir
        self.config_path = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Where clients go: HTTPS when the settings have TLS, else plain HTTP."""
        if self.settings.tls:
            return f"https://{self.settings.bind_address}:{self.settings.tls.port}"
        return self.http_url

    @property
    def http_url(self) -> str:
        """The plain HTTP port (with TLS it only redirects)."""
        return f"http://{self.settings.bind_address}:{self.settings.frontend_port}"

    @property
    def stats_url(self) -> str:
        return f"http://{self.settings.bind_address}:{self.settings.stats_port}"

    def start(self, deadline_s: float = 10.0) -> None:
        self.config_path.write_text(render_haproxy_cfg(self.settings))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([find("haproxy"), "-W", "-db", "-f", str(self.config_path)],
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.settings.frontend_port, deadline_s, host=self.settings.bind_address)
            if self.settings.tls:
                wait_for_port(self.settings.tls.port, deadline_s, host=self.settings.bind_address)
            wait_until(self._admin_socket_answers, deadline_s, "haproxy admin socket")
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"haproxy did not start:\n{self.log_tail()}") from None

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM (immediate stop) to the master, SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=grace_s)

    def __enter__(self) -> LoopbackHaproxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def admin(self, command: str) -> str:
        """One command on the admin stats socket (`show stat`, `disable server app/app-0`, ...)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(self.settings.stats_socket)
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self, backend: str = APP_BACKEND) -> dict[str, dict[str, str]]:
        """`show stat` rows of `backend` by server name, with its BACKEND row (counters
        such as `econ` connection errors, `wretr` retries, `wredis` redispatches)."""
        rows = csv.DictReader(io.StringIO(self.admin("show stat").removeprefix("# ")))
        return {row["svname"]: row for row in rows if row["pxname"] == backend and row["svname"] != "FRONTEND"}

    def server_states(self, backend: str = APP_BACKEND) -> dict[str, str]:
        """`{server name: status}` in `backend`, e.g. {"app-0": "UP", "app-1": "DOWN 1/2"}."""
        return {name: row["status"] for name, row in self.stats(backend).items() if name != "BACKEND"}

    def wait_for_server(self, name: str, status: str, deadline_s: float, backend: str = APP_BACKEND) -> float:
        """Poll until server `name` is exactly `status` (UP or DOWN) in `backend`; return the seconds it took."""
        return wait_until(lambda: self.server_states(backend).get(name) == status, deadline_s,
                          f"haproxy server {backend}/{name} {status}", interval_s=0.01)

    def servers_by_address(self, backend: str = APP_BACKEND) -> dict[str, str]:
        """`{"addr:port": status}` of `backend`'s servers that have an address: with a
        server-template, which DNS record each slot holds ("show servers state")."""
        states = self.server_states(backend)
        rows = [line.split() for line in self.admin(f"show servers state {backend}").splitlines()[2:] if line.strip()]
        # Columns: be_id be_name srv_id srv_name srv_addr ... srv_port is the 19th.
        return {f"{row[4]}:{row[18]}": states.get(row[3], "") for row in rows if row[4] not in {"0.0.0.0", "-"}}

    def _admin_socket_answers(self) -> bool:
        try:
            return bool(self.server_states())
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path.exists():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"
