"""Real PostgreSQL clusters on 127.0.0.1, run as the `postgres` OS user.

initdb and postgres refuse to run as root, so every command goes through
`runuser -u postgres` when this process is root, in a temp dir that user owns.
"""

from __future__ import annotations

import os
import pwd
import signal
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .binaries import find
from .ports import free_port
from .processes import kill_tree

SUPERUSER = "postgres"


def as_postgres(argv: list[str]) -> list[str]:
    """Prefix `argv` so it runs as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def make_owned_dir(prefix: str) -> Path:
    """A fresh temp dir the postgres user owns (mode 0700, as postgres requires)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)
    return path


def chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class PgCluster:
    """One postgres server: a data dir, a port and the process running it."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"

    def connect(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=dbname,
                               connect_timeout=2, autocommit=True, **kwargs)

    def start(self, server_flags: list[str] | None = None, deadline_s: float = 30.0,
              env: dict[str, str] | None = None) -> None:
        """Start postgres on this data dir in the foreground process group we own;
        `env` replaces the environment (None: ours)."""
        argv = [find("postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data_dir}",
                *(server_flags or [])]
        self.launch(argv, deadline_s, env)

    def launch(self, argv: list[str], deadline_s: float = 30.0, env: dict[str, str] | None = None) -> None:
        """Run `argv` as the postgres user, expecting it to end up serving on this port.

        For commands that exec postgres themselves, such as a replica bootstrap script.
        """
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(as_postgres(argv), stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, env=env)
        log.close()
        self.wait_ready(deadline_s)

    def wait_ready(self, deadline_s: float = 30.0) -> None:
        """Poll with pg_isready until the server accepts connections."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log_tail()}")
            ready = subprocess.run([find("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"])
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"postgres on port {self.port} not ready after {deadline_s}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the postmaster and all its backends (a crash, as when its container is
        killed), and reap it. Backends are not in the postmaster's process group, and a
        new postmaster refuses to start while an old backend still holds the shared
        memory, so all of them must be gone before this returns."""
        if self.process and self.process.poll() is None:
            kill_tree(self.process.pid)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """Fast shutdown, falling back to SIGKILL."""
        if self.process and self.process.poll() is None:
            # SIGINT is postgres' "fast" shutdown; sent to the group so runuser's child gets it.
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path and self.log_path.exists():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


def init_cluster(root: Path, name: str = "primary") -> PgCluster:
    """initdb a fresh cluster under `root` (owned by postgres), trust auth for local tests."""
    data_dir = root / name
    data_dir.mkdir(mode=0o700)
    chown_to_postgres(data_dir)
    subprocess.run(as_postgres([find("initdb"), "-D", str(data_dir), "-U", SUPERUSER,
                                "--auth=trust", "--encoding=UTF8", "--no-instructions"]),
                   check=True, capture_output=True)
    return PgCluster(data_dir=data_dir)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
