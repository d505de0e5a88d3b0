"""This process's identity, and whether a process recorded earlier still runs here.

Linux only (``/proc``): the host is named by its boot id and the PID namespace
(the same pid means the same process only within one namespace of one boot),
a process by its pid and its start time in clock ticks since boot (so a
recycled pid is not taken for the process that used it before). Elsewhere
both answers are None and only the heartbeat's lapse tells a run is dead.
Reading ``/proc/PID/stat`` costs a few microseconds.
"""

from __future__ import annotations

import functools
import os

from sluice.liveness import ProcessIdentity

_BOOT_ID = "/proc/sys/kernel/random/boot_id"


@functools.cache
def host_id() -> str | None:
    """This host's id (boot id + PID namespace), or None where ``/proc`` cannot tell."""
    try:
        with open(_BOOT_ID, encoding="ascii") as f:
            boot = f.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}"


def started(pid: int) -> int | None:
    """The start time (clock ticks since boot) of process ``pid``; None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or
    # parentheses itself: count fields after its last ")".
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


def this_process() -> ProcessIdentity | None:
    """This process's identity, or None where it cannot be known."""
    host = host_id()
    if host is None:
        return None
    pid = os.getpid()
    start = started(pid)
    return None if start is None else ProcessIdentity(host, pid, start)


__all__ = ["host_id", "started", "this_process"]
