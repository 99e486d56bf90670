"""lb-https-only and key-vault-safe-settings against passing and violating fixtures."""

from __future__ import annotations

import copy

import pytest
from azure_tls_fixtures import http_only_gateway, https_gateway, key_vault, part
from policy_harness import UNKNOWN, check_resource
from pulumi_policy.proxy import UnknownValueError


def _with_rule(gateway, index, **changes):
    changed = copy.deepcopy(gateway)
    changed.props["requestRoutingRules"][index].update(changes)
    return changed


GATEWAY_CASES = [
    ("compliant", https_gateway(), []),
    ("http-only", http_only_gateway(), ["no HTTPS listener", "Rule 'http-to-app' serves plain HTTP"]),
    ("lax-predefined-policy", https_gateway(sslPolicy={"policyType": "Predefined", "policyName": "AppGwSslPolicy20220101"}),
     ["SSL policy is Predefined AppGwSslPolicy20220101"]),
    ("no-ssl-policy", https_gateway(sslPolicy=None), ["SSL policy is unset"]),
    ("custom-v2-strict", https_gateway(sslPolicy={"policyType": "CustomV2", "minProtocolVersion": "TLSv1_2",
                                                  "cipherSuites": ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]}), []),
    ("custom-v2-tls13", https_gateway(sslPolicy={"policyType": "CustomV2", "minProtocolVersion": "TLSv1_3"}), []),
    ("custom-v2-cbc", https_gateway(sslPolicy={"policyType": "CustomV2", "minProtocolVersion": "TLSv1_2",
                                               "cipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"]}), ["CBC suites"]),
    ("custom-v2-tls11", https_gateway(sslPolicy={"policyType": "CustomV2", "minProtocolVersion": "TLSv1_1"}), ["TLSv1_1"]),
    ("http-rule-also-routes-to-app", _with_rule(https_gateway(), 1, backendAddressPool=part("backendAddressPools", "app")),
     ["Rule 'http-to-https' serves plain HTTP"]),
    ("redirect-to-the-http-listener", https_gateway(redirectConfigurations=[
        {"name": "http-to-https", "targetListener": part("httpListeners", "http")}]), ["serves plain HTTP"]),
    ("https-listener-without-certificate", https_gateway(httpListeners=[
        {"name": "http", "protocol": "Http"}, {"name": "https", "protocol": "Https"}]), ["'https' has no certificate"]),
]  # fmt: skip


VAULT_CASES = [
    ("compliant", key_vault(), []),
    ("soft-delete-default", key_vault(enableSoftDelete=None), []),
    ("soft-delete-off", key_vault(enableSoftDelete=False), ["soft delete is off"]),
    ("no-purge-protection", key_vault(enablePurgeProtection=None), ["purge protection is off"]),
    ("access-policies", key_vault(enableRbacAuthorization=False), ["access policies, not Azure RBAC"]),
    ("firewall-without-trusted-services", key_vault(networkAcls={"defaultAction": "Deny", "bypass": "None"}),
     ["without letting trusted Azure services through"]),
    ("no-firewall", key_vault(networkAcls=None), []),
]  # fmt: skip


# (policy, case id, resource, a fragment of each expected violation, in order)
CASES = [("lb-https-only", *case) for case in GATEWAY_CASES] + [("key-vault-safe-settings", *case) for case in VAULT_CASES]


@pytest.mark.parametrize(("policy", "resource", "expected"), [(c[0], *c[2:]) for c in CASES], ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_rule_reports_exactly_the_expected_problems(policy, resource, expected):
    messages = check_resource(policy, resource)
    assert len(messages) == len(expected), messages
    for message, fragment in zip(messages, expected):
        assert fragment in message and "Fix:" in message


def test_an_unknown_listener_protocol_cannot_be_judged_during_preview():
    gateway = copy.deepcopy(https_gateway())
    gateway.props["httpListeners"][1]["protocol"] = UNKNOWN
    gateway.props["httpListeners"][0]["protocol"] = UNKNOWN
    with pytest.raises(UnknownValueError):
        check_resource("lb-https-only", gateway)
