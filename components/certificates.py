"""The stack's own certificate authority, and the server certificates it issues.

One CA per stack (pulumi-tls, kept in the stack state like the generated passwords):
- the self-hosted PostgreSQL nodes get one server certificate whose SANs are every node
  alias, and the app verifies it (`sslmode=verify-full`) against this CA;
- HAProxy (docker, swarm) gets one when `loadBalancer.tls` has no certificate of its own
  (`edge_certificate`: dev, onprem);
- the nodes' pgBackRest TLS servers get one, and the pgBackRest clients a client
  certificate (`issue_client`), for backups from a standby.

The CA certificate is public (stack output `caCertificate`); every private key leaves
this module as a Pulumi secret.

    ca = StackCertificateAuthority("ca")
    cert = ca.issue("db-server", dns_names=["db-primary", "db-replica-0"], parent=db)
    cert.certificate_pem      # Output[str]
    cert.private_key_pem      # Output[str], secret

Keys are ECDSA P-256: pulumi-tls defaults `ecdsaCurve` to P224, which TLS clients
(OpenSSL 3 at its default security level, browsers) refuse
(https://www.pulumi.com/registry/packages/tls/api-docs/privatekey/).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

from components.config import LoadBalancerTlsConfig

KEY_ALGORITHM = "ECDSA"
ECDSA_CURVE = "P256"
CA_VALIDITY_HOURS = 10 * 365 * 24
# 825 days: the longest Apple platforms accept for any TLS server certificate, even one
# from a private CA (https://support.apple.com/en-us/103769).
SERVER_VALIDITY_HOURS = 825 * 24
# Within this of its expiry, the next `pulumi up` issues a new server certificate.
SERVER_EARLY_RENEWAL_HOURS = 30 * 24


@dataclass(frozen=True)
class ServerCertificate:
    certificate_pem: pulumi.Output[str]
    # Secret.
    private_key_pem: pulumi.Output[str]

    def pem_bundle(self) -> pulumi.Output[str]:
        """The certificate followed by its key in one PEM (HAProxy's `crt`); secret, like the key.
        The newline keeps the key's header on a line of its own whatever the certificate ends with."""
        return pulumi.Output.secret(pulumi.Output.concat(self.certificate_pem, "\n", self.private_key_pem))


def _private_key(name: str, parent: pulumi.Resource) -> tls.PrivateKey:
    return tls.PrivateKey(name, algorithm=KEY_ALGORITHM, ecdsa_curve=ECDSA_CURVE,
                          opts=pulumi.ResourceOptions(parent=parent))


class StackCertificateAuthority(pulumi.ComponentResource):
    """A self-signed CA that signs the stack's server certificates."""

    certificate_pem: pulumi.Output[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:index:CertificateAuthority", name, None, opts)
        self._key = _private_key(f"{name}-key", self)
        certificate = tls.SelfSignedCert(
            f"{name}-cert",
            private_key_pem=pulumi.Output.secret(self._key.private_key_pem),
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"hastack {pulumi.get_project()}-{pulumi.get_stack()} CA"),
            is_ca_certificate=True,
            validity_period_hours=CA_VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.certificate_pem = certificate.cert_pem
        self.register_outputs({"certificatePem": self.certificate_pem})

    def issue(self, name: str, *, dns_names: Sequence[str], ip_addresses: Sequence[str] = (),
              parent: pulumi.Resource) -> ServerCertificate:
        """A server certificate for `dns_names` and `ip_addresses` (the first DNS name, else
        the first address, is its common name), its resources children of `parent` (the
        component that serves it)."""
        return self._sign(name, [*dns_names, *ip_addresses][0], dns_names, ip_addresses, "server_auth", parent)

    def issue_client(self, name: str, *, common_name: str, parent: pulumi.Resource) -> ServerCertificate:
        """A client certificate with `common_name`, for servers that authorize clients by
        their CN (pgBackRest's tls-server-auth)."""
        return self._sign(name, common_name, (), (), "client_auth", parent)

    def _sign(self, name: str, common_name: str, dns_names: Sequence[str], ip_addresses: Sequence[str], use: str,
              parent: pulumi.Resource) -> ServerCertificate:
        key = _private_key(f"{name}-key", parent)
        request = tls.CertRequest(
            f"{name}-request",
            private_key_pem=pulumi.Output.secret(key.private_key_pem),
            subject=tls.CertRequestSubjectArgs(common_name=common_name),
            dns_names=list(dns_names),
            ip_addresses=list(ip_addresses),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        certificate = tls.LocallySignedCert(
            f"{name}-cert",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=pulumi.Output.secret(self._key.private_key_pem),
            ca_cert_pem=self.certificate_pem,
            validity_period_hours=SERVER_VALIDITY_HOURS,
            early_renewal_hours=SERVER_EARLY_RENEWAL_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", use],
            opts=pulumi.ResourceOptions(parent=parent),
        )
        return ServerCertificate(certificate_pem=certificate.cert_pem,
                                 private_key_pem=pulumi.Output.secret(key.private_key_pem))


def edge_certificate(tls_config: LoadBalancerTlsConfig, addresses: Sequence[str], ca: StackCertificateAuthority,
                     parent: pulumi.Resource) -> ServerCertificate | None:
    """What HAProxy serves HTTPS with (None without TLS): the configured certificate (secret
    config), else one from the stack CA naming `addresses`, the hosts clients reach the
    load balancer at (host names become DNS names, IP literals IP addresses, in order)."""
    if not tls_config.enabled:
        return None
    if tls_config.certificate is not None and tls_config.key is not None:
        return ServerCertificate(
            certificate_pem=pulumi.Output.secret(tls_config.certificate.get_secret_value()),
            private_key_pem=pulumi.Output.secret(tls_config.key.get_secret_value()),
        )
    unique = list(dict.fromkeys(addresses))
    ip_addresses = [address for address in unique if _is_ip(address)]
    dns_names = [address for address in unique if address not in ip_addresses]
    return ca.issue("lb-server", dns_names=dns_names, ip_addresses=ip_addresses, parent=parent)


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True
