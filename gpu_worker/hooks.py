"""Points where a caller can step into a job's handling: the tests' fault injection (tests/faults.py
kills the worker right after a claim, or parks a job at its first stage). The service installs none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.jobs import Job
from shared.stages import Stage


def _after_claim(job: Job) -> None:
    return None


def _at_stage(job: Job, stage: Stage, should_stop: Callable[[], bool]) -> None:
    return None


@dataclass(frozen=True)
class WorkerHooks:
    after_claim: Callable[[Job], None] = _after_claim
    """Called once this worker owns the job, before anything else is done with it."""
    at_stage: Callable[[Job, Stage, Callable[[], bool]], None] = _at_stage
    """Called on each progress report, after the stage is written; `should_stop` is the lease's."""


NO_HOOKS = WorkerHooks()
