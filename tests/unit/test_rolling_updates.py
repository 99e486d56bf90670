"""Rolling updates, proved from the dependencies the program registers.

Pulumi replaces resources in parallel unless one depends on another; a replacement
(create-before-delete by default) of a dependent waits for its dependency's step. So
the app replicas are replaced one at a time exactly when their dependency graph is a
chain, and each step ends only when the new container is healthy (`wait`).
"""

from __future__ import annotations

import json

import pytest

from plan.engine import PROJECT_DIR, ProgramRun, RecordedResource, run_program, stack_file_config
from tests.unit.mock_run import CONTAINER, app_replicas, containers


def run_with_app_replicas(replicas: int, database: dict | None = None) -> ProgramRun:
    raw = stack_file_config(PROJECT_DIR / "Pulumi.dev.yaml")
    raw["hastack:app"] = json.dumps({"replicas": replicas})
    if database:
        raw["hastack:database"] = json.dumps(database)
    return run_program(raw, "dev")


def run_patroni(db_replicas: int) -> ProgramRun:
    return run_with_app_replicas(2, {"replicas": db_replicas, "failover": "patroni"})


def replacement_waves(nodes: list[RecordedResource]) -> list[list[str]]:
    """Group `nodes` into the waves the engine can replace concurrently: a node's wave
    is one after the latest wave of any node it depends on."""
    by_urn = {n.urn: n for n in nodes}
    wave: dict[str, int] = {}

    def wave_of(node: RecordedResource) -> int:
        if node.urn not in wave:
            wave[node.urn] = 1 + max((wave_of(by_urn[d]) for d in node.dependencies if d in by_urn), default=-1)
        return wave[node.urn]

    waves: list[list[str]] = []
    for node in nodes:
        index = wave_of(node)
        waves.extend([] for _ in range(index + 1 - len(waves)))
        waves[index].append(node.name)
    return waves


@pytest.mark.parametrize("replicas", [2, 3, 5])
def test_app_replicas_are_replaced_one_at_a_time_in_order(replicas):
    run = run_with_app_replicas(replicas)
    assert replacement_waves(app_replicas(run)) == [[f"app-{i}"] for i in range(replicas)]


def test_each_replica_waits_for_the_previous_one_to_be_healthy():
    run = run_with_app_replicas(3)
    nodes = app_replicas(run)
    for previous, current in zip(nodes, nodes[1:]):
        assert previous.urn in current.dependencies
        # `wait` makes a create step end only once the healthcheck passes.
        assert previous.inputs["wait"] is True and previous.inputs["healthcheck"]["tests"]


def test_no_replica_is_deleted_before_its_replacement_exists():
    # delete_before_replace along the chain would cascade: every replica deleted before
    # any new one starts, which is an outage.
    run = run_with_app_replicas(3)
    assert not any(node.delete_before_replace for node in app_replicas(run))


def test_the_first_replica_waits_for_the_database_and_the_load_balancer_for_all_replicas():
    run = run_with_app_replicas(3)
    first = app_replicas(run)[0]
    assert {n.urn for n in containers(run, "db-")} <= set(first.dependencies)
    haproxy = run.by_name("lb-haproxy")
    assert {n.urn for n in app_replicas(run)} <= set(haproxy.dependencies)


def test_only_the_fixed_port_load_balancer_and_the_single_writer_data_dirs_replace_delete_first():
    run = run_with_app_replicas(2)
    delete_first = sorted(r.name for r in run.of_type(CONTAINER) if r.delete_before_replace)
    # Prometheus and Alertmanager publish fixed ports and lock their data dirs too.
    assert delete_first == ["db-primary", "db-replica-0", "lb-haproxy", "monitoring-alertmanager", "monitoring-prometheus"]


# ---------------------------------------------------------------- failover: patroni


@pytest.mark.parametrize("db_replicas", [1, 2])
def test_patroni_members_start_after_every_etcd_member_and_are_replaced_one_at_a_time(db_replicas):
    run = run_patroni(db_replicas)
    etcd, members = containers(run, "etcd-"), containers(run, "db-")
    # The etcd members form their quorum together: none waits for another.
    assert replacement_waves(etcd) == [["etcd-0", "etcd-1", "etcd-2"]]
    assert replacement_waves(etcd + members) == [["etcd-0", "etcd-1", "etcd-2"], *([f"db-{i}"] for i in range(1 + db_replicas))]
    assert replacement_waves(members) == [[f"db-{i}"] for i in range(1 + db_replicas)]


def test_with_patroni_the_app_waits_for_every_member():
    run = run_patroni(2)
    first = app_replicas(run)[0]
    assert {n.urn for n in containers(run, "db-")} <= set(first.dependencies)


def test_with_patroni_every_data_dir_owner_replaces_delete_first():
    run = run_patroni(1)
    delete_first = sorted(r.name for r in run.of_type(CONTAINER) if r.delete_before_replace)
    assert delete_first == ["db-0", "db-1", "etcd-0", "etcd-1", "etcd-2", "lb-haproxy", "monitoring-alertmanager",
                            "monitoring-prometheus"]
