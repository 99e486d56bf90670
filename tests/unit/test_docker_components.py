"""Each Docker component on its own, under the recording mocks: real input values."""

from __future__ import annotations

import pulumi
import pytest

import yaml

from components.certificates import ServerCertificate, StackCertificateAuthority
from components.config import ETCD_IMAGE, HAPROXY_IMAGE, AppConfig, DatabaseConfig, LoadBalancerConfig, NfsConfig, StorageConfig
from components.docker import database, patroni
from components.docker.app import App, AppArgs
from components.docker.database import HBA_FILE, Database, DatabaseArgs
from components.docker.etcd import Etcd, EtcdArgs
from components.docker.load_balancer import CERTIFICATE_FILE, CONFIG_FILE, LoadBalancer, LoadBalancerArgs
from components.docker.network import Network, NetworkArgs
from components.docker.patroni import PatroniDatabase, PatroniDatabaseArgs
from components.docker.storage import Storage, StorageArgs
from components.secrets import StackSecrets, StackSecretsArgs
from loopback.binaries import pinned_patroni_version
from plan.engine import PROJECT_DIR, is_secret
from plan.fakes import FAKE_SECRET_PREFIX, fake_image_id
from tests.unit.mock_run import (
    BUILT_IMAGE,
    REMOTE_IMAGE,
    VOLUME,
    app_replicas,
    containers,
    env_of,
    run_components,
    upload,
)

SUBNET = "172.28.0.0/16"
# What every app connection string asks of libpq: TLS, verified against the stack CA.
VERIFIED_TLS = "sslmode=verify-full&sslrootcert=/etc/hastack/database-ca.crt"


# ---------------------------------------------------------------- secrets


def test_secrets_generates_each_password_once_with_pulumi_random():
    run = run_components(lambda: StackSecrets("secrets", StackSecretsArgs(app_secret_names=["JWT_SECRET", "SESSION_SECRET"])))
    passwords = run.of_type("random:index/randomPassword:RandomPassword")
    assert sorted(p.name for p in passwords) == [
        "secrets-app-jwt-secret",
        "secrets-app-session-secret",
        "secrets-db-app",
        "secrets-db-replication",
        "secrets-db-superuser",
    ]
    component = run.one("hastack:index:Secrets")
    for password in passwords:
        assert password.parent == component.urn
        # URL- and shell-safe: the DB passwords go into libpq URLs.
        assert password.inputs == {"length": 32, "special": False}


@pytest.mark.usefixtures("pulumi_mocks_dev")
@pulumi.runtime.test
def test_secrets_outputs_are_pulumi_secrets():
    secrets = StackSecrets("secrets", StackSecretsArgs(app_secret_names=["JWT_SECRET"]))
    values = [secrets.db_superuser_password, secrets.db_replication_password, secrets.db_app_password, secrets.app_secrets["JWT_SECRET"]]

    async def all_secret() -> list[bool]:
        return [await value.is_secret() for value in values]

    def check(args):
        flags, plain = args
        assert flags == [True, True, True, True]
        assert plain[3] == f"{FAKE_SECRET_PREFIX}secrets-app-jwt-secret"

    return pulumi.Output.all(pulumi.Output.from_input(all_secret()), pulumi.Output.all(*values)).apply(check)


# ---------------------------------------------------------------- network and storage


def test_network_is_a_private_bridge_on_the_configured_subnet():
    run = run_components(lambda: Network("network", NetworkArgs(subnet="10.99.0.0/24")))
    bridge = run.one("docker:index/network:Network")
    assert bridge.name == "network-bridge"
    assert bridge.parent == run.one("hastack:docker:Network").urn
    assert bridge.inputs == {"driver": "bridge", "ipamConfigs": [{"subnet": "10.99.0.0/24"}]}


def test_storage_defaults_to_a_local_named_volume():
    run = run_components(lambda: Storage("storage", StorageArgs(config=StorageConfig(), protect=False)))
    volume = run.one(VOLUME)
    assert volume.inputs == {"driver": "local"}
    assert not volume.protect and not volume.retain_on_delete


def test_storage_on_nfs_passes_the_mount_options_to_the_local_driver():
    nfs = NfsConfig(server="10.0.0.5", path="/exports/uploads", options="nfsvers=4.1,rw")
    run = run_components(lambda: Storage("storage", StorageArgs(config=StorageConfig(driver="nfs", nfs=nfs), protect=False)))
    assert run.one(VOLUME).inputs["driverOpts"] == {
        "type": "nfs",
        "o": "addr=10.0.0.5,nfsvers=4.1,rw",
        "device": ":/exports/uploads",
    }


def test_protected_storage_is_protected_and_retained():
    run = run_components(lambda: Storage("storage", StorageArgs(config=StorageConfig(), protect=True)))
    volume = run.one(VOLUME)
    assert volume.protect and volume.retain_on_delete


# ---------------------------------------------------------------- database


def declare_database(version: str = "16", replicas: int = 1, protect: bool = False) -> None:
    Database(
        "db",
        DatabaseArgs(
            config=DatabaseConfig(version=version, replicas=replicas),
            network_name="net",
            replication_cidr=SUBNET,
            superuser_password=pulumi.Output.secret("super-pw"),
            replication_password=pulumi.Output.secret("repl-pw"),
            app_password=pulumi.Output.secret("app-pw"),
            protect=protect,
            certificate_authority=StackCertificateAuthority("ca"),
        ),
    )


def flag_values(command: list[str]) -> dict[str, str]:
    """`-c name=value` pairs of a postgres command line."""
    return dict(arg.split("=", 1) for previous, arg in zip(command, command[1:]) if previous == "-c")


def test_database_primary_runs_the_pinned_image_with_replication_settings():
    run = run_components(lambda: declare_database(replicas=2))
    assert run.one(REMOTE_IMAGE).inputs["name"] == "postgres:16.11-bookworm"
    primary = run.by_name("db-primary")
    assert primary.inputs["image"] == fake_image_id("postgres:16.11-bookworm")
    command = primary.inputs["command"]
    assert command[0] == "postgres"
    flags = flag_values(command)
    assert flags["wal_level"] == "replica"
    assert flags["max_slot_wal_keep_size"] == "4096MB"
    assert int(flags["max_replication_slots"]) >= 2
    assert int(flags["max_wal_senders"]) >= 2
    assert flags["hba_file"] == HBA_FILE
    hba = upload(primary, HBA_FILE)
    assert f"hostssl replication  replicator  {SUBNET}  scram-sha-256" in hba
    init_script = upload(primary, "/docker-entrypoint-initdb.d/")
    assert "pg_create_physical_replication_slot('replica_0')" in init_script
    assert "pg_create_physical_replication_slot('replica_1')" in init_script
    assert env_of(primary)["PGDATA"] == "/var/lib/postgresql/data"


@pytest.mark.parametrize("replicas", [1, 3])
def test_database_replicas_bootstrap_from_their_own_slot_on_their_own_volume(replicas):
    run = run_components(lambda: declare_database(replicas=replicas))
    primary = run.by_name("db-primary")
    nodes = containers(run, "db-replica-")
    assert [n.name for n in nodes] == [f"db-replica-{i}" for i in range(replicas)]
    volumes = {v.name for v in run.of_type(VOLUME)}
    assert volumes == {"db-primary-data", *(f"db-replica-{i}-data" for i in range(replicas))}
    for index, node in enumerate(nodes):
        script = upload(node, node.inputs["entrypoints"][0])
        assert "-h db-primary -p 5432 -U replicator" in script
        assert f"-R -X stream -S replica_{index}" in script
        assert f"--create-slot --if-not-exists -S replica_{index}" in script
        # The same flags as the primary, so a promoted replica is a full primary.
        assert f"hba_file={HBA_FILE}" in script and "wal_level=replica" in script
        assert node.inputs["user"] == "postgres"
        assert node.inputs["volumes"] == [{"volumeName": f"db-replica-{index}-data", "containerPath": "/var/lib/postgresql/data"}]
        assert upload(node, HBA_FILE) == upload(primary, HBA_FILE)
        assert primary.urn in node.dependencies


def test_postgres_18_uses_the_new_pgdata_layout():
    run = run_components(lambda: declare_database(version="18"))
    primary, replica = run.by_name("db-primary"), run.by_name("db-replica-0")
    assert run.one(REMOTE_IMAGE).inputs["name"].startswith("postgres:18.")
    assert env_of(primary)["PGDATA"] == "/var/lib/postgresql/18/docker"
    for node in (primary, replica):
        assert node.inputs["volumes"][0]["containerPath"] == "/var/lib/postgresql"
    assert "data_dir=/var/lib/postgresql/18/docker" in upload(replica, "/usr/local/bin/")


def test_database_nodes_are_private_health_checked_and_replaced_delete_first():
    run = run_components(lambda: declare_database(replicas=2))
    for node in containers(run, "db-"):
        assert "ports" not in node.inputs, f"{node.name} publishes a host port"
        assert node.inputs["networksAdvanced"] == [{"name": "net", "aliases": [node.name]}]
        assert node.inputs["healthcheck"]["tests"][:2] == ["CMD", "pg_isready"]
        assert node.inputs["wait"] is True
        assert node.inputs["restart"] == "unless-stopped"
        # One postmaster per data dir, ever.
        assert node.delete_before_replace


def test_database_passwords_reach_the_containers_as_secrets_only():
    run = run_components(lambda: declare_database())
    primary = run.by_name("db-primary")
    secret_env = [e["value"] for e in primary.wire_inputs["envs"] if is_secret(e)]
    assert sorted(secret_env) == ["APP_DB_PASSWORD=app-pw", "POSTGRES_PASSWORD=super-pw", "REPLICATION_PASSWORD=repl-pw"]
    replica = run.by_name("db-replica-0")
    assert [e["value"] for e in replica.wire_inputs["envs"] if is_secret(e)] == ["REPLICATION_PASSWORD=repl-pw"]
    uploaded = [entry["content"] for node in (primary, replica) for entry in node.inputs["uploads"]]
    assert not any(pw in text for pw in ("super-pw", "repl-pw", "app-pw") for text in uploaded)


def test_database_data_volumes_follow_protect():
    protected = run_components(lambda: declare_database(protect=True))
    assert all(v.protect and v.retain_on_delete for v in protected.of_type(VOLUME))
    unprotected = run_components(lambda: declare_database(protect=False))
    assert not any(v.protect or v.retain_on_delete for v in unprotected.of_type(VOLUME))


@pytest.mark.usefixtures("pulumi_mocks_dev")
@pulumi.runtime.test
def test_database_connection_strings_list_every_node():
    database = Database(
        "db",
        DatabaseArgs(
            config=DatabaseConfig(replicas=2),
            network_name="net",
            replication_cidr=SUBNET,
            superuser_password="s",
            replication_password="r",
            app_password=pulumi.Output.secret("pw"),
            protect=False,
            certificate_authority=StackCertificateAuthority("ca"),
        ),
    )
    assert database.writer_endpoint == "db-primary:5432"
    assert database.reader_endpoints == ["db-replica-0:5432", "db-replica-1:5432"]

    def check(urls):
        hosts = "db-primary:5432,db-replica-0:5432,db-replica-1:5432"
        assert urls == [
            f"postgresql://app:pw@{hosts}/app?target_session_attrs=read-write&{VERIFIED_TLS}",
            f"postgresql://app:pw@{hosts}/app?target_session_attrs=prefer-standby&{VERIFIED_TLS}",
        ]

    return pulumi.Output.all(database.writer_url, database.reader_url).apply(check)


# ---------------------------------------------------------------- etcd and patroni


def flag_map(command: list[str]) -> dict[str, str]:
    """`--name=value` flags of a command line."""
    return dict(arg.removeprefix("--").split("=", 1) for arg in command if arg.startswith("--"))


def test_etcd_is_three_members_bootstrapped_from_one_static_member_list():
    run = run_components(lambda: Etcd("etcd", EtcdArgs(network_name="net", protect=False)))
    assert run.one(REMOTE_IMAGE).inputs["name"] == ETCD_IMAGE
    members = containers(run, "etcd-")
    assert [m.name for m in members] == ["etcd-0", "etcd-1", "etcd-2"]
    flags = [flag_map(m.inputs["command"]) for m in members]
    assert {f["initial-cluster"] for f in flags} == {"etcd-0=http://etcd-0:2380,etcd-1=http://etcd-1:2380,etcd-2=http://etcd-2:2380"}
    assert [f["advertise-client-urls"] for f in flags] == ["http://etcd-0:2379", "http://etcd-1:2379", "http://etcd-2:2379"]
    assert {f["initial-cluster-token"] for f in flags} == {"hastack-dev-etcd"}
    for member, member_flags in zip(members, flags):
        assert member.inputs["image"] == fake_image_id(ETCD_IMAGE)
        assert member.inputs["networksAdvanced"] == [{"name": "net", "aliases": [member.name]}]
        assert member_flags["data-dir"] == member.inputs["volumes"][0]["containerPath"]
        assert member.inputs["healthcheck"]["tests"][1].endswith("/etcdctl")
        assert "ports" not in member.inputs
        assert member.delete_before_replace


def test_etcd_data_volumes_follow_protect():
    protected = run_components(lambda: Etcd("etcd", EtcdArgs(network_name="net", protect=True)))
    assert len(protected.of_type(VOLUME)) == 3
    assert all(v.protect and v.retain_on_delete for v in protected.of_type(VOLUME))


def declare_patroni(replicas: int = 1, protect: bool = False) -> None:
    PatroniDatabase(
        "db",
        PatroniDatabaseArgs(
            config=DatabaseConfig(replicas=replicas, failover="patroni", version="18"),
            network_name="net",
            replication_cidr=SUBNET,
            etcd_endpoints=["etcd-0:2379", "etcd-1:2379", "etcd-2:2379"],
            superuser_password=pulumi.Output.secret("super-pw"),
            replication_password=pulumi.Output.secret("repl-pw"),
            app_password=pulumi.Output.secret("app-pw"),
            protect=protect,
            depends_on=[],
            certificate_authority=StackCertificateAuthority("ca"),
        ),
    )


def test_patroni_members_are_equal_but_for_their_name_and_addresses():
    run = run_components(lambda: declare_patroni(replicas=2))
    members = containers(run, "db-")
    assert [m.name for m in members] == ["db-0", "db-1", "db-2"]
    documents = [yaml.safe_load(upload(m, patroni.CONFIG_FILE)) for m in members]
    for member, document in zip(members, documents):
        assert document["name"] == member.name
        assert document["postgresql"]["connect_address"] == f"{member.name}:5432"
        # The PG 18 image mounts its volume at /var/lib/postgresql.
        assert document["postgresql"]["data_dir"] == "/var/lib/postgresql/patroni"
        assert member.inputs["volumes"] == [{"volumeName": f"{member.name}-data", "containerPath": "/var/lib/postgresql"}]
        assert member.inputs["init"] is True
    without_identity = [{**d, "name": None, "restapi": None, "postgresql": {**d["postgresql"], "connect_address": None}} for d in documents]
    assert all(d == without_identity[0] for d in without_identity)
    assert documents[0]["bootstrap"]["post_bootstrap"] == patroni.POST_BOOTSTRAP_SCRIPT
    assert "CREATE DATABASE app OWNER app;" in upload(members[0], patroni.POST_BOOTSTRAP_SCRIPT)


def test_patroni_passwords_reach_the_members_as_secrets_only():
    run = run_components(lambda: declare_patroni())
    for member in containers(run, "db-"):
        secret_env = sorted(e["value"] for e in member.wire_inputs["envs"] if is_secret(e))
        assert secret_env == ["APP_DB_PASSWORD=app-pw", "PATRONI_REPLICATION_PASSWORD=repl-pw", "PATRONI_SUPERUSER_PASSWORD=super-pw"]
        uploaded = [entry["content"] for entry in member.inputs["uploads"]]
        assert not any(pw in text for pw in ("super-pw", "repl-pw", "app-pw") for text in uploaded)


def test_patroni_data_volumes_follow_protect():
    protected = run_components(lambda: declare_patroni(protect=True))
    assert all(v.protect and v.retain_on_delete for v in protected.of_type(VOLUME))


@pytest.mark.usefixtures("pulumi_mocks_dev")
@pulumi.runtime.test
def test_patroni_connection_strings_list_every_member():
    database = PatroniDatabase(
        "db",
        PatroniDatabaseArgs(
            config=DatabaseConfig(replicas=1, failover="patroni"),
            network_name="net",
            replication_cidr=SUBNET,
            etcd_endpoints=["etcd-0:2379"],
            superuser_password="s",
            replication_password="r",
            app_password=pulumi.Output.secret("pw"),
            protect=False,
            depends_on=[],
            certificate_authority=StackCertificateAuthority("ca"),
        ),
    )
    assert database.reader_endpoints == ["db-0:5432", "db-1:5432"]

    def check(urls):
        assert urls == [
            f"postgresql://app:pw@db-0:5432,db-1:5432/app?target_session_attrs=read-write&{VERIFIED_TLS}",
            f"postgresql://app:pw@db-0:5432,db-1:5432/app?target_session_attrs=prefer-standby&{VERIFIED_TLS}",
        ]

    return pulumi.Output.all(database.writer_url, database.reader_url).apply(check)


def test_patroni_image_is_the_pinned_patroni_on_the_pgbackrest_image_run_as_postgres():
    context = PROJECT_DIR / database.IMAGE_CONTEXT
    dockerfile = (context / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "ARG POSTGRES_IMAGE"
    assert "FROM ${POSTGRES_IMAGE} AS postgres" in lines and "FROM postgres AS patroni" in lines
    patroni_stage = lines[lines.index("FROM postgres AS patroni"):]
    lines = patroni_stage
    # The requirements the tests install (`make patroni`), hash-checked, and the version checked.
    assert "COPY patroni-requirements.txt patroni-demote-once.patch /opt/hastack/" in lines
    assert "-r /opt/hastack/patroni-requirements.txt; \\" in lines
    assert "< /opt/hastack/patroni-demote-once.patch; \\" in lines
    assert f'/opt/hastack/patroni/bin/patroni --version | grep -qx "patroni {pinned_patroni_version()}"' in lines
    assert "ENV PATH=/opt/hastack/patroni/bin:$PATH" in lines
    assert "USER postgres" in lines
    assert f'HEALTHCHECK --interval=5s --timeout=3s --retries=3 --start-period=600s CMD ["{patroni.HEALTH_PROBE}"]' in lines
    assert f'CMD ["{patroni.CONFIG_FILE}"]' in lines
    probe = (context / patroni.HEALTH_PROBE).read_text()
    assert f"http://127.0.0.1:{patroni.RESTAPI_PORT}/health" in probe
    assert (context / patroni.HEALTH_PROBE).stat().st_mode & 0o111


# ---------------------------------------------------------------- app


def declare_app(config: AppConfig, secrets: dict | None = None) -> None:
    App(
        "app",
        AppArgs(
            config=config,
            network_name="net",
            shared_volume=Storage("storage", StorageArgs(config=StorageConfig(mountPath="/srv/uploads"), protect=False)).mount(),
            database_url=pulumi.Output.secret("postgresql://writer"),
            database_read_url=pulumi.Output.secret("postgresql://reader"),
            secrets=secrets or {"JWT_SECRET": pulumi.Output.secret("jwt")},
        ),
    )


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_app_replicas_share_env_and_volume_and_differ_only_in_node_id(replicas):
    run = run_components(lambda: declare_app(AppConfig(image="ghcr.io/acme/shop:1.4.2", replicas=replicas, env={"LOG_LEVEL": "debug"})))
    nodes = app_replicas(run)
    assert [n.name for n in nodes] == [f"app-{i}" for i in range(replicas)]
    envs = [env_of(n) for n in nodes]
    assert [e.pop("NODE_ID") for e in envs] == [f"app-{i}" for i in range(replicas)]
    assert all(e == envs[0] for e in envs)
    assert envs[0] == {
        "LOG_LEVEL": "debug",
        "PORT": "8000",
        "STORAGE_PATH": "/srv/uploads",
        "DATABASE_URL": "postgresql://writer",
        "DATABASE_READ_URL": "postgresql://reader",
        "JWT_SECRET": "jwt",
    }
    for node in nodes:
        assert node.inputs["volumes"] == [{"volumeName": "storage-shared", "containerPath": "/srv/uploads", "readOnly": False}]
        assert node.inputs["networksAdvanced"] == [{"name": "net", "aliases": [node.name]}]
        assert node.inputs["restart"] == "unless-stopped"
        assert node.inputs["wait"] is True and node.inputs["waitTimeout"] > 0
        assert "name" not in node.inputs, "replicas are auto-named so a replacement can start beside the old one"
        assert "ports" not in node.inputs
        assert not node.delete_before_replace


def test_app_default_healthcheck_probes_the_health_path_with_python_only():
    run = run_components(lambda: declare_app(AppConfig(image="ghcr.io/acme/shop:1.4.2", port=9000, health_path="/health")))
    for node in app_replicas(run):
        check = node.inputs["healthcheck"]
        assert check["tests"] == [
            "CMD",
            "python",
            "-c",
            "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/health', timeout=2)",
        ]


def test_app_healthcheck_command_is_configurable():
    config = AppConfig(image="ghcr.io/acme/shop:1.4.2", healthcheck_command=["curl", "-fsS", "http://127.0.0.1:8000/readyz"])
    run = run_components(lambda: declare_app(config))
    for node in app_replicas(run):
        assert node.inputs["healthcheck"]["tests"] == ["CMD", "curl", "-fsS", "http://127.0.0.1:8000/readyz"]


def test_app_pulls_a_user_image_and_builds_nothing():
    run = run_components(lambda: declare_app(AppConfig(image="ghcr.io/acme/shop:1.4.2")))
    assert run.one(REMOTE_IMAGE).inputs == {"name": "ghcr.io/acme/shop:1.4.2", "keepLocally": True}
    assert run.of_type(BUILT_IMAGE) == []
    assert {n.inputs["image"] for n in app_replicas(run)} == {fake_image_id("ghcr.io/acme/shop:1.4.2")}


def test_app_builds_the_context_locally_when_no_image_is_set():
    run = run_components(lambda: declare_app(AppConfig(build="./services/web")))
    image = run.one(BUILT_IMAGE)
    assert image.inputs["build"] == {"context": "./services/web"}
    assert image.inputs["skipPush"] is True
    assert image.inputs["imageName"] == "hastack-app:dev"
    assert run.of_type(REMOTE_IMAGE) == []
    # The built image's id, not its tag, so a rebuild rolls the replicas.
    assert {n.inputs["image"] for n in app_replicas(run)} == {fake_image_id("hastack-app:dev")}


def test_app_secrets_and_database_urls_stay_secret_in_every_replica():
    run = run_components(lambda: declare_app(AppConfig(image="ghcr.io/acme/shop:1.4.2", replicas=2)))
    for node in app_replicas(run):
        secret_names = sorted(e["value"].split("=", 1)[0] for e in node.wire_inputs["envs"] if is_secret(e))
        assert secret_names == ["DATABASE_READ_URL", "DATABASE_URL", "JWT_SECRET"]


# ---------------------------------------------------------------- load balancer


EDGE_CERTIFICATE_PEM = "-----BEGIN CERTIFICATE-----\nZWRnZQ==\n-----END CERTIFICATE-----\n"
EDGE_KEY_PEM = "-----BEGIN PRIVATE KEY-----\nedge-key-material\n-----END PRIVATE KEY-----\n"


def declare_load_balancer(aliases: list[str], config: LoadBalancerConfig | None = None) -> None:
    LoadBalancer(
        "lb",
        LoadBalancerArgs(
            config=config or LoadBalancerConfig(),
            network_name="net",
            backend_aliases=aliases,
            backend_port=8000,
            health_path="/readyz",
            certificate=ServerCertificate(pulumi.Output.from_input(EDGE_CERTIFICATE_PEM), pulumi.Output.secret(EDGE_KEY_PEM)),
        ),
    )


def server_lines(cfg: str) -> list[str]:
    return [line.split() for line in cfg.splitlines() if line.strip().startswith("server ")]


def test_load_balancer_checks_every_backend_by_its_alias():
    run = run_components(lambda: declare_load_balancer(["app-0", "app-1", "app-2"]))
    haproxy = run.by_name("lb-haproxy")
    cfg = upload(haproxy, CONFIG_FILE)
    servers = server_lines(cfg)
    assert [(s[1], s[2]) for s in servers] == [("app-0", "app-0:8000"), ("app-1", "app-1:8000"), ("app-2", "app-2:8000")]
    assert all("check" in s for s in servers)
    assert "option httpchk GET /readyz" in cfg
    assert "nameserver dns 127.0.0.11:53" in cfg
    assert "init-addr last,libc,none" in cfg
    assert "inter 500ms" in cfg and "fall 2" in cfg and "rise 2" in cfg
    assert "timeout check 1000ms" in cfg


def test_load_balancer_publishes_the_configured_ports_and_replaces_delete_first():
    config = LoadBalancerConfig(port=80, stats_port=9000)
    run = run_components(lambda: declare_load_balancer(["app-0"], config))
    assert run.one(REMOTE_IMAGE).inputs["name"] == HAPROXY_IMAGE
    haproxy = run.by_name("lb-haproxy")
    assert haproxy.inputs["image"] == fake_image_id(HAPROXY_IMAGE)
    cfg = upload(haproxy, CONFIG_FILE)
    # HAProxy binds unprivileged ports inside; the configured ports are the host side.
    assert "bind *:8080" in cfg and "bind *:8404" in cfg and "bind *:8443 ssl" in cfg
    assert sorted((p["internal"], p["external"]) for p in haproxy.inputs["ports"]) == [(8080, 80), (8404, 9000), (8443, 8443)]
    assert haproxy.delete_before_replace
    assert haproxy.inputs["restart"] == "unless-stopped"


# ---------------------------------------------------------------- TLS


def uploads_by_file(container) -> dict[str, dict]:
    """A container's uploads in wire form (secrets still wrapped), by path."""
    return {u["file"]: u for u in container.wire_inputs["uploads"]}


@pytest.mark.parametrize("declare, nodes, names", [
    (lambda: declare_database(replicas=2), "db-", ["db-primary", "db-replica-0", "db-replica-1"]),
    (lambda: declare_patroni(replicas=2), "db-", ["db-0", "db-1", "db-2"]),
], ids=["manual", "patroni"])
def test_every_database_node_serves_one_certificate_naming_every_node_with_a_key_only_postgres_reads(declare, nodes, names):
    run = run_components(declare)
    [request] = [r for r in run.of_type("tls:index/certRequest:CertRequest") if r.name == "db-server-request"]
    assert request.inputs["dnsNames"] == names
    for key in run.of_type("tls:index/privateKey:PrivateKey"):
        assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")
    for node in containers(run, nodes):
        uploads = uploads_by_file(node)
        key = uploads["/etc/postgresql/hastack/server.key"]
        assert is_secret(key["content"])
        # PostgreSQL refuses a key that is not 0600 and its own (the image's postgres is uid 999).
        assert (key["owner"], key["group"], key["permissions"]) == ("999", "999", "0600")
        assert "/etc/postgresql/hastack/server.crt" in uploads and "/etc/postgresql/hastack/ca.crt" in uploads


def test_load_balancer_with_tls_serves_https_with_a_pem_only_haproxy_reads():
    config = LoadBalancerConfig(tls={"port": 443, "hstsMaxAgeSeconds": 600})
    run = run_components(lambda: declare_load_balancer(["app-0"], config))
    haproxy = run.by_name("lb-haproxy")
    cfg = upload(haproxy, CONFIG_FILE)
    assert f"bind *:8443 ssl crt {CERTIFICATE_FILE} alpn h2,http/1.1 ssl-min-ver TLSv1.2" in cfg
    # The published port 443 needs no port in the redirect; the Host header's port is dropped.
    assert "redirect location https://%[var(txn.host_only)]%[pathq] code 308 unless { ssl_fc }" in cfg
    assert 'Strict-Transport-Security "max-age=600"' in cfg
    pem = uploads_by_file(haproxy)[CERTIFICATE_FILE]
    assert is_secret(pem["content"]) and (pem["owner"], pem["group"], pem["permissions"]) == ("99", "99", "0600")
    assert upload(haproxy, CERTIFICATE_FILE) == EDGE_CERTIFICATE_PEM + "\n" + EDGE_KEY_PEM
    assert (8443, 443) in {(p["internal"], p["external"]) for p in haproxy.inputs["ports"]}


def test_load_balancer_without_tls_binds_no_ssl_and_uploads_no_key():
    run = run_components(lambda: declare_load_balancer(["app-0"], LoadBalancerConfig(tls={"enabled": False})))
    haproxy = run.by_name("lb-haproxy")
    assert " ssl " not in upload(haproxy, CONFIG_FILE)
    assert CERTIFICATE_FILE not in uploads_by_file(haproxy)
    assert sorted(p["internal"] for p in haproxy.inputs["ports"]) == [8080, 8404]
