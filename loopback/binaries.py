"""Find the Debian binaries the integration tests and drills run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

POSTGRES_BIN_DIR = Path("/usr/lib/postgresql/15/bin")  # Debian keeps these off PATH


# Binaries that come from npm (pinned as .ci/run installs them), not from Debian.
NPM_PACKAGES = {"azurite-blob": "azurite@3.35.0"}


class MissingBinary(RuntimeError):
    """A binary the stack on loopback needs is not installed."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def find(name: str) -> str:
    """Absolute path of `name`, looking in PostgreSQL's bin dir too.

    Raises MissingBinary naming the apt package to install.
    """
    candidate = POSTGRES_BIN_DIR / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    if name in NPM_PACKAGES:
        raise MissingBinary(f"{name} is not installed; run: npm install -g {NPM_PACKAGES[name]}")
    package = {"haproxy": "haproxy", "patroni": "patroni", "patronictl": "patroni", "etcd": "etcd-server",
               "openssl": "openssl", "pgbackrest": "pgbackrest", "jq": "jq", "ip": "iproute2",
               "prometheus": "prometheus", "promtool": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager",
               "amtool": "prometheus-alertmanager",
               "prometheus-postgres-exporter": "prometheus-postgres-exporter",
               "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
               "prometheus-node-exporter": "prometheus-node-exporter"}.get(name, "postgresql-15")
    raise MissingBinary(f"{name} is not installed; run: apt-get install -y {package}")
