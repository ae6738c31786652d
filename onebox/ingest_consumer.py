"""The emulator's ingest Lambda: reads the S3 event notifications the bucket sends to the ingest
queue (`onebox.aws_bootstrap` configures them) and hands each to `api_lambda.ingest.process_event`,
the very function the Lambda handler runs on AWS.

`python -m onebox.ingest_consumer` (the local run starts it beside the API and the worker).
A message is deleted once its event is handled; one that failed for a transient reason comes back
after the queue's visibility timeout (handling is idempotent). It lives in onebox/, not api_lambda/,
because on AWS S3 invokes the ingest Lambda directly and no such consumer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal

from aiobotocore.session import get_session

from api_lambda.aws import AwsClients, open_clients
from api_lambda.ingest import process_event
from shared.ingestion import UnreadableEvent
from shared.logging import configure_logging, get_logger
from shared.ports import AsyncQueue, QueueMessage
from shared.settings import Settings, get_settings
from shared.sqs import AsyncSqsQueue

log = get_logger(__name__)


async def handle_message(aws: AwsClients, queue: AsyncQueue, message: QueueMessage) -> None:
    try:
        event = json.loads(message.body)
        await process_event(aws, event)
    except (json.JSONDecodeError, UnreadableEvent) as error:  # never readable: don't keep it around
        log.error("ingest_message_unreadable", error=str(error), body=message.body[:200])
    except Exception:
        log.exception("ingest_message_failed", message_id=message.message_id)
        return  # it comes back after the visibility timeout
    await queue.ack(message.receipt)


async def consume(settings: Settings, stop: asyncio.Event) -> None:
    """Long-poll the ingest queue until `stop` is set."""
    async with open_clients(get_session(), settings) as aws:
        queue = AsyncSqsQueue(aws.sqs, settings.ingest_queue_name)
        log.info("ingest_consumer_started", queue=settings.ingest_queue_name)
        while not stop.is_set():
            try:
                messages = await queue.receive(max_messages=10, wait_seconds=settings.poll_wait_seconds)
            except Exception as error:
                log.warning("ingest_receive_failed", error=str(error))
                await asyncio.sleep(1.0)
                continue
            for message in messages:
                await handle_message(aws, queue, message)
    log.info("ingest_consumer_stopped")


async def _main() -> None:
    settings = get_settings()
    configure_logging(settings)
    stop = asyncio.Event()
    consumer = asyncio.ensure_future(consume(settings, stop))

    def request_stop() -> None:  # a long poll in progress is abandoned: its messages come back
        stop.set()
        consumer.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)
    with contextlib.suppress(asyncio.CancelledError):
        await consumer


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
