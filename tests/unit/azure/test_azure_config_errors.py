"""Malformed Azure stack config: one clear line, and not a single resource registered.

Each case starts from a shipped Azure stack file and breaks one thing, so the only
problem in the config is the one under test.
"""

from __future__ import annotations

import pytest

from plan.engine import ProgramError, run_program
from plan.fakes import FAKE_SOURCE_BACKUP_DAYS
from tests.unit.azure.helpers import PROD, RESTORE_SOURCE, STAGING, config_with, hours_ago, restore

# (case id, stack file, stack name, changes to the stack file, the line we expect)
MALFORMED = [
    ("burstable-with-ha", STAGING, "staging",
     {"database": {"managed": {"tier": "Burstable", "skuName": "Standard_B2s", "highAvailability": "SameZone"}}},
     "hastack:database.managed: tier Burstable cannot run high availability; use GeneralPurpose or MemoryOptimized"),
    ("backup-retention-40", PROD, "prod",
     {"database": {"managed": {"backupRetentionDays": 40}}},
     "hastack:database.managed.backupRetentionDays: Input should be less than or equal to 35 (got 40)"),
    ("backup-retention-3", STAGING, "staging",
     {"database": {"managed": {"backupRetentionDays": 3}}},
     "hastack:database.managed.backupRetentionDays: Input should be greater than or equal to 7 (got 3)"),
    ("min-replicas-0-in-prod", PROD, "prod",
     {"app": {"replicas": 0}},
     "hastack:app.replicas: Input should be greater than or equal to 1 (got 0)"),
    ("min-replicas-2-in-prod", PROD, "prod",
     {"app": {"replicas": 2}},
     "hastack: app.replicas must be >= 3 on the Azure prod stack, one per availability zone (got 2)"),
    ("region-with-spaces", PROD, "prod",
     {"azure": {"location": "West Europe"}},
     "hastack:azure.location: location must be an Azure region name such as 'westeurope' (lowercase, no spaces) (got 'West Europe')"),
    ("standby-in-the-primary-zone", PROD, "prod",
     {"database": {"managed": {"zone": "2", "standbyZone": "2"}}},
     "hastack:database.managed: standbyZone must differ from zone (2) for ZoneRedundant HA"),
    ("standby-zone-4", PROD, "prod",
     {"database": {"managed": {"standbyZone": "4"}}},
     "hastack:database.managed.standbyZone: Input should be '1', '2' or '3' (got '4')"),
    ("sku-of-another-tier", PROD, "prod",
     {"database": {"managed": {"skuName": "Standard_B2s"}}},
     "hastack:database.managed: skuName 'Standard_B2s' is not a GeneralPurpose size; GeneralPurpose sizes start with Standard_D"),
    ("storage-size-not-offered", PROD, "prod",
     {"database": {"managed": {"storageSizeGb": 100}}},
     "hastack:database.managed.storageSizeGb: storageSizeGb must be one of 32, 64, 128"),
    ("managed-version-18", STAGING, "staging",
     {"database": {"version": "18"}},
     "hastack:database: version 18 is not offered managed; allowed: 15, 16, 17"),
    ("self-hosted-db-on-azure", STAGING, "staging",
     {"database": {"mode": "self-hosted"}},
     "hastack: platform 'azure' runs database.mode 'managed' only"),
    ("gateway-min-capacity-1", PROD, "prod",
     {"loadBalancer": {"minCapacity": 1}},
     "hastack:loadBalancer.minCapacity: Input should be greater than or equal to 2 (got 1)"),
    ("gateway-v1-sku", PROD, "prod",
     {"loadBalancer": {"sku": "WAF_Medium"}},
     "hastack:loadBalancer.sku: Input should be 'Standard_v2' or 'WAF_v2' (got 'WAF_Medium')"),
    ("certificate-not-in-key-vault", PROD, "prod",
     {"loadBalancer": {"certificateSecretId": "https://example.com/cert.pfx"}},
     "hastack:loadBalancer: certificateSecretId must be a Key Vault secret URL: https://<vault>.vault.azure.net/secrets/<name>"),
    ("share-below-premium-minimum", STAGING, "staging",
     {"storage": {"quotaGb": 50}},
     "hastack:storage.quotaGb: Input should be greater than or equal to 100 (got 50)"),
    ("share-protocol-unknown", STAGING, "staging",
     {"storage": {"protocol": "CIFS"}},
     "hastack:storage.protocol: Input should be 'SMB' or 'NFS' (got 'CIFS')"),
    ("docker-nfs-driver-on-azure", STAGING, "staging",
     {"storage": {"driver": "nfs", "nfs": {"server": "10.0.0.5", "path": "/exports"}}},
     "hastack: storage.driver/nfs are Docker-only; on Azure choose storage.protocol: SMB or NFS"),
    ("container-size-not-consumption", STAGING, "staging",
     {"app": {"cpu": 0.5, "memoryGi": 3.0}},
     "hastack: app.cpu must be a multiple of 0.25 and app.memoryGi twice app.cpu"),
    ("db-user-reserved", PROD, "prod",
     {"database": {"user": "admin"}},
     "hastack: database.user 'admin' is reserved on Flexible Server; reserved:"),
    ("db-user-is-the-hastack-admin", STAGING, "staging",
     {"database": {"user": "hastack_admin"}},
     "hastack: database.user 'hastack_admin' is reserved on Flexible Server; reserved:"),
    ("prod-without-certificate", PROD, "prod",
     {"loadBalancer": {"certificateSecretId": None}},
     "hastack: loadBalancer.certificateSecretId is required on the Azure prod stack: the Key Vault secret URL"),
    ("certificate-pinned-to-a-version", STAGING, "staging",
     {"loadBalancer": {"certificateSecretId": "https://shop-vault.vault.azure.net/secrets/shop-tls/" + "0" * 32}},
     "hastack:loadBalancer: certificateSecretId must be version-less (https://<vault>.vault.azure.net/secrets/<name>)"),
    ("no-alert-email", PROD, "prod",
     {"azure": {"alertEmail": None}},
     "hastack: platform 'azure' needs azure.alertEmail: metric alerts (DB, gateway) are emailed there"),
    ("alert-email-malformed", PROD, "prod",
     {"azure": {"alertEmail": "oncall"}},
     "hastack:azure.alertEmail: alertEmail must be an email address (got 'oncall')"),
    ("vnet-public-range", STAGING, "staging",
     {"azure": {"vnetCidr": "20.0.0.0/16"}},
     "hastack:azure.vnetCidr: vnetCidr must be a private range of /20 or larger (it holds three subnets) (got '20.0.0.0/16')"),
    ("vnet-too-small", STAGING, "staging",
     {"azure": {"vnetCidr": "10.30.0.0/24"}},
     "hastack:azure.vnetCidr: vnetCidr must be a private range of /20 or larger"),
    ("resource-group-bad-name", STAGING, "staging",
     {"azure": {"resourceGroupName": "rg shop."}},
     "hastack:azure.resourceGroupName: resourceGroupName must be 1-90 letters, digits"),
    ("unknown-azure-key", PROD, "prod",
     {"azure": {"subscription": "1234"}},
     "hastack:azure.subscription: unknown key; allowed here: location, resourceGroupName, vnetCidr, alertEmail"),
    ("image-missing-on-azure", STAGING, "staging",
     {"app": {"image": None}},
     "hastack: platform 'azure' needs app.image (a pushed, pinned image); builds are Docker-only"),
    # database.restore (test_azure_restore.py has the restores that work)
    ("restore-without-source", PROD, "prod", {"database": restore(sourceServerId=None)},
     "hastack: database.restore.sourceServerId is required on Azure"),
    ("restore-source-not-a-server-id", PROD, "prod", {"database": restore(sourceServerId="hastack-prod-primary")},
     "hastack: database.restore.sourceServerId must be a Flexible Server resource id: /subscriptions/"),
    ("restore-source-a-single-server", PROD, "prod",
     {"database": restore(sourceServerId=RESTORE_SOURCE.replace("flexibleServers", "servers"))},
     "hastack: database.restore.sourceServerId must be a Flexible Server resource id"),
    ("restore-latest-on-azure", PROD, "prod", {"database": restore(target="latest")},
     "hastack: database.restore.target must be a UTC time on Azure"),
    ("restore-target-in-the-future", PROD, "prod", {"database": restore(target=hours_ago(-2))},
     "hastack: database.restore.target "),
    ("restore-target-beyond-any-retention", PROD, "prod", {"database": restore(target=hours_ago(36 * 24))},
     "hastack: database.restore.target "),
    ("restore-target-without-offset", PROD, "prod", {"database": restore(target="2026-11-30T10:00:00")},
     "hastack:database.restore.target: target must be 'latest' or a time with an explicit offset"),
    ("restore-unknown-key", PROD, "prod", {"database": restore(pointInTime="x")},
     "hastack:database.restore.pointInTime: unknown key; allowed here: target, sourceServerId, mode"),
    # Only the live source server (the fakes' getServer) can say these.
    ("restore-before-the-sources-earliest-point", PROD, "prod",
     {"database": restore(target=hours_ago(24 * (FAKE_SOURCE_BACKUP_DAYS + 1)))},
     "hastack:database.restore.target: "),
    ("restore-version-conflicts-with-the-source", PROD, "prod", {"database": {**restore(), "version": "15"}},
     "hastack:database.restore: the source runs PostgreSQL 16 and a restore keeps that version, but database.version is 15"),
    ("restore-point-in-time-into-another-region", STAGING, "staging",
     {"database": restore(), "azure": {"location": "northeurope"}},
     "hastack:database.restore: a point-in-time restore stays in the source's region westeurope, but azure.location "
     "is northeurope; set azure.location: westeurope, or mode GeoRestore for the paired region"),
]


@pytest.mark.parametrize(
    "stack_file, stack, changes, expected", [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_malformed_azure_config_is_one_clear_line_and_registers_nothing(stack_file, stack, changes, expected):
    with pytest.raises(ProgramError) as caught:
        run_program(config_with(stack_file, **changes), stack)
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid stack config:"
    assert len(lines[1:]) == 1, lines[1:]
    assert lines[1].startswith(expected), lines[1]
    assert caught.value.run.resources == []


def test_at_least_10_distinct_malformed_azure_configs():
    assert len({case[0] for case in MALFORMED}) == len(MALFORMED) >= 10


def test_the_prod_replica_floor_applies_to_the_prod_stack_only():
    run = run_program(config_with(PROD, app={"replicas": 2}), "preprod")
    assert run.resources, "two replicas are legal outside prod"
