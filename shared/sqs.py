"""The queue port (`shared.ports.Queue`, `AsyncQueue`) on SQS: the one module that calls SQS.

As `shared.job_store` does for the table, each call is plain data (`QueueOp`: the client method,
its request and how to read the answer), built once by `QueueOps` and run by `SqsQueue` (boto3:
the worker) or `AsyncSqsQueue` (aiobotocore: the API, the emulator's ingest consumer), so the two
sides can't disagree about a call. Creating the queues (`ensure_queue`, for onebox.aws_bootstrap)
and opening clients are here too, so nothing else names SQS.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError

from shared.ports import QueueMessage

T = TypeVar("T")

SERVICE = "sqs"
_EXISTS = ("QueueAlreadyExists", "QueueNameExists")  # (the emulators use either)
_DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class QueueOp(Generic[T]):
    """One call on one queue; the runner adds the queue's URL to `request`."""

    method: str
    request: dict[str, Any]
    parse: Callable[[dict[str, Any]], T]


def _nothing(_: dict[str, Any]) -> None:
    return None


def _messages(answer: dict[str, Any]) -> list[QueueMessage]:
    return [
        QueueMessage(
            message_id=raw.get("MessageId", ""),
            body=raw["Body"],
            receipt=raw["ReceiptHandle"],
            receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        )
        for raw in answer.get("Messages", [])
    ]


def _depth(answer: dict[str, Any]) -> int:
    return sum(int(answer["Attributes"].get(name, "0")) for name in _DEPTH_ATTRIBUTES)


class QueueOps:
    """The port's operations as SQS requests."""

    @staticmethod
    def send(body: str) -> QueueOp[None]:
        return QueueOp("send_message", {"MessageBody": body}, _nothing)

    @staticmethod
    def receive(
        *, max_messages: int, wait_seconds: float, visibility_seconds: int | None
    ) -> QueueOp[list[QueueMessage]]:
        """`visibility_seconds` None: the queue's own visibility timeout."""
        request: dict[str, Any] = {
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": int(wait_seconds),
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if visibility_seconds is not None:
            request["VisibilityTimeout"] = visibility_seconds
        return QueueOp("receive_message", request, _messages)

    @staticmethod
    def ack(receipt: str) -> QueueOp[None]:
        return QueueOp("delete_message", {"ReceiptHandle": receipt}, _nothing)

    @staticmethod
    def hide(receipt: str, seconds: int) -> QueueOp[None]:
        """Visible again `seconds` from now: `extend` and `release` are both this one call."""
        request = {"ReceiptHandle": receipt, "VisibilityTimeout": seconds}
        return QueueOp("change_message_visibility", request, _nothing)

    @staticmethod
    def depth() -> QueueOp[int]:
        request = {"AttributeNames": list(_DEPTH_ATTRIBUTES)}
        return QueueOp("get_queue_attributes", request, _depth)


class SqsQueue:
    """One SQS queue, with a boto3 client (its URL is looked up here, once)."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.url: str = client.get_queue_url(QueueName=name)["QueueUrl"]

    def _run(self, op: QueueOp[T]) -> T:
        return op.parse(getattr(self.client, op.method)(QueueUrl=self.url, **op.request))

    def send(self, body: str) -> None:
        self._run(QueueOps.send(body))

    def receive(
        self, *, max_messages: int, wait_seconds: float, visibility_seconds: int
    ) -> list[QueueMessage]:
        op = QueueOps.receive(
            max_messages=max_messages, wait_seconds=wait_seconds, visibility_seconds=visibility_seconds
        )
        return self._run(op)

    def ack(self, receipt: str) -> None:
        self._run(QueueOps.ack(receipt))

    def extend(self, receipt: str, seconds: int) -> None:
        self._run(QueueOps.hide(receipt, seconds))

    def release(self, receipt: str, delay: int = 0) -> None:
        self._run(QueueOps.hide(receipt, delay))

    def depth(self) -> int:
        return self._run(QueueOps.depth())


class AsyncSqsQueue:
    """One SQS queue, with an aiobotocore client; its URL is looked up on first use."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self._url: str | None = None

    async def _run(self, op: QueueOp[T]) -> T:
        if self._url is None:
            self._url = (await self.client.get_queue_url(QueueName=self.name))["QueueUrl"]
        return op.parse(await getattr(self.client, op.method)(QueueUrl=self._url, **op.request))

    async def send(self, body: str) -> None:
        await self._run(QueueOps.send(body))

    async def receive(
        self, *, max_messages: int, wait_seconds: float, visibility_seconds: int | None = None
    ) -> list[QueueMessage]:
        op = QueueOps.receive(
            max_messages=max_messages, wait_seconds=wait_seconds, visibility_seconds=visibility_seconds
        )
        return await self._run(op)

    async def ack(self, receipt: str) -> None:
        await self._run(QueueOps.ack(receipt))

    async def extend(self, receipt: str, seconds: int) -> None:
        await self._run(QueueOps.hide(receipt, seconds))

    async def release(self, receipt: str, delay: int = 0) -> None:
        await self._run(QueueOps.hide(receipt, delay))

    async def depth(self) -> int:
        return await self._run(QueueOps.depth())


# --- clients and queue creation -------------------------------------------------------------------
def client(session: Any, **config: Any) -> Any:
    """A boto3 SQS client from `session` (endpoint from AWS_ENDPOINT_URL(_SQS) when set)."""
    return session.client(SERVICE, **config)


def async_client(session: Any, **config: Any) -> Any:
    """An aiobotocore SQS client from `session`: an async context manager."""
    return session.create_client(SERVICE, **config)


@dataclass(frozen=True)
class CreatedQueue:
    url: str
    arn: str


def ensure_queue(sqs: Any, name: str, attributes: dict[str, str]) -> CreatedQueue:
    """Create the queue, or bring an existing one's attributes in line; safe to repeat."""
    try:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except ClientError as error:  # exists with other attributes
        if error.response["Error"]["Code"] not in _EXISTS:
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    answer = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return CreatedQueue(url, answer["Attributes"]["QueueArn"])


def redrive_to(dead_letter: CreatedQueue, max_receive_count: int) -> dict[str, str]:
    """The attribute that moves a message to `dead_letter` past `max_receive_count` receives."""
    policy = {"deadLetterTargetArn": dead_letter.arn, "maxReceiveCount": str(max_receive_count)}
    return {"RedrivePolicy": json.dumps(policy)}


def set_policy(sqs: Any, queue: CreatedQueue, policy: dict[str, Any]) -> None:
    """The queue's access policy (who may send to it)."""
    sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"Policy": json.dumps(policy)})
