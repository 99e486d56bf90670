"""The whole program under mocks: the shipped dev stack, and variations of it.

Config goes in the way the engine passes it (plan.engine.stack_file_config), so these
cover the path from Pulumi.dev.yaml through validation to every registered input.
"""

from __future__ import annotations

import json

import pytest

from components.config import POSTGRES_IMAGES
from components.docker.load_balancer import CONFIG_FILE
from plan.engine import PROJECT_DIR, ProgramError, ProgramRun, run_program, run_stack_file, stack_file_config
from tests.unit.mock_run import BUILT_IMAGE, CONTAINER, REMOTE_IMAGE, VOLUME, app_replicas, containers, env_of, upload

DEV_STACK = PROJECT_DIR / "Pulumi.dev.yaml"


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return run_stack_file(DEV_STACK)


def run_dev_with(stack: str = "dev", **overrides: dict) -> ProgramRun:
    """The dev stack with some `hastack:<key>` objects replaced."""
    raw = stack_file_config(DEV_STACK)
    raw.update({f"hastack:{key}": json.dumps(value) for key, value in overrides.items()})
    return run_program(raw, stack)


def haproxy_servers(run: ProgramRun) -> list[str]:
    cfg = upload(run.by_name("lb-haproxy"), CONFIG_FILE)
    return [line.split()[1] for line in cfg.splitlines() if line.strip().startswith("server ")]


# ---------------------------------------------------------------- the shipped dev stack


def test_dev_has_two_app_replicas_with_unique_node_ids_healthchecks_and_the_shared_volume(dev):
    replicas = app_replicas(dev)
    assert [r.name for r in replicas] == ["app-0", "app-1"]
    assert [env_of(r)["NODE_ID"] for r in replicas] == ["app-0", "app-1"]
    shared = dev.by_name("storage-shared")
    for replica in replicas:
        assert replica.inputs["healthcheck"]["tests"][0] == "CMD"
        assert replica.inputs["volumes"] == [{"volumeName": "storage-shared", "containerPath": "/app/uploads", "readOnly": False}]
        assert shared.urn in replica.dependencies
        assert env_of(replica)["STORAGE_PATH"] == "/app/uploads"


def test_dev_has_a_primary_and_one_replica_with_a_slot_each(dev):
    assert [c.name for c in containers(dev, "db-")] == ["db-primary", "db-replica-0"]
    primary, replica = dev.by_name("db-primary"), dev.by_name("db-replica-0")
    assert "max_slot_wal_keep_size=4096MB" in primary.inputs["command"]
    assert "wal_level=replica" in primary.inputs["command"]
    assert "pg_create_physical_replication_slot('replica_0')" in upload(primary, "/docker-entrypoint-initdb.d/")
    assert "-R -X stream -S replica_0" in upload(replica, "/usr/local/bin/")
    images = {r.inputs["name"] for r in dev.of_type(REMOTE_IMAGE)}
    assert POSTGRES_IMAGES["16"] in images


def test_dev_haproxy_actively_checks_both_replicas(dev):
    assert haproxy_servers(dev) == ["app-0", "app-1"]
    cfg = upload(dev.by_name("lb-haproxy"), CONFIG_FILE)
    assert "option httpchk GET /readyz" in cfg
    assert all(" check" in line for line in cfg.splitlines() if line.strip().startswith("server "))


def test_dev_publishes_only_the_load_balancer_on_the_host(dev):
    published = {c.name: c.inputs["ports"] for c in dev.of_type(CONTAINER) if c.inputs.get("ports")}
    assert published == {"lb-haproxy": [{"internal": 8080, "external": 8080}, {"internal": 8404, "external": 8404}]}


def test_dev_builds_the_reference_app_from_the_app_dir_and_probes_readyz(dev):
    image = dev.one(BUILT_IMAGE)
    assert image.inputs["build"] == {"context": "./app"}
    assert (PROJECT_DIR / "app").is_dir()
    for replica in app_replicas(dev):
        assert "/readyz" in replica.inputs["healthcheck"]["tests"][-1]
        assert image.urn in replica.dependencies


def test_dev_stack_outputs(dev):
    outputs = dev.outputs
    assert set(outputs) == {
        "url",
        "statsUrl",
        "appReplicas",
        "dbWriterEndpoint",
        "dbReaderEndpoints",
        "databaseUrl",
        "databaseReadUrl",
        "storageVolume",
    }
    assert outputs["url"] == "http://localhost:8080"
    assert outputs["statsUrl"] == "http://localhost:8404/stats"
    assert outputs["appReplicas"] == ["app-0", "app-1"]
    assert outputs["dbWriterEndpoint"] == "db-primary:5432"
    assert outputs["dbReaderEndpoints"] == ["db-replica-0:5432"]
    assert outputs["databaseUrl"] == (
        "postgresql://app:fake-secret-secrets-db-app@db-primary:5432,db-replica-0:5432/app?target_session_attrs=read-write"
    )
    assert outputs["databaseReadUrl"].endswith("?target_session_attrs=prefer-standby")
    assert outputs["storageVolume"] == "storage-shared"


def test_dev_is_not_protected_and_uses_the_local_engine(dev):
    assert not any(r.protect for r in dev.resources)
    assert not any(r.type == "pulumi:providers:docker" for r in dev.resources)


# ---------------------------------------------------------------- variations


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_app_replica_count_drives_containers_node_ids_and_the_haproxy_server_list(replicas):
    run = run_dev_with(app={"replicas": replicas, "generatedSecrets": ["JWT_SECRET"]})
    names = [f"app-{i}" for i in range(replicas)]
    assert [r.name for r in app_replicas(run)] == names
    assert [env_of(r)["NODE_ID"] for r in app_replicas(run)] == names
    assert all(r.inputs["healthcheck"] for r in app_replicas(run))
    assert haproxy_servers(run) == names
    assert run.outputs["appReplicas"] == names


@pytest.mark.parametrize("replicas", [0, 2])
def test_database_replica_count_drives_nodes_slots_and_reader_endpoints(replicas):
    run = run_dev_with(database={"replicas": replicas})
    assert [c.name for c in containers(run, "db-replica-")] == [f"db-replica-{i}" for i in range(replicas)]
    init_script = upload(run.by_name("db-primary"), "/docker-entrypoint-initdb.d/")
    assert init_script.count("pg_create_physical_replication_slot") == replicas
    assert run.outputs["dbReaderEndpoints"] == [f"db-replica-{i}:5432" for i in range(replicas)]


def test_nfs_storage_is_mounted_in_every_replica():
    run = run_dev_with(storage={"driver": "nfs", "nfs": {"server": "nas.internal", "path": "/exports/uploads"}, "mountPath": "/data"})
    volume = run.by_name("storage-shared")
    assert volume.inputs["driverOpts"]["device"] == ":/exports/uploads"
    assert volume.inputs["driverOpts"]["o"].startswith("addr=nas.internal,")
    for replica in app_replicas(run):
        assert replica.inputs["volumes"] == [{"volumeName": "storage-shared", "containerPath": "/data", "readOnly": False}]


def test_a_user_image_is_pulled_instead_of_built():
    run = run_dev_with(app={"image": "ghcr.io/acme/shop:1.4.2", "replicas": 2})
    assert run.of_type(BUILT_IMAGE) == []
    assert "ghcr.io/acme/shop:1.4.2" in {r.inputs["name"] for r in run.of_type(REMOTE_IMAGE)}


def test_a_stack_named_prod_protects_and_retains_every_data_volume():
    run = run_program(stack_file_config(DEV_STACK), "prod")
    volumes = run.of_type(VOLUME)
    assert sorted(v.name for v in volumes) == ["db-primary-data", "db-replica-0-data", "storage-shared"]
    assert all(v.protect and v.retain_on_delete for v in volumes)
    # Containers hold no data: protecting them would only block rolling updates.
    assert not any(c.protect for c in run.of_type(CONTAINER))


def test_a_remote_engine_gets_an_explicit_provider_used_by_every_docker_resource():
    run = run_dev_with(docker={"host": "ssh://deploy@docker.example.com"})
    provider = run.one("pulumi:providers:docker")
    assert provider.inputs["host"] == "ssh://deploy@docker.example.com"
    docker_resources = [r for r in run.resources if r.custom and r.type.startswith("docker:")]
    assert docker_resources and all(r.provider.startswith(provider.urn) for r in docker_resources)
    assert run.outputs["url"] == "http://docker.example.com:8080"


def test_patroni_on_docker_stops_with_one_line_before_registering_anything():
    with pytest.raises(ProgramError) as stopped:
        run_dev_with(database={"failover": "patroni", "replicas": 1})
    assert "database.failover 'patroni' is not available on platform 'docker' yet; use 'manual'" in str(stopped.value)
    assert stopped.value.run.resources == []
