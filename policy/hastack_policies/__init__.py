"""hastack's CrossGuard policies, importable by the pack (`policy/__main__.py`), the offline
plan (`plan/gate.py`) and the tests. One module per group; `POLICIES` is the registry."""

from __future__ import annotations

from . import app, backups, data_safety, database, gateway_https, key_vault, load_balancer, secrets, spread, storage, tls

PACK_NAME = "hastack-policies"

POLICIES = [
    *app.POLICIES,
    *load_balancer.POLICIES,
    *gateway_https.POLICIES,
    *key_vault.POLICIES,
    *tls.POLICIES,
    *database.POLICIES,
    *backups.POLICIES,
    *storage.POLICIES,
    *secrets.POLICIES,
    *data_safety.POLICIES,
    *spread.POLICIES,
]

POLICIES_BY_NAME = {policy.name: policy for policy in POLICIES}
