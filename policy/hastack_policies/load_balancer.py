"""Load balancer: active health checks that eject a dead replica fast, and a WAF in front."""

from __future__ import annotations

import re

from pulumi_policy import EnforcementLevel

from .base import HastackResourcePolicy
from .resources import (
    AZURE_APP_GATEWAY,
    AZURE_WAF_POLICY,
    DOCKER_CONTAINER,
    DOCKER_SERVICE_CONFIG,
    is_load_balancer_container,
    known_items,
    swarm_config_text,
    uploaded_files,
)

_HTTPCHK = re.compile(r"^\s*option\s+httpchk\b", re.MULTILINE)
_SERVER_LINE = re.compile(r"^\s*(server|server-template)\s+.*$", re.MULTILINE)
_DEFAULT_SERVER_LINE = re.compile(r"^\s*default-server\s+.*$", re.MULTILINE)
_CHECK = re.compile(r"\scheck\b")
_INTER = re.compile(r"\binter\s+(\d+)(ms|s|m)?\b")
_UNIT_MS = {"ms": 1, None: 1, "s": 1000, "m": 60_000}


def _haproxy_problems(cfg: str, max_interval_ms: int) -> list[str]:
    problems = []
    if not _HTTPCHK.search(cfg):
        problems.append("haproxy.cfg has no 'option httpchk', so HAProxy only checks that the port accepts connections")
    servers = [m.group(0) for m in _SERVER_LINE.finditer(cfg)]
    if not servers:
        problems.append("haproxy.cfg declares no backend servers")
    checks_by_default = any(_CHECK.search(m.group(0)) for m in _DEFAULT_SERVER_LINE.finditer(cfg))
    for line in servers:
        if not checks_by_default and not _CHECK.search(line):
            problems.append(f"server line '{line.strip()}' has no 'check', so it is never health-checked")
    for value, unit in _INTER.findall(cfg):
        interval_ms = int(value) * _UNIT_MS[unit or None]
        if interval_ms > max_interval_ms:
            problems.append(f"check interval 'inter {value}{unit}' is above {max_interval_ms} ms, so a dead replica is ejected late")
    return problems


def _app_gateway_problems(props, max_interval_s: int, max_threshold: int) -> list[str]:
    probes = list(known_items(props.get("probes")))
    if not probes:
        return ["the gateway has no health probe, so it keeps routing to replicas that stopped answering"]
    problems = []
    for probe in probes:
        name = probe.get("name")
        if not probe.get("path"):
            problems.append(f"probe '{name}' has no path")
        interval = probe.get("interval") or 30  # Azure's default when unset
        if interval > max_interval_s:
            problems.append(f"probe '{name}' runs every {interval}s (at most {max_interval_s}s allowed)")
        threshold = probe.get("unhealthyThreshold") or 3  # Azure's default when unset
        if not 1 <= threshold <= max_threshold:
            problems.append(f"probe '{name}' ejects after {threshold} failures (1..{max_threshold} allowed)")
    for settings in known_items(props.get("backendHttpSettingsCollection")):
        if not (settings.get("probe") or {}).get("id"):
            problems.append(f"backend settings '{settings.get('name')}' use no custom probe")
    return problems


def _check_active_health_checks(args, report, settings):
    if args.resource_type in (DOCKER_CONTAINER, DOCKER_SERVICE_CONFIG):
        if not is_load_balancer_container(args.urn):
            args.not_applicable("not the load balancer")
        if args.resource_type == DOCKER_CONTAINER:
            configs = [text for path, text in uploaded_files(args.props).items() if path.endswith("haproxy.cfg")]
        else:
            configs = [swarm_config_text(args.props)]
        problems = [p for cfg in configs for p in _haproxy_problems(cfg, settings["maxIntervalMs"])]
        fix = "Fix: render haproxy.cfg with 'option httpchk GET <health path>' and 'check inter <= maxIntervalMs' on every server."
    else:
        problems = _app_gateway_problems(args.props, settings["maxIntervalSeconds"], settings["maxUnhealthyThreshold"])
        fix = "Fix: give the gateway an HTTP probe on the health path, referenced by every backend setting, with a short interval."
    for problem in problems:
        report(f"{problem}. {fix}")


lb_active_health_checks = HastackResourcePolicy(
    "lb-active-health-checks",
    "The load balancer actively health-checks every replica (HAProxy httpchk, on Docker and in the Swarm LB's config; Application Gateway probes) and ejects a dead one fast.",
    applies_to=[DOCKER_CONTAINER, DOCKER_SERVICE_CONFIG, AZURE_APP_GATEWAY],
    check=_check_active_health_checks,
    enforcement_level=EnforcementLevel.MANDATORY,
    settings={
        "maxIntervalMs": {
            "type": "integer",
            "minimum": 100,
            "default": 2000,
            "description": "HAProxy: longest allowed 'inter' between checks, in milliseconds.",
        },
        "maxIntervalSeconds": {
            "type": "integer",
            "minimum": 1,
            "maximum": 86400,
            "default": 10,
            "description": "Application Gateway: longest allowed probe interval, in seconds.",
        },
        "maxUnhealthyThreshold": {
            "type": "integer",
            "minimum": 1,
            "maximum": 20,
            "default": 3,
            "description": "Application Gateway: most failed probes allowed before a replica is ejected.",
        },
    },
)


def _check_waf(args, report, settings):
    props = args.props
    if args.resource_type == AZURE_APP_GATEWAY:
        tier = str((props.get("sku") or {}).get("tier") or "")
        has_policy = bool((props.get("firewallPolicy") or {}).get("id"))
        inline_waf = bool((props.get("webApplicationFirewallConfiguration") or {}).get("enabled"))
        if tier != "WAF_v2" or not (has_policy or inline_waf):
            report(
                f"The gateway runs tier '{tier or 'unset'}' {'with' if has_policy or inline_waf else 'without'} a firewall policy. "
                "Fix: set hastack:loadBalancer.sku to WAF_v2 (the gateway then links a WAF policy)."
            )
        return
    policy_settings = props.get("policySettings") or {}
    state, mode = policy_settings.get("state"), policy_settings.get("mode")
    if state != "Enabled":
        report(f"The WAF policy is '{state or 'unset'}'. Fix: set policySettings.state to Enabled.")
    if settings["requirePreventionMode"] and mode != "Prevention":
        report(f"The WAF policy only detects (mode '{mode or 'unset'}'). Fix: set policySettings.mode to Prevention.")


lb_waf_enabled = HastackResourcePolicy(
    "lb-waf-enabled",
    "Internet traffic passes a web application firewall (Application Gateway WAF_v2 with an enabled WAF policy). HAProxy on Docker has none; the rule does not apply there.",
    applies_to=[AZURE_APP_GATEWAY, AZURE_WAF_POLICY],
    check=_check_waf,
    # WAF_v2 costs more than Standard_v2: advisory unless a stack's config raises it (prod does).
    enforcement_level=EnforcementLevel.ADVISORY,
    settings={
        "requirePreventionMode": {
            "type": "boolean",
            "default": True,
            "description": "Require the WAF policy to block (Prevention), not only log (Detection).",
        }
    },
)

POLICIES = [lb_active_health_checks, lb_waf_enabled]
