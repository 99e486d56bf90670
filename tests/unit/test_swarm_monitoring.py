"""Monitoring on the Swarm platform under the recording mocks: the services of the shipped
onprem stack, their rendered configs (the same renderers as Docker), the exporter role's
secret, what is and is not published, and the stack outputs."""

from __future__ import annotations

import base64

import pytest
import yaml

from components.config import (
    ALERTMANAGER_IMAGE,
    BLACKBOX_EXPORTER_IMAGE,
    NODE_EXPORTER_IMAGE,
    POSTGRES_EXPORTER_IMAGE,
    PROMETHEUS_IMAGE,
)
from components.render.postgres_exporter import MONITOR_ROLE
from components.swarm.monitoring import ALERTMANAGER_SECRET, BLACKBOX_CONFIG, EXPORTER_QUERIES, PROMETHEUS_CONFIG, RULE_FILE
from plan.engine import is_secret
from plan.fakes import FAKE_SECRET_PREFIX, fake_repo_digest
from tests.unit.test_swarm_stack import NETWORK, NODES, SECRET, SERVICE, mounted_config, run_onprem, service, spec

MEMBERS = [f"hastack-onprem-db-{index}" for index in range(3)]


@pytest.fixture(scope="module")
def onprem():
    return run_onprem()


MONITORING_SERVICES = ["monitoring-alertmanager", *(f"monitoring-backups-{i}" for i in range(3)),
                       *(f"monitoring-postgres-{i}" for i in range(3)), "monitoring-prometheus", "monitoring-tls-probe",
                       *(f"monitoring-volumes-{i}" for i in range(3))]


def test_onprem_runs_prometheus_alertmanager_and_exporters_per_member_from_pinned_images(onprem):
    names = sorted(r.name for r in onprem.of_type(SERVICE) if r.name.startswith("monitoring-"))
    assert names == MONITORING_SERVICES
    images = {name: spec(service(onprem, name))["image"] for name in names}
    assert images["monitoring-prometheus"] == fake_repo_digest(PROMETHEUS_IMAGE)
    assert images["monitoring-alertmanager"] == fake_repo_digest(ALERTMANAGER_IMAGE)
    assert {images[f"monitoring-postgres-{i}"] for i in range(3)} == {fake_repo_digest(POSTGRES_EXPORTER_IMAGE)}
    assert {images[f"monitoring-{role}-{i}"] for i in range(3) for role in ("volumes", "backups")} == {
        fake_repo_digest(NODE_EXPORTER_IMAGE)}
    assert images["monitoring-tls-probe"] == fake_repo_digest(BLACKBOX_EXPORTER_IMAGE)


def test_nothing_is_published_and_the_urls_are_on_the_attachable_monitoring_overlay(onprem):
    for name in MONITORING_SERVICES:
        assert "ports" not in (service(onprem, name).inputs.get("endpointSpec") or {}), name
    network = next(r for r in onprem.of_type(NETWORK) if r.name == "monitoring-network")
    assert network.inputs["driver"] == "overlay" and network.inputs["attachable"] is True
    attached = {r.name: [n["id"] for n in r.inputs["taskSpec"]["networksAdvanceds"]] for r in onprem.of_type(SERVICE)}
    assert attached["monitoring-prometheus"] == ["network-app-id", "network-data-id", "monitoring-network-id"]
    assert attached["monitoring-alertmanager"] == ["monitoring-network-id"]
    assert all(attached[f"monitoring-postgres-{i}"] == ["network-data-id"] for i in range(3))
    assert onprem.outputs["prometheusUrl"] == "http://hastack-onprem-monitoring-prometheus:9090"
    assert onprem.outputs["alertmanagerUrl"] == "http://hastack-onprem-monitoring-alertmanager:9093"
    assert onprem.outputs["monitoringNetwork"] == "monitoring-network"


def scrape_configs(run) -> dict[str, dict]:
    config = yaml.safe_load(mounted_config(run, service(run, "monitoring-prometheus"), PROMETHEUS_CONFIG))
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_prometheus_finds_every_lb_and_app_task_by_dns_and_scrapes_every_member(onprem):
    jobs = scrape_configs(onprem)
    assert jobs["haproxy"]["dns_sd_configs"] == [{"names": ["tasks.hastack-onprem-lb"], "type": "A", "port": 8404}]
    assert jobs["app"]["dns_sd_configs"] == [{"names": ["tasks.hastack-onprem-app"], "type": "A", "port": 8000}]
    assert "static_configs" not in jobs["haproxy"] and "static_configs" not in jobs["app"]
    assert [(c["targets"], c["labels"]) for c in jobs["patroni"]["static_configs"]] == [
        ([f"{member}:8008"], {"node": member}) for member in MEMBERS]
    assert [(c["targets"], c["labels"]) for c in jobs["postgres"]["static_configs"]] == [
        ([f"hastack-onprem-monitoring-postgres-{i}:9187"], {"node": member}) for i, member in enumerate(MEMBERS)]
    assert [c["targets"] for c in jobs["volumes"]["static_configs"]] == [
        [f"hastack-onprem-monitoring-volumes-{i}:9100"] for i in range(3)]
    # Every member's node reports the repository's newest backup (test_swarm_backups.py).
    assert [c["targets"] for c in jobs["backups"]["static_configs"]] == [
        [f"hastack-onprem-monitoring-backups-{i}:9100"] for i in range(3)]
    # The LB's HTTPS listener (any task: all serve the one certificate), through the blackbox exporter.
    assert [c["targets"] for c in jobs["tls"]["static_configs"]] == [["tasks.hastack-onprem-lb:8443"]]
    assert jobs["tls"]["relabel_configs"][-1] == {"target_label": "__address__", "replacement": "hastack-onprem-monitoring-tls-probe:9115"}
    rules = yaml.safe_load(mounted_config(onprem, service(onprem, "monitoring-prometheus"), RULE_FILE))
    alerts = {rule["alert"] for rule in rules["groups"][0]["rules"]}
    assert {"PatroniNoLeader", "NoHealthyBackend", "PostgresReplicaNotStreaming", "PostgresBackupTooOld"} <= alerts


def test_exporters_log_in_as_the_monitor_role_whose_password_is_a_secret_file(onprem):
    secrets = {r.name: r for r in onprem.of_type(SECRET)}
    password = secrets["monitoring-monitor-password"]
    assert is_secret(password.wire_inputs["data"])
    assert base64.b64decode(password.inputs["data"]).decode() == f"{FAKE_SECRET_PREFIX}secrets-db-monitor"
    for index, member in enumerate(MEMBERS):
        exporter = spec(service(onprem, f"monitoring-postgres-{index}"))
        assert exporter["env"] == {
            "DATA_SOURCE_URI": f"{member}:5432/postgres?sslmode=verify-full&sslrootcert=/etc/hastack/database-ca.crt",
            "DATA_SOURCE_USER": MONITOR_ROLE,
            "DATA_SOURCE_PASS_FILE": "/run/secrets/monitor-password",
            "PG_EXPORTER_EXTEND_QUERY_PATH": EXPORTER_QUERIES,
        }
        assert [s["secretId"] for s in exporter["secrets"]] == ["monitoring-monitor-password-id"]
        assert "hastack_pg" in mounted_config(onprem, service(onprem, f"monitoring-postgres-{index}"), EXPORTER_QUERIES)
        assert mounted_config(onprem, service(onprem, f"monitoring-postgres-{index}"), "/etc/hastack/database-ca.crt") \
            == onprem.outputs["caCertificate"]
    # Each member's post-bootstrap creates the role, from the same generated secret.
    member = spec(service(onprem, "db-0"))
    assert "IN ROLE pg_monitor" in mounted_config(onprem, service(onprem, "db-0"), "/usr/local/bin/hastack-patroni-post-bootstrap")
    monitor_secret = next(s for s in member["secrets"] if s["fileName"] == "MONITOR_DB_PASSWORD")
    assert base64.b64decode(next(r for r in onprem.of_type(SECRET) if f"{r.name}-id" == monitor_secret["secretId"])
                            .inputs["data"]).decode() == f"{FAKE_SECRET_PREFIX}secrets-db-monitor"


def test_each_volume_exporter_runs_on_its_members_node_over_its_data_volume_read_only(onprem):
    for index, (member, node) in enumerate(zip(MEMBERS, NODES)):
        volumes = service(onprem, f"monitoring-volumes-{index}")
        assert volumes.inputs["taskSpec"]["placement"] == {"constraints": [f"node.hostname == {node}"]}
        assert service(onprem, f"db-{index}").inputs["taskSpec"]["placement"] == volumes.inputs["taskSpec"]["placement"]
        (mount,) = spec(volumes)["mounts"]
        assert (mount["source"], mount["target"], mount["readOnly"]) == (f"{member}-data", f"/volumes/{member}", True)
        assert spec(volumes)["args"] == ["--collector.disable-defaults", "--collector.filesystem"]


def test_alertmanagers_config_is_only_a_secret(onprem):
    alertmanager = spec(service(onprem, "monitoring-alertmanager"))
    (entry,) = alertmanager["secrets"]
    assert entry["fileName"] == ALERTMANAGER_SECRET and "configs" not in alertmanager
    config = next(r for r in onprem.of_type(SECRET) if f"{r.name}-id" == entry["secretId"])
    assert is_secret(config.wire_inputs["data"])
    assert "route" in yaml.safe_load(base64.b64decode(config.inputs["data"]).decode())
    assert f"--config.file=/run/secrets/{ALERTMANAGER_SECRET}" in alertmanager["args"]


def test_monitoring_disabled_declares_no_service_and_no_monitor_role():
    run = run_onprem(monitoring={"enabled": False})
    assert not [r for r in run.of_type(SERVICE) if r.name.startswith("monitoring-")]
    assert "prometheusUrl" not in run.outputs
    assert "MONITOR_DB_PASSWORD_FILE" not in spec(service(run, "db-0"))["env"]
    assert "pg_monitor" not in mounted_config(run, service(run, "db-0"), "/usr/local/bin/hastack-patroni-post-bootstrap")


def test_the_tls_probe_reaches_the_lb_on_the_app_overlay_and_only_with_https_on(onprem):
    probe = service(onprem, "monitoring-tls-probe")
    assert [n["id"] for n in probe.inputs["taskSpec"]["networksAdvanceds"]] == ["network-app-id"]
    assert spec(probe)["args"] == [f"--config.file={BLACKBOX_CONFIG}"]
    module = yaml.safe_load(mounted_config(onprem, probe, BLACKBOX_CONFIG))["modules"]["tls_expiry"]
    assert module["prober"] == "tcp" and module["tcp"]["tls"] is True
    rules = yaml.safe_load(mounted_config(onprem, service(onprem, "monitoring-prometheus"), RULE_FILE))
    assert "TlsCertificateExpiring" in {rule["alert"] for rule in rules["groups"][0]["rules"]}
    plain = run_onprem(loadBalancer={"tls": {"enabled": False}})
    assert "monitoring-tls-probe" not in {r.name for r in plain.of_type(SERVICE)}
    assert "tls" not in scrape_configs(plain)
