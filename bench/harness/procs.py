"""Processes the harness starts, pinned to a CPU, and what /proc says about
them. Only processes started here are ever stopped, by their PID."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connects(port: int) -> bool:
    """Whether a TCP connect to 127.0.0.1:port succeeds now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> float | None:
    """Polls connects to `port` every millisecond until one succeeds (the
    seconds it took) or `timeout` passes or `proc` exits (None)."""
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        if connects(port):
            return time.monotonic() - start
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(0.001)
    return None


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (nginx's master and its worker)."""
    pids, todo = [], [pid]
    while todo and len(pids) < 64:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return pids


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of `pid` and its descendants, from
    /proc/PID/stat (all threads; the clock tick is the resolution)."""
    user = system = 0
    for one in tree(pid):
        try:
            stat = Path(f"/proc/{one}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        user += int(fields[11])
        system += int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def memory_kib(pid: int, field: str) -> int:
    """A /proc/PID/status memory field (VmRSS, VmHWM) in KiB, summed over
    `pid` and its descendants."""
    total = 0
    for one in tree(pid):
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except OSError:
            continue
        match = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
        if match:
            total += int(match.group(1))
    return total


@dataclass
class Started:
    """A process this harness started."""

    name: str
    proc: subprocess.Popen
    log: Path
    # Seconds from exec to the first accepted connection, once known.
    startup_s: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


class Procs:
    """Starts processes pinned with taskset and stops exactly those."""

    def __init__(self, work: Path):
        self.work = work
        self.started: list[Started] = []

    def start(self, name: str, argv: list[str], cpu: str, stdin=None) -> Started:
        """Starts `argv` on CPU `cpu` (taskset execs it: the PID is the
        program's), output to a log file in the work directory."""
        log = self.work / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["taskset", "-c", cpu, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                start_new_session=True,
            )
        started = Started(name, proc, log)
        self.started.append(started)
        return started

    def stop(self, started: Started, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; by PID only."""
        if started.proc.poll() is None:
            try:
                os.kill(started.pid, signal.SIGTERM)
                started.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(started.pid, signal.SIGKILL)
                started.proc.wait(timeout=grace)
            except ProcessLookupError:
                pass
        if started in self.started:
            self.started.remove(started)

    def stop_all(self) -> None:
        for started in list(reversed(self.started)):
            try:
                self.stop(started)
            except Exception:  # noqa: BLE001 - cleanup goes on for the others
                pass

    def wait_line(self, started: Started, pattern: str, timeout: float) -> re.Match | None:
        """Waits (bounded) for a line matching `pattern` in the process's log."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            match = regex.search(started.log.read_text(errors="replace"))
            if match:
                return match
            if started.proc.poll() is not None:
                return regex.search(started.log.read_text(errors="replace"))
            time.sleep(0.01)
        return None
