"""The Application Gateway serves HTTPS with a strict TLS policy; plain HTTP only redirects.

A gateway's parts refer to each other by ARM id (`.../httpListeners/<name>`), so a rule's
listener and a redirect's target are matched by the last path segment of those ids.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel

from .base import HastackResourcePolicy
from .resources import AZURE_APP_GATEWAY, known_items

# Predefined policies with TLS 1.2 as the floor and no CBC suites
# (https://learn.microsoft.com/en-us/azure/application-gateway/application-gateway-ssl-policy-overview).
STRICT_PREDEFINED_POLICIES = frozenset({"AppGwSslPolicy20220101S"})
STRICT_MIN_PROTOCOLS = frozenset({"TLSv1_2", "TLSv1_3"})


def _child_name(reference) -> str:
    return str((reference or {}).get("id") or "").rsplit("/", 1)[-1]


def _ssl_policy_problem(policy) -> str | None:
    policy = policy or {}
    kind, name = policy.get("policyType"), policy.get("policyName")
    if kind == "Predefined" and name in STRICT_PREDEFINED_POLICIES:
        return None
    if kind == "CustomV2":
        if policy.get("minProtocolVersion") not in STRICT_MIN_PROTOCOLS:
            return f"the CustomV2 SSL policy allows {policy.get('minProtocolVersion') or 'an unset minimum'} (TLSv1_2 or newer required)"
        cbc = [suite for suite in known_items(policy.get("cipherSuites")) if "CBC" in str(suite)]
        return f"the CustomV2 SSL policy allows CBC suites ({', '.join(cbc)})" if cbc else None
    return f"the SSL policy is {kind or 'unset'} {name or ''}".rstrip() + " (AppGwSslPolicy20220101S, or CustomV2 with TLSv1_2 and no CBC suites, required)"


def _https_problems(props) -> list[str]:
    listeners = {item.get("name"): item for item in known_items(props.get("httpListeners"))}
    problems = []
    https = [name for name, item in listeners.items() if item.get("protocol") == "Https"]
    if not https:
        problems.append("the gateway has no HTTPS listener")
    for name in https:
        if not _child_name(listeners[name].get("sslCertificate")):
            problems.append(f"HTTPS listener '{name}' has no certificate")
    ssl_problem = _ssl_policy_problem(props.get("sslPolicy"))
    if ssl_problem:
        problems.append(ssl_problem)
    redirects = {item.get("name"): item for item in known_items(props.get("redirectConfigurations"))}
    for rule in known_items(props.get("requestRoutingRules")):
        listener = listeners.get(_child_name(rule.get("httpListener")))
        if listener is None or listener.get("protocol") != "Http":
            continue
        redirect = redirects.get(_child_name(rule.get("redirectConfiguration")))
        target = listeners.get(_child_name((redirect or {}).get("targetListener")))
        if rule.get("backendAddressPool") or target is None or target.get("protocol") != "Https":
            problems.append(f"rule '{rule.get('name')}' serves plain HTTP instead of redirecting it to an HTTPS listener")
    return problems


def _check_https_only(args, report, settings):
    for problem in _https_problems(args.props):
        report(
            f"{problem[0].upper()}{problem[1:]}. Fix: keep hastack's HTTPS listener, the AppGwSslPolicy20220101S "
            "policy and the HTTP-to-HTTPS redirect (components/azure/load_balancer.py); set "
            "hastack:loadBalancer.certificateSecretId for a certificate of your own."
        )


lb_https_only = HastackResourcePolicy(
    "lb-https-only",
    "The Application Gateway has an HTTPS listener with a certificate, a strict SSL policy (TLS 1.2+, no CBC), and plain HTTP only redirects to HTTPS. HAProxy on Docker: not applicable.",
    applies_to=[AZURE_APP_GATEWAY],
    check=_check_https_only,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [lb_https_only]
