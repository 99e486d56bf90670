"""The whole program under mocks: the shipped dev stack, and variations of it.

Config goes in the way the engine passes it (plan.engine.stack_file_config), so these
cover the path from Pulumi.dev.yaml through validation to every registered input.
"""

from __future__ import annotations

import json

import pytest
import yaml

from components.config import ETCD_IMAGE, POSTGRES_IMAGES
from components.docker.load_balancer import CONFIG_FILE
from components.docker.patroni import CONFIG_FILE as PATRONI_CONFIG_FILE
from plan.engine import (
    PROJECT_DIR,
    ProgramError,
    ProgramRun,
    RecordedResource,
    is_secret,
    run_program,
    run_stack_file,
    stack_file_config,
)
from plan.fakes import FAKE_SECRET_PREFIX, fake_image_id
from tests.unit.mock_run import (
    BUILT_IMAGE,
    CONFIGURED_TLS,
    CONFIGURED_TLS_SECRET_KEYS,
    CONTAINER,
    REMOTE_IMAGE,
    VOLUME,
    app_replicas,
    containers,
    env_of,
    upload,
)
from plan.report import resource_tree

DEV_STACK = PROJECT_DIR / "Pulumi.dev.yaml"


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return run_stack_file(DEV_STACK)


def run_dev_with(stack: str = "dev", secret_keys: list[str] | None = None, **overrides: dict) -> ProgramRun:
    """The dev stack with some `hastack:<key>` objects replaced (`secret_keys`: set with --secret)."""
    raw = stack_file_config(DEV_STACK)
    raw.update({f"hastack:{key}": json.dumps(value) for key, value in overrides.items()})
    return run_program(raw, stack, secret_keys=secret_keys)


def dev_load_balancer_with_certificate() -> dict:
    """The dev stack's loadBalancer with a certificate of its own, as a prod stack needs."""
    load_balancer = json.loads(stack_file_config(DEV_STACK)["hastack:loadBalancer"])
    return {**load_balancer, "tls": {**load_balancer.get("tls", {}), **CONFIGURED_TLS}}


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
    assert "pg_create_physical_replication_slot('replica_0')" in upload(primary, "/docker-entrypoint-initdb.d/10-")
    assert "-R -X stream -S replica_0" in upload(replica, "/usr/local/bin/hastack-replica-bootstrap")
    # With backups (on by default) the nodes run the pinned image with pgBackRest added.
    image = dev.by_name("db-image")
    assert image.inputs["build"]["args"] == {"POSTGRES_IMAGE": POSTGRES_IMAGES["16"], "PGBACKREST_VERSION": "2.57.0"}


def test_dev_haproxy_actively_checks_both_replicas_for_writes_and_for_reads(dev):
    # Two backends over the same replicas: writes checked on /readyz, reads on /readyz/read.
    assert haproxy_servers(dev) == ["app-0", "app-1"] * 2
    cfg = upload(dev.by_name("lb-haproxy"), CONFIG_FILE)
    assert "option httpchk GET /readyz\n" in cfg and "option httpchk GET /readyz/read\n" in cfg
    assert "use_backend app_read if { method GET HEAD OPTIONS }" in cfg
    assert all(" check" in line for line in cfg.splitlines() if line.strip().startswith("server "))


def test_dev_haproxy_retries_after_reaching_a_replica_only_what_is_safe_to_repeat(dev):
    cfg = upload(dev.by_name("lb-haproxy"), CONFIG_FILE)
    rule = "http-request disable-l7-retry unless idempotent_method || has_idempotency_key"
    assert cfg.count(rule) == 2, "one per backend"
    assert "acl idempotent_method method GET HEAD OPTIONS" in cfg
    assert "acl has_idempotency_key req.hdr(Idempotency-Key) -m len gt 0" in cfg
    assert "option http-buffer-request" in cfg


def test_retry_config_reaches_the_rendered_rules():
    run = run_dev_with(loadBalancer={"retry": {"idempotentMethods": ["GET", "PUT"], "idempotencyKeyHeader": "X-Once"}})
    cfg = upload(run.by_name("lb-haproxy"), CONFIG_FILE)
    assert "acl idempotent_method method GET PUT" in cfg
    assert "req.hdr(X-Once)" in cfg and "Idempotency-Key" not in cfg


def test_dev_publishes_the_load_balancer_on_the_host_and_monitoring_on_its_loopback_only(dev):
    published = {c.name: c.inputs["ports"] for c in dev.of_type(CONTAINER) if c.inputs.get("ports")}
    assert published == {
        "lb-haproxy": [{"internal": 8080, "external": 8080}, {"internal": 8404, "external": 8404},
                       {"internal": 8443, "external": 8443}],
        "monitoring-prometheus": [{"internal": 9090, "external": 9090, "ip": "127.0.0.1"}],
        "monitoring-alertmanager": [{"internal": 9093, "external": 9093, "ip": "127.0.0.1"}],
    }


def test_dev_builds_the_reference_app_from_the_app_dir_and_probes_readyz(dev):
    image = dev.by_name("app-image")
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
        "caCertificate",
        "prometheusUrl",
        "alertmanagerUrl",
        "backupRepository",
    }
    assert outputs["url"] == "https://localhost:8443"
    assert outputs["caCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert not is_secret(dev.wire_outputs["caCertificate"])
    assert outputs["statsUrl"] == "http://localhost:8404/stats"
    assert outputs["appReplicas"] == ["app-0", "app-1"]
    assert outputs["dbWriterEndpoint"] == "db-primary:5432"
    assert outputs["dbReaderEndpoints"] == ["db-replica-0:5432"]
    assert outputs["databaseUrl"] == (
        "postgresql://app:fake-secret-secrets-db-app@db-primary:5432,db-replica-0:5432/app?target_session_attrs=read-write"
        "&sslmode=verify-full&sslrootcert=/etc/hastack/database-ca.crt"
    )
    assert outputs["databaseReadUrl"].endswith("?target_session_attrs=prefer-standby&sslmode=verify-full&sslrootcert=/etc/hastack/database-ca.crt")
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
    init_script = upload(run.by_name("db-primary"), "/docker-entrypoint-initdb.d/10-")
    assert init_script.count("pg_create_physical_replication_slot") == replicas
    assert run.outputs["dbReaderEndpoints"] == [f"db-replica-{i}:5432" for i in range(replicas)]


def test_nfs_storage_is_mounted_in_every_replica():
    run = run_dev_with(storage={"driver": "nfs", "nfs": {"server": "nas.internal", "path": "/exports/uploads"}, "mountPath": "/data"})
    volume = run.by_name("storage-shared")
    assert volume.inputs["driverOpts"]["device"] == ":/exports/uploads"
    assert volume.inputs["driverOpts"]["o"].startswith("addr=nas.internal,")
    for replica in app_replicas(run):
        assert replica.inputs["volumes"] == [{"volumeName": "storage-shared", "containerPath": "/data", "readOnly": False}]


NGINX = {"image": "nginx:1.27.3", "port": 80, "healthPath": "/", "replicas": 2}
NGINX_PROBE = ["curl", "-fsS", "http://127.0.0.1:80/"]


def test_a_user_image_without_a_healthcheck_command_is_refused_in_one_line_with_an_example():
    # The reference image's python probe would keep every nginx replica unhealthy on a
    # real engine, and `pulumi up` would wait 120 s per replica and fail.
    with pytest.raises(ProgramError) as refused:
        run_dev_with(app=NGINX)
    problems = str(refused.value).splitlines()[1:]
    assert problems == [
        'hastack: app.healthcheckCommand is required with app.image (nginx:1.27.3): the default probe runs python, '
        'which only the reference image is known to have; give one your image runs, e.g. '
        'healthcheckCommand: ["curl", "-fsS", "http://127.0.0.1:80/"]'
    ]
    assert refused.value.run.resources == []


def test_a_user_image_is_pulled_and_every_replica_gets_its_own_probe_and_no_python(dev):
    run = run_dev_with(app={**NGINX, "healthcheckCommand": NGINX_PROBE})
    # Only the database image (pgBackRest on the official one) is built.
    assert [image.name for image in run.of_type(BUILT_IMAGE)] == ["db-image"]
    assert "nginx:1.27.3" in {r.inputs["name"] for r in run.of_type(REMOTE_IMAGE)}
    for replica in app_replicas(run):
        assert replica.inputs["healthcheck"]["tests"] == ["CMD", *NGINX_PROBE]
    # The plan shows which probe each replica gets: the user's, or the reference python one.
    tree = "\n".join(resource_tree(run))
    assert tree.count("healthcheck `curl -fsS http://127.0.0.1:80/`") == 2
    assert "python" not in tree
    assert "\n".join(resource_tree(dev)).count("healthcheck `python -c import urllib.request") == 2


def test_a_stack_named_prod_protects_and_retains_every_data_volume():
    run = run_dev_with("prod", CONFIGURED_TLS_SECRET_KEYS, loadBalancer=dev_load_balancer_with_certificate())
    volumes = run.of_type(VOLUME)
    assert sorted(v.name for v in volumes) == ["backups-reports", "backups-repository", "db-primary-data", "db-primary-socket",
                                               "db-replica-0-data", "db-replica-0-socket", "monitoring-alertmanager-data",
                                               "monitoring-prometheus-data", "storage-shared"]
    assert all(v.protect and v.retain_on_delete for v in volumes)
    # Containers hold no data: protecting them would only block rolling updates.
    assert not any(c.protect for c in run.of_type(CONTAINER))


def test_a_remote_engine_gets_an_explicit_provider_used_by_every_docker_resource():
    run = run_dev_with(docker={"host": "ssh://deploy@docker.example.com"})
    provider = run.one("pulumi:providers:docker")
    assert provider.inputs["host"] == "ssh://deploy@docker.example.com"
    docker_resources = [r for r in run.resources if r.custom and r.type.startswith("docker:")]
    assert docker_resources and all(r.provider.startswith(provider.urn) for r in docker_resources)
    assert run.outputs["url"] == "https://docker.example.com:8443"


# ---------------------------------------------------------------- failover: patroni


def run_patroni(replicas: int = 1, stack: str = "dev", **database: object) -> ProgramRun:
    """The dev stack with `database.failover: patroni` (and a certificate of its own when named prod)."""
    edge = {"loadBalancer": dev_load_balancer_with_certificate()} if stack == "prod" else {}
    return run_dev_with(stack, CONFIGURED_TLS_SECRET_KEYS, database={"mode": "self-hosted", "version": "16", "replicas": replicas,
                                                                     "failover": "patroni", **database}, **edge)


@pytest.fixture(scope="module")
def patroni_dev() -> ProgramRun:
    return run_patroni()


def patroni_yml(member: RecordedResource) -> dict:
    return yaml.safe_load(upload(member, PATRONI_CONFIG_FILE))


def test_patroni_stack_runs_three_etcd_members_on_their_own_volumes_without_host_ports(patroni_dev):
    members = containers(patroni_dev, "etcd-")
    assert [m.name for m in members] == ["etcd-0", "etcd-1", "etcd-2"]
    assert {v.name for v in patroni_dev.of_type(VOLUME) if v.name.startswith("etcd-")} == {"etcd-0-data", "etcd-1-data", "etcd-2-data"}
    assert ETCD_IMAGE in {r.inputs["name"] for r in patroni_dev.of_type(REMOTE_IMAGE)}
    for member in members:
        assert "ports" not in member.inputs
        assert member.inputs["volumes"] == [{"volumeName": f"{member.name}-data", "containerPath": "/var/lib/etcd"}]
        assert member.inputs["networksAdvanced"][0]["aliases"] == [member.name]
        assert member.inputs["healthcheck"]["tests"][-2:] == ["endpoint", "health"]
        assert member.inputs["wait"] is True


@pytest.mark.parametrize("replicas", [1, 2])
def test_patroni_members_each_get_their_own_patroni_yml_on_etcd_with_synchronous_mode(replicas):
    run = run_patroni(replicas)
    members = containers(run, "db-")
    assert [m.name for m in members] == [f"db-{i}" for i in range(1 + replicas)]
    assert containers(run, "db-primary") == [] and containers(run, "db-replica-") == []
    for member in members:
        document = patroni_yml(member)
        assert document["name"] == member.name
        assert document["etcd3"]["hosts"] == ["etcd-0:2379", "etcd-1:2379", "etcd-2:2379"]
        assert document["bootstrap"]["dcs"]["synchronous_mode"] is True
        assert document["postgresql"]["connect_address"] == f"{member.name}:5432"
        assert document["restapi"]["connect_address"] == f"{member.name}:8008"
        assert document["postgresql"]["data_dir"].startswith(member.inputs["volumes"][0]["containerPath"] + "/")
        assert member.inputs["volumes"][0]["volumeName"] == f"{member.name}-data"
        assert "ports" not in member.inputs
        assert member.inputs["restart"] == "unless-stopped" and member.inputs["wait"] is True
        assert member.inputs["healthcheck"]["tests"] == ["CMD", "hastack-patroni-health"]
        assert member.delete_before_replace
        assert sorted(env_of(member)) == ["APP_DB_PASSWORD", "MONITOR_DB_PASSWORD", "PATRONI_REPLICATION_PASSWORD",
                                          "PATRONI_SUPERUSER_PASSWORD", "PGBACKREST_REPO1_CIPHER_PASS"]


def test_patroni_synchronous_mode_follows_the_config():
    run = run_patroni(synchronousMode=False)
    assert {patroni_yml(m)["bootstrap"]["dcs"]["synchronous_mode"] for m in containers(run, "db-")} == {False}


def test_patroni_members_run_the_image_built_on_the_pinned_postgres(patroni_dev):
    image = patroni_dev.by_name("db-image")
    assert image.type == BUILT_IMAGE
    assert image.inputs["build"] == {"context": "./components/docker/images/postgres", "target": "patroni",
                                     "args": {"POSTGRES_IMAGE": POSTGRES_IMAGES["16"], "PGBACKREST_VERSION": "2.57.0"}}
    assert image.inputs["skipPush"] is True
    assert {m.inputs["image"] for m in containers(patroni_dev, "db-")} == {fake_image_id(image.inputs["imageName"])}


def yaml_keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in yaml_keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in yaml_keys(item)}
    return set()


def test_patroni_uploads_hold_no_password(patroni_dev):
    uploaded = [u["content"] for m in containers(patroni_dev, "db-") for u in m.inputs["uploads"]]
    assert uploaded and not any(f"{FAKE_SECRET_PREFIX}secrets-" in text for text in uploaded)
    # Patroni takes the passwords from PATRONI_*_PASSWORD, so the file has no such key.
    for member in containers(patroni_dev, "db-"):
        assert "password" not in yaml_keys(patroni_yml(member))


def test_patroni_urls_list_every_member_and_are_secret():
    run = run_patroni(replicas=2)
    hosts = "db-0:5432,db-1:5432,db-2:5432"
    tls = "sslmode=verify-full&sslrootcert=/etc/hastack/database-ca.crt"
    assert run.outputs["databaseUrl"] == f"postgresql://app:fake-secret-secrets-db-app@{hosts}/app?target_session_attrs=read-write&{tls}"
    assert run.outputs["databaseReadUrl"].endswith(f"@{hosts}/app?target_session_attrs=prefer-standby&{tls}")
    assert run.outputs["dbWriterEndpoint"] == hosts
    assert run.outputs["dbReaderEndpoints"] == hosts.split(",")
    for key in ("databaseUrl", "databaseReadUrl"):
        assert is_secret(run.wire_outputs[key])
    for replica in app_replicas(run):
        assert env_of(replica)["DATABASE_URL"] == run.outputs["databaseUrl"]


def test_patroni_in_a_stack_named_prod_protects_and_retains_every_data_volume():
    run = run_patroni(stack="prod")
    volumes = run.of_type(VOLUME)
    assert sorted(v.name for v in volumes) == ["backups-reports", "backups-repository", "db-0-data", "db-0-socket", "db-1-data", "db-1-socket",
                                               "etcd-0-data", "etcd-1-data", "etcd-2-data",
                                               "monitoring-alertmanager-data", "monitoring-prometheus-data", "storage-shared"]
    assert all(v.protect and v.retain_on_delete for v in volumes)
    assert not any(c.protect for c in run.of_type(CONTAINER))


# ---------------------------------------------------------------- TLS


def test_dev_app_replicas_verify_the_database_against_the_stack_ca(dev):
    ca = dev.outputs["caCertificate"]
    for replica in app_replicas(dev):
        assert upload(replica, "/etc/hastack/database-ca.crt") == ca
        assert "sslmode=verify-full&sslrootcert=/etc/hastack/database-ca.crt" in env_of(replica)["DATABASE_URL"]


def test_dev_edge_certificate_comes_from_the_stack_ca_for_where_the_stack_is_reached(dev):
    request = dev.by_name("lb-server-request")
    assert (request.inputs["dnsNames"], request.inputs["ipAddresses"]) == (["localhost"], ["127.0.0.1"])
    remote = run_dev_with(docker={"host": "ssh://deploy@docker.example.com"}).by_name("lb-server-request")
    assert remote.inputs["dnsNames"] == ["docker.example.com", "localhost"]
