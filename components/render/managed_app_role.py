"""The app's own PostgreSQL role on a managed server (Azure Flexible Server), made idempotently.

Consumed by `sh` and `psql` (>= 15, for `\\getenv`) in the official postgres image, run as
the Container App's init container: the only container given the server admin's
password. It connects with libpq's PG* environment (PGHOST, PGUSER, PGPASSWORD,
PGDATABASE, PGSSLMODE) and gives `app_user` exactly what the app needs:
- LOGIN with the generated app password (re-set on every run, so a rotated password
  takes effect at the next revision), and no CREATEDB, CREATEROLE or admin membership
  (SUPERUSER and REPLICATION are off from CREATE ROLE; only a superuser may even name
  them in ALTER ROLE, and the Flexible Server admin is none);
- CONNECT and TEMPORARY on the app database, USAGE and CREATE on its `public` schema
  (the app runs its own migrations and owns the tables it creates).

Every replica runs it when it starts, possibly at the same moment as another. Two
sessions writing the same role at once fail with "tuple concurrently updated" (found by
tests/integration/test_render_managed_app_role.py), so one transaction-scoped advisory lock
serialises the runs; CREATE ROLE treats "already exists" as done. Passwords are read from
the environment inside psql and never appear in this text or on a command line.
"""

from __future__ import annotations

import re

from components.render.postgres import APP_DB_PASSWORD_ENV

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CONNECT_TIMEOUT_S = 10
# Any constant works; every replica's run takes the same one.
ROLE_SETUP_LOCK = 7_468_436_173


def app_role_setup_script(app_user: str, app_db: str) -> str:
    """sh for the init container: create or update `app_user` and grant it `app_db`."""
    for what, value in (("app_user", app_user), ("app_db", app_db)):
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{what} must be a lowercase PostgreSQL identifier, got {value!r}")
    return f"""#!/bin/sh
# Rendered by hastack: the app's role on the managed server, made by the server admin.
set -eu
: "${{PGPASSWORD:?PGPASSWORD (the server admin's) must be set}}"
: "${{{APP_DB_PASSWORD_ENV}:?{APP_DB_PASSWORD_ENV} must be set}}"
export PGCONNECT_TIMEOUT={CONNECT_TIMEOUT_S}
exec psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet <<'SQL'
\\getenv app_password {APP_DB_PASSWORD_ENV}
BEGIN;
SELECT pg_advisory_xact_lock({ROLE_SETUP_LOCK});
DO $$
BEGIN
  CREATE ROLE {app_user} LOGIN;
EXCEPTION WHEN duplicate_object THEN
  NULL;
END
$$;
ALTER ROLE {app_user} WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
GRANT CONNECT, TEMPORARY ON DATABASE {app_db} TO {app_user};
GRANT USAGE, CREATE ON SCHEMA public TO {app_user};
COMMIT;
SQL
"""
