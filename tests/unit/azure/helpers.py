"""Shared by the Azure mocks tests: type tokens, stack files and config variants."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from plan.engine import PROJECT_DIR, ProgramRun, RecordedResource, run_program, stack_file_config

PROD = PROJECT_DIR / "Pulumi.prod.yaml"
STAGING = PROJECT_DIR / "Pulumi.staging.yaml"

SERVER = "azure-native:dbforpostgresql:Server"
CONFIGURATION = "azure-native:dbforpostgresql:Configuration"
DATABASE = "azure-native:dbforpostgresql:Database"
SUBNET = "azure-native:network:Subnet"
VNET = "azure-native:network:VirtualNetwork"
PRIVATE_ZONE = "azure-native:privatedns:PrivateZone"
DNS_LINK = "azure-native:privatedns:VirtualNetworkLink"
RECORD_SET = "azure-native:privatedns:PrivateRecordSet"
RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
ENVIRONMENT = "azure-native:app:ManagedEnvironment"
ENVIRONMENT_STORAGE = "azure-native:app:ManagedEnvironmentsStorage"
CONTAINER_APP = "azure-native:app:ContainerApp"
WORKSPACE = "azure-native:operationalinsights:Workspace"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
FILE_SHARE = "azure-native:storage:FileShare"
GATEWAY = "azure-native:network:ApplicationGateway"
WAF_POLICY = "azure-native:network:WebApplicationFirewallPolicy"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
ACTION_GROUP = "azure-native:monitor:ActionGroup"
METRIC_ALERT = "azure-native:monitor:MetricAlert"


def config_with(stack_file: Path, **changes: dict[str, Any]) -> dict[str, str]:
    """The stack file's engine config with some `hastack:<key>` objects changed.

    `config_with(PROD, loadBalancer={"sku": "Standard_v2"})` merges into the shipped
    object (nested objects too); a value of None removes the key.
    """
    raw = stack_file_config(stack_file)
    for key, change in changes.items():
        current = json.loads(raw.get(f"hastack:{key}", "{}"))
        raw[f"hastack:{key}"] = json.dumps(_merge(current, change))
    return raw


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in change.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def run_variant(stack_file: Path, stack: str, **changes: dict[str, Any]) -> ProgramRun:
    return run_program(config_with(stack_file, **changes), stack)


def primary_server(run: ProgramRun) -> RecordedResource:
    return next(r for r in run.of_type(SERVER) if r.inputs.get("createMode") != "Replica")


def replica_servers(run: ProgramRun) -> list[RecordedResource]:
    return [r for r in run.of_type(SERVER) if r.inputs.get("createMode") == "Replica"]


def subnet_named(run: ProgramRun, purpose: str) -> RecordedResource:
    """The subnet whose logical name ends in `-<purpose>-subnet` (apps, database, gateway)."""
    return next(r for r in run.of_type(SUBNET) if r.name.endswith(f"-{purpose}-subnet"))


def resource_id(resource: RecordedResource) -> str:
    """The id the fakes give a resource (see plan.fakes.ProviderFakes.new_resource)."""
    return f"{resource.name}-id"
NSG = "azure-native:network:NetworkSecurityGroup"
KEY_VAULT = "azure-native:keyvault:Vault"
KEY_VAULT_SECRET = "azure-native:keyvault:Secret"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
TLS_KEY = "tls:index/privateKey:PrivateKey"
TLS_CERT = "tls:index/selfSignedCert:SelfSignedCert"

# A Flexible Server to restore from; the fakes answer getServer for it (plan/fakes.py).
RESTORE_SOURCE = (
    "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/hastack-prod-rg"
    "/providers/Microsoft.DBforPostgreSQL/flexibleServers/hastack-prod-primary-1a2b3c"
)


def hours_ago(hours: float) -> str:
    """A restore target relative to the real clock (the fakes' backups are too)."""
    return f"{datetime.now(timezone.utc) - timedelta(hours=hours):%Y-%m-%dT%H:%M:%SZ}"


def restore(**fields) -> dict:
    """A `database` change restoring RESTORE_SOURCE as of a day ago, with `fields` changed."""
    return {"restore": {"target": hours_ago(24), "sourceServerId": RESTORE_SOURCE, **fields}}
