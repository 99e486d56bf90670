"""components/azure/pfx.py: the PFX Key Vault stores for the gateway is stable across runs
and carries a MAC exactly as PKCS#12 computes it."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.serialization import NoEncryption, load_pem_private_key, pkcs12

from components.azure.pfx import mac_key, pfx_base64, read_mac
from plan.fakes import _tls_self_signed_cert, fake_tls_key_pem


def _certificate_pem() -> str:
    class Args:
        inputs = {"subject": {"commonName": "hastack-test-agw"}}

    return _tls_self_signed_cert(Args())["certPem"]


def test_the_same_key_and_certificate_give_the_same_bytes():
    """cryptography alone salts the MAC randomly: every `pulumi up` would write a new secret version."""
    key, cert = fake_tls_key_pem(), _certificate_pem()
    assert pfx_base64(key, cert, "agw") == pfx_base64(key, cert, "agw")
    from cryptography import x509

    loaded_key = load_pem_private_key(key.encode(), None)
    loaded_cert = x509.load_pem_x509_certificate(cert.encode())
    raw = [pkcs12.serialize_key_and_certificates(b"agw", loaded_key, loaded_cert, None, NoEncryption()) for _ in range(2)]
    assert raw[0] != raw[1], "if cryptography became deterministic, pfx.py could go"


def test_the_mac_derivation_reproduces_the_mac_cryptography_computes():
    """With cryptography's own salt, mac_key + HMAC-SHA-256 yields cryptography's digest."""
    import hashlib
    import hmac

    from cryptography import x509

    loaded_key = load_pem_private_key(fake_tls_key_pem().encode(), None)
    loaded_cert = x509.load_pem_x509_certificate(_certificate_pem().encode())
    bundle = pkcs12.serialize_key_and_certificates(b"agw", loaded_key, loaded_cert, None, NoEncryption())
    mac = read_mac(bundle)
    assert mac.iterations >= 1
    expected = hmac.new(mac_key(bundle[mac.salt], mac.iterations), bundle[mac.content], hashlib.sha256).digest()
    assert expected == bundle[mac.digest]


def test_the_bundle_opens_without_a_password_and_holds_the_key_and_certificate():
    pfx = base64.b64decode(pfx_base64(fake_tls_key_pem(), _certificate_pem(), "agw"))
    key, certificate, extra = pkcs12.load_key_and_certificates(pfx, None)
    assert certificate.subject.rfc4514_string() == "CN=hastack-test-agw"
    assert key.public_key().public_numbers() == certificate.public_key().public_numbers()
    assert extra == []
