"""Create the bucket, queue (with its dead-letter queue) and jobs table, idempotently; and, for the
emulators, the ingest queue that the bucket's ObjectCreated events on uploads/ and incoming/ go to.

The same code serves the one-command local run (moto), docker-compose with LocalStack
(`python -m onebox.aws_bootstrap`) and the tests, so all three get identical resources.
On AWS, infra/ creates them (there S3 invokes the ingest Lambda directly, no ingest queue);
`table_definition` is what both must agree on.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from shared import sqs
from shared.resources import (
    INCOMING_PREFIX,
    JOB_PARTITION_KEY,
    RESULTS_PREFIX,
    STATUS_INDEX_HASH_KEY,
    STATUS_INDEX_NAME,
    STATUS_INDEX_RANGE_KEY,
    TTL_ATTRIBUTE,
    UPLOADS_PREFIX,
)
from shared.settings import Settings, get_settings

DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum: time for someone to look
INGEST_PREFIXES = (UPLOADS_PREFIX, INCOMING_PREFIX)  # as infra/template.yaml's IngestFunction events
INGEST_QUEUE_ATTRIBUTES = {"VisibilityTimeout": "60", "MessageRetentionPeriod": str(24 * 3600)}


@dataclass(frozen=True)
class Resources:
    bucket: str
    queue_url: str
    dlq_url: str
    table: str
    ingest_queue_url: str = ""


def table_definition(settings: Settings) -> dict[str, Any]:
    """CreateTable arguments: job_id key; a status + created_at index (all attributes projected:
    queue positions and health counts are index queries, and live workers are read from it)."""
    return {
        "TableName": settings.table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": JOB_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": STATUS_INDEX_HASH_KEY, "AttributeType": "S"},
            {"AttributeName": STATUS_INDEX_RANGE_KEY, "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": JOB_PARTITION_KEY, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": STATUS_INDEX_NAME,
                "KeySchema": [
                    {"AttributeName": STATUS_INDEX_HASH_KEY, "KeyType": "HASH"},
                    {"AttributeName": STATUS_INDEX_RANGE_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def _ensure_bucket(s3: Any, settings: Settings) -> None:
    try:
        if settings.aws_region == "us-east-1":
            s3.create_bucket(Bucket=settings.bucket_name)
        else:
            s3.create_bucket(
                Bucket=settings.bucket_name,
                CreateBucketConfiguration={"LocationConstraint": settings.aws_region},
            )
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    # Objects outlive the longest-lived row (an unfinished job's), rounded up to whole days.
    days = math.ceil((settings.message_retention_seconds + settings.job_expiry_seconds) / 86400) + 1
    s3.put_bucket_lifecycle_configuration(
        Bucket=settings.bucket_name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": f"expire-{prefix.rstrip('/')}",
                    "Filter": {"Prefix": prefix},
                    "Status": "Enabled",
                    "Expiration": {"Days": days},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                }
                for prefix in (UPLOADS_PREFIX, INCOMING_PREFIX, RESULTS_PREFIX)
            ]
        },
    )


def _ensure_queues(client: Any, settings: Settings) -> tuple[str, str]:
    dlq = sqs.ensure_queue(client, settings.dlq_name, {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})
    attributes = {
        "VisibilityTimeout": str(settings.visibility_timeout_seconds),
        "ReceiveMessageWaitTimeSeconds": str(settings.poll_wait_seconds),
        "MessageRetentionPeriod": str(settings.message_retention_seconds),
        **sqs.redrive_to(dlq, settings.max_receive_count),
    }
    return sqs.ensure_queue(client, settings.queue_name, attributes).url, dlq.url


def _ensure_table(dynamodb: Any, settings: Settings) -> None:
    try:
        dynamodb.create_table(**table_definition(settings))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(
        TableName=settings.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    ttl = dynamodb.describe_time_to_live(TableName=settings.table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        dynamodb.update_time_to_live(
            TableName=settings.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )


def _ensure_ingest_notifications(s3: Any, sqs_client: Any, settings: Settings) -> str:
    """The emulator's stand-in for S3 → ingest Lambda: ObjectCreated on uploads/ and incoming/ →
    the ingest queue (read by onebox/ingest_consumer.py). Configuring it makes S3 send an
    `s3:TestEvent`, which ingestion skips."""
    queue = sqs.ensure_queue(sqs_client, settings.ingest_queue_name, INGEST_QUEUE_ATTRIBUTES)
    bucket_arn = f"arn:aws:s3:::{settings.bucket_name}"
    policy = {  # what S3 needs on AWS; emulators that check policies need it too
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue.arn,
                "Condition": {"ArnLike": {"aws:SourceArn": bucket_arn}},
            }
        ],
    }
    sqs.set_policy(sqs_client, queue, policy)
    s3.put_bucket_notification_configuration(
        Bucket=settings.bucket_name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": f"ingest-{prefix.rstrip('/')}",
                    "QueueArn": queue.arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                }
                for prefix in INGEST_PREFIXES
            ]
        },
    )
    return queue.url


def ensure_resources(settings: Settings, session: boto3.Session | None = None) -> Resources:
    """Create whatever is missing; safe to run any number of times."""
    session = session or boto3.Session(region_name=settings.aws_region)
    s3, queues = session.client("s3"), sqs.client(session)
    _ensure_bucket(s3, settings)
    queue_url, dlq_url = _ensure_queues(queues, settings)
    _ensure_table(session.client("dynamodb"), settings)
    ingest_queue_url = _ensure_ingest_notifications(s3, queues, settings)
    return Resources(settings.bucket_name, queue_url, dlq_url, settings.table_name, ingest_queue_url)


def main() -> None:
    resources = ensure_resources(get_settings())
    json.dump(resources.__dict__, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
