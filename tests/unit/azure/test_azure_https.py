"""HTTPS on every Azure stack (issue 11, part 1), under mocks.

prod brings its own certificate (a Key Vault secret URL); staging and any stack without
one get a hastack Key Vault holding a self-signed PFX. Either way: an HTTPS listener
with the strict SSL policy, HTTP that only redirects, and an https:// `url`.
"""

from __future__ import annotations

import base64
from datetime import datetime

from cryptography.hazmat.primitives.serialization import pkcs12

from components.azure.certificate import KEY_VAULT_SECRETS_USER_ROLE, vault_name_prefix
from plan.engine import is_secret
from plan.fakes import FAKE_CERTIFICATE_NOT_AFTER, FAKE_SUBSCRIPTION_ID, fake_tls_key_pem
from tests.unit.azure.helpers import (
    GATEWAY,
    IDENTITY,
    KEY_VAULT,
    KEY_VAULT_SECRET,
    PROD,
    ROLE_ASSIGNMENT,
    STAGING,
    TLS_CERT,
    TLS_KEY,
    resource_id,
    run_variant,
    subnet_named,
)

PROD_CERTIFICATE = "https://shop-prod-tls.vault.azure.net/secrets/shop-tls"


def test_every_azure_stack_serves_https_with_the_strict_ssl_policy(shipped):
    gateway = shipped.one(GATEWAY).inputs
    assert gateway["sslPolicy"] == {"policyType": "Predefined", "policyName": "AppGwSslPolicy20220101S"}
    listeners = {listener["name"]: listener for listener in gateway["httpListeners"]}
    assert {name: listener["protocol"] for name, listener in listeners.items()} == {"http": "Http", "https": "Https"}
    assert shipped.outputs["url"].startswith("https://")


def test_plain_http_only_redirects_to_https(shipped):
    gateway = shipped.one(GATEWAY).inputs
    by_listener = {rule["httpListener"]["id"].rsplit("/", 1)[-1]: rule for rule in gateway["requestRoutingRules"]}
    http_rule = by_listener["http"]
    assert "backendAddressPool" not in http_rule, "HTTP must never reach the app"
    assert http_rule["redirectConfiguration"]["id"].endswith("/redirectConfigurations/http-to-https")
    (redirect,) = gateway["redirectConfigurations"]
    assert redirect["redirectType"] == "Permanent"
    assert redirect["targetListener"]["id"].endswith("/httpListeners/https")
    assert redirect["includePath"] is True and redirect["includeQueryString"] is True
    assert by_listener["https"]["backendAddressPool"]["id"].endswith("/backendAddressPools/container-app")


def test_the_gateway_reads_its_certificate_as_its_user_assigned_identity(shipped):
    gateway = shipped.one(GATEWAY).inputs
    identity = shipped.one(IDENTITY)
    assert gateway["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [resource_id(identity)]}
    assert shipped.outputs["certificateReaderPrincipalId"] == "11111111-1111-4111-8111-111111111111"


def test_prod_uses_the_users_certificate_and_makes_no_vault(prod):
    gateway = prod.one(GATEWAY).inputs
    assert gateway["sslCertificates"] == [{"name": "listener-certificate", "keyVaultSecretId": PROD_CERTIFICATE}]
    assert prod.of_type(KEY_VAULT) == [] and prod.of_type(TLS_KEY) == []


def test_a_stack_without_a_certificate_gets_a_hardened_hastack_vault(staging):
    vault = staging.one(KEY_VAULT).inputs
    properties = vault["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True
    assert properties["softDeleteRetentionInDays"] == 90
    assert properties["sku"] == {"family": "A", "name": "standard"}
    assert properties["tenantId"] == "44444444-4444-4444-8444-444444444444"
    # Firewall on: the gateway subnet and trusted Azure services only.
    assert properties["networkAcls"] == {
        "defaultAction": "Deny",
        "bypass": "AzureServices",
        "virtualNetworkRules": [{"id": resource_id(subnet_named(staging, "gateway"))}],
    }
    assert {"service": "Microsoft.KeyVault"} in subnet_named(staging, "gateway").inputs["serviceEndpoints"]


def test_the_vault_name_ends_in_a_random_suffix_within_24_characters(staging):
    name = staging.one(KEY_VAULT).inputs["vaultName"]
    assert name == "hastack-staging-k3x9q2"  # the stack prefix + the fake RandomString
    # The longest stack prefix (24 characters) still leaves room for "-" and 6 random characters.
    assert vault_name_prefix("hastack-team-a-staging-e") == "hastack-team-a-st"
    assert vault_name_prefix("Hastack--X") == "hastack-x"


def test_the_certificate_is_a_pfx_secret_with_content_type_and_expiry(staging):
    secret = staging.one(KEY_VAULT_SECRET)
    properties = secret.inputs["properties"]
    assert properties["contentType"] == "application/x-pkcs12"
    # The certificate's own end of validity, in Key Vault's seconds since the epoch.
    not_after = datetime.fromisoformat(FAKE_CERTIFICATE_NOT_AFTER.replace("Z", "+00:00"))
    assert properties["attributes"] == {"enabled": True, "expires": not_after.timestamp()}
    assert is_secret(secret.wire_inputs["properties"]["value"])
    key, certificate, _ = pkcs12.load_key_and_certificates(base64.b64decode(properties["value"]), None)
    assert certificate.subject.rfc4514_string() == "CN=hastack-staging-agw"
    assert key is not None


def test_the_private_key_stays_secret_end_to_end(staging):
    """The key's PEM (and its PFX) never appear outside a secret, in any input or output."""
    key = staging.one(TLS_KEY)
    cert = staging.one(TLS_CERT)
    assert key.inputs == {"algorithm": "RSA", "rsaBits": 2048}
    assert is_secret(cert.wire_inputs["privateKeyPem"])
    pem_body = "".join(fake_tls_key_pem().splitlines()[1:-1])
    pfx = staging.one(KEY_VAULT_SECRET).inputs["properties"]["value"]
    for resource in staging.resources:
        plain = _plaintext_strings(resource.wire_inputs)
        assert not any(pem_body[:64] in text or pfx[:64] in text for text in plain), resource.name
    assert not any(pem_body[:64] in text for text in _plaintext_strings(staging.wire_outputs))


def test_the_gateway_references_the_version_less_secret_and_waits_for_its_reader(staging):
    gateway = staging.one(GATEWAY)
    vault = staging.one(KEY_VAULT)
    secret_id = gateway.inputs["sslCertificates"][0]["keyVaultSecretId"]
    assert secret_id == f"https://{vault.inputs['vaultName']}.vault.azure.net/secrets/gateway-tls"
    role = staging.one(ROLE_ASSIGNMENT)
    assert role.inputs["principalType"] == "ServicePrincipal"
    assert role.inputs["scope"] == resource_id(vault)
    assert role.inputs["principalId"] == "11111111-1111-4111-8111-111111111111"
    assert role.inputs["roleDefinitionId"] == (
        f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/{KEY_VAULT_SECRETS_USER_ROLE}"
    )
    # Without these, a clean deploy races the role assignment: ApplicationGatewayKeyVaultSecretException.
    assert role.urn in gateway.dependencies
    assert staging.one(KEY_VAULT_SECRET).urn in gateway.dependencies


def test_the_hastack_vault_is_protected_when_the_stack_is():
    run = run_variant(STAGING, "staging")
    assert not run.one(KEY_VAULT).protect
    protected = run_variant(PROD, "preprod", loadBalancer={"certificateSecretId": None})
    assert protected.one(KEY_VAULT).protect


def _plaintext_strings(value, inside_secret=False):
    if isinstance(value, dict):
        secret = inside_secret or is_secret(value)
        return [text for item in value.values() for text in _plaintext_strings(item, secret)]
    if isinstance(value, list):
        return [text for item in value for text in _plaintext_strings(item, inside_secret)]
    return [value] if isinstance(value, str) and not inside_secret else []
