"""The reference app's settings from the environment (app/hastack_app/config.py)."""

from __future__ import annotations

import socket

import pytest

from app.hastack_app.config import ConfigError, Settings, node_id_from

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
