"""haproxy.cfg for the app's load balancer.

Consumed by `haproxy -f` (the pinned image's 3.0 in Docker, Debian's 2.6 in the
integration tests), so only keywords that both versions accept are used.

How the HA targets are met:
- Ejection: active `httpchk` every `interval_ms`, and every `interval_ms / 2` once a
  check has failed (`fastinter`), so a dead or unready replica is out after
  `interval_ms + (fall - 1) * fastinter` (750 ms with the defaults 500 ms / fall 2).
- Passive ejection: `observe layer7` counts failed connections and 5xx answers of real
  traffic; a few in a row mark the server down at once, before the next check.
- No failed requests while that happens, and no request performed twice
  (docs/docker.md#retries-and-idempotency-keys): a request whose connection failed never
  reached a replica and is retried up to 3 times, each time on another server (`option
  redispatch 1`), whatever its method. One that reached a replica (the server closed
  without answering, timed out, or answered 503) is retried only when repeating it is
  safe: an idempotent method, or a non-empty idempotency key header. Anything else gets
  the 502/503 so the client can retry with its own key.
- Reads without a primary: with a read health path, reads (GET, HEAD, OPTIONS) go to a
  second backend over the same servers, checked on that path (storage + any DB node),
  so they keep being served while the write backend, checked on the writer path, is
  empty during a failover. Writes then go to the read backend too: the app answers them
  503 + Retry-After until it finds the new primary, and takes them at once after that
  (no `rise` checks to wait for). Without a read backend, HAProxy's own 503 for a write
  carries Retry-After.

The app's own Prometheus endpoint (APP_METRICS_PATH) is not served to clients: the web
frontend answers it 404, and Prometheus scrapes every replica directly (docs/monitoring.md).

HTTPS (`HaproxySettings.tls`): the web frontend also binds a TLS port (TLS 1.2 minimum,
ALPN h2 and http/1.1), answers plain HTTP with a redirect to it, and sends HSTS on every
HTTPS response (docs/docker.md "HTTPS").
"""

from __future__ import annotations

from dataclasses import dataclass

# Names inside the config that the loopback harness and the drills address.
# APP_BACKEND takes writes (and everything, without a read health path); READ_BACKEND reads.
APP_BACKEND = "app"
READ_BACKEND = "app_read"
WEB_FRONTEND = "web"
# The reference app's /metrics (app/hastack_app/metrics.py), which Prometheus scrapes on
# each replica: request counts by route are nobody else's business.
APP_METRICS_PATH = "/metrics"
RESOLVERS_SECTION = "docker"

# Consecutive failed requests (connection errors, 5xx) that take a server out without
# waiting for the next check: enough that one failing request path cannot eject a
# healthy replica, few enough that a dead one under load is out within a few requests.
CONSECUTIVE_ERRORS_TO_MARK_DOWN = 5

# Every this many seconds HAProxy closes half of a replica's idle connections, so a
# connection idle since the last burst is gone within a few periods. The app's keep-alive
# idle timeout must be longer than that (the reference app's is APP_KEEP_ALIVE_S in
# app/hastack_app/config.py), so the app never closes a connection HAProxy may reuse.
SERVER_IDLE_POOL_PURGE_S = 5
# At most this many idle connections per replica, which bounds that drain: halving from
# 64 takes 7 periods, so a burst's idle connections are all closed within 8 periods (40 s).
SERVER_IDLE_POOL_MAX = 64

# Extra attempts after a failed one; with `redispatch 1` each goes to another server.
RETRIES = 3

# RFC 9110 section 9.2.1 safe methods: reads, which a replica without a writer can serve.
READ_METHODS = ("GET", "HEAD", "OPTIONS")

# What a client may do when no replica can write right now; the app sends the same.
WRITE_RETRY_AFTER_S = 2


@dataclass(frozen=True)
class Backend:
    """One app replica. `address` is a DNS alias ("app-0") in Docker, "127.0.0.1" on loopback."""

    name: str
    address: str
    port: int


# Mozilla's "intermediate" TLS 1.2 ciphers (forward secret AEAD only), without the DHE
# suites, which would need a dhparam file (https://ssl-config.mozilla.org/#server=haproxy).
TLS12_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])
TLS_MIN_VERSION = "TLSv1.2"
ALPN = "h2,http/1.1"
# Keeps the method and body of a redirected request (301 would let clients turn a POST into a GET).
REDIRECT_STATUS = 308


@dataclass(frozen=True)
class TlsTermination:
    """HTTPS on the web frontend."""

    # Where HAProxy binds TLS (inside the container on Docker).
    port: int
    # One PEM file with the certificate (and chain) followed by its private key (`crt`).
    certificate_file: str
    # The HTTPS port clients reach: plain HTTP is redirected there. It differs from
    # `port` when the engine publishes the container port on another host port.
    public_port: int
    hsts_max_age_s: int


@dataclass(frozen=True)
class ServerTemplate:
    """App replicas found through DNS instead of listed: `slots` servers named
    `<prefix>1`... filled from the A records of `fqdn` (on Swarm, `tasks.<service>`, one
    record per running, healthy task). Needs a resolver to follow tasks coming and going."""

    prefix: str
    slots: int
    fqdn: str
    port: int


@dataclass(frozen=True)
class HaproxySettings:
    frontend_port: int
    stats_port: int
    backends: tuple[Backend, ...]
    health_path: str
    interval_ms: int
    fall: int
    rise: int
    timeout_check_ms: int
    # Docker's embedded DNS ("127.0.0.11:53"), so recreated containers are found again.
    # None on loopback, where addresses are IPs.
    resolver: str | None = None
    bind_address: str = "*"
    # Path of an admin-level stats socket, for the drills and tests to read server state.
    stats_socket: str | None = None
    # None: plain HTTP only.
    tls: TlsTermination | None = None
    # Set: reads go to READ_BACKEND, checked on this path (components/config.py AppConfig).
    read_health_path: str | None = None
    # Requests that may be sent to another server after reaching one (RetryConfig).
    idempotent_methods: tuple[str, ...] = ("GET", "HEAD", "OPTIONS")
    idempotency_key_header: str = "Idempotency-Key"
    # Swarm: the replicas come from DNS (`backends` is then empty).
    server_template: ServerTemplate | None = None
    # Keep connections to the replicas open and reuse them (`http-reuse safe`); False
    # opens one per request, for apps that close idle connections too early (see
    # SERVER_IDLE_POOL_PURGE_S).
    server_keep_alive: bool = True

    def __post_init__(self) -> None:
        if not self.backends and self.server_template is None:
            raise ValueError("haproxy needs at least one backend or a server template")
        if self.server_template is not None and self.resolver is None:
            raise ValueError("a server template needs a resolver to follow the DNS records")
        names = [backend.name for backend in self.backends]
        if len(set(names)) != len(names):
            raise ValueError(f"backend names must be unique, got {names}")
        for path in (self.health_path, self.read_health_path or "/"):
            if not path.startswith("/"):
                raise ValueError(f"health paths must start with '/', got {path!r}")

    @property
    def fastinter_ms(self) -> int:
        """Check interval while a server is changing state (UP going down, DOWN coming up)."""
        return max(100, self.interval_ms // 2)


def render_haproxy_cfg(settings: HaproxySettings) -> str:
    """The whole haproxy.cfg, consumed by `haproxy -f`."""
    sections = [
        _global(settings),
        _defaults(settings),
        *([_resolvers(settings.resolver)] if settings.resolver else []),
        _web_frontend(settings),
        _app_backend(settings, APP_BACKEND, settings.health_path, passive_check="layer7",
                     reuse=settings.server_keep_alive and not settings.read_health_path),
        # Passive ejection on connection errors only: a read of a page that needs the
        # writer answers 503 while no primary exists, which must not eject the replica.
        *([_app_backend(settings, READ_BACKEND, settings.read_health_path, passive_check="layer4",
                        reuse=settings.server_keep_alive)]
          if settings.read_health_path else []),
        _stats_frontend(settings),
    ]
    return "\n".join(sections)


def _global(settings: HaproxySettings) -> str:
    lines = [
        "global",
        "    log stdout format raw local0 info",
        # A reload or stop lets in-flight requests finish, but not forever.
        "    hard-stop-after 30s",
    ]
    if settings.stats_socket:
        lines.append(f"    stats socket {settings.stats_socket} mode 600 level admin")
    if settings.tls:
        lines += [
            f"    ssl-default-bind-ciphers {TLS12_CIPHERS}",
            f"    ssl-default-bind-options ssl-min-ver {TLS_MIN_VERSION} no-tls-tickets",
        ]
    return _section(lines)


def _defaults(settings: HaproxySettings) -> str:
    return _section([
        "defaults",
        "    mode http",
        "    log global",
        "    option forwardfor",
        "    timeout connect 1s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    timeout queue 5s",
        # Wait for the whole request body before picking a server: HAProxy can replay a
        # request (any retry but conn-failure) only if it was complete when sent
        # (src/stconn.c drops TX_L7_RETRY while msg_state != HTTP_MSG_DONE), so without
        # this a keyed POST whose body came in a second packet would not be retried.
        "    option http-buffer-request",
        f"    retries {RETRIES}",
        "    option redispatch 1",
        # conn-failure: never reached the app. empty-response: the app died mid-request.
        # response-timeout: the app hung. 503: the app is draining or not ready. All but
        # conn-failure are "L7 retries", which each backend turns off for requests that
        # are not safe to repeat (_retry_rules).
        "    retry-on conn-failure empty-response response-timeout 503",
    ])


def _server_connection_lines(keep_alive: bool) -> list[str]:
    """How connections to the replicas are opened and shared.

    Reuse (`http-reuse safe`, HAProxy's default) costs one connect per client session
    instead of one per request. Its race, a request sent on an idle connection at the
    moment the replica closes it, is made harmless rather than avoided:
    - HAProxy, not the app, closes idle connections: the pool is purged every
      SERVER_IDLE_POOL_PURGE_S, and the app's keep-alive timeout is longer than the
      longest an idle connection lives in that pool (docs/render.md);
    - a draining app answers `Connection: close`, so none of its connections goes back
      to the pool, and it stops only after HAProxy has taken it out;
    - a killed app's connections are closed by its kernel, and HAProxy drops them.

    With a read backend, only reads reuse connections; writes keep one connection per
    request. A server marked down takes its idle connections with it, and a request
    already sent on one fails with no response; on a kept-alive client connection
    HAProxy then closes that client connection without any status, so that the client
    may retry (haproxy#1423, #2375). A keyed write whose retries met replicas answering
    503 (no primary) ends that way. Reads are retried past it, and are the bulk of the
    traffic (docs/render.md#connection-reuse; test_no_replay's flapping-writers test).
    """
    if not keep_alive:
        # One server connection per request: no idle connection to a replica ever exists.
        return ["    option http-server-close"]
    return ["    option http-keep-alive", "    http-reuse safe"]


def _resolvers(nameserver: str) -> str:
    return _section([
        f"resolvers {RESOLVERS_SECTION}",
        f"    nameserver dns {nameserver}",
        "    resolve_retries 3",
        "    timeout resolve 1s",
        "    timeout retry 1s",
        # A replaced container answers under the same alias with a new IP within a second;
        # a name that stops resolving keeps its last address for a few seconds, during
        # which the health checks are what decide.
        "    hold valid 10s",
        "    hold nx 5s",
        "    hold refused 5s",
        "    hold timeout 5s",
        "    hold other 5s",
        "    hold obsolete 5s",
    ])


def _web_frontend(settings: HaproxySettings) -> str:
    return _section([
        f"frontend {WEB_FRONTEND}",
        f"    bind {settings.bind_address}:{settings.frontend_port}",
        *(_https_lines(settings.bind_address, settings.tls) if settings.tls else []),
        "    option httplog",
        "    option dontlognull",
        # Percent-decoded first, as the app's server decodes it (`/%6detrics` is /metrics),
        # and with anything below it; the query string is not part of `path`.
        f"    acl app_metrics path,url_dec -m str {APP_METRICS_PATH}",
        f"    acl app_metrics path,url_dec -m beg {APP_METRICS_PATH}/",
        "    http-request deny deny_status 404 if app_metrics",
        *([f"    use_backend {READ_BACKEND} if {{ method {' '.join(READ_METHODS)} }}",
           # No replica reaches a writer (a failover): writes go to the replicas that can
           # read, which answer 503 + Retry-After themselves and take writes again the
           # moment they find the new primary, instead of after `rise` checks here.
           f"    use_backend {READ_BACKEND} if {{ nbsrv({APP_BACKEND}) eq 0 }}"]
          if settings.read_health_path else []),
        f"    default_backend {APP_BACKEND}",
    ])


def _https_lines(bind_address: str, tls: TlsTermination) -> list[str]:
    """The TLS bind, the redirect of plain HTTP to it, and the headers HTTPS adds."""
    # `redirect scheme https` keeps the port of the Host header, which is the plain HTTP
    # port, so the client would speak TLS to it. Instead: the host without its port
    # (an IPv6 literal keeps its brackets) plus the published HTTPS port.
    port_suffix = "" if tls.public_port == 443 else f":{tls.public_port}"
    return [
        f"    bind {bind_address}:{tls.port} ssl crt {tls.certificate_file} alpn {ALPN} ssl-min-ver {TLS_MIN_VERSION}",
        # HTTP/1.0 may omit Host; there is nothing to redirect to then.
        "    http-request deny deny_status 400 if !{ ssl_fc } !{ req.hdr(host) -m found }",
        "    http-request set-var(txn.host_only) req.hdr(host),regsub(:[0-9]+$,) unless { ssl_fc }",
        f"    http-request redirect location https://%[var(txn.host_only)]{port_suffix}%[pathq] code {REDIRECT_STATUS} unless {{ ssl_fc }}",
        # Only HTTPS requests get this far; any client-sent value is replaced.
        "    http-request set-header X-Forwarded-Proto https",
        # http-after-response: HAProxy's own answers (503 with no server up) carry it too.
        f'    http-after-response set-header Strict-Transport-Security "max-age={tls.hsts_max_age_s}" if {{ ssl_fc }}',
    ]


def _app_backend(settings: HaproxySettings, name: str, health_path: str, passive_check: str, reuse: bool) -> str:
    """Every app replica, checked on `health_path`; `passive_check` is what `observe`
    counts of real traffic (layer7: failed connections and 5xx; layer4: connections);
    `reuse`: whether connections to the replicas are kept and shared."""
    server_defaults = [
        "check",
        f"inter {settings.interval_ms}ms",
        f"fastinter {settings.fastinter_ms}ms",
        f"downinter {settings.interval_ms}ms",
        f"fall {settings.fall}",
        f"rise {settings.rise}",
        f"observe {passive_check}",
        f"error-limit {CONSECUTIVE_ERRORS_TO_MARK_DOWN}",
        "on-error mark-down",
        # Start even while a replica's name does not resolve yet (its container is being
        # created): the server waits in maintenance until DNS answers.
        "init-addr last,libc,none",
        f"pool-purge-delay {SERVER_IDLE_POOL_PURGE_S}s",
        f"pool-max-conn {SERVER_IDLE_POOL_MAX}",
    ]
    if settings.resolver:
        server_defaults += [f"resolvers {RESOLVERS_SECTION}", "resolve-prefer ipv4"]
    lines = [
        f"backend {name}",
        # With roundrobin a failed connection is retried on the next server at once;
        # other algorithms first wait min(timeout connect, 1s) to retry the same one.
        "    balance roundrobin",
        *_server_connection_lines(reuse),
        f"    option httpchk GET {health_path}",
        "    http-check expect status 200",
        f"    timeout check {settings.timeout_check_ms}ms",
        *_retry_rules(settings),
        # HAProxy's own 503 (no server up, e.g. no writer during a failover) tells the
        # client when to come back, as the app's own 503 does.
        f"    http-error status 503 content-type application/json "
        f"string '{{\"error\":\"no replica can serve this request now\"}}' hdr Retry-After {WRITE_RETRY_AFTER_S}",
        f"    default-server {' '.join(server_defaults)}",
    ]
    lines += [f"    server {b.name} {b.address}:{b.port} check" for b in settings.backends]
    template = settings.server_template
    if template:
        lines.append(f"    server-template {template.prefix} {template.slots} {template.fqdn}:{template.port} check")
    return _section(lines)


def _retry_rules(settings: HaproxySettings) -> list[str]:
    """Turn off every retry but conn-failure for a request not safe to repeat.

    `disable-l7-retry` "disables any attempt to retry the request if it fails for any
    other reason than a connection failure"; conn-failure is "the connection [...] failed
    and the request could not be sent", so such a request never reached a replica.
    https://docs.haproxy.org/3.0/configuration.html#4.2-http-request%20disable-l7-retry
    """
    safe = ["has_idempotency_key"]
    lines = [f"    acl has_idempotency_key req.hdr({settings.idempotency_key_header}) -m len gt 0"]
    if settings.idempotent_methods:
        lines.append(f"    acl idempotent_method method {' '.join(settings.idempotent_methods)}")
        safe.insert(0, "idempotent_method")
    lines.append(f"    http-request disable-l7-retry unless {' || '.join(safe)}")
    return lines


def _stats_frontend(settings: HaproxySettings) -> str:
    return _section([
        "frontend stats",
        f"    bind {settings.bind_address}:{settings.stats_port}",
        "    no log",
        # The LB's own liveness, for a container healthcheck.
        '    http-request return status 200 content-type text/plain string "ok" if { path /healthz }',
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    stats enable",
        "    stats uri /stats",
        "    stats refresh 5s",
    ])


def _section(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"
