"""Renderer pieces the swarm platform adds: the server-template backend, the *_FILE
entrypoint (run by the real /bin/sh), and Patroni's failsafe flag."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from components.render.haproxy import HaproxySettings, ServerTemplate, render_haproxy_cfg
from components.render.patroni import PatroniSettings, render_patroni_yml
from components.render.postgres import PrimarySettings, ServerTls
from components.render.secret_files import secret_files_entrypoint

TEMPLATE = ServerTemplate(prefix="app", slots=6, fqdn="tasks.shop-app", port=8000)


def template_settings(**changes) -> HaproxySettings:
    base = dict(frontend_port=8080, stats_port=8404, backends=(), health_path="/readyz", interval_ms=500, fall=2, rise=2,
                timeout_check_ms=1000, resolver="127.0.0.11:53", server_template=TEMPLATE)
    return HaproxySettings(**{**base, **changes})


def test_server_template_backend_resolves_through_the_resolver():
    text = render_haproxy_cfg(template_settings())
    assert "    server-template app 6 tasks.shop-app:8000 check\n" in text
    assert "resolvers docker" in text and "nameserver dns 127.0.0.11:53" in text
    assert "    server " not in text, "no fixed servers besides the template"


def test_server_template_needs_a_resolver_and_some_backend_is_required():
    with pytest.raises(ValueError, match="server template needs a resolver"):
        template_settings(resolver=None)
    with pytest.raises(ValueError, match="at least one backend or a server template"):
        template_settings(server_template=None)


def run_entrypoint(tmp_path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "entrypoint"
    script.write_text(secret_files_entrypoint())
    script.chmod(0o755)
    return subprocess.run(["/bin/sh", str(script), *command], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=10)


def test_entrypoint_exports_each_file_variable_and_execs_the_command(tmp_path):
    (tmp_path / "superuser").write_text("p4ss word$`\\\n")
    (tmp_path / "replication").write_text("r3pl")
    result = run_entrypoint(
        tmp_path,
        {"PATRONI_SUPERUSER_PASSWORD_FILE": str(tmp_path / "superuser"), "PATRONI_REPLICATION_PASSWORD_FILE": str(tmp_path / "replication"),
         "LOG_LEVEL": "info"},
        "/bin/sh", "-c", 'printf "%s|%s|%s|%s" "$PATRONI_SUPERUSER_PASSWORD" "$PATRONI_REPLICATION_PASSWORD" "${PATRONI_SUPERUSER_PASSWORD_FILE-unset}" "$LOG_LEVEL"',
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "p4ss word$`\\|r3pl|unset|info"


def test_entrypoint_refuses_a_missing_secret_file(tmp_path):
    result = run_entrypoint(tmp_path, {"APP_DB_PASSWORD_FILE": "/run/secrets/nope"}, "/bin/true")
    assert result.returncode == 1
    assert "APP_DB_PASSWORD_FILE names /run/secrets/nope, which is not a readable file" in result.stderr


def test_patroni_failsafe_mode_is_rendered_into_the_dcs_settings():
    database = PrimarySettings(replica_slots=("replica_0",), max_slot_wal_keep_size_mb=64, replication_cidr="10.232.0.0/24",
                               app_db="app", app_user="app", tls=ServerTls("/tls/server.crt", "/tls/server.key", "/tls/ca.crt"))
    common = dict(scope="db", node_name="db-0", etcd_hosts=("etcd-0:2379",), restapi_listen="0.0.0.0:8008",
                  restapi_connect_address="db-0:8008", postgres_listen="0.0.0.0:5432", postgres_connect_address="db-0:5432",
                  data_dir="/data", database=database)
    assert yaml.safe_load(render_patroni_yml(PatroniSettings(**common, failsafe_mode=True)))["bootstrap"]["dcs"]["failsafe_mode"] is True
    assert yaml.safe_load(render_patroni_yml(PatroniSettings(**common)))["bootstrap"]["dcs"]["failsafe_mode"] is False
