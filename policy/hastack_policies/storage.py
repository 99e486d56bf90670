"""Shared storage: the Azure storage account behind the Azure Files share.

The Docker platform's storage is a named volume on the engine's host (local or NFS);
it has no network endpoint of its own, so these rules do not apply there.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel

from .base import HastackResourcePolicy
from .resources import AZURE_STORAGE_ACCOUNT

# Ordered weakest to strongest; the config picks the weakest one still accepted.
TLS_VERSIONS = ["TLS1_0", "TLS1_1", "TLS1_2", "TLS1_3"]


def _check_https_only(args, report, settings):
    if args.props.get("enableHttpsTrafficOnly") is not True:
        report(
            "The account accepts plain HTTP (enableHttpsTrafficOnly is not true). "
            "Fix: set enable_https_traffic_only=True on the storage account."
        )


storage_https_only = HastackResourcePolicy(
    "storage-https-only",
    "The storage account accepts HTTPS only.",
    applies_to=[AZURE_STORAGE_ACCOUNT],
    check=_check_https_only,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def _check_min_tls(args, report, settings):
    wanted = settings["minimumTlsVersion"]
    actual = args.props.get("minimumTlsVersion")
    if actual not in TLS_VERSIONS or TLS_VERSIONS.index(actual) < TLS_VERSIONS.index(wanted):
        report(
            f"The account's minimum TLS version is '{actual or 'unset (Azure may allow TLS1_0)'}', {wanted} or newer required. "
            f"Fix: set minimum_tls_version='{wanted}' on the storage account."
        )


storage_min_tls = HastackResourcePolicy(
    "storage-min-tls",
    "The storage account refuses old TLS versions (minimumTlsVersion TLS1_2 or newer).",
    applies_to=[AZURE_STORAGE_ACCOUNT],
    check=_check_min_tls,
    enforcement_level=EnforcementLevel.MANDATORY,
    settings={
        "minimumTlsVersion": {
            "type": "string",
            "enum": ["TLS1_2", "TLS1_3"],
            "default": "TLS1_2",
            "description": "Oldest TLS version the storage account may accept.",
        }
    },
)


def _check_no_public_blobs(args, report, settings):
    if args.props.get("allowBlobPublicAccess") is not False:
        report(
            "Anonymous public read of blobs is not switched off (allowBlobPublicAccess is not false). "
            "Fix: set allow_blob_public_access=False on the storage account."
        )


storage_no_public_blob_access = HastackResourcePolicy(
    "storage-no-public-blob-access",
    "The storage account forbids anonymous public blob access.",
    applies_to=[AZURE_STORAGE_ACCOUNT],
    check=_check_no_public_blobs,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [storage_https_only, storage_min_tls, storage_no_public_blob_access]
