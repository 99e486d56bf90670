"""blackbox_exporter's config: the TLS probe whose `probe_ssl_earliest_cert_expiry` feeds
the certificate-expiry alert (render/alert_rules.py TlsCertificateExpiring).

Consumed by `blackbox_exporter --config.file` (the pinned image's 0.23, Debian's 0.23 in the
integration tests, which also run its `--config.check`).
"""

from __future__ import annotations

import yaml

# The module Prometheus asks for (`/probe?module=...`, render/prometheus.py ScrapeJob.module).
TLS_EXPIRY_MODULE = "tls_expiry"


def render_blackbox_yml() -> str:
    """A TCP connect with a TLS handshake that reads the served chain's earliest expiry."""
    modules = {
        TLS_EXPIRY_MODULE: {
            "prober": "tcp",
            "timeout": "5s",
            "tcp": {
                "tls": True,
                # The probe reads when the certificate expires, whoever signed it and for
                # whichever name; whether clients trust it is theirs to check. A failed
                # verification would also hide the expiry this probe is for.
                "tls_config": {"insecure_skip_verify": True},
            },
        }
    }
    return yaml.safe_dump({"modules": modules}, sort_keys=False)
