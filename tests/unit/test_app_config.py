"""The reference app's settings from the environment (app/hastack_app/config.py)."""

from __future__ import annotations

import socket

import pytest

from app.hastack_app.config import ConfigError, Settings, node_id_from, with_file_variables

REQUIRED = {"DATABASE_URL": "postgresql://app@db:5432/app", "STORAGE_PATH": "/app/uploads"}


def test_node_id_comes_from_the_platform_then_azure_then_the_hostname():
    assert node_id_from({"NODE_ID": "app-1", "CONTAINER_APP_REPLICA_NAME": "rev--x"}) == "app-1"
    assert node_id_from({"CONTAINER_APP_REPLICA_NAME": "shop--rev1-5d8f-abcde"}) == "shop--rev1-5d8f-abcde"
    assert node_id_from({}) == socket.gethostname()


def test_defaults_and_the_read_url_falling_back_to_the_writer():
    settings = Settings.from_env(REQUIRED)
    assert settings.database_read_url == REQUIRED["DATABASE_URL"]
    assert settings.port == 8000
    assert settings.job_stale_after_s == 60.0


@pytest.mark.parametrize("env, message", [
    ({"STORAGE_PATH": "/x"}, "DATABASE_URL is required"),
    ({"DATABASE_URL": "postgresql://db/app"}, "STORAGE_PATH is required"),
    ({**REQUIRED, "JOB_STALE_AFTER_S": "soon"}, "JOB_STALE_AFTER_S must be a number"),
    ({**REQUIRED, "SHUTDOWN_DRAIN_S": "-1"}, "SHUTDOWN_DRAIN_S must be >= 0"),
    ({**REQUIRED, "DB_POOL_MAX": "0"}, "DB_POOL_MAX must be >= 1"),
    ({**REQUIRED, "LOG_LEVEL": "verbose"}, "LOG_LEVEL must be one of critical, error"),
])
def test_bad_environment_names_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_file_variables_read_secrets_mounted_as_files(tmp_path):
    """Swarm mounts secrets under /run/secrets; the stack sets DATABASE_URL_FILE, not DATABASE_URL."""
    (tmp_path / "DATABASE_URL").write_text("postgresql://app:s3cret@db-0,db-1/app\n")
    (tmp_path / "DATABASE_READ_URL").write_text("postgresql://app:s3cret@db-1,db-0/app")
    env = {"DATABASE_URL_FILE": str(tmp_path / "DATABASE_URL"), "DATABASE_READ_URL_FILE": str(tmp_path / "DATABASE_READ_URL"),
           "STORAGE_PATH": "/app/uploads", "TF_CLI_CONFIG_FILE": "/nonexistent/.terraformrc"}
    resolved = with_file_variables(env)
    assert resolved["DATABASE_URL"] == "postgresql://app:s3cret@db-0,db-1/app"
    assert resolved["DATABASE_READ_URL"] == "postgresql://app:s3cret@db-1,db-0/app"
    assert "DATABASE_URL_FILE" not in resolved
    # Another program's *_FILE variable is not ours to read.
    assert resolved["TF_CLI_CONFIG_FILE"] == "/nonexistent/.terraformrc"
    assert Settings.from_env(env).database_url == "postgresql://app:s3cret@db-0,db-1/app"


@pytest.mark.parametrize("extra, message", [
    ({"STORAGE_PATH": "/x", "DATABASE_URL_FILE": "/nonexistent/DATABASE_URL"},
     "DATABASE_URL_FILE names '/nonexistent/DATABASE_URL', which cannot be read"),
    ({**REQUIRED, "DATABASE_URL_FILE": "/etc/hostname"}, "DATABASE_URL and DATABASE_URL_FILE are both set"),
])
def test_bad_file_variables_name_the_variable(extra, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(extra)
