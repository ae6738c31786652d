"""One error hierarchy for the service.

Each error carries the HTTP status the API answers with and whether a worker should retry it.
Permanent errors end a job as `failed` with `str(error)` as the user-facing reason.
"""

from __future__ import annotations

from collections.abc import Sequence


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- audio input -------------------------------------------------------------------------
class InvalidAudio(ServiceError):
    """The input can't be turned into speech samples; retrying will not help."""

    status_code = 400
    code = "invalid_audio"


class EmptyFile(InvalidAudio):
    code = "empty_file"


class NotAudio(InvalidAudio):
    code = "not_audio"


class NoAudioStream(InvalidAudio):
    code = "no_audio_stream"


class TruncatedAudio(InvalidAudio):
    code = "truncated_audio"


class ZeroLengthAudio(InvalidAudio):
    code = "zero_length_audio"


class AudioTooLong(InvalidAudio):
    status_code = 413
    code = "audio_too_long"


# --- models ------------------------------------------------------------------------------
class ModelNotAvailable(ServiceError):
    """A requested model is not installed where this deployment looks for it."""

    status_code = 422
    code = "model_not_available"

    def __init__(self, name: str, where_looked: Sequence[str]) -> None:
        self.name = name
        self.where_looked = tuple(where_looked)
        looked = "; ".join(self.where_looked) or "nowhere"
        super().__init__(f"model '{name}' is not available on this deployment (looked in: {looked})")


class InvalidParameter(ServiceError):
    status_code = 422
    code = "invalid_parameter"


# --- jobs --------------------------------------------------------------------------------
class JobNotFound(ServiceError):
    status_code = 404
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"Job {job_id} not found")


class JobStateConflict(ServiceError):
    """A state change lost a race or is not allowed from the job's current state."""

    status_code = 409
    code = "job_state_conflict"


class JobCancelled(ServiceError):
    """Raised inside the pipeline at a stage boundary when the job was cancelled."""

    status_code = 409
    code = "job_cancelled"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class TransientError(ServiceError):
    """Infrastructure hiccup (throttling, timeout): the message goes back to the queue."""

    status_code = 503
    code = "transient_error"
    retryable = True
