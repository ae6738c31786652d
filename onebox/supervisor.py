"""Run child processes, restart the ones that die, and never leave one behind.

Why processes and not threads: the worker holds torch and the models, and a crash there
(a segfault in a native library, the OOM killer, `kill -9`) must not take the API with it; in
one process it would. Each child:

- runs in its own session (process group), so Ctrl-C reaches only the supervisor, which stops
  the children in order, and a dead child's own subprocesses can be killed with its group;
- gets PR_SET_PDEATHSIG(SIGKILL) (Linux, via ctypes in the pre-exec hook): when the supervisor
  dies, even by `kill -9`, the kernel kills the child; nothing keeps holding the port;
- is restarted with exponential back-off when it exits unasked (reset after a stable run).

The supervisor also records the children's process groups in a run file, so a later run can
kill any that survived (a platform without PDEATHSIG, a grandchild) before it starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a child that ran this long starts its back-off afresh when it dies
GRACE_SECONDS = 15.0  # per shutdown step: finish, then give back, then kill


def _die_with_parent(parent: int) -> Callable[[], None]:
    """The pre-exec hook: ask the kernel for SIGKILL when the parent dies (Linux only)."""

    def hook() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl: don't outlive it
            os._exit(1)

    return hook


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: dict[str, str]
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)
    restart: bool = True
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS
    restart_at: float | None = None
    restarts: int = 0

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Supervisor:
    children: list[Child]
    run_file: Path | None = None
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True))
    stopping: bool = False

    # --- starting and restarting
    def start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            list(child.argv),
            env=child.env,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        self._write_run_file()

    def start_all(self) -> None:
        for child in self.children:
            self.start(child)

    def check(self) -> None:
        """Notice dead children and restart them when their back-off has passed."""
        now = time.monotonic()
        for child in self.children:
            if child.process is None or child.alive():
                continue
            if child.restart_at is None:
                code = child.process.returncode
                _kill_group(child.process.pid)  # whatever it started dies with it
                if self.stopping or not child.restart:
                    continue
                if now - child.started_at >= STABLE_SECONDS:
                    child.backoff = FIRST_BACKOFF_SECONDS
                child.restart_at = now + child.backoff
                self.log(f"{child.name} exited ({_describe(code)}); restarting in {child.backoff:.0f} s")
                child.backoff = min(child.backoff * 2, MAX_BACKOFF_SECONDS)
            elif now >= child.restart_at:
                child.restarts += 1
                self.start(child)
                self.log(f"{child.name} restarted (pid {child.process.pid})")

    # --- stopping
    def stop(self) -> None:
        """Each child in order: its stop signals (the worker: finish, then give back), then SIGKILL."""
        self.stopping = True
        for child in self.children:
            if not child.alive():
                continue
            assert child.process is not None
            for step in (*child.stop_signals, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(step)
                try:
                    child.process.wait(timeout=GRACE_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    continue
            _kill_group(child.process.pid)
        if self.run_file is not None:
            self.run_file.unlink(missing_ok=True)

    # --- the run file: process groups a later run must not find alive
    def _write_run_file(self) -> None:
        if self.run_file is None:
            return
        groups = [{"pid": c.process.pid, "argv": list(c.argv)} for c in self.children if c.process]
        temp = self.run_file.with_suffix(".tmp")
        temp.write_text(json.dumps({"supervisor": os.getpid(), "groups": groups}))
        os.replace(temp, self.run_file)


def _describe(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def clear_stale_run(run_file: Path, log: Callable[[str], None]) -> None:
    """Kill the process groups a previous run left behind (it was killed before it could stop
    them), so their port and their database handles are free."""
    try:
        recorded = json.loads(run_file.read_text())
    except (FileNotFoundError, ValueError):
        return
    for group in recorded.get("groups", []):
        pgid, argv = group.get("pid"), group.get("argv", [])
        if not isinstance(pgid, int) or _command_line(pgid) != argv:
            continue  # gone, or the pid now belongs to something else: leave it alone
        log(f"stopping {' '.join(argv[1:3])} (pid {pgid}), left running by an earlier run")
        _kill_group(pgid)
    run_file.unlink(missing_ok=True)


def _command_line(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
