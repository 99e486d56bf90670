"""HTTPS at the edge: the rendered haproxy.cfg with `tls`, run by Debian's real haproxy 2.6
on 127.0.0.1 and probed with the real `openssl s_client` and an HTTP client that trusts
only the stack CA (a CA and certificate made by the real openssl, loopback/certificates.py)."""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from components.render.haproxy import render_haproxy_cfg
from loopback.binaries import find
from loopback.certificates import LoopbackCertificates, issue_loopback_certificates
from loopback.haproxy import UP, LoopbackHaproxy, check_config, loopback_settings
from loopback.recording_replica import DeathToken, ReceiptLog, RecordingReplica

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("haproxy_installed")]


@pytest.fixture
def certificates(tmp_path: Path) -> LoopbackCertificates:
    directory = tmp_path / "tls"
    directory.mkdir()
    return issue_loopback_certificates(directory)


@pytest.fixture
def https_balancer(certificates: LoopbackCertificates, tmp_path: Path) -> Iterator[LoopbackHaproxy]:
    backend = RecordingReplica("app-0", ReceiptLog(), DeathToken())
    try:
        settings = loopback_settings({"app-0": backend.port}, "/readyz", tls_bundle=certificates.bundle_file)
        with LoopbackHaproxy(settings, tmp_path) as lb:
            lb.wait_for_server("app-0", UP, deadline_s=5)
            yield lb
    finally:
        backend.stop()


def s_client(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """`openssl s_client` against 127.0.0.1:port: one handshake, then EOF on stdin."""
    return subprocess.run([find("openssl"), "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", *args],
                          input="", capture_output=True, text=True, timeout=20)


def test_openssl_sees_the_ca_signed_certificate_over_tls_1_3_with_h2(https_balancer, certificates):
    result = s_client(https_balancer.settings.tls.port, "-CAfile", str(certificates.ca_file), "-verify_return_error",
                      "-alpn", "h2,http/1.1")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Verify return code: 0 (ok)" in output
    assert "subject=CN = localhost" in output
    assert "Protocol  : TLSv1.3" in output or "New, TLSv1.3" in output
    assert "ALPN protocol: h2" in output


def test_tls_1_1_is_refused_while_the_same_client_gets_tls_1_2(https_balancer, certificates):
    # OpenSSL 3 clients refuse TLS < 1.2 themselves at the default security level; level 0
    # lets this one offer TLS 1.1, so a refusal can only come from HAProxy.
    lenient = ["-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", str(certificates.ca_file)]
    refused = s_client(https_balancer.settings.tls.port, "-tls1_1", *lenient)
    assert refused.returncode != 0
    assert "alert protocol version" in refused.stderr, refused.stderr
    accepted = s_client(https_balancer.settings.tls.port, "-tls1_2", *lenient)
    assert accepted.returncode == 0, accepted.stderr
    assert "Protocol  : TLSv1.2" in accepted.stdout


def test_https_answers_reach_the_app_and_carry_hsts(https_balancer, certificates):
    context = ssl.create_default_context(cafile=str(certificates.ca_file))
    response = httpx.get(https_balancer.url + "/", verify=context, timeout=5)
    assert response.status_code == 200
    assert response.json()["served_by"] == "app-0"
    assert response.headers["strict-transport-security"] == f"max-age={https_balancer.settings.tls.hsts_max_age_s}"


def test_plain_http_redirects_to_the_published_https_port_keeping_path_and_method(https_balancer, certificates):
    http_port, https_port = https_balancer.settings.frontend_port, https_balancer.settings.tls.port
    response = httpx.post(f"{https_balancer.http_url}/notes?draft=1", headers={"Host": f"localhost:{http_port}"}, timeout=5)
    assert response.status_code == 308
    assert response.headers["location"] == f"https://localhost:{https_port}/notes?draft=1"
    assert "strict-transport-security" not in response.headers  # HSTS over HTTPS only (RFC 6797 7.2)
    # Followed by a client that trusts the stack CA, it lands on the app over HTTPS.
    assert httpx.get(https_balancer.http_url + "/", headers={"Host": "127.0.0.1"}, follow_redirects=True,
                     verify=ssl.create_default_context(cafile=str(certificates.ca_file)),
                     timeout=5).json()["served_by"] == "app-0"


@pytest.mark.parametrize("public_port, location", [(443, "https://shop.example.com/a"), (9443, "https://shop.example.com:9443/a")])
def test_redirect_names_the_published_port_not_the_one_haproxy_binds(certificates, tmp_path, public_port, location):
    # Docker publishes the container's TLS port on another host port; the Host header holds
    # the plain port. Neither may leak into the redirect.
    settings = loopback_settings({"app-0": 1}, "/", tls_bundle=certificates.bundle_file)
    settings = dataclasses.replace(settings, tls=dataclasses.replace(settings.tls, public_port=public_port))
    assert check_config(render_haproxy_cfg(settings), tmp_path).returncode == 0
    with LoopbackHaproxy(settings, tmp_path) as lb:
        response = httpx.get(lb.http_url + "/a", headers={"Host": f"shop.example.com:{settings.frontend_port}"}, timeout=5)
        ipv6 = httpx.get(lb.http_url + "/a", headers={"Host": "[2001:db8::1]:8080"}, timeout=5)
    assert (response.status_code, response.headers["location"]) == (308, location)
    assert ipv6.headers["location"] == location.replace("shop.example.com", "[2001:db8::1]")
