"""Pure text assertions on the renderers (the real binaries run them in tests/integration)."""

from __future__ import annotations

import ast
import math
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from components.config import HealthCheckConfig
from components.render import etcd, haproxy, patroni, postgres
from components.render.etcd import EtcdClusterSettings, EtcdMember, etcd_member_flags
from components.render.haproxy import Backend, HaproxySettings, render_haproxy_cfg
from components.render.patroni import PatroniSettings, patroni_post_bootstrap_script, render_patroni_yml
from components.render.postgres import (
    PrimarySettings,
    ReplicaSettings,
    ServerTls,
    primary_init_script,
    primary_server_flags,
    render_pg_hba,
    replica_bootstrap_script,
    replica_slot_name,
)


def lb_settings(replicas: int = 2, **overrides) -> HaproxySettings:
    fields = dict(frontend_port=8080, stats_port=8404,
                  backends=tuple(Backend(f"app-{i}", f"app-{i}", 8000) for i in range(replicas)),
                  health_path="/readyz", interval_ms=500, fall=2, rise=2, timeout_check_ms=1000)
    return HaproxySettings(**{**fields, **overrides})


SERVER_TLS = ServerTls(certificate_file="/tls/server.crt", key_file="/tls/server.key", ca_file="/tls/ca.crt")


def test_haproxy_with_tls_tells_the_app_the_scheme_and_redirects_only_plain_http() -> None:
    tls = haproxy.TlsTermination(port=8443, certificate_file="/certs/site.pem", public_port=9443, hsts_max_age_s=600)
    cfg = render_haproxy_cfg(lb_settings(tls=tls))
    frontend = cfg[cfg.index("frontend web"):cfg.index("backend app")]
    # After the redirect, so only HTTPS requests reach it; a client's own value is replaced.
    assert frontend.index("redirect location https://%[var(txn.host_only)]:9443%[pathq] code 308 unless { ssl_fc }") < \
        frontend.index("http-request set-header X-Forwarded-Proto https")
    assert "ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets" in cfg
    assert " ssl " not in render_haproxy_cfg(lb_settings())


def primary_settings(**overrides) -> PrimarySettings:
    fields = dict(replica_slots=("replica_0", "replica_1"), max_slot_wal_keep_size_mb=4096,
                  replication_cidr="172.28.0.0/16", app_db="shop", app_user="shop_app", tls=SERVER_TLS)
    return PrimarySettings(**{**fields, **overrides})


def replica_settings(**overrides) -> ReplicaSettings:
    fields = dict(primary_host="db-primary", primary_port=5432, slot_name="replica_1",
                  data_dir="/var/lib/postgresql/data", ca_file=SERVER_TLS.ca_file)
    return ReplicaSettings(**{**fields, **overrides})


def flag_values(flags: list[str]) -> dict[str, str]:
    assert flags[::2] == ["-c"] * (len(flags) // 2), "flags must be -c name=value pairs"
    return dict(pair.split("=", 1) for pair in flags[1::2])


# A literal password would be `password=<value>`, `password: <value>` or `PASSWORD '<value>'`;
# `PGPASSWORD="$VAR"` only refers to the environment.
LITERAL_PASSWORD = re.compile(r"password(\s*=\s*|:\s+)(?![\"']?\$)\S|PASSWORD\s+'", re.IGNORECASE)


def normalized(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text)


# ---------------------------------------------------------------- postgres


def test_slot_names_are_one_per_replica_index() -> None:
    assert [replica_slot_name(i) for i in range(3)] == ["replica_0", "replica_1", "replica_2"]
    with pytest.raises(ValueError):
        replica_slot_name(-1)


def test_primary_flags_enable_replication_with_bounded_slot_wal() -> None:
    values = flag_values(primary_server_flags(primary_settings(max_slot_wal_keep_size_mb=2048)))
    assert values["wal_level"] == "replica"
    assert values["max_slot_wal_keep_size"] == "2048MB"
    assert int(values["max_wal_senders"]) >= 2 and int(values["max_replication_slots"]) >= 2
    assert values["hot_standby"] == "on"
    assert values["hot_standby_feedback"] == "on"
    assert values["password_encryption"] == "scram-sha-256"
    assert values["listen_addresses"] == "*"
    assert values["wal_keep_size"].endswith("MB")
    assert "archive_mode" not in values  # off until something consumes the archive


@pytest.mark.parametrize("unbounded", [0, -1])
def test_slot_wal_must_be_bounded(unbounded: int) -> None:
    with pytest.raises(ValueError, match="unbounded"):
        primary_settings(max_slot_wal_keep_size_mb=unbounded)


def test_pg_hba_admits_replication_from_the_private_network_only() -> None:
    hba = normalized(render_pg_hba(primary_settings()))
    assert "hostssl replication replicator 172.28.0.0/16 scram-sha-256" in hba
    assert "hostssl all all 172.28.0.0/16 scram-sha-256" in hba
    assert "trust" not in hba and "0.0.0.0/0" not in hba


def test_pg_hba_admits_tcp_over_tls_only() -> None:
    rules = [line.split() for line in render_pg_hba(primary_settings()).splitlines() if line and not line.startswith("#")]
    assert {rule[0] for rule in rules} == {"local", "hostssl"}


def test_every_node_serves_tls_1_2_or_later_with_the_stack_certificate() -> None:
    flags = flag_values(primary_server_flags(primary_settings()))
    assert flags["ssl"] == "on"
    assert (flags["ssl_cert_file"], flags["ssl_key_file"]) == ("/tls/server.crt", "/tls/server.key")
    assert flags["ssl_min_protocol_version"] == "TLSv1.2"


def test_replica_verifies_the_primary_certificate_on_every_connection() -> None:
    script = replica_bootstrap_script(replica_settings())
    export = script.index("export PGSSLMODE=verify-full PGSSLROOTCERT=/tls/ca.crt")
    # Before the first connection to the primary (pg_isready), so nothing goes out unverified.
    assert export < script.index("pg_isready")


def test_init_script_creates_roles_slots_and_app_db() -> None:
    script = primary_init_script(primary_settings())
    assert "CREATE ROLE replicator WITH LOGIN REPLICATION PASSWORD :'replication_password';" in script
    assert "CREATE ROLE shop_app WITH LOGIN PASSWORD :'app_password';" in script
    assert "CREATE DATABASE shop OWNER shop_app;" in script
    for slot in ("replica_0", "replica_1"):
        assert f"SELECT pg_create_physical_replication_slot('{slot}');" in script


def test_passwords_come_only_from_the_environment() -> None:
    init = primary_init_script(primary_settings())
    assert "\\getenv replication_password REPLICATION_PASSWORD" in init
    assert "\\getenv app_password APP_DB_PASSWORD" in init
    bootstrap = replica_bootstrap_script(replica_settings())
    assert 'export PGPASSWORD="${REPLICATION_PASSWORD:?' in bootstrap
    rendered = [init, bootstrap, render_pg_hba(primary_settings()), " ".join(primary_server_flags(primary_settings())),
                render_haproxy_cfg(lb_settings())]
    for text in rendered:
        assert not LITERAL_PASSWORD.search(text), text


def test_replica_script_bootstraps_from_its_slot_and_execs_postgres() -> None:
    flags = tuple(primary_server_flags(primary_settings()))
    script = replica_bootstrap_script(replica_settings(server_flags=flags, port=5433))
    assert "-R -X stream -S replica_1" in script
    assert "pg_basebackup -h db-primary -p 5432 -U replicator" in script
    assert "--create-slot --if-not-exists -S replica_1" in script
    # The replica's own port comes last, so it wins over the primary's flags.
    assert script.rstrip().endswith("-c port=5433")
    assert "exec postgres -D \"$data_dir\" -c 'listen_addresses=*'" in script


def test_replica_script_waits_for_the_primary_a_bounded_time() -> None:
    script = replica_bootstrap_script(replica_settings(primary_wait_attempts=30))
    assert "until pg_isready -h db-primary -p 5432 -t 1 -q" in script
    assert '-ge 30 ]' in script


def test_replica_script_uses_bin_dir_when_given() -> None:
    script = replica_bootstrap_script(replica_settings(bin_dir="/usr/lib/postgresql/15/bin"))
    assert "/usr/lib/postgresql/15/bin/pg_basebackup " in script
    assert "exec /usr/lib/postgresql/15/bin/postgres " in script


def test_scripts_are_valid_shell(tmp_path: Path) -> None:
    for shell, text in [("sh", replica_bootstrap_script(replica_settings())),
                        ("bash", primary_init_script(primary_settings())),
                        ("bash", patroni_post_bootstrap_script(primary_settings()))]:
        path = tmp_path / f"script.{shell}"
        path.write_text(text)
        result = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("bad", [
    dict(app_db="shop; DROP TABLE x"),
    dict(app_user="Shop"),
    dict(replica_slots=("replica-0",)),
    dict(replica_slots=("replica_0", "replica_0")),
    dict(replication_cidr="everywhere"),
])
def test_primary_settings_reject_text_that_would_break_sql_or_hba(bad: dict) -> None:
    with pytest.raises(ValueError):
        primary_settings(**bad)


@pytest.mark.parametrize("bad", [
    dict(primary_host="db; rm -rf /"),
    dict(slot_name="$(reboot)"),
    dict(data_dir="relative/data"),
])
def test_replica_settings_reject_text_that_would_break_the_script(bad: dict) -> None:
    with pytest.raises(ValueError):
        replica_settings(**bad)


# ---------------------------------------------------------------- patroni


def patroni_settings(**overrides) -> PatroniSettings:
    fields = dict(scope="shop", node_name="db-0", etcd_hosts=("etcd-0:2379", "etcd-1:2379"),
                  restapi_listen="0.0.0.0:8008", restapi_connect_address="db-0:8008",
                  postgres_listen="0.0.0.0:5432", postgres_connect_address="db-0:5432",
                  data_dir="/var/lib/postgresql/data", database=primary_settings())
    return PatroniSettings(**{**fields, **overrides})


def test_patroni_yml_runs_synchronous_mode_tuned_for_fast_failover() -> None:
    document = yaml.safe_load(render_patroni_yml(patroni_settings()))
    dcs = document["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    assert dcs["ttl"] + dcs["loop_wait"] <= 10  # the leader lease expires, then one loop to promote
    assert dcs["ttl"] >= dcs["loop_wait"] + 2 * dcs["retry_timeout"]
    assert document["etcd3"]["hosts"] == ["etcd-0:2379", "etcd-1:2379"]
    assert document["postgresql"]["connect_address"] == "db-0:5432"


def test_patroni_yml_reuses_the_manual_mode_settings_without_passwords() -> None:
    text = render_patroni_yml(patroni_settings())
    document = yaml.safe_load(text)
    parameters = document["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert parameters["max_slot_wal_keep_size"] == "4096MB"
    assert "listen_addresses" not in parameters and "port" not in parameters  # from postgresql.listen
    assert "hostssl replication replicator 172.28.0.0/16 scram-sha-256" in map(normalized, document["postgresql"]["pg_hba"])
    assert parameters["ssl"] == "on" and parameters["ssl_key_file"] == "/tls/server.key"
    verified = {"sslmode": "verify-full", "sslrootcert": "/tls/ca.crt"}
    assert document["postgresql"]["authentication"] == {"superuser": {"username": "postgres", **verified},
                                                        "replication": {"username": "replicator", **verified}}
    assert not LITERAL_PASSWORD.search(text)


def test_patroni_rejects_a_ttl_a_dcs_hiccup_would_expire() -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        patroni_settings(ttl_s=4, loop_wait_s=1, retry_timeout_s=2)


def test_patroni_post_bootstrap_creates_the_app_database_from_env() -> None:
    script = patroni_post_bootstrap_script(primary_settings())
    assert 'psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname "$1"' in script
    assert "\\getenv app_password APP_DB_PASSWORD" in script
    assert "CREATE DATABASE shop OWNER shop_app;" in script


# ---------------------------------------------------------------- etcd


def etcd_cluster(members: int = 3) -> EtcdClusterSettings:
    return EtcdClusterSettings(members=tuple(EtcdMember(f"etcd-{i}", f"etcd-{i}") for i in range(members)),
                               cluster_token="hastack-dev")


def test_etcd_members_bootstrap_statically_from_the_same_member_list() -> None:
    cluster = etcd_cluster()
    flags = [dict(flag.removeprefix("--").split("=", 1) for flag in etcd_member_flags(cluster, f"etcd-{i}", "/var/lib/etcd"))
             for i in range(3)]
    assert {f["initial-cluster"] for f in flags} == {"etcd-0=http://etcd-0:2380,etcd-1=http://etcd-1:2380,etcd-2=http://etcd-2:2380"}
    assert flags[1]["name"] == "etcd-1"
    assert flags[1]["advertise-client-urls"] == "http://etcd-1:2379"
    assert flags[1]["initial-advertise-peer-urls"] == "http://etcd-1:2380"
    assert flags[1]["listen-client-urls"] == "http://0.0.0.0:2379"
    assert flags[1]["initial-cluster-state"] == "new" and flags[1]["initial-cluster-token"] == "hastack-dev"
    assert cluster.client_endpoints == ("etcd-0:2379", "etcd-1:2379", "etcd-2:2379")


def test_etcd_raft_timing_only_when_set() -> None:
    assert not any(flag.startswith(("--heartbeat", "--election")) for flag in etcd_member_flags(etcd_cluster(), "etcd-0", "/d"))
    tuned = EtcdClusterSettings(members=etcd_cluster().members, cluster_token="t", heartbeat_interval_ms=50, election_timeout_ms=500)
    assert etcd_member_flags(tuned, "etcd-0", "/d")[-2:] == ["--heartbeat-interval=50", "--election-timeout=500"]


@pytest.mark.parametrize("members", [2, 4])
def test_etcd_cluster_refuses_an_even_member_count(members: int) -> None:
    with pytest.raises(ValueError, match="odd number"):
        etcd_cluster(members)


def test_etcd_flags_only_for_a_member_of_the_cluster() -> None:
    with pytest.raises(ValueError, match="not a member"):
        etcd_member_flags(etcd_cluster(), "etcd-9", "/var/lib/etcd")


# ---------------------------------------------------------------- haproxy


def test_haproxy_checks_every_backend_actively() -> None:
    cfg = render_haproxy_cfg(lb_settings(replicas=3))
    assert "option httpchk GET /readyz" in cfg
    assert "http-check expect status 200" in cfg
    servers = re.findall(r"^\s+server (\S+) (\S+) check$", cfg, re.MULTILINE)
    assert servers == [("app-0", "app-0:8000"), ("app-1", "app-1:8000"), ("app-2", "app-2:8000")]


def test_haproxy_has_fast_ejection_and_retries() -> None:
    cfg = render_haproxy_cfg(lb_settings(interval_ms=400, fall=3, rise=2))
    default_server = next(line for line in cfg.splitlines() if "default-server" in line)
    for option in ["inter 400ms", "fastinter 200ms", "downinter 400ms", "fall 3", "rise 2", "observe layer7",
                   "error-limit", "on-error mark-down", "init-addr last,libc,none"]:
        assert option in default_server
    for line in ["retries 3", "option redispatch 1", "retry-on conn-failure empty-response response-timeout 503",
                 "timeout connect 1s", "timeout check 1000ms", "balance roundrobin"]:
        assert f"    {line}\n" in cfg


def test_default_health_check_ejects_within_one_second() -> None:
    health = HealthCheckConfig()
    settings = lb_settings(interval_ms=health.interval_ms, fall=health.fall)
    worst_case_ms = settings.interval_ms + (settings.fall - 1) * settings.fastinter_ms
    assert worst_case_ms <= 1000


def cfg_section(cfg: str, header: str) -> list[str]:
    """The stripped lines of the haproxy.cfg section that starts with `header`."""
    block = next(block for block in cfg.split("\n\n") if block.startswith(header))
    return [line.strip() for line in block.splitlines()[1:]]


def test_haproxy_reuses_server_connections_by_default() -> None:
    cfg = render_haproxy_cfg(lb_settings())
    backend = cfg_section(cfg, "backend app")
    assert "option http-keep-alive" in backend and "http-reuse safe" in backend
    assert "option http-server-close" not in cfg
    server_defaults = next(line for line in backend if line.startswith("default-server"))
    assert f"pool-purge-delay {haproxy.SERVER_IDLE_POOL_PURGE_S}s" in server_defaults
    assert f"pool-max-conn {haproxy.SERVER_IDLE_POOL_MAX}" in server_defaults


def test_haproxy_reuses_connections_for_reads_only_when_reads_have_their_own_backend() -> None:
    cfg = render_haproxy_cfg(lb_settings(read_health_path="/readyz/read"))
    reads, writes = cfg_section(cfg, f"backend {haproxy.READ_BACKEND}"), cfg_section(cfg, "backend app")
    assert "http-reuse safe" in reads and "option http-keep-alive" in reads
    assert "option http-server-close" in writes and "http-reuse safe" not in writes


def test_haproxy_sends_writes_to_the_read_backend_only_while_no_replica_can_write() -> None:
    frontend = cfg_section(render_haproxy_cfg(lb_settings(read_health_path="/readyz/read")), f"frontend {haproxy.WEB_FRONTEND}")
    assert frontend[-3:] == [f"use_backend {haproxy.READ_BACKEND} if {{ method GET HEAD OPTIONS }}",
                             f"use_backend {haproxy.READ_BACKEND} if {{ nbsrv(app) eq 0 }}",
                             "default_backend app"]
    assert not any("nbsrv" in line for line in cfg_section(render_haproxy_cfg(lb_settings()), f"frontend {haproxy.WEB_FRONTEND}"))


def test_haproxy_opens_one_server_connection_per_request_without_keep_alive() -> None:
    cfg = render_haproxy_cfg(lb_settings(server_keep_alive=False, read_health_path="/readyz/read"))
    for name in ("backend app", f"backend {haproxy.READ_BACKEND}"):
        backend = cfg_section(cfg, name)
        assert "option http-server-close" in backend
        assert "option http-keep-alive" not in backend and "http-reuse safe" not in backend


def test_app_keep_alive_outlasts_the_lbs_idle_pool() -> None:
    # HAProxy closes half of a server's idle connections each purge period, so a full
    # pool is gone after log2(max) + 1 periods; one more period covers the first wait.
    from app.hastack_app.config import APP_KEEP_ALIVE_S

    pool_lifetime_s = haproxy.SERVER_IDLE_POOL_PURGE_S * (math.ceil(math.log2(haproxy.SERVER_IDLE_POOL_MAX)) + 2)
    assert APP_KEEP_ALIVE_S > pool_lifetime_s


def test_haproxy_uses_docker_dns_only_when_given_a_resolver() -> None:
    with_dns = render_haproxy_cfg(lb_settings(resolver="127.0.0.11:53"))
    assert "resolvers docker\n    nameserver dns 127.0.0.11:53\n" in with_dns
    assert "resolvers docker resolve-prefer ipv4" in with_dns
    without = render_haproxy_cfg(lb_settings())
    assert "resolvers" not in without and "nameserver" not in without


def test_haproxy_stats_port_serves_prometheus_and_optional_admin_socket() -> None:
    cfg = render_haproxy_cfg(lb_settings(bind_address="127.0.0.1", stats_socket="/run/haproxy/admin.sock"))
    assert "bind 127.0.0.1:8404" in cfg and "bind 127.0.0.1:8080" in cfg
    assert "http-request use-service prometheus-exporter if { path /metrics }" in cfg
    assert "stats socket /run/haproxy/admin.sock mode 600 level admin" in cfg
    assert "stats socket" not in render_haproxy_cfg(lb_settings())


@pytest.mark.parametrize("backends", [(), (Backend("app-0", "a", 1), Backend("app-0", "b", 1))], ids=["none", "duplicate"])
def test_haproxy_settings_reject_unusable_backends(backends: tuple[Backend, ...]) -> None:
    with pytest.raises(ValueError):
        lb_settings(backends=backends)


@pytest.mark.parametrize("module", [haproxy, postgres, patroni, etcd])
def test_renderers_import_no_pulumi(module) -> None:
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.startswith("pulumi") for name in imported)
