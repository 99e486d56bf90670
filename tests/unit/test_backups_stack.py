"""Backups under mocks: WAL archiving, the repository, the schedule and encryption on every
shipped self-hosted stack file (and its Patroni variant), restore as code, and the
config rules that keep a backup setup from being half-right."""

from __future__ import annotations

import configparser
import json

import pytest
import yaml

from components.backups import BACKUP_JOB, BACKUP_REPORT, CRONTAB, PEER_TLS
from components.docker.backups import CONF_FILE
from components.docker.database import RESTORE_SCRIPT, STANZA_CREATE_SCRIPT
from components.docker.patroni import CONFIG_FILE as PATRONI_CONFIG_FILE
from components.docker.patroni import POST_BOOTSTRAP_SCRIPT as PATRONI_POST_BOOTSTRAP
from components.render.pgbackrest import (
    CIPHER_PASS_ENV,
    DB_CONNECT_ERROR,
    S3_KEY_ENV,
    S3_KEY_SECRET_ENV,
    STANDBY_UNREACHABLE_MARKER,
)
from plan.engine import ProgramError, ProgramRun, is_secret, run_program, run_stack_file, stack_file_config
from tests.unit.mock_run import SHIPPED_STACK_FILES, containers, env_of, upload

SELF_HOSTED_STACK_FILES = [path for path in SHIPPED_STACK_FILES
                           if yaml.safe_load(path.read_text())["config"].get("hastack:platform", "docker") == "docker"]
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


def with_overrides(path, stack: str = "dev", **overrides: dict) -> ProgramRun:
    raw = stack_file_config(path)
    for key, value in overrides.items():
        current = json.loads(raw.get(f"hastack:{key}", "{}"))
        raw[f"hastack:{key}"] = json.dumps({**current, **value})
    return run_program(raw, stack)


def db_nodes(run: ProgramRun):
    return containers(run, "db-")


def wire_env(container, name: str):
    """The wire form of env entry `name`: secret-wrapped or not."""
    envs = container.wire_inputs["envs"]
    return next(entry for entry in envs if (entry["value"] if is_secret(entry) else entry).startswith(f"{name}="))


def pgbackrest_conf(container) -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(upload(container, CONF_FILE))
    return config


def test_there_is_a_self_hosted_shipped_stack():
    assert SELF_HOSTED_STACK_FILES


@pytest.fixture(scope="module", params=[p.name for p in SELF_HOSTED_STACK_FILES] + ["patroni"])
def shipped(request) -> ProgramRun:
    path = next(p for p in SELF_HOSTED_STACK_FILES if p.name == request.param or request.param == "patroni")
    if request.param == "patroni":
        return with_overrides(path, database={"failover": "patroni"})
    return run_stack_file(path)


def test_every_db_node_archives_with_pgbackrest_on_a_timeout(shipped):
    nodes = db_nodes(shipped)
    assert len(nodes) >= 2
    for node in nodes:
        if node.name.startswith("db-primary") or node.name.startswith("db-replica"):
            # The primary's command, or the flags its replica bootstrap script execs postgres with.
            text = " ".join(node.inputs["command"]) if node.name == "db-primary" else \
                upload(node, "/usr/local/bin/hastack-replica-bootstrap")
            assert "archive_mode=on" in text and "archive_timeout=60s" in text
            assert "archive-push %p" in text
        else:  # Patroni: the archive settings are DCS parameters, so every leader archives
            parameters = yaml.safe_load(upload(node, PATRONI_CONFIG_FILE))["bootstrap"]["dcs"]["postgresql"]["parameters"]
            assert parameters["archive_mode"] == "on" and parameters["archive_timeout"] == "60s"
            assert parameters["archive_command"].endswith("archive-push %p")


def test_every_db_node_mounts_the_repository_and_reads_the_same_encrypted_config(shipped):
    assert shipped.by_name("backups-repository").type == "docker:index/volume:Volume"
    for node in db_nodes(shipped):
        mounts = {v.get("containerPath"): v.get("volumeName") for v in node.inputs["volumes"]}
        assert mounts["/var/lib/pgbackrest"] == "backups-repository"
        assert mounts["/var/run/postgresql"] == f"{node.name}-socket"
        conf = pgbackrest_conf(node)
        assert conf["global"]["repo1-type"] == "posix"
        assert conf["global"]["repo1-path"] == "/var/lib/pgbackrest/pgbackrest"
        assert conf["global"]["repo1-cipher-type"] == "aes-256-cbc"
        assert "repo1-cipher-pass" not in conf["global"]
        assert conf["global:archive-push"]["archive-async"] == "y"
        assert not conf["global"]["spool-path"].startswith("/var/lib/postgresql")
        assert "archive-push-queue-max" not in conf["global"]


def test_the_passphrase_is_generated_secret_and_in_every_pgbackrest_container(shipped):
    passphrase = shipped.by_name("backups-cipher-pass")
    assert passphrase.type == RANDOM_PASSWORD and passphrase.inputs["length"] >= 48
    for node in [*db_nodes(shipped), *containers(shipped, "backup-")]:
        assert is_secret(wire_env(node, CIPHER_PASS_ENV))
        assert not any("cipher-pass" in u["content"] for u in node.inputs["uploads"])


def test_each_node_has_a_scheduler_with_the_default_cron_and_its_volumes(shipped):
    nodes = [n for n in db_nodes(shipped)]
    schedulers = containers(shipped, "backup-")
    assert sorted(s.name for s in schedulers) == sorted(f"backup-{n.name}" for n in nodes)
    for scheduler in schedulers:
        assert scheduler.inputs["entrypoints"] == ["supercronic", CRONTAB]
        assert scheduler.inputs["user"] == "postgres"
        crontab = upload(scheduler, CRONTAB)
        # Through the backup report (monitoring), which runs the job with the same argument.
        assert f"0 1 * * 0 {BACKUP_REPORT} full" in crontab and f"0 1 * * 1-6 {BACKUP_REPORT} diff" in crontab
        assert f"{BACKUP_REPORT} ensure" in crontab
        node = shipped.by_name(scheduler.name.removeprefix("backup-"))
        assert set(scheduler.inputs["volumes"][0]) == {"fromContainer"}
        assert node.urn in scheduler.dependencies
        assert "pg_is_in_recovery" in upload(scheduler, BACKUP_JOB)


def test_a_protected_stack_protects_the_repository_and_the_passphrase():
    raw = {**stack_file_config(SELF_HOSTED_STACK_FILES[0]), "hastack:protect": "true"}
    run = run_program(raw, "dev")
    assert run.by_name("backups-repository").protect and run.by_name("backups-cipher-pass").protect


def test_the_primary_creates_the_stanza_at_initdb_and_runs_under_an_init():
    run = run_stack_file(SELF_HOSTED_STACK_FILES[0])
    primary = run.by_name("db-primary")
    assert "stanza-create" in upload(primary, STANZA_CREATE_SCRIPT)
    assert all(node.inputs["init"] is True for node in db_nodes(run))


def test_nfs_repository_volume_has_the_mount_options():
    run = with_overrides(SELF_HOSTED_STACK_FILES[0], backups={"repository": {"volume": {"driver": "nfs", "nfs": {
        "server": "backup.internal", "path": "/exports/pg"}}}})
    volume = run.by_name("backups-repository")
    assert volume.inputs["driverOpts"]["device"] == ":/exports/pg"
    assert volume.inputs["driverOpts"]["o"].startswith("addr=backup.internal,")


def test_an_s3_repository_has_no_volume_and_secret_credentials():
    run = with_overrides(SELF_HOSTED_STACK_FILES[0], backups={"repository": {"type": "s3", "s3": {
        "endpoint": "minio.internal:9000", "bucket": "pg-backups", "uriStyle": "path", "key": "AKIA123", "keySecret": "s3cr3t"}}})
    assert [v.name for v in run.of_type("docker:index/volume:Volume") if v.name == "backups-repository"] == []
    primary = run.by_name("db-primary")
    conf = pgbackrest_conf(primary)["global"]
    assert (conf["repo1-type"], conf["repo1-s3-bucket"], conf["repo1-s3-endpoint"], conf["repo1-storage-port"]) == (
        "s3", "pg-backups", "minio.internal", "9000")
    for name in (S3_KEY_ENV, S3_KEY_SECRET_ENV):
        assert is_secret(wire_env(primary, name))
    assert "s3cr3t" not in upload(primary, CONF_FILE)


def test_a_restore_bootstraps_the_primary_from_the_repository_in_pgbackrest_time_format():
    run = with_overrides(SELF_HOSTED_STACK_FILES[0], database={"restore": {"target": "2026-12-01T11:00:00+01:00"}})
    primary = run.by_name("db-primary")
    assert primary.inputs["entrypoints"] == [RESTORE_SCRIPT]
    script = upload(primary, RESTORE_SCRIPT)
    assert "--type=time '--target=2026-12-01 10:00:00+00' --target-action=promote --target-timeline=latest" in script
    assert "--archive-mode=off" not in script  # the restored cluster is the new production one
    assert "archive_mode=on" in script  # ...and archives on its new timeline
    assert not any(u["file"].startswith("/docker-entrypoint-initdb.d/") for u in primary.inputs["uploads"])
    # Replicas follow the restored primary with a base backup, as always.
    assert "pg_basebackup" in upload(run.by_name("db-replica-0"), "/usr/local/bin/hastack-replica-bootstrap")


def test_patroni_restores_by_its_bootstrap_method_and_builds_replicas_from_the_repository_first():
    run = with_overrides(SELF_HOSTED_STACK_FILES[0], database={"failover": "patroni", "restore": {"target": "latest"}})
    for member in db_nodes(run):
        document = yaml.safe_load(upload(member, PATRONI_CONFIG_FILE))
        assert document["bootstrap"]["method"] == "pgbackrest"
        assert document["bootstrap"]["pgbackrest"] == {"command": RESTORE_SCRIPT, "keep_existing_recovery_conf": True,
                                                       "no_params": True}
        assert "post_bootstrap" not in document["bootstrap"]
        assert document["postgresql"]["create_replica_methods"] == ["pgbackrest", "basebackup"]
        assert document["postgresql"]["pgbackrest"]["keep_data"] is True
        assert document["postgresql"]["pgbackrest"]["no_params"] is True
        assert "--type=standby" in document["postgresql"]["pgbackrest"]["command"]
        assert "--type=default --target-timeline=latest" in upload(member, RESTORE_SCRIPT)


def test_backups_disabled_means_no_archive_and_the_official_image():
    run = with_overrides(SELF_HOSTED_STACK_FILES[0], backups={"enabled": False})
    assert "archive_mode=on" not in " ".join(run.by_name("db-primary").inputs["command"])
    assert containers(run, "backup-") == []
    assert run.outputs.get("backupRepository") is None
    assert [image.name for image in run.of_type("docker:index/remoteImage:RemoteImage") if image.name == "db-image"] == ["db-image"]


# (case id, overrides, the line we expect)
BAD_BACKUP_CONFIG = [
    ("pairing", {"database": {"version": "18"}, "backups": {"pgbackrestVersion": "2.54.0"}},
     "hastack: backups.pgbackrestVersion 2.54.0 does not support PostgreSQL 18; it needs pgBackRest >= 2.57"),
    ("restore-without-backups", {"database": {"restore": {"target": "latest"}}, "backups": {"enabled": False}},
     "hastack: database.restore on self-hosted restores from the pgBackRest repository; set backups.enabled: true"),
    ("restore-azure-only-keys", {"database": {"restore": {"target": "latest", "sourceServerId": "/subscriptions/x"}}},
     "hastack: database.restore.sourceServerId and database.restore.mode are Azure-only"),
    ("restore-target-without-offset", {"database": {"restore": {"target": "2026-12-01T10:00:00"}}},
     "hastack:database.restore.target: target must be 'latest' or a time with an explicit offset"),
    ("s3-without-settings", {"backups": {"repository": {"type": "s3"}}},
     "hastack:backups.repository: type 's3' needs s3: {endpoint, bucket, key, keySecret}"),
    ("s3-with-scheme", {"backups": {"repository": {"type": "s3", "s3": {"endpoint": "https://x", "bucket": "abc", "key": "k", "keySecret": "s"}}}},
     "hastack:backups.repository.s3.endpoint: endpoint must be a host name with an optional port"),
    ("bad-cron", {"backups": {"schedule": {"full": "weekly"}}},
     "hastack:backups.schedule.full: must be a five-field cron expression"),
    ("archive-timeout-too-short", {"backups": {"archiveTimeoutS": 1}},
     "hastack:backups.archiveTimeoutS: Input should be greater than or equal to 10 (got 1)"),
    ("nfs-without-server", {"backups": {"repository": {"volume": {"driver": "nfs"}}}},
     "hastack:backups.repository.volume: driver 'nfs' needs nfs: {server, path}"),
    ("retention-zero", {"backups": {"retention": {"full": 0}}},
     "hastack:backups.retention.full: Input should be greater than or equal to 1 (got 0)"),
]


@pytest.mark.parametrize("overrides, expected", [c[1:] for c in BAD_BACKUP_CONFIG], ids=[c[0] for c in BAD_BACKUP_CONFIG])
def test_bad_backup_config_is_one_clear_line_and_registers_nothing(overrides, expected):
    with pytest.raises(ProgramError) as caught:
        with_overrides(SELF_HOSTED_STACK_FILES[0], **overrides)
    problems = str(caught.value).splitlines()[1:]
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]
    assert caught.value.run.resources == []


def test_each_node_has_a_pgbackrest_tls_server_and_lists_its_peers_for_backups_from_a_standby(shipped):
    nodes = db_nodes(shipped)
    servers = containers(shipped, "pgbackrest-")
    assert sorted(s.name for s in servers) == sorted(f"pgbackrest-{n.name}" for n in nodes)
    server_aliases = {f"{n.name}-pgbackrest" for n in nodes}
    for server in servers:
        node = shipped.by_name(server.name.removeprefix("pgbackrest-"))
        assert server.inputs["entrypoints"] == ["pgbackrest", f"--config={CONF_FILE}", "server"]
        assert server.inputs["user"] == "postgres"
        assert [set(v) for v in server.inputs["volumes"]] == [{"fromContainer"}]
        assert server.inputs["networksAdvanced"][0]["aliases"] == [f"{node.name}-pgbackrest"]
        # A pg host only reads its data dir: the TLS server gets no repository passphrase.
        assert "envs" not in server.inputs
        conf = pgbackrest_conf(server)
        assert conf["global:server"]["tls-server-auth"] == f"{PEER_TLS.client_common_name}=db"
        assert conf["global:server"]["tls-server-key-file"] == PEER_TLS.server_key_file
        # The peers are for `backup` only; pg1 is the node itself.
        peers = conf["db:backup"]
        hosts = {peers[f"pg{index}-host"] for index in range(2, len(nodes) + 1)}
        assert hosts == server_aliases - {f"{node.name}-pgbackrest"}
        assert all(peers[f"pg{index}-host-type"] == "tls" for index in range(2, len(nodes) + 1))
        assert peers["pg2-host-cert-file"] == PEER_TLS.client_certificate_file
        assert conf["db"]["pg1-path"] == peers["pg2-path"]
        assert "pg1-host" not in conf["db"]


def test_the_peer_certificates_come_from_the_stack_ca_with_keys_secret_and_only_beside_the_nodes(shipped):
    server_cert = next(r for r in shipped.resources if r.name.endswith("-pgbackrest-server-cert"))
    client_cert = next(r for r in shipped.resources if r.name.endswith("-pgbackrest-client-cert"))
    assert "server_auth" in server_cert.inputs["allowedUses"] and "client_auth" in client_cert.inputs["allowedUses"]
    request = shipped.by_name(server_cert.name.removesuffix("-cert") + "-request")
    assert sorted(request.inputs["dnsNames"]) == sorted(f"{n.name}-pgbackrest" for n in db_nodes(shipped))
    client_request = shipped.by_name(client_cert.name.removesuffix("-cert") + "-request")
    assert client_request.inputs["subject"]["commonName"] == PEER_TLS.client_common_name
    for container in [*containers(shipped, "pgbackrest-"), *containers(shipped, "backup-")]:
        keys = [u for u in container.wire_inputs["uploads"]
                if u["file"] in (PEER_TLS.server_key_file, PEER_TLS.client_key_file)]
        assert len(keys) == 2 and all(is_secret(u["content"]) and u["permissions"] == "0600" for u in keys)
    for node in db_nodes(shipped):
        assert not any(u["file"].startswith("/etc/pgbackrest/tls/") for u in node.inputs["uploads"])


def test_the_job_backs_up_from_a_streaming_standby_and_falls_back_to_the_primary(shipped):
    job = upload(containers(shipped, "backup-")[0], BACKUP_JOB)
    assert "pg_stat_replication WHERE state = 'streaming'" in job
    assert '--type="$kind" --backup-standby' in job
    assert f'[ "$code" = {DB_CONNECT_ERROR} ]' in job and STANDBY_UNREACHABLE_MARKER in job


def test_patroni_creates_the_stanza_in_its_post_bootstrap_hook_before_anything_is_archived():
    run = with_overrides(SELF_HOSTED_STACK_FILES[0], database={"failover": "patroni"})
    for member in db_nodes(run):
        hook = upload(member, PATRONI_POST_BOOTSTRAP)
        assert hook.rstrip().endswith(f"pgbackrest --config={CONF_FILE} --stanza=db stanza-create")


def test_a_single_node_backs_up_from_itself_with_no_tls_server_or_peer_certificates():
    run = with_overrides(SELF_HOSTED_STACK_FILES[0], database={"replicas": 0})
    assert containers(run, "pgbackrest-") == []
    assert not any(r.name.endswith(("-pgbackrest-server-cert", "-pgbackrest-client-cert")) for r in run.resources)
    conf = pgbackrest_conf(run.by_name("db-primary"))
    assert "db:backup" not in conf and "global:server" not in conf
    assert "--backup-standby" not in upload(containers(run, "backup-")[0], BACKUP_JOB)
