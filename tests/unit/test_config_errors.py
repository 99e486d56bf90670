"""Malformed stack config: one clear line per problem, and nothing registered.

Each case runs the real program under mocks (plan.engine) so the assertion covers the
whole path: engine-shaped config in, RunError out, zero RegisterResource calls.
"""

import json

import pytest

from plan.engine import ProgramError, run_program


def obj(**value) -> str:
    return json.dumps(value)


# (case id, raw config as the engine passes it, the line we expect to see)
MALFORMED = [
    ("unknown-top-level-key", {"hastack:replicas": "3"},
     "hastack:replicas: unknown key; allowed: hastack:platform"),
    ("unknown-app-key", {"hastack:app": obj(replicaz=2)},
     "hastack:app.replicaz: unknown key; allowed here: image, build, replicas"),
    ("unknown-nested-key", {"hastack:loadBalancer": obj(healthCheck={"intervall": 5})},
     "hastack:loadBalancer.healthCheck.intervall: unknown key; allowed here: path, intervalMs"),
    ("platform-unknown", {"hastack:platform": "aws"},
     "hastack:platform: Input should be 'docker', 'swarm' or 'azure' (got 'aws')"),
    ("replicas-zero", {"hastack:app": obj(replicas=0)},
     "hastack:app.replicas: Input should be greater than or equal to 1 (got 0)"),
    ("replicas-not-int", {"hastack:app": obj(replicas="three")},
     "hastack:app.replicas: Input should be a valid integer"),
    ("replicas-too-many", {"hastack:app": obj(replicas=31)},
     "hastack:app.replicas: Input should be less than or equal to 30 (got 31)"),
    ("app-port-zero", {"hastack:app": obj(port=0)},
     "hastack:app.port: Input should be greater than or equal to 1 (got 0)"),
    ("lb-port-too-big", {"hastack:loadBalancer": obj(port=70000)},
     "hastack:loadBalancer.port: Input should be less than or equal to 65535 (got 70000)"),
    ("lb-ports-clash", {"hastack:loadBalancer": obj(port=8404, statsPort=8404)},
     "hastack:loadBalancer: port and statsPort must differ (both 8404)"),
    ("health-interval-zero", {"hastack:loadBalancer": obj(healthCheck={"intervalMs": 0})},
     "hastack:loadBalancer.healthCheck.intervalMs: Input should be greater than or equal to 100 (got 0)"),
    ("health-fall-zero", {"hastack:loadBalancer": obj(healthCheck={"fall": 0})},
     "hastack:loadBalancer.healthCheck.fall: Input should be greater than or equal to 1 (got 0)"),
    ("health-path-relative", {"hastack:app": obj(healthPath="readyz")},
     "hastack:app.healthPath: path must be an absolute URL path starting with '/'"),
    ("image-latest", {"hastack:app": obj(image="ghcr.io/acme/shop:latest")},
     "hastack:app.image: image tag 'latest' is not pinned; use a version tag or a digest"),
    ("image-untagged", {"hastack:app": obj(image="ghcr.io/acme/shop")},
     "hastack:app.image: image must be 'repository:tag' or 'repository@sha256:<digest>'"),
    ("env-reserved-name", {"hastack:app": obj(env={"DATABASE_URL": "postgres://x"})},
     "hastack:app.env: env name 'DATABASE_URL' is set by hastack; reserved:"),
    ("env-bad-name", {"hastack:app": obj(env={"log-level": "info"})},
     "hastack:app.env: env name 'log-level' must match [A-Z_][A-Z0-9_]*"),
    ("env-and-secret-clash", {"hastack:app": obj(env={"JWT_SECRET": "x"}, generatedSecrets=["JWT_SECRET"])},
     "hastack:app: JWT_SECRET is both in env and generatedSecrets; keep it in one place"),
    ("secret-names-duplicate", {"hastack:app": obj(generatedSecrets=["A", "A"])},
     "hastack:app.generatedSecrets: secret names must be unique"),
    ("healthcheck-command-empty", {"hastack:app": obj(healthcheckCommand=[])},
     "hastack:app.healthcheckCommand: healthcheck command must be a non-empty list"),
    ("db-version-unknown", {"hastack:database": obj(version="12")},
     "hastack:database.version: Input should be '15', '16', '17' or '18' (got '12')"),
    ("db-replicas-negative", {"hastack:database": obj(replicas=-1)},
     "hastack:database.replicas: Input should be greater than or equal to 0 (got -1)"),
    ("db-failover-unknown", {"hastack:database": obj(failover="auto")},
     "hastack:database.failover: Input should be 'manual' or 'patroni' (got 'auto')"),
    ("patroni-without-replica", {"hastack:database": obj(failover="patroni", replicas=0)},
     "hastack:database: failover 'patroni' needs replicas >= 1"),
    ("synchronous-mode-without-patroni", {"hastack:database": obj(failover="manual", synchronousMode=False)},
     "hastack:database: synchronousMode applies to failover 'patroni' only"),
    ("synchronous-mode-not-bool", {"hastack:database": obj(failover="patroni", synchronousMode="maybe")},
     "hastack:database.synchronousMode: Input should be a valid boolean"),
    ("db-name-not-identifier", {"hastack:database": obj(name="My-App")},
     "hastack:database.name: must be a lowercase PostgreSQL identifier"),
    ("db-user-reserved", {"hastack:database": obj(user="replicator")},
     "hastack:database.user: 'replicator' is reserved for hastack's own roles"),
    ("slot-wal-keep-too-small", {"hastack:database": obj(maxSlotWalKeepSizeMb=1)},
     "hastack:database.maxSlotWalKeepSizeMb: Input should be greater than or equal to 64 (got 1)"),
    ("docker-with-managed-db", {"hastack:database": obj(mode="managed")},
     "hastack: platform 'docker' runs database.mode 'self-hosted' only"),
    ("storage-relative-mount", {"hastack:storage": obj(mountPath="uploads")},
     "hastack:storage.mountPath: mountPath must be an absolute directory path"),
    ("storage-nfs-without-server", {"hastack:storage": obj(driver="nfs")},
     "hastack:storage: driver 'nfs' needs nfs: {server, path}"),
    ("storage-nfs-relative-export", {"hastack:storage": obj(driver="nfs", nfs={"server": "10.0.0.5", "path": "exports"})},
     "hastack:storage.nfs.path: NFS export path must be absolute"),
    ("docker-host-bad-scheme", {"hastack:docker": obj(host="http://engine:2375")},
     "hastack:docker.host: host must be unix://..., ssh://user@host or tcp://host:port"),
    ("docker-subnet-public", {"hastack:docker": obj(subnet="8.8.0.0/16")},
     "hastack:docker.subnet: subnet must be a private range no smaller than /28"),
    ("retry-post-as-idempotent", {"hastack:loadBalancer": obj(retry={"idempotentMethods": ["GET", "POST"]})},
     "hastack:loadBalancer.retry.idempotentMethods: 'POST' is not an idempotent method (RFC 9110 9.2.2); allowed: GET, HEAD"),
    ("retry-method-repeated", {"hastack:loadBalancer": obj(retry={"idempotentMethods": ["GET", "GET"]})},
     "hastack:loadBalancer.retry.idempotentMethods: idempotentMethods must not repeat a method"),
    ("retry-header-with-space", {"hastack:loadBalancer": obj(retry={"idempotencyKeyHeader": "Idempotency Key"})},
     "hastack:loadBalancer.retry.idempotencyKeyHeader: idempotencyKeyHeader must be an HTTP header name"),
    ("read-health-path-relative", {"hastack:app": obj(readHealthPath="readyz/read")},
     "hastack:app.readHealthPath: path must be an absolute URL path"),
    ("protect-not-bool", {"hastack:protect": "sometimes"},
     "hastack:protect: Input should be a valid boolean"),
    ("object-not-object", {"hastack:app": "3"},
     "hastack:app: Input should be a valid dictionary or instance of AppConfig"),
]


@pytest.mark.parametrize("raw, expected", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_config_is_one_clear_line_and_registers_nothing(raw, expected):
    with pytest.raises(ProgramError) as caught:
        run_program(raw, "dev")
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid stack config:"
    problems = lines[1:]
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]
    assert caught.value.run.resources == []


def test_every_problem_gets_its_own_line():
    raw = {"hastack:app": obj(replicas=0, port=0), "hastack:loadBalancer": obj(port=0)}
    with pytest.raises(ProgramError) as caught:
        run_program(raw, "dev")
    problems = str(caught.value).splitlines()[1:]
    assert sorted(p.split(":")[1] for p in problems) == ["app.port", "app.replicas", "loadBalancer.port"]
    assert caught.value.run.resources == []


def test_at_least_25_distinct_malformed_configs():
    assert len({c[0] for c in MALFORMED}) == len(MALFORMED) >= 25
