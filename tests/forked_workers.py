"""Worker processes for the tests, forked from a server that has already imported their heavy
libraries.

Each `python -m gpu_worker` start spends about 4.5 of its 6 CPU-seconds importing torch, SciPy,
CTranslate2, boto3 and the like, and the suite starts over twenty workers on 2 cores. So the
tests fork their workers from one multiprocessing forkserver per pytest process, which imports
those libraries once (as gunicorn's `--preload` does). What is forked is still a process of its
own running `python -m <module> ARGS`'s code (runpy), with its own environment, working folder,
log file, signals and exit status, so the tests kill, signal and wait for it as before.

Only third-party libraries that read no per-worker setting at import are preloaded. The project's
own modules, faster-whisper and the Hugging Face cache paths are imported by each worker under its
own environment, and no model is loaded and no thread is started before the fork.

`TEST_WORKER_START=exec` starts each worker with `python -m` instead (for comparison or debugging).
The one-machine tests (test_onebox, test_e2e_service, the console and the CLI) always do, through
the real supervisor.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Protocol

PRELOAD = (
    "torch",
    "numpy",
    "scipy.ndimage",
    "scipy.signal",
    "scipy.sparse.csgraph",
    "ctranslate2",
    "onnxruntime",
    "av",
    "boto3",
    "pydantic",
    "structlog",
)
"""Imported once in the forkserver. Nothing here reads the worker's settings or starts a thread the
child would miss (numpy's and SciPy's OpenBLAS pools are re-made after fork by OpenBLAS itself)."""

START_ENV = "TEST_WORKER_START"


class ChildProcess(Protocol):
    """What the tests use of a worker process: subprocess.Popen's names."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class ForkedProcess:
    """A forked worker behind subprocess.Popen's interface. Exit statuses read as Popen's do: the
    code it exited with, or minus the signal that ended it."""

    def __init__(self, process: multiprocessing.process.BaseProcess, command: Sequence[str]) -> None:
        self._process = process
        self._command = list(command)

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(self._command, timeout or 0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # as Popen: never signal a pid that may since have been reused
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


@functools.cache
def _forkserver() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def _run_module(command: Sequence[str], env: Mapping[str, str], cwd: str, log_path: str) -> None:
    """In the forked child: become `python -m command[0] command[1:]` with `env`, output to the log."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.argv = [command[0], *command[1:]]  # runpy puts the module's path in argv[0], as -m does
    try:
        runpy.run_module(command[0], run_name="__main__", alter_sys=True)
    finally:
        # multiprocessing ends its children with os._exit, which runs no atexit handler: flush here.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()


def start(command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path) -> ChildProcess:
    """Start `python -m command[0] command[1:]` as a worker process; its output goes to `log_path`."""
    log_path.touch()  # there before start returns, as with Popen (a test may read it at once)
    if os.environ.get(START_ENV) == "exec":
        with log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", *command], cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT
            )
    process = _forkserver().Process(
        target=_run_module,
        args=(tuple(command), dict(env), str(cwd), str(log_path)),
        name=command[0],
        daemon=True,  # a worker a test left running is stopped when pytest exits, not waited for
    )
    process.start()
    return ForkedProcess(process, command)
