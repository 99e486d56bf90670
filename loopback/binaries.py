"""Find the binaries the integration tests and drills run: Debian's, npm's, and the pinned Patroni."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

POSTGRES_BIN_DIR = Path("/usr/lib/postgresql/15/bin")  # Debian keeps these off PATH
# Patroni at the image's pinned version (`make patroni`), not Debian's 3.0.2 on PATH: the
# tests run the Patroni that hastack ships (components/docker/images/postgres/).
PATRONI_BIN_DIR = Path("/opt/hastack/patroni/bin")
PATRONI_BINARIES = frozenset({"patroni", "patronictl"})
PATRONI_REQUIREMENTS = Path(__file__).resolve().parent.parent / "components/docker/images/postgres/patroni-requirements.txt"


# Binaries that come from npm (pinned as .ci/run installs them), not from Debian.
NPM_PACKAGES = {"azurite-blob": "azurite@3.35.0"}


def pinned_patroni_version() -> str:
    """The Patroni version patroni-requirements.txt pins (e.g. "3.0.4")."""
    for line in PATRONI_REQUIREMENTS.read_text().splitlines():
        if line.startswith("patroni=="):
            return line.removeprefix("patroni==").split()[0]
    raise ValueError(f"{PATRONI_REQUIREMENTS} pins no patroni version")


class MissingBinary(RuntimeError):
    """A binary the stack on loopback needs is not installed."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def find(name: str) -> str:
    """Absolute path of `name`, looking in PostgreSQL's bin dir too (Patroni: only in
    PATRONI_BIN_DIR).

    Raises MissingBinary naming what to install.
    """
    if name in PATRONI_BINARIES:
        candidate = PATRONI_BIN_DIR / name
        if candidate.exists():
            return str(candidate)
        raise MissingBinary(f"{name} {pinned_patroni_version()} is not installed in {PATRONI_BIN_DIR}; run, as root: make patroni")
    candidate = POSTGRES_BIN_DIR / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    if name in NPM_PACKAGES:
        raise MissingBinary(f"{name} is not installed; run: npm install -g {NPM_PACKAGES[name]}")
    package = {"haproxy": "haproxy", "etcd": "etcd-server",
               "openssl": "openssl", "pgbackrest": "pgbackrest", "jq": "jq", "ip": "iproute2",
               "prometheus": "prometheus", "promtool": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager",
               "amtool": "prometheus-alertmanager",
               "prometheus-postgres-exporter": "prometheus-postgres-exporter",
               "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
               "prometheus-node-exporter": "prometheus-node-exporter"}.get(name, "postgresql-15")
    raise MissingBinary(f"{name} is not installed; run: apt-get install -y {package}")
