"""Settings from the environment. Every variable is documented in docs/app.md."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

VERSION = "1.0.0"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
# The *_FILE convention (Docker and Swarm secrets): NAME_FILE=<path> gives NAME the file's
# content, for the secrets this app reads. Only these: other *_FILE variables in an
# environment (TF_CLI_CONFIG_FILE, ...) are not ours to read.
FILE_VARIABLES = ("DATABASE_URL", "DATABASE_READ_URL")
# How long an idle keep-alive connection stays open. Longer than the load balancer keeps
# an idle connection to a replica in its pool (measured by bench/lb_throughput.py, see
# docs/render.md), so the LB always closes first and never sends a request on a
# connection the app is closing. uvicorn's own default, 5 s, is shorter than that.
APP_KEEP_ALIVE_S = 75.0


class ConfigError(RuntimeError):
    """An environment variable is missing or malformed."""


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number (got {raw!r})") from None
    if value < 0:
        raise ConfigError(f"{name} must be >= 0 (got {raw!r})")
    return value


def _int(env: dict[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer (got {raw!r})") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum} (got {raw!r})")
    return value


def _choice(env: dict[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(name) or default).lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)} (got {env[name]!r})")
    return value


def with_file_variables(env: dict[str, str]) -> dict[str, str]:
    """`env` with each `NAME_FILE=<path>` of FILE_VARIABLES turned into `NAME=<content of path>` (one
    trailing newline dropped), so a secret mounted as a file (/run/secrets/NAME on Swarm)
    never has to sit in the environment. Setting both NAME and NAME_FILE is an error."""
    resolved = dict(env)
    for name in FILE_VARIABLES:
        key = f"{name}_FILE"
        path = env.get(key)
        if path is None:
            continue
        if env.get(name):
            raise ConfigError(f"{name} and {key} are both set; set only one of them")
        try:
            resolved[name] = Path(path).read_text().removesuffix("\n")
        except OSError as problem:
            raise ConfigError(f"{key} names {path!r}, which cannot be read ({problem.strerror})") from None
        del resolved[key]
    return resolved


def node_id_from(env: dict[str, str]) -> str:
    """This replica's identity: the platform's NODE_ID, Azure Container Apps' replica
    name, or the hostname (unique per container on Docker and Kubernetes)."""
    return env.get("NODE_ID") or env.get("CONTAINER_APP_REPLICA_NAME") or socket.gethostname()


@dataclass(frozen=True)
class Settings:
    node_id: str
    host: str
    port: int
    log_level: str
    access_log: bool
    database_url: str
    # Reads that tolerate replication lag go here; the writer when no replica exists.
    database_read_url: str
    storage_path: Path
    db_pool_max: int
    db_connect_timeout_s: float
    db_write_wait_s: float
    writer_wait_s: float
    ready_timeout_s: float
    max_file_bytes: int
    job_work_s: float
    job_poll_s: float
    job_stale_after_s: float
    job_max_attempts: int
    maintenance_interval_s: float
    migrate_deadline_s: float
    shutdown_drain_s: float
    shutdown_grace_s: float
    keep_alive_s: float

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = with_file_variables(dict(os.environ if env is None else env))
        database_url = env.get("DATABASE_URL", "")
        if not database_url:
            raise ConfigError("DATABASE_URL is required (a libpq URL of the writer database)")
        storage = env.get("STORAGE_PATH", "")
        if not storage:
            raise ConfigError("STORAGE_PATH is required (the shared mount every replica sees)")
        return cls(
            node_id=node_id_from(env),
            host=env.get("HOST") or "0.0.0.0",
            port=_int(env, "PORT", 8000),
            log_level=_choice(env, "LOG_LEVEL", "info", LOG_LEVELS),
            access_log=(env.get("ACCESS_LOG") or "false").lower() == "true",
            database_url=database_url,
            database_read_url=env.get("DATABASE_READ_URL") or database_url,
            storage_path=Path(storage),
            db_pool_max=_int(env, "DB_POOL_MAX", 5),
            db_connect_timeout_s=_float(env, "DB_CONNECT_TIMEOUT_S", 3.0),
            db_write_wait_s=_float(env, "DB_WRITE_WAIT_S", 1.0),
            writer_wait_s=_float(env, "WRITER_WAIT_S", 0.0),
            ready_timeout_s=_float(env, "READY_TIMEOUT_S", 2.0),
            max_file_bytes=_int(env, "MAX_FILE_BYTES", 10 * 1024 * 1024),
            job_work_s=_float(env, "JOB_WORK_S", 0.05),
            job_poll_s=_float(env, "JOB_POLL_S", 0.2),
            job_stale_after_s=_float(env, "JOB_STALE_AFTER_S", 60.0),
            job_max_attempts=_int(env, "JOB_MAX_ATTEMPTS", 5),
            maintenance_interval_s=_float(env, "MAINTENANCE_INTERVAL_S", 5.0),
            migrate_deadline_s=_float(env, "MIGRATE_DEADLINE_S", 60.0),
            shutdown_drain_s=_float(env, "SHUTDOWN_DRAIN_S", 3.0),
            shutdown_grace_s=_float(env, "SHUTDOWN_GRACE_S", 5.0),
            keep_alive_s=_float(env, "KEEP_ALIVE_S", APP_KEEP_ALIVE_S),
        )
