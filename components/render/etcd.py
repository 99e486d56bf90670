"""Command-line flags for one member of a statically bootstrapped etcd cluster.

Consumed by `etcd` 3.4 / 3.5 (the Docker component runs the official v3.5 image, the
integration tests Debian's 3.4 on 127.0.0.1). Every member gets the full member list
(`--initial-cluster`), so the cluster forms without a discovery service. The list only
matters on first start: a member whose data dir already holds the cluster rejoins from
it and ignores these bootstrap flags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MEMBER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class EtcdMember:
    name: str  # unique in the cluster, e.g. "etcd-0"
    host: str  # how the other members and the clients reach it: a DNS alias or 127.0.0.1
    client_port: int = 2379
    peer_port: int = 2380

    def __post_init__(self) -> None:
        if not _MEMBER_NAME.match(self.name):
            raise ValueError(f"etcd member name must match [a-z0-9][a-z0-9-]*, got {self.name!r}")

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    @property
    def client_endpoint(self) -> str:
        """`host:port`, the form Patroni's `etcd3.hosts` takes."""
        return f"{self.host}:{self.client_port}"


@dataclass(frozen=True)
class EtcdClusterSettings:
    members: tuple[EtcdMember, ...]
    # Distinguishes this cluster's bootstrap from another one's on the same network.
    cluster_token: str
    # The address each member binds: "0.0.0.0" in a container, "127.0.0.1" on loopback.
    listen_host: str = "0.0.0.0"
    # Raft timing; None: etcd's defaults (100 ms / 1000 ms).
    heartbeat_interval_ms: int | None = None
    election_timeout_ms: int | None = None

    def __post_init__(self) -> None:
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"etcd member names must be unique, got {names}")
        if len(self.members) % 2 == 0:
            # An even count tolerates no more failures than the odd count below it,
            # and adds one more member that can fail.
            raise ValueError(f"an etcd cluster needs an odd number of members, got {len(self.members)}")

    @property
    def client_endpoints(self) -> tuple[str, ...]:
        return tuple(m.client_endpoint for m in self.members)


def etcd_member_flags(s: EtcdClusterSettings, member_name: str, data_dir: str) -> list[str]:
    """argv (after `etcd`) for member `member_name` of cluster `s`, keeping its data in `data_dir`."""
    member = next((m for m in s.members if m.name == member_name), None)
    if member is None:
        raise ValueError(f"{member_name!r} is not a member of {[m.name for m in s.members]}")
    return [
        f"--name={member.name}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls=http://{s.listen_host}:{member.client_port}",
        f"--advertise-client-urls={member.client_url}",
        f"--listen-peer-urls=http://{s.listen_host}:{member.peer_port}",
        f"--initial-advertise-peer-urls={member.peer_url}",
        f"--initial-cluster={','.join(f'{m.name}={m.peer_url}' for m in s.members)}",
        f"--initial-cluster-token={s.cluster_token}",
        "--initial-cluster-state=new",
        *([f"--heartbeat-interval={s.heartbeat_interval_ms}"] if s.heartbeat_interval_ms else []),
        *([f"--election-timeout={s.election_timeout_ms}"] if s.election_timeout_ms else []),
    ]
