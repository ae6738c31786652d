"""Fault injection for the worker tests, installed through the worker's hooks (gpu_worker.hooks):
the product never reads the variable below.

`WORKER_FAULT_INJECTION=crash@<text>`: the worker kills itself (SIGKILL) right after claiming a job
whose file name contains <text>. `hold@<text>`: such a job is parked at its first stage until the
worker is told to stop it (cancelled, lease lost, or handed back on shutdown).

`python -m tests.faults gpu_worker [ARGS]` runs the worker with these hooks; `python -m tests.faults
onebox [ARGS]` runs the one-machine service with such a worker.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

from gpu_worker.hooks import NO_HOOKS, WorkerHooks
from shared.jobs import Job
from shared.stages import Stage

FAULT_ENV = "WORKER_FAULT_INJECTION"


def hooks_for(spec: str) -> WorkerHooks:
    """The hooks for one `action@text` spec (empty: none)."""
    action, _, marker = spec.partition("@")
    if not marker:
        return NO_HOOKS

    def crash(job: Job) -> None:
        if marker in job.filename:
            os.kill(os.getpid(), signal.SIGKILL)

    def hold(job: Job, stage: Stage, should_stop: Callable[[], bool]) -> None:
        while marker in job.filename and not should_stop():
            time.sleep(0.2)

    if action == "crash":
        return WorkerHooks(after_claim=crash)
    if action == "hold":
        return WorkerHooks(at_stage=hold)
    raise ValueError(f"{FAULT_ENV}: unknown action {action!r} (crash or hold)")


def main(argv: list[str]) -> int:
    program, *rest = argv
    if program == "gpu_worker":
        from gpu_worker.__main__ import main as worker_main

        worker_main(rest, hooks=hooks_for(os.environ.get(FAULT_ENV, "")))
        return 0
    if program == "onebox":
        from onebox import cli

        cli.WORKER_COMMAND = ("-m", "tests.faults", "gpu_worker")
        return cli.main(rest)
    raise SystemExit(f"usage: python -m tests.faults gpu_worker|onebox [ARGS]; not {program!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
