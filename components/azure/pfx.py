"""A deterministic, unencrypted PKCS#12 (PFX) bundle of a key and its certificate.

Application Gateway reads a listener certificate from Key Vault as a secret holding a
"base-64 encoded unencrypted pfx"
(https://learn.microsoft.com/en-us/rest/api/application-gateway/application-gateways/create-or-update,
`keyVaultSecretId`). `cryptography` builds the PFX, but its integrity MAC uses a fresh
random salt on every call, so the bytes would differ on every `pulumi up` and the Key
Vault secret would get a new version each time. The MAC is therefore recomputed here with
a salt derived from the bundle's own content (RFC 7292 appendix B key derivation,
HMAC-SHA-256, the empty password as a BMPString): same key and certificate, same bytes.

No pulumi imports: the program calls it inside an `apply` (computing a value, creating
nothing), and tests run `openssl pkcs12` on its output.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math

from cryptography import x509
from cryptography.hazmat.primitives.serialization import NoEncryption, load_pem_private_key, pkcs12

# The password of an unencrypted PFX as PKCS#12 hashes it: an empty BMPString plus its
# two-byte terminator (what OpenSSL uses for "no password").
_EMPTY_PASSWORD = b"\x00\x00"
# RFC 7292 B.3: ID byte 3 derives the MAC key.
_MAC_KEY_ID = 3
_SHA256_BLOCK = 64
_SHA256_SIZE = 32


def pfx_base64(private_key_pem: str, certificate_pem: str, friendly_name: str) -> str:
    """The base64 text of an unencrypted PFX holding the key and certificate; deterministic."""
    key = load_pem_private_key(private_key_pem.encode(), password=None)
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    bundle = pkcs12.serialize_key_and_certificates(friendly_name.encode(), key, certificate, None, NoEncryption())
    return base64.b64encode(with_content_derived_mac(bundle)).decode()


def with_content_derived_mac(bundle: bytes) -> bytes:
    """`bundle` with its MAC salt derived from its content and the MAC recomputed."""
    mac = read_mac(bundle)
    salt = hashlib.sha256(bundle[mac.content]).digest()[: mac.salt.stop - mac.salt.start]
    digest = hmac.new(mac_key(salt, mac.iterations), bundle[mac.content], hashlib.sha256).digest()
    if len(digest) != mac.digest.stop - mac.digest.start:
        raise ValueError("the PFX MAC is not HMAC-SHA-256")
    out = bytearray(bundle)
    out[mac.salt] = salt
    out[mac.digest] = digest
    return bytes(out)


class MacFields:
    """Where a PFX keeps the bytes its MAC covers, its salt and its digest, and the iterations."""

    def __init__(self, content: slice, salt: slice, digest: slice, iterations: int):
        self.content, self.salt, self.digest, self.iterations = content, salt, digest, iterations


def read_mac(bundle: bytes) -> MacFields:
    """Locate the MAC fields of `PFX ::= SEQUENCE {version, authSafe ContentInfo, macData}`."""
    _, start, end = _tlv(bundle, 0)
    _version, auth_safe, mac_data = _children(bundle, start, end)
    _content_type, explicit = _children(bundle, auth_safe[1], auth_safe[2])
    (octets,) = _children(bundle, explicit[1], explicit[2])
    digest_info, salt, iterations = _children(bundle, mac_data[1], mac_data[2])
    _algorithm, digest = _children(bundle, digest_info[1], digest_info[2])
    return MacFields(
        content=slice(octets[1], octets[2]),
        salt=slice(salt[1], salt[2]),
        digest=slice(digest[1], digest[2]),
        iterations=int.from_bytes(bundle[iterations[1] : iterations[2]], "big"),
    )


def mac_key(salt: bytes, iterations: int) -> bytes:
    """RFC 7292 B.2 key derivation (SHA-256) of the MAC key for the empty password."""
    block = _SHA256_BLOCK
    diversifier = bytes([_MAC_KEY_ID]) * block
    material = _repeat_to_blocks(salt) + _repeat_to_blocks(_EMPTY_PASSWORD)
    derived = hashlib.sha256(diversifier + material).digest()
    for _ in range(iterations - 1):
        derived = hashlib.sha256(derived).digest()
    # One SHA-256 output is the whole 32-byte key, so the material is never re-mixed.
    return derived[:_SHA256_SIZE]


def _repeat_to_blocks(value: bytes) -> bytes:
    """`value` repeated to fill a whole number of 64-byte blocks (RFC 7292 B.2 steps 2-3)."""
    size = _SHA256_BLOCK * math.ceil(len(value) / _SHA256_BLOCK)
    return (value * math.ceil(size / len(value)))[:size] if value else b""


def _tlv(data: bytes, position: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the DER element at `position`."""
    tag, length = data[position], data[position + 1]
    position += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[position : position + size], "big")
        position += size
    return tag, position, position + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    elements, position = [], start
    while position < end:
        element = _tlv(data, position)
        elements.append(element)
        position = element[2]
    return elements
