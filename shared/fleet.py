"""What the worker fleet can run: each worker registers its models and a heartbeat.

Workers live in the jobs table under `worker#<id>` keys with `status = "worker"`, so the status
index lists live workers without a scan and job queries (by job status) never see them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

WORKER_KEY_PREFIX = "worker#"
WORKER_STATUS = "worker"
STALE_AFTER_BEATS = 3  # a worker that missed this many heartbeats no longer counts


class WorkerRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    worker_id: str
    hostname: str
    models: tuple[str, ...]
    separation: bool
    model_search: tuple[str, ...]  # where the worker looks for models, for "not available" messages
    separation_search: tuple[str, ...] = ()
    concurrency: int = 1
    started_at: str
    heartbeat_at: str
    expires_at: int  # epoch seconds: heartbeat + STALE_AFTER_BEATS * interval


class FleetCapabilities(BaseModel):
    """The union of what live workers can run (or what the API host has, with no worker live)."""

    model_config = ConfigDict(frozen=True)

    models: tuple[str, ...]
    separation: bool
    source: str  # "workers" | "api_host"
    workers: int
    where_looked: tuple[str, ...]  # empty for `api_host`: model_catalog.where_looked says it per name
    separation_where_looked: tuple[str, ...]

    @classmethod
    def from_workers(cls, workers: Sequence[WorkerRecord]) -> FleetCapabilities:
        return cls(
            models=_sorted_union(w.models for w in workers),
            separation=any(w.separation for w in workers),
            source="workers",
            workers=len(workers),
            where_looked=tuple(f"worker {w.worker_id}: {place}" for w in workers for place in w.model_search),
            separation_where_looked=tuple(
                f"worker {w.worker_id}: {place}" for w in workers for place in w.separation_search
            ),
        )


def _sorted_union(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    return tuple(sorted({name for group in groups for name in group}))


def worker_key(worker_id: str) -> str:
    return f"{WORKER_KEY_PREFIX}{worker_id}"
