"""The API's AWS clients (aiobotocore), opened for the life of the app (one Lambda invocation
under Mangum, the whole process under uvicorn)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from shared.job_store import AsyncJobStore
from shared.settings import Settings


@dataclass
class AwsClients:
    settings: Settings
    s3: Any
    sqs: Any
    dynamodb: Any
    store: AsyncJobStore
    _queue_url: str | None = field(default=None, repr=False)

    async def queue_url(self) -> str:
        if self._queue_url is None:
            answer = await self.sqs.get_queue_url(QueueName=self.settings.queue_name)
            self._queue_url = answer["QueueUrl"]
        return self._queue_url


@asynccontextmanager
async def open_clients(session: AioSession, settings: Settings) -> AsyncIterator[AwsClients]:
    """Endpoints come from AWS_ENDPOINT_URL(_<SERVICE>) when set (moto, LocalStack)."""
    async with AsyncExitStack() as stack:

        async def client(name: str, **config: Any) -> Any:
            new = session.create_client(name, region_name=settings.aws_region, **config)
            return await stack.enter_async_context(new)

        # SigV4: in us-east-1 botocore would otherwise presign result URLs with SigV2.
        s3 = await client("s3", config=AioConfig(signature_version="s3v4"))
        sqs, dynamodb = await client("sqs"), await client("dynamodb")
        yield AwsClients(settings, s3, sqs, dynamodb, AsyncJobStore(dynamodb, settings))
