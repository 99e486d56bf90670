"""tls-in-transit against the text the renderers ship (compliant) and that text with one
TLS property taken away (violating), as the engine hands it to the pack."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from policy_harness import NOT_APPLICABLE, Res, check_resource
from test_policy_rules import app_container, etcd_member, swarm_lb_config

from components.config import LoadBalancerConfig, LoadBalancerTlsConfig
from components.render.haproxy import Backend, HaproxySettings, TlsTermination, render_haproxy_cfg
from components.render.patroni import PatroniSettings, render_patroni_yml
from components.render.postgres import PrimarySettings, ServerTls, primary_server_flags, render_pg_hba
from components.swarm.load_balancer import LoadBalancerArgs, haproxy_settings
from policy.hastack_policies.resources import (
    DOCKER_CONTAINER,
    DOCKER_DATABASE_COMPONENT,
    DOCKER_LOAD_BALANCER_COMPONENT,
    DOCKER_PATRONI_DATABASE_COMPONENT,
    DOCKER_SERVICE_CONFIG,
    SWARM_PATRONI_DATABASE_COMPONENT,
)

POLICY = "tls-in-transit"
HAPROXY = HaproxySettings(frontend_port=8080, stats_port=8404, backends=(Backend("app-0", "app-0", 8000),),
                          health_path="/readyz", interval_ms=500, fall=2, rise=2, timeout_check_ms=1000,
                          tls=TlsTermination(port=8443, certificate_file="/certs/site.pem", public_port=443,
                                             hsts_max_age_s=31536000))
DATABASE = PrimarySettings(replica_slots=("replica_0",), max_slot_wal_keep_size_mb=4096, replication_cidr="172.28.0.0/16",
                           app_db="app", app_user="app",
                           tls=ServerTls(certificate_file="/tls/server.crt", key_file="/tls/server.key", ca_file="/tls/ca.crt"))
PATRONI = PatroniSettings(scope="db", node_name="db-0", etcd_hosts=("etcd-0:2379",), restapi_listen="0.0.0.0:8008",
                          restapi_connect_address="db-0:8008", postgres_listen="0.0.0.0:5432",
                          postgres_connect_address="db-0:5432", data_dir="/var/lib/postgresql/patroni", database=DATABASE)


def swarm_haproxy_cfg(tls: bool) -> str:
    """The Swarm LB service's haproxy.cfg as components/swarm/load_balancer.py renders it."""
    config = LoadBalancerConfig(tls=LoadBalancerTlsConfig(enabled=tls))
    return render_haproxy_cfg(haproxy_settings(LoadBalancerArgs(
        config=config, networks=(), app_service="hastack-onprem-app", app_port=8000, app_replicas=3, health_path="/readyz")))


def haproxy(cfg: str) -> Res:
    return Res(DOCKER_CONTAINER, {"uploads": [{"file": "/usr/local/etc/haproxy/haproxy.cfg", "content": cfg}]},
               name="lb-haproxy", component=DOCKER_LOAD_BALANCER_COMPONENT)


def postgres_node(hba: str, flags: list[str]) -> Res:
    return Res(DOCKER_CONTAINER, {"command": ["postgres", *flags],
                                  "uploads": [{"file": "/etc/postgresql/hastack/pg_hba.conf", "content": hba}]},
               name="db-primary", component=DOCKER_DATABASE_COMPONENT)


def patroni_member(document: str) -> Res:
    return Res(DOCKER_CONTAINER, {"uploads": [{"file": "/etc/patroni/patroni.yml", "content": document}]},
               name="db-0", component=DOCKER_PATRONI_DATABASE_COMPONENT)


def patroni_with(change) -> str:
    document = yaml.safe_load(render_patroni_yml(PATRONI))
    change(document)
    return yaml.safe_dump(document)


SHIPPED_CFG = render_haproxy_cfg(HAPROXY)
SHIPPED_HBA = render_pg_hba(DATABASE)
SHIPPED_FLAGS = primary_server_flags(DATABASE)

CASES = [
    ("haproxy as rendered with tls", haproxy(SHIPPED_CFG), []),
    ("haproxy without tls", haproxy(render_haproxy_cfg(dataclasses.replace(HAPROXY, tls=None))), ["plain HTTP only"]),
    ("tls below 1.2 allowed", haproxy(SHIPPED_CFG.replace("ssl-min-ver TLSv1.2", "")), ["below 1.2"]),
    ("http not redirected", haproxy("\n".join(line for line in SHIPPED_CFG.splitlines() if "redirect" not in line)),
     ["instead of redirecting"]),
    ("no hsts", haproxy(SHIPPED_CFG.replace("Strict-Transport-Security", "X-Nothing")), ["Strict-Transport-Security"]),
    ("no app frontend", haproxy("global\n    log stdout format raw local0\n"), ["no frontend that routes to the app"]),
    ("swarm lb config with tls", swarm_lb_config(swarm_haproxy_cfg(tls=True)), []),
    ("swarm lb config without tls", swarm_lb_config(swarm_haproxy_cfg(tls=False)), ["plain HTTP only"]),
    ("swarm lb config, http not redirected", swarm_lb_config(
        "\n".join(line for line in swarm_haproxy_cfg(tls=True).splitlines() if "redirect" not in line)), ["instead of redirecting"]),
    ("postgres as rendered", postgres_node(SHIPPED_HBA, SHIPPED_FLAGS), []),
    ("pg_hba host line", postgres_node(SHIPPED_HBA.replace("hostssl replication", "host replication"), SHIPPED_FLAGS),
     ["pg_hba.conf admits connections without TLS: 'host replication"]),
    ("pg_hba hostnossl line", postgres_node(SHIPPED_HBA + "hostnossl all all 0.0.0.0/0 md5\n", SHIPPED_FLAGS),
     ["admits connections without TLS: 'hostnossl"]),
    ("ssl off", postgres_node(SHIPPED_HBA, [f for f in SHIPPED_FLAGS if f != "ssl=on"]), ["ssl off"]),
    ("patroni as rendered", patroni_member(render_patroni_yml(PATRONI)), []),
    ("patroni pg_hba host line", patroni_member(patroni_with(
        lambda d: d["postgresql"]["pg_hba"].append("host all all 0.0.0.0/0 scram-sha-256"))), ["patroni.yml pg_hba"]),
    ("patroni ssl off", patroni_member(patroni_with(
        lambda d: d["bootstrap"]["dcs"]["postgresql"]["parameters"].update(ssl="off"))), ["ssl off"]),
]


@pytest.mark.parametrize("resource, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_tls_in_transit(resource, expected):
    messages = check_resource(POLICY, resource)
    assert len(messages) == len(expected), messages
    for message, fragment in zip(messages, expected):
        assert fragment in message and "Fix:" in message, message


def test_tls_in_transit_judges_only_the_load_balancer_and_postgres_nodes():
    assert check_resource(POLICY, app_container()) == NOT_APPLICABLE
    assert check_resource(POLICY, etcd_member()) == NOT_APPLICABLE
    # On Swarm only the LB's config: a Patroni member's configs are not haproxy.cfg.
    patroni_config = Res(DOCKER_SERVICE_CONFIG, {"data": ""}, name="db-0-patroni", component=SWARM_PATRONI_DATABASE_COMPONENT)
    assert check_resource(POLICY, patroni_config) == NOT_APPLICABLE
