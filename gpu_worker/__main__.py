"""`python -m gpu_worker [--concurrency N] [--poll-seconds S]`: run a job consumer until SIGTERM.

SIGTERM or Ctrl-C once: take no new job, finish the current ones, exit. Twice: hand the current
jobs back to the queue at their next stage boundary, then exit.
"""

from __future__ import annotations

import argparse

from gpu_worker.hooks import NO_HOOKS, WorkerHooks
from gpu_worker.worker import Worker
from shared.logging import configure_logging
from shared.settings import get_settings


def main(argv: list[str] | None = None, *, hooks: WorkerHooks = NO_HOOKS) -> None:
    """`hooks`: for a launcher that steps into job handling (the tests' tests/faults.py)."""
    parser = argparse.ArgumentParser(prog="python -m gpu_worker", description=__doc__)
    parser.add_argument(
        "--concurrency", type=int, choices=range(1, 65), metavar="N", help="consumer threads (default 1)"
    )
    parser.add_argument(
        "--poll-seconds", type=int, choices=range(21), metavar="S", help="SQS long-poll wait (default 20)"
    )
    parser.add_argument("--no-preload", action="store_true", help="load models on the first job instead")
    args = parser.parse_args(argv)

    updates: dict[str, object] = {}
    if args.concurrency is not None:
        updates["worker_concurrency"] = args.concurrency
    if args.poll_seconds is not None:
        updates["poll_wait_seconds"] = args.poll_seconds
    if args.no_preload:
        updates["worker_preload"] = False
    settings = get_settings().model_copy(update=updates)
    configure_logging(settings)
    worker = Worker(settings, hooks=hooks)
    worker.install_signal_handlers()
    worker.run()


if __name__ == "__main__":
    main()
