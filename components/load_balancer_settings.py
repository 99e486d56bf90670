"""What the self-hosted platforms' HAProxy (docker, swarm) takes from `loadBalancer` config:
the active checks' timing, which requests may be retried on another replica, and whether
connections to the replicas are reused."""

from __future__ import annotations

from typing import Any

from components.config import LoadBalancerConfig


def checks_and_retries(config: LoadBalancerConfig, health_path: str, read_health_path: str | None) -> dict[str, Any]:
    """HaproxySettings keyword arguments (components/render/haproxy.py) for `config`."""
    check = config.health_check
    return {
        "health_path": health_path,
        "read_health_path": read_health_path,
        "interval_ms": check.interval_ms,
        "fall": check.fall,
        "rise": check.rise,
        "timeout_check_ms": check.timeout_ms,
        "idempotent_methods": tuple(config.retry.idempotent_methods),
        "idempotency_key_header": config.retry.idempotency_key_header,
        "server_keep_alive": config.server_keep_alive,
    }
