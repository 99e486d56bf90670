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
import threading
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
from loopback.postgres import chown_to_postgres, make_owned_dir, remove_tree
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
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class PatroniNode:
    settings: PatroniSettings
    postgres_port: int
    api_port: int
    process: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return self.settings.node_name

    def start(self, config_path: Path, env: dict[str, str], log_path: Path) -> None:
        # Popen(user=...) rather than runuser: on SIGTERM runuser kills its child after
        # 2 s, before Patroni has stopped postgres, which would orphan the postmaster.
        as_postgres_user = {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([find("patroni"), str(config_path)], env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True, **as_postgres_user)

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}{path}", timeout=2) as response:
            return json.load(response)

    def crash(self) -> None:
        """SIGKILL the node: Patroni, and postgres with all its backends."""
        self._kill_postgres()
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Patroni stops its postgres on SIGTERM; whatever is left after that gets SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._kill_postgres()

    def _kill_postgres(self) -> None:
        # Patroni runs postgres in a session (process group) of its own.
        pid_file = Path(self.settings.data_dir) / "postmaster.pid"
        try:
            os.killpg(os.getpgid(int(pid_file.read_text().split()[0])), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass  # postgres is not running


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
    # HOME: Patroni writes its pgpass file there, and /root is not the postgres user's.
    env = {**os.environ, "HOME": str(root), SUPERUSER_PASSWORD_ENV: passwords.superuser,
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
            node.start(config, env, root / f"{node.name}.log")
        yield nodes, passwords
    finally:
        for node in nodes:
            node.stop()
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


class SteadyWriter(threading.Thread):
    """Inserts ids 1, 2, 3, ... one commit at a time, reconnecting after errors the way
    an app would, and records when each commit was acknowledged."""

    def __init__(self, nodes: list[PatroniNode], passwords: Passwords):
        super().__init__(daemon=True)
        self.nodes, self.passwords = nodes, passwords
        self.acknowledged_at: dict[int, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        next_id = 1
        while not self.stopping.is_set():
            try:
                with writer(self.nodes, self.passwords) as conn:
                    while not self.stopping.is_set():
                        conn.execute("INSERT INTO notes VALUES (%s)", (next_id,))
                        self.acknowledged_at[next_id] = time.monotonic()
                        next_id += 1
            except psycopg.OperationalError:
                # The commit of next_id may or may not have happened; it was not
                # acknowledged, so it is not counted either way. Retry under a new id.
                next_id += 1
                self.stopping.wait(0.05)  # back off between reconnects instead of spinning

    def first_ack_after(self, moment: float) -> float | None:
        return min((at for at in list(self.acknowledged_at.values()) if at > moment), default=None)


def test_patroni_fails_over_within_ten_seconds_without_losing_commits(patroni_cluster) -> None:
    nodes, passwords = patroni_cluster
    def leader_and_sync_standby() -> bool:
        exited = [node.name for node in nodes if node.process.poll() is not None]
        assert not exited, f"patroni exited on {exited}"
        return sorted(roles(nodes).values()) == ["leader", "sync_standby"]

    wait_until(leader_and_sync_standby, deadline_s=90, what="a leader and a sync standby", interval_s=0.2)
    with writer(nodes, passwords) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY)")

    load = SteadyWriter(nodes, passwords)
    load.start()
    try:
        wait_until(lambda: len(load.acknowledged_at) >= 50, deadline_s=30, what="writes flowing")
        leader = next(node for node in nodes if roles(nodes)[node.name] == "leader")
        leader.crash()
        crashed_at = time.monotonic()
        wait_until(lambda: load.first_ack_after(crashed_at) is not None, deadline_s=60,
                   what="a write accepted after the leader crashed", interval_s=0.05)
        failover_s = load.first_ack_after(crashed_at) - crashed_at
    finally:
        load.stopping.set()
        load.join(timeout=10)

    with writer(nodes, passwords) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM notes")}
    lost = set(load.acknowledged_at) - stored
    print(f"patroni failover: writes accepted {failover_s:.2f} s after SIGKILL of leader {leader.name}; "
          f"acknowledged commits lost: {len(lost)} of {len(load.acknowledged_at)}")
    assert failover_s <= FAILOVER_LIMIT_S
    assert lost == set()
