"""One error hierarchy for the service, and the one place that says which errors are worth
retrying (`is_transient`).

Each error carries the HTTP status the API answers with and whether a worker should retry it.
Permanent errors end a job as `failed` with `error.message` as the user-facing reason; that text
never names server paths or worker ids (`internal_detail` carries those, for logs only).
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import ClassVar


class ServiceError(Exception):
    """Base of every error the service raises on purpose. A subclass states its answer in its
    header: `class NotAudio(InvalidAudio, code="not_audio"): ...` (what it leaves out it inherits)."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    retryable: ClassVar[bool] = False
    internal_detail: str | None = None  # for logs, never for answers

    def __init_subclass__(
        cls, *, code: str | None = None, status_code: int | None = None, retryable: bool | None = None
    ) -> None:
        super().__init_subclass__()
        if code is not None:
            cls.code = code
        if status_code is not None:
            cls.status_code = status_code
        if retryable is not None:
            cls.retryable = retryable

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- audio input -------------------------------------------------------------------------
class InvalidAudio(ServiceError, code="invalid_audio", status_code=400):
    """The input can't be turned into speech samples; retrying will not help."""


class EmptyFile(InvalidAudio, code="empty_file"): ...


class NotAudio(InvalidAudio, code="not_audio"): ...


class NoAudioStream(InvalidAudio, code="no_audio_stream"): ...


class TruncatedAudio(InvalidAudio, code="truncated_audio"): ...


class ZeroLengthAudio(InvalidAudio, code="zero_length_audio"): ...


class AudioTooLong(InvalidAudio, code="audio_too_long", status_code=413): ...


# --- models ------------------------------------------------------------------------------
class ModelNotAvailable(ServiceError, code="model_not_available", status_code=422):
    """A requested model is not installed where this deployment looks for it."""

    def __init__(self, name: str, where_looked: Sequence[str]) -> None:
        self.name = name
        self.where_looked = tuple(where_looked)  # paths and worker ids: for the operator's logs
        super().__init__(
            f"model '{name}' is not available on this deployment; GET /models lists the models it can "
            "run (its operator can install more)"
        )
        self.internal_detail = "looked in: " + ("; ".join(self.where_looked) or "nowhere")

    def __str__(self) -> str:  # the operator's view (CLI, logs): where it looked
        return f"{self.message} ({self.internal_detail})"


class InvalidParameter(ServiceError, code="invalid_parameter", status_code=422): ...


# --- jobs --------------------------------------------------------------------------------
class JobNotFound(ServiceError, code="job_not_found", status_code=404):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"Job {job_id} not found")


class JobStateConflict(ServiceError, code="job_state_conflict", status_code=409):
    """A state change lost a race or is not allowed from the job's current state."""


class JobCancelled(ServiceError, code="job_cancelled", status_code=409):
    """Raised inside the pipeline at a stage boundary when the job was cancelled."""


class PayloadTooLarge(ServiceError, code="payload_too_large", status_code=413): ...


class TransientError(ServiceError, code="transient_error", status_code=503, retryable=True):
    """Infrastructure hiccup (throttling, timeout): the message goes back to the queue."""


# --- transient or permanent: the one classification -------------------------------------------
# AWS error codes worth retrying; anything else is a bug or a missing resource.
TRANSIENT_AWS_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "TransactionConflictException",
    }
)
# Local-file errors that say the input (a name, a path) is unusable: the same every time.
_PERMANENT_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EINVAL, errno.EISDIR, errno.ENOTDIR, errno.EILSEQ})


def is_transient(error: BaseException) -> bool:
    """Whether another attempt may succeed. Deliberate errors say so themselves; input that can't
    be read (bad values, bad names) never will; network and infrastructure hiccups may; anything
    else unexpected gets the benefit of the doubt (a bounded number of retries)."""
    if isinstance(error, ServiceError):
        return error.retryable
    if isinstance(error, ValueError | TypeError | UnicodeError | LookupError):
        return False
    if isinstance(error, OSError) and error.errno in _PERMANENT_ERRNOS:
        return False
    response = getattr(error, "response", None)  # botocore's ClientError: an AWS error code
    if isinstance(response, dict) and "Error" in response:
        return response["Error"].get("Code") in TRANSIENT_AWS_CODES
    return True


def user_message(error: BaseException) -> str:
    """What a job's record may say about an error: a deliberate error's message; for anything
    unexpected only its kind (the details, which may name paths, go to the logs)."""
    if isinstance(error, ServiceError):
        return error.message
    return f"internal error ({type(error).__name__}); the details are in the worker's log"
