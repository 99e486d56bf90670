"""The rendered patroni.yml: etcd plus two Patroni nodes on 127.0.0.1, and a leader crash.

Measures the seconds from SIGKILL of the leader node (Patroni and its postgres) to the
first write accepted by the new leader, and checks that synchronous mode lost no
acknowledged commit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from components.render.patroni import (
    REPLICATION_PASSWORD_ENV,
    SUPERUSER_PASSWORD_ENV,
    PatroniSettings,
    patroni_post_bootstrap_script,
    render_patroni_yml,
)
from components.render.postgres import APP_DB_PASSWORD_ENV, PrimarySettings
from loopback.binaries import POSTGRES_BIN_DIR, MissingBinary, find, in_ci
from loopback.ports import free_port, wait_for_port, wait_until
from loopback.postgres import as_postgres, chown_to_postgres, make_owned_dir, remove_tree
from loopback.replication import APP_DB, APP_USER, LOOPBACK_CIDR, Passwords

pytestmark = pytest.mark.integration

# HA target: writes accepted again within 10 s of a node crash.
FAILOVER_LIMIT_S = 10.0


@pytest.fixture(autouse=True)
def patroni_installed() -> None:
    try:
        for name in ("etcd", "patroni", "postgres", "psql"):
            find(name)
    except MissingBinary as err:
        if in_ci():
            pytest.fail(str(err))
        pytest.skip(str(err))


def stop_process_group(process: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM the process group `process` leads, SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_s)


@pytest.fixture
def etcd_endpoint(tmp_path: Path) -> Iterator[str]:
    client_port, peer_port = free_port(), free_port()
    peer_url = f"http://127.0.0.1:{peer_port}"
    client_url = f"http://127.0.0.1:{client_port}"
    with open(tmp_path / "etcd.log", "ab") as log:
        process = subprocess.Popen(
            [find("etcd"), "--name", "etcd0", "--data-dir", str(tmp_path / "etcd"),
             "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", f"etcd0={peer_url}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(client_port, deadline_s=15)
        yield f"127.0.0.1:{client_port}"
    finally:
        stop_process_group(process)


@dataclass
class PatroniNode:
    settings: PatroniSettings
    postgres_port: int
    api_port: int
    process: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return self.settings.node_name

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}{path}", timeout=2) as response:
            return json.load(response)

    def crash(self) -> None:
        """SIGKILL the node: Patroni and postgres, which Patroni runs in its own session."""
        postmaster_pid = int((Path(self.settings.data_dir) / "postmaster.pid").read_text().split()[0])
        os.killpg(postmaster_pid, signal.SIGKILL)
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def patroni_cluster(etcd_endpoint: str) -> Iterator[tuple[list[PatroniNode], Passwords]]:
    root = make_owned_dir("hastack-patroni-")
    passwords = Passwords.generate()
    database = PrimarySettings(replica_slots=("replica_0",), max_slot_wal_keep_size_mb=256,
                               replication_cidr=LOOPBACK_CIDR, app_db=APP_DB, app_user=APP_USER,
                               listen_addresses="127.0.0.1")
    post_bootstrap = root / "post-bootstrap.sh"
    post_bootstrap.write_text(patroni_post_bootstrap_script(database, bin_dir=str(POSTGRES_BIN_DIR)))
    post_bootstrap.chmod(0o755)
    env = {**os.environ, SUPERUSER_PASSWORD_ENV: passwords.superuser,
           REPLICATION_PASSWORD_ENV: passwords.replication, APP_DB_PASSWORD_ENV: passwords.app}
    nodes = []
    for index in range(2):
        postgres_port, api_port = free_port(), free_port()
        settings = PatroniSettings(
            scope="hastack-test", node_name=f"db-{index}", etcd_hosts=(etcd_endpoint,),
            restapi_listen=f"127.0.0.1:{api_port}", restapi_connect_address=f"127.0.0.1:{api_port}",
            postgres_listen=f"127.0.0.1:{postgres_port}", postgres_connect_address=f"127.0.0.1:{postgres_port}",
            data_dir=str(root / f"db-{index}"), database=database, bin_dir=str(POSTGRES_BIN_DIR),
            unix_socket_dir=str(root), post_bootstrap_path=str(post_bootstrap))
        nodes.append(PatroniNode(settings, postgres_port, api_port))
    try:
        for node in nodes:
            config = root / f"{node.name}.yml"
            config.write_text(render_patroni_yml(node.settings))
            chown_to_postgres(config)
            with open(root / f"{node.name}.log", "ab") as log:
                node.process = subprocess.Popen(as_postgres([find("patroni"), str(config)]), env=env,
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        yield nodes, passwords
    finally:
        for node in nodes:
            if node.process is not None:
                stop_process_group(node.process)
        remove_tree(root)


def roles(nodes: list[PatroniNode]) -> dict[str, str]:
    """{node name: role} as the cluster reports it: leader, sync_standby, replica."""
    for node in nodes:
        if node.process.poll() is None:
            try:
                return {member["name"]: member["role"] for member in node.api("/cluster")["members"]}
            except OSError:
                continue
    return {}


def writer(nodes: list[PatroniNode], passwords: Passwords) -> psycopg.Connection:
    """The app's writer connection: every node listed, read-write wanted."""
    return psycopg.connect(host=",".join("127.0.0.1" for _ in nodes), port=",".join(str(n.postgres_port) for n in nodes),
                           user=APP_USER, password=passwords.app, dbname=APP_DB,
                           target_session_attrs="read-write", connect_timeout=1, autocommit=True)


def test_patroni_fails_over_within_ten_seconds_without_losing_commits(patroni_cluster) -> None:
    nodes, passwords = patroni_cluster
    wait_until(lambda: sorted(roles(nodes).values()) == ["leader", "sync_standby"], deadline_s=90,
               what="a leader and a sync standby", interval_s=0.2)
    with writer(nodes, passwords) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY)")
        acknowledged = set()
        for note_id in range(1, 51):
            conn.execute("INSERT INTO notes VALUES (%s)", (note_id,))
            acknowledged.add(note_id)

    leader = next(node for node in nodes if roles(nodes)[node.name] == "leader")
    leader.crash()
    crashed_at = time.monotonic()

    # Keep writing the way the app would: reconnect and retry until a write is accepted.
    note_id = 51
    while True:
        assert time.monotonic() - crashed_at < 60, "no write accepted within 60 s"
        try:
            with writer(nodes, passwords) as conn:
                conn.execute("INSERT INTO notes VALUES (%s)", (note_id,))
            acknowledged.add(note_id)
            break
        except psycopg.OperationalError:
            time.sleep(0.05)  # back off between attempts; not a readiness guess
    failover_s = time.monotonic() - crashed_at

    with writer(nodes, passwords) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM notes")}
    lost = acknowledged - stored
    print(f"patroni failover: writes accepted {failover_s:.2f} s after SIGKILL of leader {leader.name}; "
          f"acknowledged commits lost: {len(lost)} of {len(acknowledged)}")
    assert failover_s <= FAILOVER_LIMIT_S
    assert lost == set()
