"""API keys: random secrets, stored only as their sha256, each scoped to one project.

Keys live in the jobs table, as workers do: `apikey#<sha256>` rows with `status = "apikey"`, so a
request's key is one GetItem by its hash, listing is a query on the status index (no scan), and
job queries never see them. A sha256 is enough for a 160-bit random secret (nothing to brute
force); the row keeps an 8-character prefix so people can tell their keys apart.

Operations are `Op`s (shared.job_store), run by the worker-side `JobStore` (the CLI) or the
API's `AsyncJobStore`.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.job_store.codec import decode_item, encode_item, encode_value
from shared.job_store.ops import Op
from shared.jobs import utc_now_iso
from shared.resources import JOB_PARTITION_KEY, STATUS_INDEX_NAME
from shared.settings import Settings

API_KEY_PREFIX = "apikey#"
API_KEY_STATUS = "apikey"
PREFIX_CHARS = 8


class ApiKey(BaseModel):
    """A key's record; never the secret itself."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    key_id: str  # first 16 hex digits of the hash: what `revoke` takes
    project_id: str
    prefix: str  # the secret's first characters, for people to recognise it
    comment: str | None = None
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_secret() -> str:
    """40 hex digits (160 random bits), the length of a Deepgram key."""
    return secrets.token_hex(20)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(project_id: str, comment: str | None = None) -> tuple[str, ApiKey, dict[str, Any]]:
    """A new secret, its record, and the row that stores the record under the secret's hash
    (the same row in both job stores)."""
    if not project_id.strip():
        raise ValueError("a key needs a project")
    secret = new_secret()
    digest = hash_key(secret)
    record = ApiKey(
        key_id=digest[:16],
        project_id=project_id.strip(),
        prefix=secret[:PREFIX_CHARS],
        comment=comment,
        created_at=utc_now_iso(),  # also the status index's range key
    )
    item = record.model_dump(mode="json") | {
        JOB_PARTITION_KEY: f"{API_KEY_PREFIX}{digest}",
        "status": API_KEY_STATUS,
    }
    return secret, record, item


class KeyOps:
    def __init__(self, settings: Settings) -> None:
        self.table = settings.table_name

    def _key(self, digest: str) -> dict[str, Any]:
        return {JOB_PARTITION_KEY: {"S": f"{API_KEY_PREFIX}{digest}"}}

    def create(self, project_id: str, comment: str | None = None) -> tuple[str, Op[ApiKey]]:
        """A new secret (shown once, to the caller) and the operation that stores its hash."""
        secret, record, item = new_key(project_id, comment)
        request = {
            "TableName": self.table,
            "Item": encode_item(item),
            "ConditionExpression": f"attribute_not_exists({JOB_PARTITION_KEY})",
        }
        return secret, Op("put_item", request, parse=lambda _: record)

    def lookup(self, secret: str) -> Op[ApiKey | None]:
        """The record of a presented secret; None when it is unknown (revoked ones are returned)."""

        def parse(response: dict[str, Any]) -> ApiKey | None:
            item = response.get("Item")
            if not item:
                return None
            data = decode_item(item)
            return ApiKey.model_validate(data) if data.get("status") == API_KEY_STATUS else None

        request = {"TableName": self.table, "Key": self._key(hash_key(secret)), "ConsistentRead": True}
        return Op("get_item", request, parse)

    def list_keys(self) -> Op[list[tuple[str, ApiKey]]]:
        """Every key as (row key, record), oldest first."""
        request = {
            "TableName": self.table,
            "IndexName": STATUS_INDEX_NAME,
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":status": encode_value(API_KEY_STATUS)},
        }

        def parse(response: dict[str, Any]) -> list[tuple[str, ApiKey]]:
            rows = [decode_item(item) for item in response.get("Items", [])]
            return [(row[JOB_PARTITION_KEY], ApiKey.model_validate(row)) for row in rows]

        return Op("query", request, parse, paginate=True)

    def revoke(self, row_key: str) -> Op[bool]:
        """Mark a key revoked (the row stays, for listing); False when it is gone or not a key."""
        request = {
            "TableName": self.table,
            "Key": {JOB_PARTITION_KEY: {"S": row_key}},
            "UpdateExpression": "SET #revoked_at = if_not_exists(#revoked_at, :now)",
            "ConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#revoked_at": "revoked_at", "#status": "status"},
            "ExpressionAttributeValues": {
                ":now": encode_value(utc_now_iso()),
                ":status": encode_value(API_KEY_STATUS),
            },
        }
        return Op("update_item", request, parse=lambda _: True, on_conflict=lambda _: False)
