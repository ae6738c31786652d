"""API keys on SQLite: the operations of shared.api_keys.KeyOps on the same rows."""

from __future__ import annotations

from shared.api_keys import API_KEY_PREFIX, API_KEY_STATUS, ApiKey, hash_key, new_key
from shared.embedded.rows import LocalOp, Row, Rows, update_row
from shared.errors import JobStateConflict
from shared.jobs import utc_now_iso
from shared.resources import JOB_PARTITION_KEY


class SqliteKeyOps:
    """The operations of shared.api_keys.KeyOps on the same rows."""

    def create(self, project_id: str, comment: str | None = None) -> tuple[str, LocalOp[ApiKey]]:
        secret, record, row = new_key(project_id, comment)

        def apply(rows: Rows) -> ApiKey:
            if rows.get(row[JOB_PARTITION_KEY]) is not None:
                raise JobStateConflict("that key exists already")
            rows.put(row)
            return record

        return secret, LocalOp(apply)

    def lookup(self, secret: str) -> LocalOp[ApiKey | None]:
        def apply(rows: Rows) -> ApiKey | None:
            row = rows.get(f"{API_KEY_PREFIX}{hash_key(secret)}")
            return ApiKey.model_validate(row) if row and row.get("status") == API_KEY_STATUS else None

        return LocalOp(apply, write=False)

    def list_keys(self) -> LocalOp[list[tuple[str, ApiKey]]]:
        def apply(rows: Rows) -> list[tuple[str, ApiKey]]:
            found = rows.by_status(API_KEY_STATUS)
            return [(row[JOB_PARTITION_KEY], ApiKey.model_validate(row)) for row in found]

        return LocalOp(apply, write=False)

    def revoke(self, row_key: str) -> LocalOp[bool]:
        def change(row: Row) -> Row:
            return row if row.get("revoked_at") else row | {"revoked_at": utc_now_iso()}

        return update_row(
            row_key, lambda row: row.get("status") == API_KEY_STATUS, change, lambda _: True, lambda _: False
        )
