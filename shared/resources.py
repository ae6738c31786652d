"""Names and key layouts of the AWS resources, used by the code, the local bootstrap and infra/.

One place, so the CloudFormation template, the emulator bootstrap and the code can't drift apart
(tests/test_infra.py checks the template against these).
"""

from __future__ import annotations

from typing import Final

from shared.filenames import stored_name

# DynamoDB jobs table
JOB_PARTITION_KEY: Final = "job_id"
STATUS_INDEX_NAME: Final = "status-created_at-index"
STATUS_INDEX_HASH_KEY: Final = "status"
STATUS_INDEX_RANGE_KEY: Final = "created_at"
TTL_ATTRIBUTE: Final = "expires_at"

# S3 key layout
UPLOADS_PREFIX: Final = "uploads/"
RESULTS_PREFIX: Final = "results/"
INCOMING_PREFIX: Final = "incoming/"


def upload_key(job_id: str, filename: str) -> str:
    """Audio of a job: `uploads/{job_id}/audio.<ext>`. The user's file name gives only its extension
    (letters and digits): it is never part of a key or a path."""
    return f"{UPLOADS_PREFIX}{job_id}/{stored_name(filename)}"


def result_key(job_id: str) -> str:
    """Deepgram JSON of a finished job: `results/{job_id}.json`."""
    return f"{RESULTS_PREFIX}{job_id}.json"


def segments_key(job_id: str) -> str:
    """Whisper's segments of a `/v1/audio/...` job, as `shared.openai_format.TranscriptRecord`:
    `results/{job_id}.segments.json`, rewritten per segment while a streamed job decodes."""
    return f"{RESULTS_PREFIX}{job_id}.segments.json"


def callback_body_key(job_id: str) -> str:
    """A callback body too large for its outbox row (shared.callback_outbox), until delivered:
    `results/{job_id}.callback.json`, expired and deleted with the job's results."""
    return f"{RESULTS_PREFIX}{job_id}.callback.json"


def known_speaker_key(job_id: str, index: int) -> str:
    """A known speaker's reference sample, beside the job's audio (deleted and expired with it; the
    ingest consumer skips it as one of the API's own uploads)."""
    return f"{UPLOADS_PREFIX}{job_id}/known-speaker-{index}"
