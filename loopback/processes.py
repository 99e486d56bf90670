"""Process trees from /proc: what "every process it started has ended" is checked against.

A server's children need not share its session or process group (postgres gives every
backend its own), so trees are followed by parentage.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from .ports import wait_until

# How long the root of a killed tree may take to exit by itself once its children died.
ROOT_EXIT_GRACE_S = 1.0


def process_tree(roots: set[int]) -> set[int]:
    """The live pids among `roots` and all their descendants (zombies excluded)."""
    children: dict[int, list[int]] = {}
    alive = set()
    for entry in Path("/proc").iterdir():
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat[0] != "Z":
            alive.add(int(entry.name))
            children.setdefault(stat[1], []).append(int(entry.name))
    found, pending = set(), [pid for pid in roots if pid in alive]
    while pending:
        pid = pending.pop()
        found.add(pid)
        pending += children.get(pid, [])
    return found


def kill_tree(root: int, deadline_s: float = 30.0) -> None:
    """SIGKILL `root` and every descendant, as the kernel does to a container's processes
    when its init dies. `root` is the caller's child, for the caller to reap.

    Descendants go first, so that each dead one is reaped by a parent still alive
    (runuser reaps the postmaster it waits on, then exits): an orphan waits for init to
    reap it, which can take seconds, and an unreaped postmaster still counts as running
    to the next postmaster's postmaster.pid check.
    """
    descendants = process_tree({root}) - {root}
    for pid in descendants:
        _kill(pid)
    wait_until(lambda: not process_tree(descendants), deadline_s, f"processes {sorted(descendants)} gone", 0.005)
    try:
        wait_until(lambda: _state(root) in {None, "Z"}, ROOT_EXIT_GRACE_S, f"process {root} exited", 0.005)
    except TimeoutError:  # the root was the server itself, not a parent waiting on it
        pass
    _kill(root)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _state(pid: int) -> str | None:
    """The process state letter ("R", "S", "Z", ...), or None when there is no such process."""
    stat = _stat(pid)
    return stat[0] if stat else None


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc, or None when there is no such process."""
    try:
        text = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:  # no such process, or it ended while we looked
        return None
    # The fields after the parenthesised command name start: state, ppid, ...
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)
