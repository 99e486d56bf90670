"""Process trees from /proc: what "every process it started has ended" is checked against.

A server's children need not share its session or process group (postgres gives every
backend its own), so trees are followed by parentage.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from .ports import wait_until


def process_tree(roots: set[int]) -> set[int]:
    """The live pids among `roots` and all their descendants (zombies excluded)."""
    children: dict[int, list[int]] = {}
    alive = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while we looked
            continue
        # The fields after the parenthesised command name start: state, ppid, ...
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            alive.add(int(entry.name))
            children.setdefault(int(ppid), []).append(int(entry.name))
    found, pending = set(), [pid for pid in roots if pid in alive]
    while pending:
        pid = pending.pop()
        found.add(pid)
        pending += children.get(pid, [])
    return found


def kill_tree(root: int, deadline_s: float = 30.0) -> None:
    """SIGKILL `root` and every descendant at once, as the kernel does to a container's
    processes when its init dies, and wait until the descendants have vanished: even as
    a zombie not yet reaped by its new parent, a process counts as alive to postgres'
    postmaster.pid check. `root` is the caller's child, for the caller to reap."""
    tree = process_tree({root})
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in tree - {root}), deadline_s,
               f"processes {sorted(tree - {root})} gone", interval_s=0.005)
