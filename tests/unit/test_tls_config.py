"""loadBalancer.tls: bad values are one clear line that never repeats a secret, a key
must be a Pulumi secret, and a configured certificate reaches HAProxy only as a secret."""

from __future__ import annotations

import json

import pytest

from components.docker.load_balancer import CERTIFICATE_FILE
from plan.engine import PROJECT_DIR, ProgramError, is_secret, run_program, stack_file_config
from tests.unit.mock_run import CONFIGURED_TLS, CONFIGURED_TLS_SECRET_KEYS, upload

SECRET_KEYS = CONFIGURED_TLS_SECRET_KEYS
NOT_PEM = "this-is-the-secret-value-in-the-wrong-shape"


def lb(**tls) -> dict[str, str]:
    return {"hastack:loadBalancer": json.dumps({"tls": tls})}


MALFORMED = [
    ("key-without-certificate", lb(key=CONFIGURED_TLS["key"]), "dev", SECRET_KEYS,
     "hastack:loadBalancer.tls: certificate and key go together: set both, or neither"),
    ("certificate-not-pem", lb(certificate=NOT_PEM, key=CONFIGURED_TLS["key"]), "dev", SECRET_KEYS,
     "hastack:loadBalancer.tls: certificate must be PEM text starting with -----BEGIN CERTIFICATE-----"),
    ("key-not-pem", lb(certificate=CONFIGURED_TLS["certificate"], key=NOT_PEM), "dev", SECRET_KEYS,
     "hastack:loadBalancer.tls: key must be an unencrypted PEM private key"),
    ("key-wrong-type", lb(certificate=CONFIGURED_TLS["certificate"], key=["this-is-the-secret-value-in-the-wrong-shape"]),
     "dev", SECRET_KEYS, "hastack:loadBalancer.tls.key: Input should be a valid string"),
    ("key-in-plaintext", lb(**CONFIGURED_TLS), "dev", [],
     "hastack:loadBalancer.tls.certificate: must be a Pulumi secret, not plaintext in the stack file; "
     "set it with: pulumi config set --secret --path 'hastack:loadBalancer.tls.certificate' < FILE"),
    ("tls-port-clash", lb(port=8080), "dev", [],
     "hastack:loadBalancer: tls.port must differ from port and statsPort (got 8080)"),
    ("prod-without-certificate", {}, "prod", [],
     "hastack: a prod stack needs a real certificate: set loadBalancer.tls.certificate and loadBalancer.tls.key"),
    ("tls-on-azure", {**stack_file_config(PROJECT_DIR / "Pulumi.staging.yaml"),
                      "hastack:loadBalancer": json.dumps({"port": 80, "tls": {"enabled": True}})}, "staging", [],
     "hastack: loadBalancer.tls is for HAProxy (docker, swarm); on Azure set loadBalancer.certificateSecretId"),
]


@pytest.mark.parametrize("raw, stack, secret_keys, expected", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_bad_tls_config_is_one_line_without_the_secret_and_registers_nothing(raw, stack, secret_keys, expected):
    with pytest.raises(ProgramError) as caught:
        run_program(raw, stack, secret_keys=secret_keys)
    problems = str(caught.value).splitlines()[1:]
    assert problems[0].startswith(expected), problems
    assert len(problems) <= 2  # certificate and key both named when both are plaintext
    assert NOT_PEM not in str(caught.value) and "configured-tls-key" not in str(caught.value)
    assert caught.value.run.resources == []


def test_a_configured_certificate_reaches_haproxy_only_as_a_secret_readable_by_haproxy_alone():
    raw = {**stack_file_config(PROJECT_DIR / "Pulumi.dev.yaml"), **lb(**CONFIGURED_TLS)}
    run = run_program(raw, "dev", secret_keys=SECRET_KEYS)
    haproxy = run.by_name("lb-haproxy")
    [wire] = [u for u in haproxy.wire_inputs["uploads"] if u["file"] == CERTIFICATE_FILE]
    assert is_secret(wire["content"])
    assert upload(haproxy, CERTIFICATE_FILE) == CONFIGURED_TLS["certificate"] + "\n" + CONFIGURED_TLS["key"]
    assert (wire["owner"], wire["group"], wire["permissions"]) == ("99", "99", "0600")
    # No certificate of the stack CA is issued for the edge then.
    assert "lb-server-cert" not in {r.name for r in run.resources}
