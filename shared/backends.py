"""The worker's (and the CLIs') view of the backend that BACKEND chooses: a job store, the job
queue and its dead-letter queue, and the blob store, behind the same methods either way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.ports import BlobStore, Queue
from shared.settings import Settings


@dataclass
class WorkerBackend:
    store: Any  # shared.job_store.JobStore or shared.embedded.job_store.SqliteJobStore
    queue: Queue
    dead_letters: Queue
    blobs: BlobStore


def worker_backend(settings: Settings, *, session: Any = None, pool: int = 10) -> WorkerBackend:
    """`session`: a boto3 session for the AWS backend (default: one for AWS_REGION)."""
    if settings.local:
        from shared.embedded.backend import local_parts

        parts = local_parts(settings)
        return WorkerBackend(parts.store, parts.queue, parts.dead_letters, parts.blobs)

    import boto3
    from botocore.config import Config

    from shared import sqs
    from shared.aws_adapters import S3Blobs
    from shared.job_store import JobStore

    session = session or boto3.Session(region_name=settings.aws_region)
    config = Config(max_pool_connections=pool, retries={"mode": "standard"})
    queues = sqs.client(session, config=config)
    return WorkerBackend(
        store=JobStore(session.client("dynamodb", config=config), settings),
        queue=sqs.SqsQueue(queues, settings.queue_name),
        dead_letters=sqs.SqsQueue(queues, settings.dlq_name),
        blobs=S3Blobs(session.client("s3", config=config), settings.bucket_name),
    )


def sync_store(settings: Settings, *, session: Any = None) -> Any:
    """Just the job store (the keys CLI, the one-command run's bootstrap)."""
    if settings.local:
        from shared.embedded.db import Database
        from shared.embedded.job_store import SqliteJobStore

        return SqliteJobStore(Database.in_dir(settings.data_dir), settings)
    import boto3

    from shared.job_store import JobStore

    session = session or boto3.Session(region_name=settings.aws_region)
    return JobStore(session.client("dynamodb"), settings)
