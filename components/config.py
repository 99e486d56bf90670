"""Stack configuration: the single source of truth for every `hastack:*` key.

Pulumi hands a program its stack config as strings (objects arrive JSON-encoded).
`load_stack_config` turns that raw map into a validated `StackConfig`, or raises
`ConfigError` carrying one line per problem:

    hastack:app.replicas: must be >= 1 (got 0)

Nothing here imports pulumi resources, so validation always runs before a single
resource is registered.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

NAMESPACE = "hastack"

# Official images, pinned by version. The database image follows `database.version`.
POSTGRES_IMAGES = {
    "15": "postgres:15.15-bookworm",
    "16": "postgres:16.11-bookworm",
    "17": "postgres:17.7-bookworm",
    "18": "postgres:18.1-bookworm",
}
HAPROXY_IMAGE = "haproxy:3.0.12-bookworm"
# The DCS of `database.failover: patroni` on Docker (the etcd v3 API Patroni 3 speaks).
ETCD_IMAGE = "quay.io/coreos/etcd:v3.5.17"
# Monitoring on the self-hosted platforms: the same minor releases Debian bookworm ships
# and CI runs (promtool, amtool, postgres_exporter, node_exporter), so the rules are tested
# against the metric names the containers export (docs/monitoring.md).
PROMETHEUS_IMAGE = "prom/prometheus:v2.42.0"
ALERTMANAGER_IMAGE = "prom/alertmanager:v0.25.0"
POSTGRES_EXPORTER_IMAGE = "quay.io/prometheuscommunity/postgres-exporter:v0.11.1"
NODE_EXPORTER_IMAGE = "prom/node-exporter:v1.5.0"
BLACKBOX_EXPORTER_IMAGE = "prom/blackbox-exporter:v0.23.0"

# Swarm: the fewest nodes that survive the loss of one (etcd's quorum is 2 of 3).
SWARM_MIN_NODES = 3

# Azure Database for PostgreSQL Flexible Server majors we allow for managed mode.
MANAGED_POSTGRES_VERSIONS = ("15", "16", "17")

# Azure prod spreads app replicas over the region's three availability zones.
AZURE_PROD_MIN_REPLICAS = 3
# Flexible Server refuses these as the admin login (database.user on Azure).
AZURE_RESERVED_ADMIN_LOGINS = frozenset(
    {"admin", "administrator", "azure_pg_admin", "azure_superuser", "guest", "public", "root"}
)
# The Flexible Server admin login on Azure. Only the role-setup init container uses it;
# the app connects as `database.user`, a role of its own (docs/azure.md).
AZURE_ADMIN_LOGIN = "hastack_admin"

# Env names the platform sets itself; a user value would silently lose.
RESERVED_ENV = frozenset({"NODE_ID", "DATABASE_URL", "DATABASE_READ_URL", "PORT", "STORAGE_PATH"})

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
PG_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
AZURE_REGION = re.compile(r"^[a-z]+[a-z0-9]*$")
# Resource group names: letters, digits, '-', '_', '.', '(' and ')', not ending in '.'.
AZURE_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
# Key Vault secret URL (public, China and US Government clouds), optionally pinned to a version.
KEY_VAULT_SECRET_URL = re.compile(
    r"^https://[a-z0-9-]{3,24}\.vault\.(azure\.net|azure\.cn|usgovcloudapi\.net)/secrets/[A-Za-z0-9-]+(/[a-f0-9]{32})?/?$"
)
KEY_VAULT_SECRET_VERSION = re.compile(r"/secrets/[A-Za-z0-9-]+/[a-f0-9]{32}/?$")

# Flexible Server compute: each tier runs one VM family (Standard_B2s, Standard_D4ds_v5, Standard_E4ds_v5).
MANAGED_SKU_FAMILIES = {"Burstable": "Standard_B", "GeneralPurpose": "Standard_D", "MemoryOptimized": "Standard_E"}
# Flexible Server premium SSD sizes; any other size is rejected by the service.
MANAGED_STORAGE_SIZES_GB = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
# `name:tag` or `name@sha256:...`; the tag part is checked separately for "latest".
IMAGE_REF = re.compile(r"^[a-z0-9.\-_/:]+(:[A-Za-z0-9_.\-]+|@sha256:[a-f0-9]{64})$")


class ConfigError(Exception):
    """Stack config is invalid. `str()` gives one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _Model(BaseModel):
    """camelCase keys as in the stack files, unknown keys rejected, frozen once loaded."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


Port = Annotated[int, Field(ge=1, le=65535)]


def _check_pinned_image(value: str | None) -> str | None:
    if value is None:
        return value
    if not IMAGE_REF.match(value):
        raise ValueError("image must be 'repository:tag' or 'repository@sha256:<digest>' (an untagged image is not pinned)")
    if value.endswith(":latest"):
        raise ValueError("image tag 'latest' is not pinned; use a version tag or a digest")
    return value


def _check_private_subnet(value: str) -> str:
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        raise ValueError("subnet must be an IPv4 CIDR such as 172.28.0.0/16") from None
    if not network.is_private or network.prefixlen > 28:
        raise ValueError("subnet must be a private range no smaller than /28")
    return value


def _check_path(value: str, what: str) -> str:
    if not value.startswith("/") or " " in value:
        raise ValueError(f"{what} must be an absolute URL path starting with '/' and without spaces")
    return value


# ---------------------------------------------------------------- app


class AppConfig(_Model):
    """The web app: N identical replicas of one image."""

    # A pinned image reference (`repo:tag` or `repo@sha256:...`). Unset: build `build`.
    image: str | None = None
    # Build context, relative to the project directory. Used when `image` is unset.
    build: str = "./app"
    replicas: int = Field(2, ge=1, le=30)
    # Azure only: autoscale ceiling. Defaults to 2 x replicas.
    max_replicas: int | None = Field(None, ge=1, le=300)
    port: Port = 8000
    # Readiness: DB + storage reachable. The LB and readiness probes use it.
    health_path: str = "/readyz"
    # Docker: read readiness (shared storage + any DB node). Set, the LB sends reads
    # (GET, HEAD, OPTIONS) to replicas passing it and writes to those passing healthPath,
    # so reads keep being served while no primary exists. Unset: one check for all.
    read_health_path: str | None = None
    # Liveness: the process is up. Never depends on the DB.
    liveness_path: str = "/livez"
    # Docker healthcheck command (exec form). Unset: a python one-liner on healthPath,
    # which only the reference image (built from `build`) is known to run, so it is
    # required when `image` is set (StackConfig checks).
    healthcheck_command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    # Names of secrets generated once (pulumi-random) and shared by every replica.
    generated_secrets: list[str] = Field(default_factory=list)
    # Azure only: container size.
    cpu: float = Field(0.5, gt=0, le=4)
    memory_gi: float = Field(1.0, gt=0, le=8)

    @field_validator("health_path", "liveness_path", "read_health_path")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return value if value is None else _check_path(value, "path")

    @field_validator("image")
    @classmethod
    def _pinned_image(cls, value: str | None) -> str | None:
        return _check_pinned_image(value)

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME.match(name):
                raise ValueError(f"env name {name!r} must match [A-Z_][A-Z0-9_]*")
            if name in RESERVED_ENV:
                raise ValueError(f"env name {name!r} is set by hastack; reserved: {', '.join(sorted(RESERVED_ENV))}")
        return value

    @field_validator("generated_secrets")
    @classmethod
    def _secret_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not ENV_NAME.match(name):
                raise ValueError(f"secret name {name!r} must match [A-Z_][A-Z0-9_]*")
            if name in RESERVED_ENV:
                raise ValueError(f"secret name {name!r} is set by hastack; reserved: {', '.join(sorted(RESERVED_ENV))}")
        if len(set(value)) != len(value):
            raise ValueError("secret names must be unique")
        return value

    @field_validator("healthcheck_command")
    @classmethod
    def _non_empty_command(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or not all(value)):
            raise ValueError("healthcheck command must be a non-empty list of non-empty strings")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> AppConfig:
        clash = set(self.env) & set(self.generated_secrets)
        if clash:
            raise ValueError(f"{', '.join(sorted(clash))} is both in env and generatedSecrets; keep it in one place")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) must be >= replicas ({self.replicas})")
        return self

    @property
    def autoscale_max(self) -> int:
        return self.max_replicas or 2 * self.replicas


# ---------------------------------------------------------------- database


class ManagedDatabaseConfig(_Model):
    """Azure Database for PostgreSQL Flexible Server (database.mode: managed)."""

    tier: Literal["Burstable", "GeneralPurpose", "MemoryOptimized"] = "GeneralPurpose"
    sku_name: str = "Standard_D2ds_v5"
    storage_size_gb: int = Field(128, ge=32, le=32768)
    high_availability: Literal["ZoneRedundant", "SameZone", "Disabled"] = "ZoneRedundant"
    zone: Literal["1", "2", "3"] = "1"
    standby_zone: Literal["1", "2", "3"] = "2"
    backup_retention_days: int = Field(7, ge=7, le=35)
    # Can only be chosen when the server is created; changing it later means a new server.
    geo_redundant_backup: bool = False

    @model_validator(mode="after")
    def _ha_rules(self) -> ManagedDatabaseConfig:
        if self.tier == "Burstable" and self.high_availability != "Disabled":
            raise ValueError(
                "tier Burstable cannot run high availability; use GeneralPurpose or MemoryOptimized, "
                "or set highAvailability: Disabled"
            )
        if self.high_availability == "ZoneRedundant" and self.zone == self.standby_zone:
            raise ValueError(f"standbyZone must differ from zone ({self.zone}) for ZoneRedundant HA")
        family = MANAGED_SKU_FAMILIES[self.tier]
        if not re.match(rf"^{family}\d+", self.sku_name):
            raise ValueError(f"skuName {self.sku_name!r} is not a {self.tier} size; {self.tier} sizes start with {family} (e.g. {family}4ds_v5)")
        return self

    @field_validator("storage_size_gb")
    @classmethod
    def _offered_size(cls, value: int) -> int:
        if value not in MANAGED_STORAGE_SIZES_GB:
            raise ValueError(f"storageSizeGb must be one of {', '.join(map(str, MANAGED_STORAGE_SIZES_GB))}")
        return value


# A restore target: "latest" (the end of the archive) or a time with an explicit UTC
# offset, which pgBackRest (`--type=time`) and Flexible Server (`pointInTimeUTC`) both take.
RESTORE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


# A Flexible Server's full resource id, the only form `sourceServerResourceId` takes.
AZURE_FLEXIBLE_SERVER_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}/resourceGroups/[-\w.()]{1,90}"
    r"/providers/Microsoft\.DBforPostgreSQL/flexibleServers/[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
    re.IGNORECASE,
)
# Flexible Server keeps backups for at most 35 days: nothing older can be restored.
AZURE_MAX_BACKUP_RETENTION_DAYS = 35


def parse_restore_time(value: str) -> datetime:
    """A RESTORE_TIME string as an aware datetime."""
    text = value.replace(" ", "T").replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text)


class RestoreConfig(_Model):
    """database.restore: build the new cluster's primary from a backup instead of an empty one.

    Self-hosted: from the pgBackRest repository (`backups`). Azure: a point-in-time or geo
    restore of `sourceServerId`.
    """

    target: str = "latest"
    # Azure only: the Flexible Server to restore from (its full resource id).
    source_server_id: str | None = None
    # Azure only: PointInTimeRestore (same region) or GeoRestore (the paired region, after a region loss).
    mode: Literal["PointInTimeRestore", "GeoRestore"] = "PointInTimeRestore"

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        if value != "latest" and not RESTORE_TIME.match(value):
            raise ValueError("target must be 'latest' or a time with an explicit offset, e.g. 2026-12-01T10:00:00Z")
        return value


class DatabaseConfig(_Model):
    """PostgreSQL: one primary plus `replicas` streaming replicas."""

    mode: Literal["self-hosted", "managed"] = "self-hosted"
    version: Literal["15", "16", "17", "18"] = "16"
    replicas: int = Field(1, ge=0, le=5)
    failover: Literal["manual", "patroni"] = "manual"
    # Patroni only: a commit is acknowledged once a standby has it too, and only that
    # standby may be promoted automatically, so a failover loses no acknowledged commit.
    synchronous_mode: bool = True
    name: str = "app"
    user: str = "app"
    # Self-hosted: the most WAL a lagging replica's slot may pin, so a dead replica
    # cannot fill the primary's disk.
    max_slot_wal_keep_size_mb: int = Field(4096, ge=64, le=1_048_576)
    managed: ManagedDatabaseConfig = Field(default_factory=ManagedDatabaseConfig)
    # Unset: a new, empty cluster. Set: the primary is bootstrapped from a backup.
    restore: RestoreConfig | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # YAML turns `version: 16` into a number; the major is a label, not a quantity.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("name", "user")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not PG_IDENTIFIER.match(value):
            raise ValueError("must be a lowercase PostgreSQL identifier: [a-z_][a-z0-9_]{0,62}")
        if value in {"postgres", "replicator"}:
            raise ValueError(f"{value!r} is reserved for hastack's own roles")
        return value

    @model_validator(mode="after")
    def _failover_needs_replica(self) -> DatabaseConfig:
        if self.failover == "patroni" and self.replicas < 1:
            raise ValueError("failover 'patroni' needs replicas >= 1 (nothing to fail over to)")
        if "synchronous_mode" in self.model_fields_set and self.failover != "patroni":
            raise ValueError("synchronousMode applies to failover 'patroni' only; manual failover replicates asynchronously")
        if self.mode == "managed" and self.failover != "manual":
            raise ValueError("failover applies to mode 'self-hosted' only; managed HA fails over by itself")
        if self.mode == "managed" and self.version not in MANAGED_POSTGRES_VERSIONS:
            raise ValueError(f"version {self.version} is not offered managed; allowed: {', '.join(MANAGED_POSTGRES_VERSIONS)}")
        return self

    @property
    def image(self) -> str:
        return POSTGRES_IMAGES[self.version]


# ---------------------------------------------------------------- load balancer


class HealthCheckConfig(_Model):
    """Active health check the LB runs against every replica."""

    # Defaults to app.healthPath.
    path: str | None = None
    interval_ms: int = Field(500, ge=100, le=60_000)
    timeout_ms: int = Field(1000, ge=100, le=60_000)
    fall: int = Field(2, ge=1, le=10)
    rise: int = Field(2, ge=1, le=10)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return value if value is None else _check_path(value, "path")


# PEM block headers: a certificate (optionally followed by its chain) and a private key
# (PKCS#8 "PRIVATE KEY", or "EC PRIVATE KEY" / "RSA PRIVATE KEY").
# A shape check that catches a swapped or truncated value; HAProxy parses the PEM itself.
PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\s.+?-----END CERTIFICATE-----", re.DOTALL)
PEM_PRIVATE_KEY = re.compile(r"-----BEGIN ((EC|RSA) )?PRIVATE KEY-----\s.+?-----END ((EC|RSA) )?PRIVATE KEY-----", re.DOTALL)
# Config values that are secrets: never echoed in an error, and refused unless Pulumi
# holds them encrypted (`pulumi config set --secret --path ...`).
SECRET_CONFIG_PATHS = (
    "loadBalancer.tls.certificate",
    "loadBalancer.tls.key",
    # Alert receivers' credentials: a webhook or Slack URL carries its token, SMTP its password.
    "monitoring.receivers.webhook.url",
    "monitoring.receivers.email.authPassword",
    "monitoring.receivers.slack.apiUrl",
)


class LoadBalancerTlsConfig(_Model):
    """Docker and Swarm: HAProxy terminates HTTPS; plain HTTP on `loadBalancer.port` redirects to it."""

    enabled: bool = True
    # Published HTTPS port on the host (Swarm: on every node).
    port: Port = 8443
    # PEM certificate (leaf first, then any chain) and its private key, both Pulumi
    # secrets. Unset: a certificate from the stack's own CA (output caCertificate).
    certificate: SecretStr | None = None
    key: SecretStr | None = None
    # Strict-Transport-Security max-age on every HTTPS response.
    hsts_max_age_seconds: int = Field(31_536_000, ge=60, le=63_072_000)

    @model_validator(mode="after")
    def _certificate_pair(self) -> LoadBalancerTlsConfig:
        # Raised at this level, so the message never carries the PEM itself.
        if (self.certificate is None) != (self.key is None):
            raise ValueError("certificate and key go together: set both, or neither for a stack-CA certificate")
        if self.certificate is not None and not PEM_CERTIFICATE.search(self.certificate.get_secret_value()):
            raise ValueError("certificate must be PEM text starting with -----BEGIN CERTIFICATE-----")
        if self.key is not None and not PEM_PRIVATE_KEY.search(self.key.get_secret_value()):
            raise ValueError("key must be an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----, EC or RSA)")
        return self


# RFC 9110 section 9.2.2: the methods whose repetition has the same effect as one request.
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE")
HTTP_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")


class RetryConfig(_Model):
    """Which requests the LB may send to a second replica after the first failed mid-request.

    A request that never reached a replica (connection refused or failed) is retried on
    another whatever its method; one that did is retried only when repeating it is safe.
    """

    # Retried after reaching a replica. POST and PATCH never are (use the key header).
    idempotent_methods: list[str] = Field(default_factory=lambda: ["GET", "HEAD", "OPTIONS"])
    # A request carrying this header (non-empty) is retried whatever its method: the app
    # promises to perform it once per key value.
    idempotency_key_header: str = "Idempotency-Key"

    @field_validator("idempotent_methods")
    @classmethod
    def _idempotent(cls, value: list[str]) -> list[str]:
        for method in value:
            if method not in IDEMPOTENT_METHODS:
                raise ValueError(f"{method!r} is not an idempotent method (RFC 9110 9.2.2); allowed: "
                                 f"{', '.join(IDEMPOTENT_METHODS)}; make other requests safe to retry with the "
                                 "idempotency key header instead")
        if len(set(value)) != len(value):
            raise ValueError("idempotentMethods must not repeat a method")
        return value

    @field_validator("idempotency_key_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not HTTP_HEADER_NAME.match(value):
            raise ValueError("idempotencyKeyHeader must be an HTTP header name: letters, digits and '-', up to 64")
        return value


class LoadBalancerConfig(_Model):
    """HAProxy on Docker, Application Gateway v2 on Azure."""

    port: Port = 8080
    # Docker: HAProxy stats + Prometheus endpoint, published on the host.
    stats_port: Port = 8404
    health_check: HealthCheckConfig = Field(default_factory=HealthCheckConfig)
    # Docker: HAProxy's retry rules.
    retry: RetryConfig = Field(default_factory=RetryConfig)
    # Docker and Swarm: keep connections to the replicas open and reuse them (only for
    # reads when app.readHealthPath splits them off). false opens one per request, for an
    # app that closes idle keep-alive connections sooner than HAProxy's idle pool lets
    # them go (docs/render.md#connection-reuse).
    server_keep_alive: bool = True
    # Azure only.
    sku: Literal["Standard_v2", "WAF_v2"] = "WAF_v2"
    min_capacity: int = Field(2, ge=2, le=125)
    max_capacity: int = Field(10, ge=2, le=125)
    # Azure only: the version-less Key Vault secret id of the site's PFX certificate.
    # Required on the prod stack; unset elsewhere, hastack makes a vault and a self-signed one.
    certificate_secret_id: str | None = None
    # Docker and Swarm: HTTPS termination in HAProxy.
    tls: LoadBalancerTlsConfig = Field(default_factory=LoadBalancerTlsConfig)

    @model_validator(mode="after")
    def _ports_and_capacity(self) -> LoadBalancerConfig:
        if self.port == self.stats_port:
            raise ValueError(f"port and statsPort must differ (both {self.port})")
        if self.tls.enabled and self.tls.port in (self.port, self.stats_port):
            raise ValueError(f"tls.port must differ from port and statsPort (got {self.tls.port})")
        if self.max_capacity < self.min_capacity:
            raise ValueError(f"maxCapacity ({self.max_capacity}) must be >= minCapacity ({self.min_capacity})")
        if self.certificate_secret_id is not None and not KEY_VAULT_SECRET_URL.match(self.certificate_secret_id):
            raise ValueError("certificateSecretId must be a Key Vault secret URL: https://<vault>.vault.azure.net/secrets/<name>")
        if self.certificate_secret_id is not None and KEY_VAULT_SECRET_VERSION.search(self.certificate_secret_id):
            raise ValueError(
                "certificateSecretId must be version-less (https://<vault>.vault.azure.net/secrets/<name>), "
                "so the gateway picks up a renewed certificate on its 4-hour poll"
            )
        return self


# ---------------------------------------------------------------- storage


class NfsConfig(_Model):
    server: str
    path: str
    options: str = "nfsvers=4.1,rw,hard,timeo=600"

    @field_validator("path")
    @classmethod
    def _export_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("NFS export path must be absolute")
        return value

    @property
    def local_driver_options(self) -> dict[str, str]:
        """The `local` volume driver's NFS mount options (as `docker volume create --opt ...`)."""
        return {"type": "nfs", "o": f"addr={self.server},{self.options}", "device": f":{self.path}"}


class VolumePluginConfig(_Model):
    """A Docker volume plugin that every Swarm node has installed (storage.driver: plugin)."""

    # The plugin's driver name as `docker volume create --driver` takes it.
    name: str
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _not_local(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9._/:-]*$", value) or value == "local":
            raise ValueError("name must be a volume plugin's driver name (e.g. 'rexray/efs'), not 'local'")
        return value


class StorageConfig(_Model):
    """One share mounted read-write at the same path in every replica."""

    mount_path: str = "/app/uploads"
    # Docker: a local named volume, or an NFS-backed one for multi-host engines.
    # Swarm: nfs, or a volume plugin that shares the data between nodes.
    driver: Literal["local", "nfs", "plugin"] = "local"
    nfs: NfsConfig | None = None
    plugin: VolumePluginConfig | None = None
    # Azure Files: Premium shares start at 100 GiB.
    quota_gb: int = Field(100, ge=100, le=102_400)
    protocol: Literal["SMB", "NFS"] = "SMB"
    # Azure Files: ZRS keeps the share through a zone outage; LRS for regions without Premium ZRS.
    redundancy: Literal["ZRS", "LRS"] = "ZRS"

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or value == "/" or ".." in value.split("/"):
            raise ValueError("mountPath must be an absolute directory path other than '/', without '..'")
        return value

    @model_validator(mode="after")
    def _nfs_settings(self) -> StorageConfig:
        _check_nfs_settings(self.driver, self.nfs)
        _check_plugin_settings(self.driver, self.plugin)
        return self


# ---------------------------------------------------------------- backups (self-hosted: pgBackRest)

# The oldest pgBackRest release that supports each PostgreSQL major (the floor,
# at or after the release notes' first support: 2.46 for 16, 2.53.1 for 17, 2.55.0 for 18;
# https://github.com/pgbackrest/pgbackrest/tree/main/doc/xml/release). Debian bookworm's
# 2.45 (the tests' binary) stops at 15.
PGBACKREST_MIN_VERSION = {"15": (2, 45), "16": (2, 48), "17": (2, 54), "18": (2, 57)}
# What the database images install from the PGDG apt source the official image configures.
PGBACKREST_DEFAULT_VERSION = "2.57.0"
PGBACKREST_VERSION = re.compile(r"^(\d+)\.(\d+)(\.\d+)?$")
# Five cron fields (minute hour day-of-month month day-of-week), each of digits, '*', ',', '-', '/'.
CRON_FIELD = re.compile(r"^[0-9*,/-]+$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
ENDPOINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*(:\d{1,5})?$")


def _check_endpoint(value: str) -> str:
    if not ENDPOINT.match(value):
        raise ValueError("endpoint must be a host name with an optional port, without a scheme (TLS is always used)")
    return value


# An object store's host[:port]: pgBackRest always speaks TLS to it, so no scheme.
Endpoint = Annotated[str, AfterValidator(_check_endpoint)]


def _check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(CRON_FIELD.match(f) for f in fields):
        raise ValueError("must be a five-field cron expression (minute hour day month weekday), e.g. '0 1 * * 0'")
    return value


class BackupVolumeConfig(_Model):
    """repository.type volume: a dedicated Docker volume, local or on another machine over NFS
    (or, on Swarm, a volume plugin every node has installed)."""

    driver: Literal["local", "nfs", "plugin"] = "local"
    nfs: NfsConfig | None = None
    plugin: VolumePluginConfig | None = None

    @model_validator(mode="after")
    def _nfs_settings(self) -> BackupVolumeConfig:
        _check_nfs_settings(self.driver, self.nfs)
        _check_plugin_settings(self.driver, self.plugin)
        return self


class S3RepositoryConfig(_Model):
    """repository.type s3: S3 or an S3-compatible store (MinIO), always over TLS."""

    endpoint: Endpoint
    bucket: str
    region: str = "us-east-1"
    # MinIO and most self-hosted stores want path-style URLs.
    uri_style: Literal["host", "path"] = "host"
    # Credentials; set them with `pulumi config set --secret --path hastack:backups.repository.s3.keySecret ...`.
    key: SecretStr
    key_secret: SecretStr

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not BUCKET_NAME.match(value):
            raise ValueError("bucket must be 3-63 lowercase letters, digits, '.' or '-'")
        return value


class AzureRepositoryConfig(_Model):
    """repository.type azure: a Blob container, always over TLS."""

    account: str
    container: str
    # Shared key; set it with `pulumi config set --secret --path hastack:backups.repository.azure.key ...`.
    key: SecretStr
    endpoint: Endpoint = "blob.core.windows.net"
    uri_style: Literal["host", "path"] = "host"

    @field_validator("account", "container")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9-]{1,62}$", value):
            raise ValueError("must be 3-63 lowercase letters, digits or '-'")
        return value


class BackupRepositoryConfig(_Model):
    """Where pgBackRest keeps backups and archived WAL (always encrypted, aes-256-cbc)."""

    type: Literal["volume", "s3", "azure"] = "volume"
    volume: BackupVolumeConfig = Field(default_factory=BackupVolumeConfig)
    s3: S3RepositoryConfig | None = None
    azure: AzureRepositoryConfig | None = None
    # The repository's path inside the volume, bucket or container.
    path: str = "/pgbackrest"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not re.match(r"^(/[A-Za-z0-9._-]+)+$", value):
            raise ValueError("path must be absolute, of letters, digits, '.', '_' and '-', without a trailing '/'")
        return value

    @model_validator(mode="after")
    def _one_store(self) -> BackupRepositoryConfig:
        if self.type == "s3" and self.s3 is None:
            raise ValueError("type 's3' needs s3: {endpoint, bucket, key, keySecret}")
        if self.type == "azure" and self.azure is None:
            raise ValueError("type 'azure' needs azure: {account, container, key}")
        for other in ("s3", "azure"):
            if self.type != other and getattr(self, other) is not None:
                raise ValueError(f"{other} settings are only used with type '{other}' (type is '{self.type}')")
        if self.type != "volume" and "volume" in self.model_fields_set:
            raise ValueError(f"volume settings are only used with type 'volume' (type is '{self.type}')")
        return self


class BackupScheduleConfig(_Model):
    """When backups run (cron, in the container's time zone, UTC)."""

    full: str = "0 1 * * 0"
    diff: str = "0 1 * * 1-6"

    @field_validator("full", "diff")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)


class BackupRetentionConfig(_Model):
    """How many backups `pgbackrest expire` keeps (after every backup); WAL older than the oldest full goes too."""

    full: int = Field(4, ge=1, le=99)
    diff: int = Field(7, ge=1, le=99)


class BackupsConfig(_Model):
    """Self-hosted PostgreSQL backups with pgBackRest: WAL archiving plus scheduled full/diff backups."""

    enabled: bool = True
    # archive_timeout: a quiet database still switches (and archives) a WAL segment this often,
    # which bounds what a whole-cluster loss costs.
    archive_timeout_s: int = Field(60, ge=10, le=3600)
    repository: BackupRepositoryConfig = Field(default_factory=BackupRepositoryConfig)
    schedule: BackupScheduleConfig = Field(default_factory=BackupScheduleConfig)
    retention: BackupRetentionConfig = Field(default_factory=BackupRetentionConfig)
    # The pgBackRest release the database images install; it must support database.version.
    pgbackrest_version: str = PGBACKREST_DEFAULT_VERSION

    @field_validator("pgbackrest_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not PGBACKREST_VERSION.match(value):
            raise ValueError("pgbackrestVersion must be a release number such as 2.57.0")
        return value

    def supports(self, postgres_major: str) -> bool:
        major, minor = (int(part) for part in PGBACKREST_VERSION.match(self.pgbackrest_version).groups()[:2])
        return (major, minor) >= PGBACKREST_MIN_VERSION[postgres_major]


def _check_nfs_settings(driver: str, nfs: NfsConfig | None) -> None:
    if driver == "nfs" and nfs is None:
        raise ValueError("driver 'nfs' needs nfs: {server, path}")
    if driver != "nfs" and nfs is not None:
        raise ValueError("nfs settings are only used with driver 'nfs'")


def _check_plugin_settings(driver: str, plugin: VolumePluginConfig | None) -> None:
    if driver == "plugin" and plugin is None:
        raise ValueError("driver 'plugin' needs plugin: {name, options}")
    if driver != "plugin" and plugin is not None:
        raise ValueError("plugin settings are only used with driver 'plugin'")


# ---------------------------------------------------------------- platforms


class DockerConfig(_Model):
    """The Docker engine to deploy to."""

    # Unset: the local engine. Otherwise unix://, ssh://user@host or tcp://host:port.
    host: str | None = None
    # The private network's subnet; the DB's pg_hba admits replication from it only.
    subnet: str = "172.28.0.0/16"

    @field_validator("host")
    @classmethod
    def _engine_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(unix|ssh|tcp|npipe)://\S+$", value):
            raise ValueError("host must be unix://..., ssh://user@host or tcp://host:port")
        return value

    @field_validator("subnet")
    @classmethod
    def _private_subnet(cls, value: str) -> str:
        return _check_private_subnet(value)


class SwarmConfig(_Model):
    """The Docker Swarm to deploy to (platform: swarm) and where its stateful members run."""

    # A manager's engine: ssh://user@host or tcp://host:port.
    host: str | None = None
    # Hostnames of the nodes the stack runs on (`docker node ls`); one HAProxy per node.
    nodes: list[str] = Field(default_factory=list)
    # The nodes that each run one etcd member. Unset: the first three of `nodes`.
    etcd_nodes: list[str] | None = None
    # The nodes that each run one Patroni member. Unset: the first 1 + database.replicas of `nodes`.
    database_nodes: list[str] | None = None
    # Swarm's placement.max_replicas_per_node for the app service.
    max_replicas_per_node: int = Field(1, ge=1, le=30)
    # The hastack Patroni image (components/docker/images/postgres, target patroni), pushed where every node can pull it.
    patroni_image: str | None = None
    # Overlay subnets: the app + LB network, and the encrypted database + etcd network.
    app_subnet: str = "10.231.0.0/24"
    data_subnet: str = "10.232.0.0/24"

    @field_validator("host")
    @classmethod
    def _manager_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(ssh|tcp)://\S+$", value):
            raise ValueError("host must be a manager's ssh://user@host or tcp://host:port")
        return value

    @field_validator("nodes", "etcd_nodes", "database_nodes")
    @classmethod
    def _hostnames(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$", name):
                raise ValueError(f"{name!r} is not a node hostname")
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"node names must be distinct, so no two members share a node (got {value})")
        return value

    @field_validator("patroni_image")
    @classmethod
    def _pinned_patroni_image(cls, value: str | None) -> str | None:
        return _check_pinned_image(value)

    @field_validator("app_subnet", "data_subnet")
    @classmethod
    def _overlay_subnet(cls, value: str) -> str:
        return _check_private_subnet(value)

    @model_validator(mode="after")
    def _members_on_listed_nodes(self) -> SwarmConfig:
        for key, chosen in (("etcdNodes", self.etcd_nodes), ("databaseNodes", self.database_nodes)):
            strangers = sorted(set(chosen or ()) - set(self.nodes))
            if strangers:
                raise ValueError(f"{key} {strangers} are not in nodes {self.nodes}")
        if self.etcd_nodes is not None and len(self.etcd_nodes) != 3:
            raise ValueError(f"etcdNodes must name exactly 3 distinct nodes, one etcd member each (got {len(self.etcd_nodes)})")
        return self

    def etcd_member_nodes(self) -> list[str]:
        return self.etcd_nodes or self.nodes[:3]

    def database_member_nodes(self, members: int) -> list[str]:
        return self.database_nodes or self.nodes[:members]


class AzureConfig(_Model):
    """Where and how to deploy on Azure."""

    location: str = "westeurope"
    # Deploy into this existing resource group instead of creating one.
    resource_group_name: str | None = None
    vnet_cidr: str = "10.20.0.0/16"
    # Where metric alerts are emailed.
    alert_email: str | None = None

    @field_validator("resource_group_name")
    @classmethod
    def _resource_group(cls, value: str | None) -> str | None:
        if value is not None and not AZURE_RESOURCE_GROUP.match(value):
            raise ValueError("resourceGroupName must be 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'")
        return value

    @field_validator("location")
    @classmethod
    def _region(cls, value: str) -> str:
        if not AZURE_REGION.match(value):
            raise ValueError("location must be an Azure region name such as 'westeurope' (lowercase, no spaces)")
        return value

    @field_validator("vnet_cidr")
    @classmethod
    def _vnet(cls, value: str) -> str:
        try:
            network = ipaddress.ip_network(value)
        except ValueError:
            raise ValueError("vnetCidr must be an IPv4 CIDR such as 10.20.0.0/16") from None
        if not network.is_private or network.prefixlen > 20:
            raise ValueError("vnetCidr must be a private range of /20 or larger (it holds three subnets)")
        return value

    @field_validator("alert_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError("alertEmail must be an email address")
        return value


# ---------------------------------------------------------------- monitoring

Severity = Literal["critical", "warning"]
HTTP_URL = re.compile(r"^https?://[^\s/]+\S*$")
HOST_PORT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*:\d{1,5}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Receiver(_Model):
    # Which alert severities reach this receiver.
    severities: list[Severity] = Field(default_factory=lambda: ["critical", "warning"])

    @field_validator("severities")
    @classmethod
    def _some_severity(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError("severities must be a non-empty list of distinct values: critical, warning")
        return value


class WebhookReceiverConfig(_Receiver):
    """Alertmanager's webhook (JSON POST); on Azure an action-group webhook receiver."""

    # May carry a token: must be a Pulumi secret (`pulumi config set --secret --path`).
    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not HTTP_URL.match(value):
            raise ValueError("url must be an http:// or https:// URL")
        return value


class EmailReceiverConfig(_Receiver):
    """Alertmanager's email notifier; on Azure an action-group email receiver."""

    to: str
    # Docker/Swarm only (Azure sends from its own address): sender, SMTP relay and login.
    sender: str | None = None
    smarthost: str | None = None
    auth_username: str | None = None
    # Must be a Pulumi secret.
    auth_password: str | None = None
    require_tls: bool = True

    @field_validator("to", "sender")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.match(value):
            raise ValueError("must be an email address")
        return value

    @field_validator("smarthost")
    @classmethod
    def _smarthost(cls, value: str | None) -> str | None:
        if value is not None and not HOST_PORT.match(value):
            raise ValueError("smarthost must be host:port, e.g. smtp.example.com:587")
        return value

    @model_validator(mode="after")
    def _login_pair(self) -> EmailReceiverConfig:
        if (self.auth_username is None) != (self.auth_password is None):
            raise ValueError("authUsername and authPassword go together")
        return self


class SlackReceiverConfig(_Receiver):
    """Alertmanager's Slack notifier (an incoming-webhook URL). Docker/Swarm only."""

    # The incoming-webhook URL is the credential: must be a Pulumi secret.
    api_url: str
    channel: str | None = None

    @field_validator("api_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://") or not HTTP_URL.match(value):
            raise ValueError("apiUrl must be an https:// Slack incoming-webhook URL")
        return value


class ReceiversConfig(_Model):
    """Where alerts go. Unset: nowhere but Alertmanager's own UI and API (Azure: azure.alertEmail)."""

    webhook: WebhookReceiverConfig | None = None
    email: EmailReceiverConfig | None = None
    slack: SlackReceiverConfig | None = None


class MonitoringConfig(_Model):
    """Prometheus, Alertmanager and exporters on the self-hosted platforms; receivers on every platform."""

    enabled: bool = True
    scrape_interval_s: int = Field(15, ge=1, le=300)
    evaluation_interval_s: int = Field(15, ge=1, le=300)
    retention_days: int = Field(15, ge=1, le=3650)
    # Host ports, published on 127.0.0.1 of the engine host only.
    prometheus_port: Port = 9090
    alertmanager_port: Port = 9093
    # The newest backup may be this old before PostgresBackupTooOld fires: the backup
    # schedule's interval plus slack (default: daily differentials plus 2 h).
    backup_max_age_hours: int = Field(26, ge=1, le=24 * 60)
    # Where the rules' runbook_url annotations point; each alert appends `#<its anchor>`.
    runbook_base_url: str = "docs/runbooks.md"
    receivers: ReceiversConfig = Field(default_factory=ReceiversConfig)

    @model_validator(mode="after")
    def _ports(self) -> MonitoringConfig:
        if self.prometheus_port == self.alertmanager_port:
            raise ValueError(f"prometheusPort and alertmanagerPort must differ (both {self.prometheus_port})")
        return self


# ---------------------------------------------------------------- the stack


class StackConfig(_Model):
    """Everything one stack declares. Keys are `hastack:<key>` in Pulumi.<stack>.yaml."""

    platform: Literal["docker", "swarm", "azure"] = "docker"
    # Protect stateful resources (DB, volumes, storage) from `pulumi destroy`.
    # Unset: on for a stack named prod, off otherwise.
    protect: bool
    app: AppConfig = Field(default_factory=AppConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    load_balancer: LoadBalancerConfig = Field(default_factory=LoadBalancerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    backups: BackupsConfig = Field(default_factory=BackupsConfig)
    docker: DockerConfig = Field(default_factory=DockerConfig)
    swarm: SwarmConfig = Field(default_factory=SwarmConfig)
    azure: AzureConfig = Field(default_factory=AzureConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)

    @model_validator(mode="after")
    def _platform_rules(self) -> StackConfig:
        if self.platform == "docker" and self.database.mode != "self-hosted":
            raise ValueError("platform 'docker' runs database.mode 'self-hosted' only")
        if self.platform == "azure" and self.database.mode != "managed":
            raise ValueError("platform 'azure' runs database.mode 'managed' only")
        if self.platform == "azure" and self.app.image is None:
            raise ValueError("platform 'azure' needs app.image (a pushed, pinned image); builds are Docker-only")
        if self.platform in ("docker", "swarm") and self.app.image is not None and self.app.healthcheck_command is None:
            raise ValueError(
                f"app.healthcheckCommand is required with app.image ({self.app.image}): the default probe runs python, "
                f"which only the reference image is known to have; give one your image runs, e.g. "
                f'healthcheckCommand: ["curl", "-fsS", "http://127.0.0.1:{self.app.port}{self._probe_path}"]'
            )
        if self.platform != "swarm" and self.storage.driver == "plugin":
            raise ValueError("storage.driver 'plugin' applies to platform 'swarm' only; on docker use local or nfs")
        if self.platform != "swarm" and self.backups.repository.volume.driver == "plugin":
            raise ValueError("backups.repository.volume.driver 'plugin' applies to platform 'swarm' only; on docker use local or nfs")
        if self.platform == "azure" and self.monitoring.receivers.slack is not None:
            raise ValueError("monitoring.receivers.slack is not available on platform 'azure': an action group has no "
                             "Slack receiver; use monitoring.receivers.webhook with a URL that posts to Slack")
        return self

    @property
    def _probe_path(self) -> str:
        """What the container healthcheck probes: readiness on Docker; liveness on Swarm,
        where a failing healthcheck gets the task killed."""
        return self.app.liveness_path if self.platform == "swarm" else self.app.health_path

    @model_validator(mode="after")
    def _swarm_rules(self) -> StackConfig:
        """What a stack spread over several Swarm nodes needs to survive the loss of one."""
        if self.platform != "swarm":
            return self
        swarm = self.swarm
        if swarm.host is None:
            raise ValueError("platform 'swarm' needs swarm.host, a manager's ssh://user@host or tcp://host:port")
        if self.database.mode != "self-hosted" or self.database.failover != "patroni":
            raise ValueError("platform 'swarm' runs database.mode 'self-hosted' with failover 'patroni' only: a node loss must not wait for an operator")
        if self.app.image is None or swarm.patroni_image is None:
            raise ValueError("platform 'swarm' needs app.image and swarm.patroniImage (pushed, pinned images every node can pull); builds are Docker-only")
        if len(swarm.nodes) < SWARM_MIN_NODES:
            raise ValueError(f"swarm.nodes must name at least {SWARM_MIN_NODES} distinct nodes, for etcd's quorum and the Patroni members (got {len(swarm.nodes)})")
        members = 1 + self.database.replicas
        db_nodes = swarm.database_member_nodes(members)
        if len(db_nodes) != members:
            raise ValueError(
                f"1 + database.replicas = {members} Patroni members need {members} distinct nodes, one each; "
                f"swarm.{'databaseNodes' if swarm.database_nodes else 'nodes'} names {len(db_nodes)}"
            )
        if self.storage.driver == "local":
            raise ValueError("storage.driver 'local' is a different volume on every node; a swarm stack needs nfs (storage.nfs) or plugin (storage.plugin)")
        repo = self.backups.repository
        if self.backups.enabled and repo.type == "volume" and repo.volume.driver == "local":
            raise ValueError(
                "backups.repository.volume.driver 'local' keeps the backups on the disk of whichever node runs the "
                "backup, lost with it; a swarm stack needs a shared repository: volume.driver 'nfs' "
                "(backups.repository.volume.nfs) or 'plugin' (backups.repository.volume.plugin), or type 's3' or 'azure'"
            )
        capacity = len(swarm.nodes) * swarm.max_replicas_per_node
        if self.app.replicas >= capacity:
            raise ValueError(
                f"app.replicas ({self.app.replicas}) fills all {len(swarm.nodes)} nodes x swarm.maxReplicasPerNode "
                f"({swarm.max_replicas_per_node}), so a start-first update has no node for its new task and deadlocks; "
                f"allowed: replicas < {capacity} (raise maxReplicasPerNode or add nodes)"
            )
        return self

    @model_validator(mode="after")
    def _backup_rules(self) -> StackConfig:
        """A self-hosted restore reads the pgBackRest repository, whose release must support the major."""
        if self.database.mode != "self-hosted":
            if "backups" in self.model_fields_set:
                raise ValueError("backups applies to database.mode 'self-hosted' only; managed backups are set in database.managed")
            return self
        backups, restore = self.backups, self.database.restore
        if backups.enabled and not backups.supports(self.database.version):
            floor = ".".join(map(str, PGBACKREST_MIN_VERSION[self.database.version]))
            raise ValueError(
                f"backups.pgbackrestVersion {backups.pgbackrest_version} does not support PostgreSQL "
                f"{self.database.version}; it needs pgBackRest >= {floor}"
            )
        if restore is not None and not backups.enabled:
            raise ValueError("database.restore on self-hosted restores from the pgBackRest repository; set backups.enabled: true")
        if restore is not None and {"source_server_id", "mode"} & restore.model_fields_set:
            raise ValueError("database.restore.sourceServerId and database.restore.mode are Azure-only; self-hosted restores from backups.repository")
        return self

    @model_validator(mode="after")
    def _azure_rules(self, info: ValidationInfo) -> StackConfig:
        """What Azure needs beyond each key's own range. The stack name comes from the loader's context."""
        if self.platform != "azure":
            return self
        stack = (info.context or {}).get("stack")
        if stack == "prod" and self.app.replicas < AZURE_PROD_MIN_REPLICAS:
            raise ValueError(
                f"app.replicas must be >= {AZURE_PROD_MIN_REPLICAS} on the Azure prod stack, one per availability zone "
                f"(got {self.app.replicas})"
            )
        if self.app.memory_gi != 2 * self.app.cpu or (self.app.cpu * 4) % 1:
            raise ValueError(
                "app.cpu must be a multiple of 0.25 and app.memoryGi twice app.cpu (Container Apps Consumption sizes, "
                f"e.g. 0.5/1.0); got cpu {self.app.cpu}, memoryGi {self.app.memory_gi}"
            )
        if self.storage.driver != "local":
            raise ValueError("storage.driver/nfs are Docker-only; on Azure choose storage.protocol: SMB or NFS")
        reserved_users = AZURE_RESERVED_ADMIN_LOGINS | {AZURE_ADMIN_LOGIN}
        if self.database.user in reserved_users or self.database.user.startswith(("pg_", "azure_")):
            raise ValueError(
                f"database.user {self.database.user!r} is reserved on Flexible Server; "
                f"reserved: {', '.join(sorted(reserved_users))} and names starting with pg_ or azure_"
            )
        if self.database.restore is not None:
            _azure_restore_rules(self.database.restore, (info.context or {}).get("now") or datetime.now(timezone.utc))
        if stack == "prod" and self.load_balancer.certificate_secret_id is None:
            raise ValueError(
                "loadBalancer.certificateSecretId is required on the Azure prod stack: the Key Vault secret URL of the "
                "site's PFX certificate (docs/azure.md, 'HTTPS certificate'); only other stacks get a self-signed one"
            )
        if self.azure.alert_email is None:
            raise ValueError("platform 'azure' needs azure.alertEmail: metric alerts (DB, gateway) are emailed there")
        return self

    @model_validator(mode="after")
    def _tls_rules(self, info: ValidationInfo) -> StackConfig:
        """HTTPS at the edge: HAProxy's keys on Docker and Swarm only, and a real certificate in prod."""
        tls = self.load_balancer.tls
        if self.platform == "azure":
            if "tls" in self.load_balancer.model_fields_set:
                raise ValueError("loadBalancer.tls is for HAProxy (docker, swarm); on Azure set loadBalancer.certificateSecretId")
            return self
        if (info.context or {}).get("stack") == "prod" and tls.enabled and tls.certificate is None:
            raise ValueError(
                "a prod stack needs a real certificate: set loadBalancer.tls.certificate and loadBalancer.tls.key "
                "(pulumi config set --secret --path 'hastack:loadBalancer.tls.key' < server.key); "
                "the stack-CA certificate is for dev"
            )
        return self

    @property
    def restoring_azure_server(self) -> bool:
        """An Azure restore run: the server comes from a backup, single-instance, without replicas."""
        return self.platform == "azure" and self.database.restore is not None

    @model_validator(mode="after")
    def _monitoring_ports(self) -> StackConfig:
        """The monitoring ports share the engine host with the load balancer's."""
        if self.platform == "azure" or not self.monitoring.enabled:
            return self
        taken = {"loadBalancer.port": self.load_balancer.port, "loadBalancer.statsPort": self.load_balancer.stats_port}
        if self.load_balancer.tls.enabled:
            taken["loadBalancer.tls.port"] = self.load_balancer.tls.port
        for key, port in {"prometheusPort": self.monitoring.prometheus_port,
                          "alertmanagerPort": self.monitoring.alertmanager_port}.items():
            clash = [name for name, used in taken.items() if used == port]
            if clash:
                raise ValueError(f"monitoring.{key} ({port}) is already {clash[0]}; pick a free host port")
        email = self.monitoring.receivers.email
        if email is not None and (email.sender is None or email.smarthost is None):
            raise ValueError("monitoring.receivers.email needs sender and smarthost on the self-hosted platforms "
                             "(Alertmanager sends the mail itself)")
        return self

    @property
    def health_check_path(self) -> str:
        return self.load_balancer.health_check.path or self.app.health_path

    @property
    def warnings(self) -> list[str]:
        """Legal but not highly available: reported, not rejected."""
        notes = []
        if self.app.replicas < 2:
            notes.append(f"{NAMESPACE}:app.replicas is {self.app.replicas}: one replica is not highly available")
        if self.database.replicas < 1 and self.database.mode == "self-hosted":
            notes.append(f"{NAMESPACE}:database.replicas is 0: no standby to fail over to")
        if self.restoring_azure_server:
            notes.append(
                f"{NAMESPACE}:database.restore is set: the server is restored single-instance, without replicas; once it "
                "is up, remove database.restore and run `pulumi up` again for HA and replicas (docs/azure.md, 'Restore')"
            )
        return notes


def _azure_restore_rules(restore: RestoreConfig, now: datetime) -> None:
    """What Flexible Server needs from database.restore that the source server itself cannot say.

    `now` comes from the loader's context so tests can pin it; the source's own earliest
    restore point, version and region are checked against the live server when the program
    runs (components/azure/restore.py)."""
    if restore.source_server_id is None:
        raise ValueError("database.restore.sourceServerId is required on Azure: the full resource id of the Flexible Server to restore")
    if not AZURE_FLEXIBLE_SERVER_ID.match(restore.source_server_id):
        raise ValueError(
            "database.restore.sourceServerId must be a Flexible Server resource id: /subscriptions/<subscription id>"
            "/resourceGroups/<group>/providers/Microsoft.DBforPostgreSQL/flexibleServers/<server>"
        )
    if restore.target == "latest":
        raise ValueError(
            "database.restore.target must be a UTC time on Azure (Flexible Server restores to a point in time, "
            "e.g. 2026-12-01T10:00:00Z); 'latest' is for self-hosted backups"
        )
    target = parse_restore_time(restore.target)
    earliest = now - timedelta(days=AZURE_MAX_BACKUP_RETENTION_DAYS)
    if not earliest <= target <= now:
        raise ValueError(
            f"database.restore.target {restore.target} is outside the restore window: Flexible Server keeps backups "
            f"for at most {AZURE_MAX_BACKUP_RETENTION_DAYS} days, so it must lie between "
            f"{earliest:%Y-%m-%dT%H:%M:%SZ} and now ({now:%Y-%m-%dT%H:%M:%SZ})"
        )


TOP_LEVEL_KEYS = tuple(StackConfig.model_fields[name].alias or name for name in StackConfig.model_fields)


def _format_error(error: dict[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"])
    if path in SECRET_CONFIG_PATHS:
        # A secret's value (a private key) is never repeated, not even when it is wrong.
        return f"{NAMESPACE}:{path}: {error['msg'].removeprefix('Value error, ')}"
    # Rules across top-level keys have no location; their message names the keys.
    where = f"{NAMESPACE}:{path}" if path else NAMESPACE
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; allowed here: {_allowed_keys(error['loc'][:-1])}"
    shown = error.get("input")
    if isinstance(shown, (dict, list)) or error["type"] in {"missing"}:
        return f"{where}: {message}"
    return f"{where}: {message} (got {shown!r})"


def _allowed_keys(loc: tuple) -> str:
    """The camelCase keys the model at `loc` accepts, for 'unknown key' messages."""
    model: type[BaseModel] = StackConfig
    for part in loc:
        if not isinstance(part, str):
            return "see docs/config.md"
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        annotation = getattr(field, "annotation", None)
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return "see docs/config.md"
        model = candidates[0]
    return ", ".join(f.alias or n for n, f in model.model_fields.items())


def load_stack_config(
    raw: dict[str, str], stack: str, now: datetime | None = None, secret_keys: Collection[str] = ()
) -> StackConfig:
    """Validate raw Pulumi config (`{"hastack:app": "<json>", ...}`) for `stack`.

    `now` (default: the current UTC time) is what restore-window rules measure against.
    `secret_keys` are the raw keys Pulumi holds encrypted: a top-level key is listed when
    any value inside it was set with `--secret`.
    Raises ConfigError with one line per problem; never returns a partial config.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, text in sorted(raw.items()):
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            continue  # other packages' config, e.g. docker:host or azure-native:location
        if name not in TOP_LEVEL_KEYS:
            problems.append(f"{key}: unknown key; allowed: {', '.join(NAMESPACE + ':' + k for k in TOP_LEVEL_KEYS)}")
            continue
        values[name] = _decode(text)
    values.setdefault("protect", stack == "prod")
    if problems:
        raise ConfigError(problems)
    try:
        config = StackConfig.model_validate(values, context={"stack": stack, "now": now})
    except ValidationError as err:
        raise ConfigError([_format_error(e) for e in err.errors()]) from None
    plaintext = [path for path in SECRET_CONFIG_PATHS
                 if _value_at(config, path) is not None and f"{NAMESPACE}:{path.split('.')[0]}" not in secret_keys]
    if plaintext:
        raise ConfigError([
            f"{NAMESPACE}:{path}: must be a Pulumi secret, not plaintext in the stack file; "
            f"set it with: pulumi config set --secret --path '{NAMESPACE}:{path}' < FILE"
            for path in plaintext
        ])
    return config


def _value_at(config: StackConfig, path: str) -> Any:
    """The value of a camelCase key path such as `loadBalancer.tls.key` (None where a part is unset)."""
    value: Any = config
    for alias in path.split("."):
        if value is None:
            return None
        value = getattr(value, next(name for name, f in type(value).model_fields.items() if (f.alias or name) == alias))
    return value


def _decode(text: str) -> Any:
    """Pulumi passes objects JSON-encoded and scalars as plain strings."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text
