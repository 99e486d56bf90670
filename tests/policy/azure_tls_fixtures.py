"""Compliant Application Gateway TLS settings and Key Vault props, as the engine delivers them."""

from __future__ import annotations

import copy

from policy_harness import Res

from policy.hastack_policies.resources import AZURE_APP_GATEWAY, AZURE_KEY_VAULT

GATEWAY_ID = "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/applicationGateways/agw"


def part(kind: str, name: str) -> dict:
    return {"id": f"{GATEWAY_ID}/{kind}/{name}"}


def https_gateway(**changes) -> Res:
    """HTTPS listener with a certificate, the strict policy, HTTP only redirecting."""
    props = {
        "sslPolicy": {"policyType": "Predefined", "policyName": "AppGwSslPolicy20220101S"},
        "httpListeners": [
            {"name": "http", "protocol": "Http", "frontendPort": part("frontendPorts", "http")},
            {"name": "https", "protocol": "Https", "frontendPort": part("frontendPorts", "https"),
             "sslCertificate": part("sslCertificates", "listener-certificate")},
        ],
        "sslCertificates": [{"name": "listener-certificate", "keyVaultSecretId": "https://v.vault.azure.net/secrets/tls"}],
        "redirectConfigurations": [
            {"name": "http-to-https", "redirectType": "Permanent", "targetListener": part("httpListeners", "https")}
        ],
        "requestRoutingRules": [
            {"name": "https-to-app", "httpListener": part("httpListeners", "https"),
             "backendAddressPool": part("backendAddressPools", "app"), "backendHttpSettings": part("backendHttpSettingsCollection", "app")},
            {"name": "http-to-https", "httpListener": part("httpListeners", "http"),
             "redirectConfiguration": part("redirectConfigurations", "http-to-https")},
        ],
    }  # fmt: skip
    props.update(changes)
    return Res(AZURE_APP_GATEWAY, props, name="lb-gateway")


def http_only_gateway() -> Res:
    """What hastack shipped before issue 11: one HTTP listener routed to the app."""
    gateway = https_gateway()
    props = copy.deepcopy(gateway.props)
    props["httpListeners"] = props["httpListeners"][:1]
    props["requestRoutingRules"] = [
        {"name": "http-to-app", "httpListener": part("httpListeners", "http"), "backendAddressPool": part("backendAddressPools", "app")}
    ]
    del props["redirectConfigurations"], props["sslCertificates"]
    return Res(AZURE_APP_GATEWAY, props, name="lb-gateway")


def key_vault(**changes) -> Res:
    properties = {
        "tenantId": "t",
        "sku": {"family": "A", "name": "standard"},
        "enableSoftDelete": True,
        "enablePurgeProtection": True,
        "enableRbacAuthorization": True,
        "networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices"},
    }
    properties.update(changes)
    return Res(AZURE_KEY_VAULT, {"properties": {k: v for k, v in properties.items() if v is not None}}, name="tls-vault")
