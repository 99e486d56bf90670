"""TLS in transit on Docker and at the Swarm edge: HAProxy serves the app over HTTPS, and
PostgreSQL takes TCP connections over TLS only. (Azure's side: lb-https-only and
db-secure-transport.)"""

from __future__ import annotations

import re

import yaml
from pulumi_policy import EnforcementLevel

from .base import HastackResourcePolicy
from .resources import (
    DOCKER_CONTAINER,
    DOCKER_SERVICE_CONFIG,
    SWARM_LOAD_BALANCER_COMPONENT,
    is_database_container,
    is_load_balancer_container,
    known_items,
    owning_component,
    swarm_config_text,
    uploaded_files,
)

_MIN_VERSION = re.compile(r"\bssl-min-ver\s+TLSv1\.[23]\b")
_APP_ROUTING = re.compile(r"^\s*(default_backend|use_backend)\s", re.MULTILINE)
_HTTPS_REDIRECT = re.compile(r"^\s*(http-request\s+)?redirect\s+(scheme\s+https|location\s+https://)", re.MULTILINE)
_SSL_BIND = re.compile(r"\sssl(\s|$)")
# `-c ssl=on` in a postgres command line, or in the script a replica's entrypoint execs.
_SSL_ON = re.compile(r"(?<![\w.])ssl=on\b")
_HSTS = re.compile(r"set-header\s+Strict-Transport-Security\b", re.IGNORECASE)
# pg_hba connection types that let a client in without TLS.
_PLAINTEXT_HBA_TYPES = {"host", "hostnossl"}


def _sections(cfg: str) -> list[tuple[str, str]]:
    """(header, body) of every haproxy.cfg section, comments dropped."""
    sections: list[tuple[str, list[str]]] = []
    for line in cfg.splitlines():
        text = line.split("#", 1)[0].rstrip()
        if not text:
            continue
        if not text[0].isspace():
            sections.append((text, []))
        elif sections:
            sections[-1][1].append(text)
    return [(header, "\n".join(body)) for header, body in sections]


def _haproxy_problems(cfg: str) -> list[str]:
    sections = _sections(cfg)
    global_min_version = any(header == "global" and _MIN_VERSION.search(body) for header, body in sections)
    app_frontends = [(header, body) for header, body in sections
                     if header.split()[0] in {"frontend", "listen"} and _APP_ROUTING.search(body)]
    if not app_frontends:
        return ["haproxy.cfg has no frontend that routes to the app, so nothing shows it serves HTTPS"]
    problems = []
    for header, body in app_frontends:
        binds = [line.strip() for line in body.splitlines() if line.strip().startswith("bind ")]
        tls_binds = [bind for bind in binds if _SSL_BIND.search(bind)]
        if not tls_binds:
            problems.append(f"'{header}' serves the app over plain HTTP only (no 'bind ... ssl crt ...')")
            continue
        for bind in tls_binds:
            if not (_MIN_VERSION.search(bind) or global_min_version):
                problems.append(f"'{bind}' accepts TLS versions below 1.2 (no 'ssl-min-ver TLSv1.2')")
        if len(tls_binds) < len(binds) and not _HTTPS_REDIRECT.search(body):
            problems.append(f"'{header}' answers plain HTTP instead of redirecting it to HTTPS")
        if not _HSTS.search(body):
            problems.append(f"'{header}' sends no Strict-Transport-Security header")
    return problems


def _hba_problems(hba_lines: list[str], where: str) -> list[str]:
    plaintext = [line.strip() for line in hba_lines
                 if line.strip() and not line.strip().startswith("#") and line.split()[0] in _PLAINTEXT_HBA_TYPES]
    return [f"{where} admits connections without TLS: '{line}'" for line in plaintext]


def _postgres_problems(props) -> list[str]:
    files = uploaded_files(props)
    patroni = next((text for path, text in files.items() if path.endswith("patroni.yml")), None)
    if patroni is not None:
        document = yaml.safe_load(patroni) or {}
        postgresql = document.get("postgresql") or {}
        parameters = ((((document.get("bootstrap") or {}).get("dcs") or {}).get("postgresql") or {}).get("parameters") or {})
        problems = _hba_problems(list(postgresql.get("pg_hba") or []), "patroni.yml pg_hba")
        ssl = str(parameters.get("ssl", "off")).lower()
    else:
        hba = next((text for path, text in files.items() if path.endswith("pg_hba.conf")), "")
        problems = _hba_problems(hba.splitlines(), "pg_hba.conf")
        command = " ".join(str(arg) for arg in known_items(props.get("command")))
        entrypoints = [str(path) for path in known_items(props.get("entrypoints"))]
        started_by = " ".join([command, *(files.get(path, "") for path in entrypoints)])
        ssl = "on" if _SSL_ON.search(started_by) else "off"
    if ssl not in {"on", "true", "1"}:
        problems.append("PostgreSQL runs with ssl off")
    return problems


_HAPROXY_FIX = "Fix: set hastack:loadBalancer.tls.enabled to true (HAProxy then binds ssl with TLS 1.2+, redirects HTTP and sends HSTS)."


def _check_tls_in_transit(args, report, settings):
    if args.resource_type == DOCKER_SERVICE_CONFIG:
        # The Swarm LB's one config is its haproxy.cfg (its certificate is a secret).
        if owning_component(args.urn) != SWARM_LOAD_BALANCER_COMPONENT:
            args.not_applicable("not the Swarm load balancer's haproxy.cfg")
        problems, fix = _haproxy_problems(swarm_config_text(args.props)), _HAPROXY_FIX
    elif is_load_balancer_container(args.urn):
        configs = [text for path, text in uploaded_files(args.props).items() if path.endswith("haproxy.cfg")]
        problems = [p for cfg in configs for p in _haproxy_problems(cfg)]
        fix = _HAPROXY_FIX
    elif is_database_container(args.urn):
        problems = _postgres_problems(args.props)
        fix = "Fix: render the node with the stack's ServerTls (ssl=on, hostssl-only pg_hba), as components/docker/database.py does."
    else:
        args.not_applicable("neither the load balancer nor a PostgreSQL node")
    for problem in problems:
        report(f"{problem}. {fix}")


tls_in_transit = HastackResourcePolicy(
    "tls-in-transit",
    "HAProxy serves the app over HTTPS (TLS 1.2+, HTTP redirected, HSTS): the Docker container and the Swarm LB's config. Docker: every PostgreSQL node takes TCP connections over TLS only (ssl on, hostssl-only pg_hba).",
    applies_to=[DOCKER_CONTAINER, DOCKER_SERVICE_CONFIG],
    check=_check_tls_in_transit,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [tls_in_transit]
