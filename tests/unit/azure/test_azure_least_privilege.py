"""The app never holds the server admin's password (issue 11, part 2), under mocks.

The admin password reaches exactly one place: the Container App's role-setup init
container, through a secret only it references. The app container connects as its own
role with its own generated password. Plus: server parameters the API cannot delete are
retained on delete (pulumi-azure-native #3072, #3476).
"""

from __future__ import annotations

import json

import pytest

from components.render.managed_app_role import app_role_setup_script
from plan.engine import ProgramRun, is_secret, run_stack_file
from plan.fakes import FAKE_SECRET_PREFIX
from tests.unit.azure.helpers import CONFIGURATION, CONTAINER_APP, DATABASE, STAGING, primary_server, run_variant

PASSWORD = "random:index/randomPassword:RandomPassword"


def generated(run: ProgramRun, purpose: str) -> str:
    """The fake value of the generated password whose name ends in `-secrets-<purpose>`."""
    (password,) = [r for r in run.of_type(PASSWORD) if r.name.endswith(f"-secrets-{purpose}")]
    return f"{FAKE_SECRET_PREFIX}{password.name}"


def _secrets(app) -> dict[str, str]:
    return {s["name"]: s["value"] for s in app.inputs["configuration"]["secrets"]}


def test_the_admin_password_is_the_servers_and_the_init_containers_only(shipped):
    run = shipped
    admin_password = generated(run, "db-superuser")
    assert primary_server(run).inputs["administratorLoginPassword"] == admin_password
    app = run.one(CONTAINER_APP)
    secrets = _secrets(app)
    admin_secret_names = {name for name, value in secrets.items() if admin_password in value}
    assert admin_secret_names == {"db-role-setup-pgpassword"}

    (init,) = app.inputs["template"]["initContainers"]
    init_refs = {e.get("secretRef") for e in init["env"]}
    assert "db-role-setup-pgpassword" in init_refs
    for container in app.inputs["template"]["containers"]:
        refs = {e.get("secretRef") for e in container.get("env", [])}
        assert not refs & admin_secret_names, container["name"]
        assert admin_password not in json.dumps(container), container["name"]
    # Every resource holding the admin password, apart from the server and the app's secret list.
    holders = {r.name for r in run.resources if admin_password in json.dumps(r.inputs)}
    assert holders == {primary_server(run).name, app.name}


def test_the_app_connects_as_its_own_role_with_its_own_password(shipped):
    run = shipped
    secrets = _secrets(run.one(CONTAINER_APP))
    app_password = generated(run, "db-app")
    for name in ("database-url", "database-read-url"):
        assert secrets[name].startswith(f"postgresql://app:{app_password}@"), name
    assert generated(run, "db-superuser") not in run.outputs["databaseUrl"]
    assert secrets["db-role-setup-app-db-password"] == app_password


def test_the_init_container_sets_up_the_role_as_the_admin_on_the_app_database(shipped):
    run = shipped
    app = run.one(CONTAINER_APP)
    (init,) = app.inputs["template"]["initContainers"]
    assert init["name"] == "db-role-setup"
    assert init["image"] == "postgres:16.11-bookworm"  # database.version 16, pinned
    assert init["command"] == ["/bin/sh", "-c", app_role_setup_script("app", "app")]
    env = {e["name"]: e for e in init["env"]}
    assert env["PGHOST"]["value"] == run.outputs["dbWriterFqdn"]
    assert env["PGUSER"]["value"] == "hastack_admin"
    assert env["PGDATABASE"]["value"] == "app"
    assert env["PGSSLMODE"]["value"] == "require"
    assert env["PGPASSWORD"] == {"name": "PGPASSWORD", "secretRef": "db-role-setup-pgpassword"}
    assert env["APP_DB_PASSWORD"] == {"name": "APP_DB_PASSWORD", "secretRef": "db-role-setup-app-db-password"}
    assert all(is_secret(s["value"]) for s in app.wire_inputs["configuration"]["secrets"])
    # It connects once the app database exists.
    assert run.one(DATABASE).urn in app.dependencies


def test_the_role_follows_database_user_and_name():
    run = run_variant(STAGING, "staging", database={"user": "shop", "name": "orders"})
    (init,) = run.one(CONTAINER_APP).inputs["template"]["initContainers"]
    assert init["command"][2] == app_role_setup_script("shop", "orders")
    assert "CREATE ROLE shop LOGIN" in init["command"][2] and "ON DATABASE orders TO shop" in init["command"][2]
    assert run.outputs["databaseUrl"].startswith("postgresql://shop:")


def test_the_setup_script_holds_no_password_and_rejects_bad_identifiers():
    script = app_role_setup_script("app", "app")
    assert "\\getenv app_password APP_DB_PASSWORD" in script
    assert "PASSWORD :'app_password'" in script
    assert FAKE_SECRET_PREFIX not in script
    with pytest.raises(ValueError, match="app_user"):
        app_role_setup_script("app; DROP", "app")


def test_server_parameters_are_retained_on_delete_because_the_api_cannot_delete_them(shipped):
    parameters = shipped.of_type(CONFIGURATION)
    assert parameters
    assert all(p.retain_on_delete for p in parameters)


def _digest(run: ProgramRun) -> dict:
    env = run.one(CONTAINER_APP).wire_inputs["template"]["containers"][0]["env"]
    return next(e for e in env if e["name"] == "HASTACK_SETTINGS_DIGEST")["value"]


def test_a_changed_secret_makes_a_new_revision(shipped):
    """Secrets are app-scoped in Container Apps: without a template change, replicas keep the
    old value (microsoft/azure-container-apps#691). The digest env var is that change."""
    digest = _digest(shipped)
    assert isinstance(digest, str) and len(digest) == 16, "plain (not secret) 16 hex characters"
    int(digest, 16)


def test_the_digest_follows_the_secrets():
    shipped_digest = _digest(run_stack_file(STAGING))
    assert _digest(run_stack_file(STAGING)) == shipped_digest, "same secrets, same template: no needless revision"
    assert _digest(run_variant(STAGING, "staging", app={"generatedSecrets": ["JWT_SECRET"]})) != shipped_digest
