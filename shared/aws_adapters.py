"""The blob store ports (shared.ports) on AWS: the S3 bucket, through boto3 (the worker) or
aiobotocore (the API). The queue port's SQS adapter is shared.sqs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from shared import storage
from shared.ports import PresignedUpload, StoredObject, UploadBody, UploadTerms


class S3Blobs:
    """The bucket, for the worker (boto3)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def download(self, key: str, destination: Path) -> Path:
        return storage.download(self.client, self.bucket, key, destination)

    def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


class AsyncS3Blobs:
    """The bucket, for the API (aiobotocore)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    async def upload_stream(self, key: str, body: UploadBody) -> int:
        return await storage.upload_stream(self.client, self.bucket, key, body)

    async def head(self, bucket: str, key: str) -> StoredObject | None:
        """None when there is no such object; AccessDenied and other errors are raised."""
        try:
            answer = await self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if storage.is_missing(error):
                return None
            raise
        return StoredObject(
            bucket=bucket,
            key=key,
            size=answer["ContentLength"],
            etag=answer.get("ETag", ""),
            content_type=answer.get("ContentType"),
            metadata=answer.get("Metadata", {}),
        )

    async def read_head(self, stored: StoredObject, size: int) -> bytes:
        if stored.size == 0:  # a ranged GET of an empty object is an error, not b""
            return b""
        answer = await self.client.get_object(
            Bucket=stored.bucket, Key=stored.key, Range=f"bytes=0-{size - 1}", IfMatch=stored.etag
        )
        async with answer["Body"] as body:
            return bytes(await body.read())  # aiobotocore has no stubs: its answers are Any

    async def get(self, key: str) -> bytes:
        answer = await self.client.get_object(Bucket=self.bucket, Key=key)
        async with answer["Body"] as body:
            return bytes(await body.read())  # aiobotocore has no stubs: its answers are Any

    async def get_optional(self, key: str) -> bytes | None:
        """The object, or None when there is none."""
        try:
            return await self.get(key)
        except ClientError as error:
            if storage.is_missing(error):
                return None
            raise

    async def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        await self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)

    async def large_object_url(self, key: str, max_bytes: int) -> str | None:
        """A presigned GET for an object over `max_bytes` (Lambda's response cap); None otherwise."""
        answer = await self.client.head_object(Bucket=self.bucket, Key=key)
        if answer["ContentLength"] <= max_bytes:
            return None
        url = await self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=900
        )
        return str(url)

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def delete_job_objects(self, job_id: str) -> None:
        await storage.delete_job_objects(self.client, self.bucket, job_id)

    async def copy(self, source: StoredObject, key: str) -> None:
        await self.client.copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": source.bucket, "Key": source.key},
            CopySourceIfMatch=source.etag,
        )

    async def presign_upload(self, key: str, terms: UploadTerms) -> PresignedUpload:
        """A SigV4 PUT URL and POST policy; S3 enforces the signed type and length."""
        put_params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        headers: dict[str, str] = {}
        fields: dict[str, str] = {}
        conditions: list[Any] = [["content-length-range", 1, terms.max_bytes]]
        content_type = terms.content_type
        if content_type:  # signed: S3 refuses another type (the emulator doesn't; ingest does)
            put_params["ContentType"] = headers["Content-Type"] = fields["Content-Type"] = content_type
            conditions.append({"Content-Type": content_type})
        if terms.size_bytes:
            put_params["ContentLength"] = terms.size_bytes
        put_url = await self.client.generate_presigned_url(
            "put_object", Params=put_params, ExpiresIn=terms.lifetime
        )
        post = await self.client.generate_presigned_post(
            self.bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=terms.lifetime
        )
        return PresignedUpload(put_url, headers, post["url"], post["fields"])
