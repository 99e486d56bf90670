"""The gateway PFX (components/azure/pfx.py) as OpenSSL reads it: `openssl pkcs12` verifies
the recomputed MAC (a wrong one is "Mac verify error") and extracts key and certificate.

Binary: openssl."""

from __future__ import annotations

import base64
import subprocess

from components.azure.pfx import pfx_base64, read_mac
from loopback.binaries import find
from plan.fakes import fake_tls_key_pem
from tests.integration.conftest import require_binaries
from tests.unit.azure.test_pfx import _certificate_pem


def _openssl_info(pfx: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([find("openssl"), "pkcs12", "-info", "-nodes", "-passin", "pass:"], input=pfx,
                          capture_output=True, timeout=30)


def test_openssl_verifies_the_mac_and_reads_key_and_certificate():
    require_binaries("openssl")
    pfx = base64.b64decode(pfx_base64(fake_tls_key_pem(), _certificate_pem(), "agw"))
    result = _openssl_info(pfx)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "-----BEGIN CERTIFICATE-----" in out and "-----BEGIN PRIVATE KEY-----" in out
    assert "MAC: sha256" in result.stderr.decode()


def test_openssl_rejects_a_bundle_whose_mac_was_tampered_with():
    require_binaries("openssl")
    pfx = bytearray(base64.b64decode(pfx_base64(fake_tls_key_pem(), _certificate_pem(), "agw")))
    digest = read_mac(bytes(pfx)).digest
    pfx[digest.start] ^= 0xFF
    result = _openssl_info(bytes(pfx))
    assert result.returncode != 0
    assert b"mac verify" in result.stderr.lower()
