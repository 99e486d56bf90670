"""Several "machines" on one host: network namespaces on a bridge, made and torn down by
the drill itself, with addresses from DRILL_NETWORK only (never the host's own).

    with drill_network(["n1", "n2", "n3", "client"]) as network:
        with network.inside("n1"):
            process = subprocess.Popen([...])   # runs in n1's namespace
        network.cut("n1")                       # n1 off the bridge: a partition
        network.heal("n1")
        network.kill_every_process("n1")        # the machine dies

The bridge itself lives in a namespace of its own, so the host's network namespace is
never touched. `inside` moves the calling thread into a namespace (setns(2), what
`ip netns exec` does before it execs), so the existing launchers (loopback/app.py,
loopback/haproxy.py, loopback/patroni.py) start their processes there unchanged, and
threads started inside (a load generator, a writer) open their sockets there.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from .binaries import MissingBinary, in_ci
from .ports import wait_until

# The drills' own addresses: node i gets .i, the client .100.
DRILL_NETWORK = ipaddress.ip_network("10.213.0.0/24")
CLIENT_HOST = 100
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/var/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsUnavailable(RuntimeError):
    """This machine cannot make network namespaces (not root, no iproute2, or no permission)."""


def is_drill_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host) in DRILL_NETWORK
    except ValueError:
        return False


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


def check_available() -> None:
    """Raise NetnsUnavailable naming what is missing."""
    if shutil.which("ip") is None:
        raise MissingBinary("ip is not installed; run: apt-get install -y iproute2")
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


@dataclass
class DrillNetwork:
    """Namespaces `<prefix>-<node>` on one bridge in `<prefix>-switch`."""

    nodes: Sequence[str]
    prefix: str = field(default_factory=lambda: f"hs{uuid.uuid4().hex[:6]}")

    @property
    def switch(self) -> str:
        return f"{self.prefix}-switch"

    def namespace(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def address(self, node: str) -> str:
        index = CLIENT_HOST if node == "client" else self.nodes.index(node) + 1
        return str(DRILL_NETWORK.network_address + index)

    def _port(self, node: str) -> str:
        """The node's veth end on the bridge (in the switch namespace)."""
        return f"p{self.nodes.index(node)}"

    def create(self) -> None:
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for node in self.nodes:
            namespace = self.namespace(node)
            _ip("netns", "add", namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
            # Both ends are born inside the drill's namespaces, never in the host's.
            _ip("-n", namespace, "link", "add", "eth0", "type", "veth", "peer", "name", self._port(node), "netns", self.switch)
            _ip("-n", self.switch, "link", "set", self._port(node), "master", "br0")
            _ip("-n", self.switch, "link", "set", self._port(node), "up")
            _ip("-n", namespace, "addr", "add", f"{self.address(node)}/{DRILL_NETWORK.prefixlen}", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")

    def destroy(self) -> None:
        """Kill whatever still runs in the namespaces, then delete them (and their veths)."""
        for node in self.nodes:
            if os.path.exists(f"{NETNS_DIR}/{self.namespace(node)}"):
                self.kill_every_process(node)
                subprocess.run(["ip", "netns", "del", self.namespace(node)], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.switch], capture_output=True, timeout=30)

    def pids(self, node: str) -> list[int]:
        """Every process whose network namespace is the node's: all the machine runs."""
        result = subprocess.run(["ip", "netns", "pids", self.namespace(node)], capture_output=True, text=True, timeout=30)
        return [int(pid) for pid in result.stdout.split()]

    def kill_every_process(self, node: str, deadline_s: float = 20.0) -> None:
        """SIGKILL every process of the node at once, as a power loss would."""
        for pid in self.pids(node):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not self._live(self.pids(node)), deadline_s, f"every process of {node} gone", 0.02)

    @staticmethod
    def _live(pids: list[int]) -> list[int]:
        """Pids that are not zombies (a dead child its parent has yet to reap)."""
        live = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                        live.append(pid)
            except OSError:
                continue
        return live

    def cut(self, node: str) -> None:
        """Unplug the node from the bridge: it and everything on it keep running, alone."""
        _ip("-n", self.switch, "link", "set", self._port(node), "down")

    def heal(self, node: str) -> None:
        _ip("-n", self.switch, "link", "set", self._port(node), "up")

    @contextmanager
    def inside(self, node: str) -> Iterator[None]:
        """Run the block with the calling thread in the node's network namespace."""
        here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        there = os.open(f"{NETNS_DIR}/{self.namespace(node)}", os.O_RDONLY)
        try:
            _setns(there)
            try:
                yield
            finally:
                _setns(here)
        finally:
            os.close(there)
            os.close(here)


@contextmanager
def drill_network(nodes: Sequence[str]) -> Iterator[DrillNetwork]:
    """The namespaces and bridge for `nodes` ("client" included if wanted); always torn down."""
    check_available()
    network = DrillNetwork(nodes)
    try:
        network.create()
        yield network
    finally:
        network.destroy()


def netns_unavailable_reason() -> str | None:
    """Why a namespace drill cannot run here, or None. Under CI the caller must fail on it."""
    try:
        check_available()
        with drill_network(["probe"]):
            pass
    except (NetnsUnavailable, MissingBinary) as problem:
        return str(problem)
    return None


__all__ = ["DRILL_NETWORK", "DrillNetwork", "NetnsUnavailable", "drill_network", "in_ci", "is_drill_address",
           "netns_unavailable_reason"]
