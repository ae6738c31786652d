"""The API's backend, opened for the life of the app (one Lambda invocation under Mangum, the
whole process under uvicorn): the job store, the job queue and the blob store, on AWS
(aiobotocore clients) or on one machine (SQLite and DATA_DIR), as BACKEND says.

The name is historical: with BACKEND=local there is no AWS client at all (`s3`, `sqs` and
`dynamodb` are None) and nothing of aiobotocore is touched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from shared.ports import AsyncBlobStore, AsyncQueue
from shared.settings import Settings


@dataclass
class AwsClients:
    settings: Settings
    store: Any  # shared.job_store.AsyncJobStore or shared.embedded.job_store.AsyncSqliteJobStore
    queue: AsyncQueue  # the job queue
    blobs: AsyncBlobStore
    s3: Any = None
    sqs: Any = None
    dynamodb: Any = None


Backend = AwsClients


@asynccontextmanager
async def open_clients(session: Any, settings: Settings) -> AsyncIterator[AwsClients]:
    """Endpoints come from AWS_ENDPOINT_URL(_<SERVICE>) when set (moto, LocalStack)."""
    if settings.local:
        from shared.embedded.backend import async_local_parts

        parts = async_local_parts(settings)
        yield AwsClients(settings, parts.store, parts.queue, parts.blobs)
        return

    from aiobotocore.config import AioConfig

    from shared import sqs as sqs_queue
    from shared.aws_adapters import AsyncS3Blobs
    from shared.job_store import AsyncJobStore

    async with AsyncExitStack() as stack:

        async def client(name: str, **config: Any) -> Any:
            new = session.create_client(name, region_name=settings.aws_region, **config)
            return await stack.enter_async_context(new)

        # SigV4: in us-east-1 botocore would otherwise presign result URLs with SigV2.
        s3 = await client("s3", config=AioConfig(signature_version="s3v4"))
        dynamodb = await client("dynamodb")
        sqs = await stack.enter_async_context(
            sqs_queue.async_client(session, region_name=settings.aws_region)
        )
        yield AwsClients(
            settings,
            AsyncJobStore(dynamodb, settings),
            sqs_queue.AsyncSqsQueue(sqs, settings.queue_name),
            AsyncS3Blobs(s3, settings.bucket_name),
            s3=s3,
            sqs=sqs,
            dynamodb=dynamodb,
        )
