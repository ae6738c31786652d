"""One typed settings object for the whole service, read from the environment.

Every field maps to an environment variable of the same name in upper case; README lists them all.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.options import DEFAULT_BATCH_SIZE, BatchSize

APP_NAME = "whisper-diarization"
# Set by AWS where the service runs as a deployment (Lambda, ECS tasks): the AWS backend.
_DEPLOYMENT_MARKERS = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "ECS_CONTAINER_METADATA_URI_V4",
    "ECS_CONTAINER_METADATA_URI",
)


class BackendChoice(StrEnum):
    """Where jobs, queues and files live: SQLite + DATA_DIR on one machine, or DynamoDB/SQS/S3."""

    LOCAL = "local"
    AWS = "aws"


def default_data_dir() -> Path:
    """Per user: $XDG_DATA_HOME/whisper-diarization, else ~/.local/share/whisper-diarization."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


class StemmingDefault(StrEnum):
    """`auto` turns vocal separation on only when the separation model is installed."""

    AUTO = "auto"
    TRUE = "true"
    FALSE = "false"


class DiarizerChoice(StrEnum):
    AUTO = "auto"
    SEGMENTATION = "segmentation"
    WINDOWS = "windows"
    NEMO = "nemo"

    @classmethod
    def _missing_(cls, value: object) -> DiarizerChoice | None:
        """`embedded`, the old name of the windows backend, is still accepted."""
        return cls.WINDOWS if isinstance(value, str) and value.lower() == "embedded" else None


class SpeakerEncoderChoice(StrEnum):
    AUTO = "auto"  # WeSpeaker ResNet34 where this deployment has its weights, else resemblyzer
    RESEMBLYZER = "resemblyzer"
    WESPEAKER = "wespeaker"


class DeviceChoice(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # --- backend: `local` (SQLite + DATA_DIR) or `aws`. Unset: `aws` when AWS_ENDPOINT_URL is set
    # or the process runs in Lambda or ECS, else `local` (the one-command run, the single image).
    backend: BackendChoice | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    # The one-machine drop folder DATA_DIR/incoming/: how often it is looked at, and how long a
    # file must stay unchanged before it is taken (so a copy in progress is never read half-way).
    drop_poll_seconds: float = Field(1.0, gt=0)
    drop_settle_seconds: float = Field(2.0, ge=0)

    # --- AWS (boto3/aiobotocore also read AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> themselves)
    aws_region: str = Field("us-east-1", validation_alias="AWS_REGION")
    aws_endpoint_url: str | None = None
    bucket_name: str = "whisper-diarization-jobs"
    queue_name: str = "whisper-diarization-jobs"
    dlq_name: str = "whisper-diarization-jobs-dlq"
    table_name: str = "whisper-diarization-jobs"
    max_receive_count: int = Field(3, ge=1, le=100)
    # Seconds a received job stays invisible to other workers; the worker's heartbeat keeps
    # extending it (and the job's lease in the table) while it works. Tests use a few seconds.
    visibility_timeout_seconds: int = Field(120, ge=1, le=43200)
    message_retention_seconds: int = Field(4 * 24 * 3600, ge=60, le=14 * 24 * 3600)

    # --- worker (python -m gpu_worker)
    worker_id: str | None = None  # default: <hostname>-<pid>
    worker_concurrency: int = Field(1, ge=1, le=64)
    poll_wait_seconds: int = Field(20, ge=0, le=20)  # SQS long polling
    worker_heartbeat_seconds: float = Field(30.0, gt=0)  # registration refresh; stale after 3 beats
    dead_letter_poll_seconds: float = Field(60.0, gt=0)  # how often a worker fails jobs found in the DLQ
    worker_preload: bool = True  # load DEFAULT_WHISPER_MODEL before taking the first job
    worker_heartbeat_file: Path | None = None  # touched each registration beat (container health check)

    # --- jobs and limits
    upload_dir: Path = Path("/tmp/diarization_uploads")
    job_expiry_seconds: int = Field(3600, ge=60)
    max_upload_bytes: int = Field(2 * 1024**3, ge=1)
    max_lambda_upload_bytes: int = Field(4_400_000, ge=1)
    max_audio_duration_seconds: float = Field(4 * 3600.0, gt=0)
    # Results bigger than this are answered with a redirect to a presigned S3 URL in Lambda mode
    # (Lambda's response payload limit is 6 MB).
    max_lambda_response_bytes: int = Field(5_000_000, ge=1)
    # Every request body is read within limits (api_lambda/body_limits.py): JSON, URL-encoded and
    # text bodies up to this many bytes (others are uploads, up to MAX_UPLOAD_BYTES); each chunk
    # within the timeout and the whole body within the deadline, or the request is answered 408.
    max_json_body_bytes: int = Field(64 * 1024, ge=1024)
    body_read_timeout_seconds: float = Field(30.0, gt=0)
    body_read_deadline_seconds: float = Field(3600.0, gt=0)

    # --- presigned uploads, the incoming/ drop folder and S3 sources (docs/uploads.md)
    # Lifetime of the URLs `POST /uploads` hands out (SigV4 allows 7 days at most). The job then
    # waits JOB_EXPIRY_SECONDS more for an upload begun in time, and expires if none arrived.
    upload_url_expiry_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600)
    # Other buckets `POST /jobs {"s3_uri": ...}` may read, comma-separated (the service's own
    # bucket always may; the API's role must be granted s3:GetObject on the others).
    s3_uri_allowed_buckets: str = ""
    # The emulator's stand-in for S3 invoking the ingest Lambda: ObjectCreated events on uploads/
    # and incoming/ go to this queue, which the local run's ingest consumer reads.
    ingest_queue_name: str = "whisper-diarization-ingest"
    # Which project owns which part of the drop folder, as `prefix=project` pairs, comma-separated
    # (`incoming/sales/=acme,incoming/ops/=acme-ops`). Empty: `incoming/<project>/...` belongs to
    # <project>. A dropped file's job belongs to its project; with AUTH_REQUIRED only that project's
    # keys can see it or name it in `s3_uri`. Files outside every prefix belong to no project.
    drop_folder_projects: str = ""

    # --- API keys, the Deepgram-compatible /v1/listen, URL sources and callbacks
    auth_required: bool = False  # require `Authorization: Token|Bearer <key>` (all but /health, /docs)
    # A /v1/listen without `callback` waits this long for its job, then answers 504 with the request_id.
    listen_max_wait_seconds: float = Field(600.0, gt=0)
    # URL sources and callback URLs may reach private, loopback and link-local addresses only when
    # true (tests, a lab network); otherwise the worker refuses them at connect time (no SSRF).
    url_fetch_allow_private: bool = False
    url_fetch_max_bytes: int = Field(2 * 1024**3, ge=1)
    url_fetch_timeout_seconds: float = Field(600.0, gt=0)  # the whole download
    # Deepgram retries a failed callback up to 10 times, 30 s apart.
    callback_max_attempts: int = Field(10, ge=1, le=100)
    callback_retry_seconds: float = Field(30.0, ge=0)
    callback_timeout_seconds: float = Field(30.0, gt=0)  # one delivery attempt
    # How often a worker looks in the outbox for due callbacks it didn't schedule itself: retries
    # of a worker that died or stopped (its own retries run on time without waiting for a look).
    callback_poll_seconds: float = Field(5.0, gt=0)

    # --- the OpenAI-compatible /v1/audio/... (docs/openai.md)
    # OpenAI model names -> Whisper models, as JSON: {"whisper-1": "large-v3", ...}. A name left
    # out is served by DEFAULT_WHISPER_MODEL.
    openai_models: dict[str, str] = Field(default_factory=dict)
    # A non-streamed /v1/audio request waits this long, then answers 504 with the job id. Under the
    # openai SDK's default 600 s read timeout, so the SDK hears the answer instead of timing out
    # (and resubmitting the file).
    openai_max_wait_seconds: float = Field(540.0, gt=0)
    # known_speaker_names[]: a diarized speaker takes a known name only when its voice's cosine
    # similarity to that reference sample is at least this (resemblyzer GE2E embeddings).
    known_speaker_min_similarity: float = Field(0.75, ge=-1.0, le=1.0)

    # --- models and pipeline defaults
    model_dir: Path | None = None
    model_cache_dir: Path = Path.home() / ".cache" / "whisper-diarization"
    allow_model_download: bool = False
    default_whisper_model: str = "tiny.en"
    default_stemming: StemmingDefault = StemmingDefault.AUTO
    default_batch_size: BatchSize = DEFAULT_BATCH_SIZE
    """Sequential decoding unless asked: see shared.options.DEFAULT_BATCH_SIZE."""
    diarizer: DiarizerChoice = DiarizerChoice.AUTO
    speaker_encoder: SpeakerEncoderChoice = SpeakerEncoderChoice.AUTO
    device: DeviceChoice = DeviceChoice.AUTO
    compute_type: str | None = None
    cpu_threads: int = Field(0, ge=0)

    # --- logging
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("model_dir", mode="before")
    @classmethod
    def _empty_model_dir_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @model_validator(mode="after")
    def _choose_backend(self) -> Settings:
        if self.backend is None:
            deployed = any(os.environ.get(name) for name in _DEPLOYMENT_MARKERS)
            self.backend = BackendChoice.AWS if self.aws_endpoint_url or deployed else BackendChoice.LOCAL
        return self

    @property
    def local(self) -> bool:
        """True with the embedded backend (SQLite and DATA_DIR)."""
        return self.backend is BackendChoice.LOCAL

    @property
    def drop_folder_prefixes(self) -> tuple[tuple[str, str], ...]:
        """DROP_FOLDER_PROJECTS as (prefix, project) pairs, longest prefix first."""
        pairs = []
        for entry in self.drop_folder_projects.split(","):
            prefix, _, project = entry.strip().partition("=")
            if prefix.strip() and project.strip():
                pairs.append((prefix.strip(), project.strip()))
        return tuple(sorted(pairs, key=lambda pair: -len(pair[0])))

    @property
    def source_buckets(self) -> frozenset[str]:
        """Buckets an `s3_uri` may name: S3_URI_ALLOWED_BUCKETS and the service's own."""
        listed = (name.strip() for name in self.s3_uri_allowed_buckets.split(","))
        return frozenset(name for name in listed if name) | {self.bucket_name}


@lru_cache
def get_settings() -> Settings:
    """Cached so every module sees one settings object; tests call `get_settings.cache_clear()`."""
    return Settings()
