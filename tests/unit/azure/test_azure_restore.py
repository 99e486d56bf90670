"""`database.restore` on Azure (issue 10, managed section), under mocks.

A restore run creates the primary from a backup (PointInTimeRestore or GeoRestore),
single-instance, with the parameters chained after it and no replicas; the run after it
(without `database.restore`) declares HA, the admin password and the replicas. Bad input
is one clear line and registers nothing: the config's own rules (now injectable), and the
live source server's (read with getServer; the fakes answer like a real 16 server in
westeurope with 7 days of geo-redundant backups).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from components.azure.database import FAILOVER_DRIFT, RESTORE_INPUTS
from components.azure.restore import SourceServer, restore_problems, source_resource_group_and_name
from components.config import ConfigError, RestoreConfig, load_stack_config
from plan.engine import PROJECT_DIR, run_program
from plan.gate import Outcome, evaluate
from policy.hastack_policies.config_file import load_policy_config
from tests.unit.azure.helpers import (
    CONFIGURATION,
    PROD,
    RESTORE_SOURCE,
    STAGING,
    config_with,
    primary_server,
    replica_servers,
    restore,
)

@pytest.fixture(scope="module")
def restore_run():
    return run_program(config_with(PROD, database=restore(target="2026-11-30T09:15:00+01:00")), "prod")


# ---------------------------------------------------------------- the restore run


def test_the_primary_is_created_from_the_source_at_the_target_time(restore_run):
    server = primary_server(restore_run).inputs
    assert server["createMode"] == "PointInTimeRestore"
    assert server["sourceServerResourceId"] == RESTORE_SOURCE
    # The configured offset is normalised to the UTC the API names (pointInTimeUTC).
    assert server["pointInTimeUTC"] == "2026-11-30T08:15:00Z"
    assert server["location"] == "westeurope"


def test_a_restored_server_is_declared_single_instance_with_the_sources_admin_password(restore_run):
    server = primary_server(restore_run).inputs
    assert server["highAvailability"]["mode"] == "Disabled"
    # The source's password until the next run; the login stays the same on both runs.
    assert "administratorLoginPassword" not in server
    assert server["administratorLogin"] == "hastack_admin"
    assert server["backup"] == {"backupRetentionDays": 35, "geoRedundantBackup": "Enabled"}


def test_parameters_follow_the_restore_and_replicas_wait_for_the_next_run(restore_run):
    primary = primary_server(restore_run)
    parameters = restore_run.of_type(CONFIGURATION)
    assert primary.urn in parameters[0].dependencies
    assert replica_servers(restore_run) == []
    assert any("database.restore is set" in w for w in _warnings(PROD, "prod", restore()))


def test_dropping_restore_afterwards_updates_the_server_and_never_replaces_it(restore_run):
    assert primary_server(restore_run).ignore_changes == [*FAILOVER_DRIFT, *RESTORE_INPUTS]
    after = run_program(config_with(PROD), "prod")
    server = primary_server(after)
    assert server.ignore_changes == [*FAILOVER_DRIFT, *RESTORE_INPUTS]
    # The run after the restore: HA, the admin password, then replicas after the last parameter.
    assert server.inputs["highAvailability"]["mode"] == "ZoneRedundant"
    assert server.inputs["administratorLogin"] == "hastack_admin"
    (replica,) = replica_servers(after)
    assert after.of_type(CONFIGURATION)[-1].urn in replica.dependencies


def test_a_geo_restore_goes_to_the_configured_paired_region():
    run = run_program(config_with(STAGING, database=restore(mode="GeoRestore"), azure={"location": "northeurope"}), "staging")
    server = primary_server(run).inputs
    assert server["createMode"] == "GeoRestore"
    assert server["location"] == "northeurope"
    assert server["sourceServerResourceId"] == RESTORE_SOURCE


def test_the_prod_restore_run_passes_the_gate_and_the_next_run_is_judged_again(restore_run):
    settings = load_policy_config(PROJECT_DIR / "policy" / "config.prod.json")
    assert not [v for v in evaluate(restore_run, settings) if v.blocks]
    # The run after: createMode keeps its restore value (ignored), the password is back, HA rules apply again.
    server = primary_server(restore_run)
    server.wire_inputs["administratorLoginPassword"] = "the next run's password"
    failing = {v.policy for v in evaluate(restore_run, settings) if v.outcome is Outcome.VIOLATED}
    assert {"db-zone-redundant-ha", "db-streaming-replica"} <= failing


# ---------------------------------------------------------------- bad input
# Malformed restores are cases of test_azure_config_errors.py (one line, nothing registered).


# ---------------------------------------------------------------- the window, with `now` pinned

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def _load(target: str):
    raw = config_with(PROD, database={"restore": {"target": target, "sourceServerId": RESTORE_SOURCE}})
    return load_stack_config(raw, "prod", now=NOW)


@pytest.mark.parametrize("target", ["2026-10-27T12:00:00Z", "2026-12-01T12:00:00Z", "2026-12-01T13:00:00+01:00"])
def test_targets_on_the_window_edges_are_accepted(target):
    assert _load(target).database.restore.target == target


@pytest.mark.parametrize("target", ["2026-10-27T11:59:59Z", "2026-12-01T12:00:01Z", "2026-12-01T12:30:00+00:00"])
def test_targets_past_the_window_edges_are_refused(target):
    with pytest.raises(ConfigError) as caught:
        _load(target)
    assert caught.value.problems == [
        f"hastack: database.restore.target {target} is outside the restore window: Flexible Server keeps backups for "
        "at most 35 days, so it must lie between 2026-10-27T12:00:00Z and now (2026-12-01T12:00:00Z)"
    ]


# ---------------------------------------------------------------- the source checks as a pure function

SOURCE_SERVER = SourceServer(version="16", location="westeurope",
                             earliest_restore_point=NOW - timedelta(days=7), geo_redundant_backup=False)


def test_a_geo_restore_needs_the_sources_geo_redundant_backups():
    config = RestoreConfig(target="2026-11-30T12:00:00Z", sourceServerId=RESTORE_SOURCE, mode="GeoRestore")
    assert restore_problems(config, SOURCE_SERVER, "16", "northeurope") == [
        "hastack:database.restore.mode: GeoRestore needs the source's geo-redundant backups, which it does not keep; "
        "use PointInTimeRestore in its region"
    ]


def test_a_sound_restore_has_no_problem_and_every_problem_is_its_own_line():
    fine = RestoreConfig(target="2026-11-30T12:00:00Z", sourceServerId=RESTORE_SOURCE)
    assert restore_problems(fine, SOURCE_SERVER, "16", "westeurope") == []
    bad = RestoreConfig(target="2026-11-20T12:00:00Z", sourceServerId=RESTORE_SOURCE)
    assert len(restore_problems(bad, SOURCE_SERVER, "17", "northeurope")) == 3


def test_the_source_id_names_its_group_and_server():
    assert source_resource_group_and_name(RESTORE_SOURCE) == ("hastack-prod-rg", "hastack-prod-primary-1a2b3c")


def _warnings(path, stack, database) -> list[str]:
    raw = config_with(path, database=database)
    return load_stack_config(raw, stack).warnings
