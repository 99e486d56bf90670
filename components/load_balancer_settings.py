"""What the self-hosted platforms' HAProxy (docker, swarm) takes from `loadBalancer` config:
the active checks' timing, which requests may be retried on another replica, whether
connections to the replicas are reused, and HTTPS termination (`loadBalancer.tls`)."""

from __future__ import annotations

from typing import Any

from components.config import LoadBalancerConfig
from components.render.haproxy import TlsTermination

# The official image's `haproxy` user (uid/gid 99,
# https://github.com/docker-library/haproxy/blob/master/3.0/Dockerfile), which HAProxy runs
# as from the start (`USER haproxy`): the certificate's key is readable by it alone.
HAPROXY_UID = "99"


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


def tls_termination(config: LoadBalancerConfig, listen_port: int, certificate_file: str) -> TlsTermination | None:
    """HTTPS on `listen_port` inside the container, with the certificate + key PEM at
    `certificate_file`, redirected to from the published `tls.port`; None without TLS."""
    tls = config.tls
    if not tls.enabled:
        return None
    return TlsTermination(port=listen_port, certificate_file=certificate_file, public_port=tls.port,
                          hsts_max_age_s=tls.hsts_max_age_seconds)
