"""Key Vault: recoverable, access by Azure RBAC, and a firewall that still lets trusted services in."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel

from .base import HastackResourcePolicy
from .resources import AZURE_KEY_VAULT


def _vault_problems(properties) -> list[str]:
    problems = []
    # Soft delete is on by default in current API versions; only an explicit false turns it off.
    if properties.get("enableSoftDelete") is False:
        problems.append("soft delete is off, so a deleted vault (and the certificate in it) is gone at once")
    if properties.get("enablePurgeProtection") is not True:
        problems.append("purge protection is off, so a soft-deleted vault can be purged before its retention ends")
    if properties.get("enableRbacAuthorization") is not True:
        problems.append("access policies, not Azure RBAC, decide who reads secrets")
    acls = properties.get("networkAcls") or {}
    if acls.get("defaultAction") == "Deny" and acls.get("bypass") != "AzureServices":
        problems.append("the firewall denies by default without letting trusted Azure services through")
    return problems


def _check_vault(args, report, settings):
    for problem in _vault_problems(args.props.get("properties") or {}):
        report(
            f"The Key Vault's {problem}. Fix: set enable_soft_delete, enable_purge_protection and "
            "enable_rbac_authorization to True, and network_acls.bypass to AzureServices "
            "(components/azure/certificate.py does)."
        )


key_vault_safe_settings = HastackResourcePolicy(
    "key-vault-safe-settings",
    "A Key Vault keeps soft delete and purge protection on, uses Azure RBAC authorization, and its firewall lets trusted Azure services through.",
    applies_to=[AZURE_KEY_VAULT],
    check=_check_vault,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [key_vault_safe_settings]
