"""A CA and a server certificate for the stack on loopback, made by the `openssl` binary.

The Docker stack gets the same shape from pulumi-tls (components/certificates.py): an
ECDSA P-256 CA, and one server certificate it signs, here for `localhost` and
`127.0.0.1` (every loopback node, so `sslmode=verify-full` holds for each). The key is
mode 0600 and owned by the postgres OS user, as PostgreSQL demands of `ssl_key_file`.

    certs = issue_loopback_certificates(directory)
    certs.server_tls()          # the renderers' ServerTls
    certs.bundle_file           # certificate + key in one PEM, HAProxy's `crt`
    client = issue_loopback_client_certificate(certs, "pgbackrest-client")  # mutual TLS
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from components.render.postgres import ServerTls

from .binaries import find
from .postgres import chown_to_postgres

# The server certificate's names: every loopback node is reached at one of these.
SERVER_DNS_NAME = "localhost"
SERVER_IP = "127.0.0.1"
VALIDITY_DAYS = 2
_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


@dataclass(frozen=True)
class LoopbackCertificates:
    ca_file: Path
    certificate_file: Path
    key_file: Path
    bundle_file: Path

    def server_tls(self) -> ServerTls:
        return ServerTls(certificate_file=str(self.certificate_file), key_file=str(self.key_file),
                         ca_file=str(self.ca_file))


def _openssl(*args: str) -> None:
    result = subprocess.run([find("openssl"), *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({result.returncode}):\n{result.stderr}")


def issue_loopback_certificates(directory: Path, ip_addresses: Sequence[str] = (SERVER_IP,)) -> LoopbackCertificates:
    """Write ca.crt, server.crt, server.key and server.pem into `directory`; the server
    certificate names `localhost` and `ip_addresses` (a multi-machine drill's node addresses)."""
    ca_key, ca_file = directory / "ca.key", directory / "ca.crt"
    key_file, request, certificate_file = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "server.ext"
    _openssl("req", "-x509", *_EC_KEY, "-keyout", str(ca_key), "-out", str(ca_file), "-days", str(VALIDITY_DAYS),
             "-subj", "/CN=hastack loopback CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-new", *_EC_KEY, "-keyout", str(key_file), "-out", str(request), "-subj", f"/CN={SERVER_DNS_NAME}")
    names = ",".join([f"DNS:{SERVER_DNS_NAME}", *(f"IP:{address}" for address in ip_addresses)])
    extensions.write_text(f"subjectAltName={names}\n"
                          "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca_file), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", str(VALIDITY_DAYS), "-extfile", str(extensions), "-out", str(certificate_file))
    bundle_file = directory / "server.pem"
    bundle_file.write_text(certificate_file.read_text() + key_file.read_text())
    for private in (ca_key, key_file, bundle_file):
        private.chmod(0o600)
    for readable in (ca_file, certificate_file, key_file):
        chown_to_postgres(readable)
    return LoopbackCertificates(ca_file=ca_file, certificate_file=certificate_file, key_file=key_file,
                                bundle_file=bundle_file)


@dataclass(frozen=True)
class ClientCertificate:
    certificate_file: Path
    key_file: Path


def issue_loopback_client_certificate(certs: LoopbackCertificates, common_name: str) -> ClientCertificate:
    """A client certificate (extendedKeyUsage clientAuth, CN `common_name`) signed by the
    loopback CA of `certs`, for a server that authorizes clients by CN (pgBackRest's
    tls-server-auth); mode 0600, owned by postgres."""
    directory, ca_key = certs.ca_file.parent, certs.ca_file.parent / "ca.key"
    key_file, request = directory / f"{common_name}.key", directory / f"{common_name}.csr"
    certificate_file, extensions = directory / f"{common_name}.crt", directory / f"{common_name}.ext"
    _openssl("req", "-new", *_EC_KEY, "-keyout", str(key_file), "-out", str(request), "-subj", f"/CN={common_name}")
    extensions.write_text("extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", str(request), "-CA", str(certs.ca_file), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", str(VALIDITY_DAYS), "-extfile", str(extensions), "-out", str(certificate_file))
    key_file.chmod(0o600)
    for readable in (certificate_file, key_file):
        chown_to_postgres(readable)
    return ClientCertificate(certificate_file=certificate_file, key_file=key_file)
