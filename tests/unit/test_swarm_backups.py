"""Backups on the swarm platform under the recording mocks, for the shipped onprem stack and
its variants: WAL archiving in every Patroni member's parameters, the shared repository,
the schedule and its placement beside each member, backups from a standby through the
members' pgBackRest TLS servers, encryption with a passphrase that is only ever a secret,
the backup report feeding the backup-age rule, and restore as code."""

from __future__ import annotations

import base64
import configparser
import json

import pytest
import yaml

from components.backups import BACKUP_JOB, BACKUP_REPORT, CRONTAB, REPORT_DIR
from components.render.pgbackrest import CIPHER_PASS_ENV, CIPHER_TYPE, S3_KEY_ENV, S3_KEY_SECRET_ENV
from plan.engine import is_secret
from plan.fakes import FAKE_SECRET_PREFIX
from tests.unit.test_swarm_stack import NODES, SECRET, SERVICE, mounted_config, run_onprem, service, spec

CONF = "/etc/pgbackrest/pgbackrest.conf"
PATRONI_YML = "/etc/patroni/patroni.yml"
POST_BOOTSTRAP = "/usr/local/bin/hastack-patroni-post-bootstrap"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
MEMBERS = [f"hastack-onprem-db-{i}" for i in range(3)]
PASSPHRASE = f"{FAKE_SECRET_PREFIX}backups-cipher-pass"
NFS_REPOSITORY = {
    "type": "volume", "source": "hastack-onprem-backups-repository", "target": "/var/lib/pgbackrest", "readOnly": False,
    "volumeOptions": {"driverName": "local", "driverOptions": {
        "type": "nfs", "o": "addr=nfs.internal,nfsvers=4.1,rw,hard,timeo=600", "device": ":/exports/hastack-pgbackrest"}},
}
S3 = {"type": "s3", "s3": {"endpoint": "minio.internal:9000", "bucket": "hastack-backups", "uriStyle": "path",
                           "key": "AKIAFAKE", "keySecret": "s3cr3t-key"}}


@pytest.fixture(scope="module")
def onprem():
    return run_onprem()


def pgbackrest_conf(run, resource) -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(mounted_config(run, resource, CONF))
    return config


def patroni_yml(run, index: int) -> dict:
    return yaml.safe_load(mounted_config(run, service(run, f"db-{index}"), PATRONI_YML))


def schedulers(run) -> list:
    return [service(run, f"backup-db-{i}") for i in range(3)]


# ---------------------------------------------------------------- archiving


def test_every_member_archives_through_pgbackrest_in_patronis_parameters(onprem):
    for index in range(3):
        parameters = patroni_yml(onprem, index)["bootstrap"]["dcs"]["postgresql"]["parameters"]
        assert parameters["archive_mode"] == "on"
        assert parameters["archive_command"] == f"pgbackrest --config={CONF} --stanza=db archive-push %p"
        assert parameters["archive_timeout"] == "60s"


def test_the_stanza_is_created_in_post_bootstrap_so_the_first_leader_archives(onprem):
    script = mounted_config(onprem, service(onprem, "db-0"), POST_BOOTSTRAP)
    assert f"pgbackrest --config={CONF} --stanza=db stanza-create" in script
    assert patroni_yml(onprem, 0)["bootstrap"]["post_bootstrap"] == POST_BOOTSTRAP


def test_replicas_are_created_from_the_repository_first(onprem):
    postgresql = patroni_yml(onprem, 1)["postgresql"]
    assert postgresql["create_replica_methods"][0] == "pgbackrest"
    assert postgresql["pgbackrest"]["command"] == (
        f"pgbackrest --config={CONF} --stanza=db restore --type=standby --delta --target-timeline=latest")
    assert postgresql["pgbackrest"]["keep_data"] is True and postgresql["pgbackrest"]["no_params"] is True


# ---------------------------------------------------------------- repository and encryption


def test_repository_is_the_encrypted_nfs_volume_every_member_mounts(onprem):
    for index, member in enumerate(MEMBERS):
        db = service(onprem, f"db-{index}")
        conf = pgbackrest_conf(onprem, db)
        assert conf["global"]["repo1-type"] == "posix"
        assert conf["global"]["repo1-path"] == "/var/lib/pgbackrest/pgbackrest"
        assert conf["global"]["repo1-cipher-type"] == CIPHER_TYPE == "aes-256-cbc"
        assert conf["db"]["pg1-path"] == "/var/lib/postgresql/data/patroni"
        mounts = spec(db)["mounts"]
        assert NFS_REPOSITORY in mounts
        assert {"type": "volume", "source": f"{member}-socket", "target": "/var/run/postgresql", "readOnly": False,
                "volumeOptions": {"driverName": "local"}} in mounts
    # Content-named, one per member, shared by the member, its scheduler and its TLS server:
    # a changed conf rolls the three.
    for index in range(3):
        names = {c["configName"] for r in (service(onprem, f"{role}{index}") for role in ("db-", "backup-db-", "pgbackrest-db-"))
                 for c in spec(r)["configs"] if c["fileName"] == CONF}
        assert len(names) == 1 and names.pop().startswith(f"hastack-onprem-backups-{index}-pgbackrest-conf-")
    assert onprem.outputs["backupRepository"] == (
        "volume hastack-onprem-backups-repository on nfs nfs.internal:/exports/hastack-pgbackrest/pgbackrest")


def test_the_passphrase_is_a_protected_random_password_and_only_ever_a_secret(onprem):
    passphrase = next(r for r in onprem.of_type(RANDOM_PASSWORD) if r.name == "backups-cipher-pass")
    assert passphrase.protect and passphrase.inputs["length"] >= 64
    secrets = {r.name: r for r in onprem.of_type(SECRET)}
    secret = secrets["backups-pgbackrest-repo1-cipher-pass"]
    assert is_secret(secret.wire_inputs["data"])
    assert base64.b64decode(secret.inputs["data"]).decode() == PASSPHRASE
    for resource in [*(service(onprem, f"db-{i}") for i in range(3)), *schedulers(onprem)]:
        container = spec(resource)
        assert container["env"][f"{CIPHER_PASS_ENV}_FILE"] == f"/run/secrets/{CIPHER_PASS_ENV}"
        (mounted,) = [s for s in container["secrets"] if s["fileName"] == CIPHER_PASS_ENV]
        assert (mounted["secretId"], mounted["fileUid"], mounted["fileMode"]) == (f"{secret.name}-id", "999", 0o400)
        # The `*_FILE` entrypoint exports it for pgBackRest; the value is in no spec.
        assert container["commands"][0] == "/usr/local/bin/hastack-secret-files"
        assert PASSPHRASE not in json.dumps(resource.inputs)
    for config in onprem.of_type("docker:index/serviceConfig:ServiceConfig"):
        assert PASSPHRASE not in json.dumps(config.inputs) and PASSPHRASE not in base64.b64decode(config.inputs["data"]).decode()


def test_object_store_repository_mounts_nothing_and_its_keys_are_secrets():
    run = run_onprem(backups={"repository": S3})
    db = service(run, "db-0")
    conf = pgbackrest_conf(run, db)
    assert (conf["global"]["repo1-type"], conf["global"]["repo1-s3-bucket"], conf["global"]["repo1-s3-endpoint"],
            conf["global"]["repo1-storage-port"]) == ("s3", "hastack-backups", "minio.internal", "9000")
    assert not any(m["target"] == "/var/lib/pgbackrest" for m in spec(db)["mounts"])
    secrets = {r.name: r for r in run.of_type(SECRET)}
    for env_name, value in ((S3_KEY_ENV, "AKIAFAKE"), (S3_KEY_SECRET_ENV, "s3cr3t-key")):
        secret = secrets[f"backups-{env_name.lower().replace('_', '-')}"]
        assert is_secret(secret.wire_inputs["data"]) and base64.b64decode(secret.inputs["data"]).decode() == value
        assert spec(db)["env"][f"{env_name}_FILE"] == f"/run/secrets/{env_name}"
    rendered = json.dumps([r.inputs for r in run.of_type(SERVICE)]) + mounted_config(run, db, CONF)
    assert "s3cr3t-key" not in rendered and "AKIAFAKE" not in rendered
    assert run.outputs["backupRepository"] == "s3://hastack-backups/pgbackrest at minio.internal:9000"


def test_plugin_repository_uses_the_named_driver_on_every_member():
    run = run_onprem(backups={"repository": {"type": "volume", "volume": {
        "driver": "plugin", "plugin": {"name": "rexray/efs", "options": {"volumetype": "gp"}}}}})
    for index in range(3):
        (repository,) = [m for m in spec(service(run, f"db-{index}"))["mounts"] if m["target"] == "/var/lib/pgbackrest"]
        assert repository["source"] == "hastack-onprem-backups-repository"
        assert repository["volumeOptions"] == {"driverName": "rexray/efs", "driverOptions": {"volumetype": "gp"}}
    assert run.outputs["backupRepository"] == "plugin rexray/efs volume hastack-onprem-backups-repository:/pgbackrest"


# ---------------------------------------------------------------- schedule


def test_a_scheduler_per_member_pinned_to_its_node_over_its_volumes(onprem):
    for index, (member, node) in enumerate(zip(MEMBERS, NODES, strict=True)):
        scheduler = service(onprem, f"backup-db-{index}")
        assert scheduler.inputs["name"] == f"hastack-onprem-backup-db-{index}"
        assert scheduler.inputs["taskSpec"]["placement"] == {"constraints": [f"node.hostname == {node}"]}
        container = spec(scheduler)
        assert container["image"] == spec(service(onprem, f"db-{index}"))["image"], "the members' pinned image"
        assert container["commands"] == ["/usr/local/bin/hastack-secret-files", "supercronic", CRONTAB]
        assert container["user"] == "postgres" and container["init"] is True
        assert [(m["source"], m["target"]) for m in container["mounts"]] == [
            (f"{member}-data", "/var/lib/postgresql/data"),
            ("hastack-onprem-backups-repository", "/var/lib/pgbackrest"),
            (f"{member}-socket", "/var/run/postgresql"),
            (f"{member}-backup-reports", REPORT_DIR),
        ]
        assert scheduler.inputs["updateConfig"]["order"] == "stop-first"


def test_the_crontab_runs_full_and_diff_on_the_configured_schedule_through_the_report():
    run = run_onprem(backups={"repository": S3, "schedule": {"full": "30 2 * * 6", "diff": "30 2 * * 0-5"}})
    scheduler = service(run, "backup-db-2")
    crontab = mounted_config(run, scheduler, CRONTAB)
    assert f"30 2 * * 6 {BACKUP_REPORT} full\n" in crontab and f"30 2 * * 0-5 {BACKUP_REPORT} diff\n" in crontab
    assert f"*/5 * * * * {BACKUP_REPORT} ensure\n" in crontab
    job = mounted_config(run, scheduler, BACKUP_JOB)
    assert "pg_is_in_recovery" in job and "--backup-standby" in job
    assert f"{REPORT_DIR}/pgbackrest-db.prom" in mounted_config(run, scheduler, BACKUP_REPORT)


def test_shipped_onprem_schedule_is_weekly_full_and_daily_diff(onprem):
    crontab = mounted_config(onprem, schedulers(onprem)[0], CRONTAB)
    assert f"0 1 * * 0 {BACKUP_REPORT} full\n" in crontab and f"0 1 * * 1-6 {BACKUP_REPORT} diff\n" in crontab


# ---------------------------------------------------------------- monitoring


def test_each_members_node_serves_its_backup_report_to_the_backup_age_rule(onprem):
    for index, (member, node) in enumerate(zip(MEMBERS, NODES, strict=True)):
        exporter = service(onprem, f"monitoring-backups-{index}")
        assert exporter.inputs["taskSpec"]["placement"] == {"constraints": [f"node.hostname == {node}"]}
        container = spec(exporter)
        assert "--collector.textfile" in container["args"]
        (mount,) = container["mounts"]
        directory = next(a for a in container["args"] if a.startswith("--collector.textfile.directory=")).split("=", 1)[1]
        assert (mount["source"], mount["target"], mount["readOnly"]) == (f"{member}-backup-reports", directory, True)


# ---------------------------------------------------------------- variants


def test_backups_disabled_archives_nothing_and_schedules_nothing():
    run = run_onprem(backups={"enabled": False})
    parameters = yaml.safe_load(mounted_config(run, service(run, "db-0"), PATRONI_YML))["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert "archive_command" not in parameters
    assert not [r for r in run.of_type(SERVICE) if r.name.startswith(("backup-", "monitoring-backups-"))]
    assert not any(f"{CIPHER_PASS_ENV}_FILE" in spec(r).get("env", {}) for r in run.of_type(SERVICE))
    rules = mounted_config(run, service(run, "monitoring-prometheus"), "/etc/prometheus/rules/hastack.yml")
    assert "PostgresBackupTooOld" not in rules
    assert run.outputs.get("backupRepository") is None


def test_restore_bootstraps_the_cluster_from_the_repository():
    run = run_onprem(database={"restore": {"target": "2026-12-01T10:00:00Z"}})
    document = yaml.safe_load(mounted_config(run, service(run, "db-0"), PATRONI_YML))
    bootstrap = document["bootstrap"]
    assert bootstrap["method"] == "pgbackrest" and "post_bootstrap" not in bootstrap
    assert bootstrap["pgbackrest"]["command"] == "/usr/local/bin/hastack-restore"
    script = mounted_config(run, service(run, "db-0"), "/usr/local/bin/hastack-restore")
    assert "--type=time" in script and "--target-action=promote" in script and "--target-timeline=latest" in script


# ---------------------------------------------------------------- backups from a standby


def test_every_member_lists_the_others_tls_servers_as_its_peers(onprem):
    servers = [f"{member}-pgbackrest" for member in MEMBERS]
    for index in range(3):
        conf = pgbackrest_conf(onprem, service(onprem, f"backup-db-{index}"))
        peers = [conf["db:backup"][f"pg{n}-host"] for n in (2, 3)]
        assert peers == [s for s in servers if s != servers[index]]
        assert conf["db:backup"]["pg2-host-type"] == "tls"
        assert conf["db:backup"]["pg2-host-key-file"] == "/run/secrets/pgbackrest-client.key"
        assert conf["global:server"]["tls-server-key-file"] == "/run/secrets/pgbackrest-server.key"
        assert conf["global:server"]["tls-server-auth"] == "pgbackrest-client=db"


def test_a_tls_server_beside_each_member_answers_under_its_name_with_certificates_from_the_stack_ca(onprem):
    request = next(r for r in onprem.resources if r.name == "backups-pgbackrest-server-request")
    assert request.inputs["dnsNames"] == [f"{member}-pgbackrest" for member in MEMBERS]
    secrets = {r.name: r for r in onprem.of_type(SECRET)}
    for index, (member, node) in enumerate(zip(MEMBERS, NODES, strict=True)):
        server = service(onprem, f"pgbackrest-db-{index}")
        assert server.inputs["name"] == f"{member}-pgbackrest"
        assert server.inputs["endpointSpec"] == {"mode": "dnsrr"}
        assert server.inputs["taskSpec"]["placement"] == {"constraints": [f"node.hostname == {node}"]}
        container = spec(server)
        assert container["commands"] == ["pgbackrest", f"--config={CONF}", "server"]
        assert container["user"] == "postgres"
        assert [m["source"] for m in container["mounts"]] == [
            f"{member}-data", "hastack-onprem-backups-repository", f"{member}-socket"]
        # Keys are secrets for postgres only; it never gets the passphrase.
        keys = {s["fileName"]: s for s in container["secrets"]}
        assert set(keys) == {"pgbackrest-server.key", "pgbackrest-client.key"}
        assert all((k["fileUid"], k["fileMode"]) == ("999", 0o400) for k in keys.values())
        assert all(is_secret(secrets[k["secretId"].removesuffix("-id")].wire_inputs["data"]) for k in keys.values())
        assert "env" not in container or not container["env"]
