"""The SQS message that hands a job to the worker fleet: versioned, so old and new workers and
APIs can share one queue during a deploy. The job's options live in the table, not here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import ServiceError


class UnreadableMessage(ServiceError, code="unreadable_message"):
    """A message this worker can't read (malformed, or a version it does not know)."""


class JobMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    version: Literal[1] = 1
    job_id: str
    bucket: str
    upload_key: str
    created_at: str

    def to_body(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_body(cls, body: str) -> JobMessage:
        try:
            return cls.model_validate_json(body)
        except ValidationError as error:
            raise UnreadableMessage(f"unreadable job message: {error.errors()[0]['msg']}") from error
