"""The Azure role-setup init container's script, run by real `sh` + `psql` against a real
PostgreSQL 15 whose admin has what a Flexible Server admin has: LOGIN, CREATEDB,
CREATEROLE, NOSUPERUSER, member of azure_pg_admin
(https://learn.microsoft.com/en-us/azure/postgresql/flexible-server/how-to-create-users).

Binaries: sh, psql, postgres (Debian postgresql-15)."""

from __future__ import annotations

import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from components.render.managed_app_role import app_role_setup_script
from loopback.binaries import find
from loopback.postgres import PgCluster

ADMIN = "hastack_admin"


@pytest.fixture
def managed_like_server(pg_primary: PgCluster, postgres_installed):
    """An admin role shaped like Flexible Server's, and an app database; removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    database, app_user = f"app_{suffix}", f"app_{suffix}"
    with pg_primary.connect() as conn:
        conn.execute("DO $$ BEGIN CREATE ROLE azure_pg_admin NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute(f"DO $$ BEGIN CREATE ROLE {ADMIN} LOGIN CREATEDB CREATEROLE NOSUPERUSER IN ROLE azure_pg_admin; "
                     "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute(f"CREATE DATABASE {database} OWNER {ADMIN}")
    yield pg_primary, database, app_user
    with pg_primary.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"DROP ROLE IF EXISTS {app_user}")


def run_setup(cluster: PgCluster, database: str, app_user: str, app_password: str) -> subprocess.CompletedProcess:
    psql_dir = str(Path(find("psql")).parent)
    env = {
        "PATH": f"{psql_dir}:{os.environ['PATH']}",
        "PGHOST": "127.0.0.1", "PGPORT": str(cluster.port), "PGUSER": ADMIN, "PGDATABASE": database,
        "PGPASSWORD": "admin-password-unused-with-trust", "APP_DB_PASSWORD": app_password,
    }  # fmt: skip
    return subprocess.run(["sh", "-c", app_role_setup_script(app_user, database)], env=env,
                          capture_output=True, text=True, timeout=60)


def role_flags(cluster: PgCluster, app_user: str) -> tuple:
    with cluster.connect() as conn:
        return conn.execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, starts_with(rolpassword, 'SCRAM-SHA-256$') "
            "FROM pg_authid WHERE rolname = %s", (app_user,)).fetchone()


def test_the_script_makes_a_least_privilege_login_role_that_can_migrate(managed_like_server):
    cluster, database, app_user = managed_like_server
    result = run_setup(cluster, database, app_user, "first-password")
    assert result.returncode == 0, result.stderr
    assert role_flags(cluster, app_user) == (True, False, False, False, False, True)
    with psycopg.connect(host="127.0.0.1", port=cluster.port, user=app_user, dbname=database, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int)")
        conn.execute("INSERT INTO notes VALUES (1)")
        assert conn.execute("SELECT pg_has_role(current_user, 'azure_pg_admin', 'MEMBER')").fetchone() == (False,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE ROLE intruder")
    assert "first-password" not in result.stdout + result.stderr


def test_a_second_run_changes_the_password_and_fails_nothing(managed_like_server):
    cluster, database, app_user = managed_like_server
    assert run_setup(cluster, database, app_user, "first-password").returncode == 0
    with cluster.connect() as conn:
        before = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (app_user,)).fetchone()
    again = run_setup(cluster, database, app_user, "rotated-password")
    assert again.returncode == 0, again.stderr
    with cluster.connect() as conn:
        after = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (app_user,)).fetchone()
    assert before != after


def test_replicas_starting_together_all_succeed(managed_like_server):
    cluster, database, app_user = managed_like_server
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: run_setup(cluster, database, app_user, "same-password"), range(4)))
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr for r in results]


def test_a_missing_password_stops_before_connecting(managed_like_server):
    cluster, database, app_user = managed_like_server
    result = run_setup(cluster, database, app_user, "")
    assert result.returncode != 0
    assert "APP_DB_PASSWORD must be set" in result.stderr
    assert role_flags(cluster, app_user) is None
