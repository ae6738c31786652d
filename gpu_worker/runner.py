"""Process one claimed job: fetch its audio → run the pipeline, reporting stages → write the
result → mark it completed → acknowledge the message. Only the last step lets go of the message,
so a crash anywhere before it loses nothing (the message comes back, the lapsed lease lets another
worker claim the job).

The outcome of an attempt is decided here too: a cancellation, a hand-back on shutdown, a permanent
error (the job fails), or a transient one (retried later; on the last receive the job fails).
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gpu_worker.hooks import NO_HOOKS, WorkerHooks
from gpu_worker.lease import Lease
from gpu_worker.notify import Notifier
from gpu_worker.task_protection import TaskProtection
from gpu_worker.url_fetch import fetch_to_file
from shared.errors import JobCancelled, ServiceError, is_transient, user_message
from shared.filenames import stored_name
from shared.jobs import Job
from shared.listen_text import apply_listen_text
from shared.logging import get_logger
from shared.ports import BlobStore, Queue, QueueMessage
from shared.resources import result_key
from shared.settings import Settings
from shared.stages import Stage

log = get_logger(__name__)


def _pipeline_options(job: Job, known_speakers: tuple[tuple[str, Path], ...] = ()) -> Any:
    from gpu_worker.pipeline.options import PipelineOptions

    return PipelineOptions(**job.transcription_options().model_dump(), known_speakers=known_speakers)


def _local_name(job: Job) -> str:
    """The job's audio on local disk: the service's name (`audio.<ext>`), never the user's."""
    return stored_name(urlsplit(job.source_url).path if job.source_url else job.upload_key)


@dataclass
class JobRunner:
    settings: Settings
    store: Any
    queue: Queue
    blobs: BlobStore
    notifier: Notifier
    giving_back: threading.Event  # set on a second shutdown signal: hand jobs back
    protection: TaskProtection
    hooks: WorkerHooks = NO_HOOKS

    def run(self, job: Job, message: QueueMessage, owner: str) -> None:
        """Process a job this worker has just claimed (as `owner`), under a lease on its message."""
        lease = Lease(
            store=self.store,
            queue=self.queue,
            receipt_handle=message.receipt,
            job_id=job.job_id,
            owner=owner,
            visibility_seconds=self.settings.visibility_timeout_seconds,
            give_back=self.giving_back,
        )
        workdir = self.settings.upload_dir / job.job_id
        try:
            with self.protection.busy(), lease:
                self._process(job, lease, workdir, message)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _process(self, job: Job, lease: Lease, workdir: Path, message: QueueMessage) -> None:
        job_id, owner, ops, receipt = job.job_id, lease.owner, self.store.ops, message.receipt
        try:
            source = self._fetch_source(job, workdir)
            response = self._run_pipeline(job, source, lease, workdir)
            result = response.model_dump(mode="json", exclude_none=True)
            if job.listen is not None:  # Deepgram's text edits (numbers, redaction...), before storing
                result = apply_listen_text(result, job.listen)
            self._put_result(job, json.dumps(result).encode())
            callback = self.notifier.completed(job, result)
            if self.store.run(ops.complete(job_id, owner, callback=callback)):
                self.queue.ack(receipt)
                log.info("job_completed", job_id=job_id)
                self.notifier.kick(callback)
            else:
                log.warning("job_lost_before_completion", job_id=job_id)
        except JobCancelled:
            if lease.lost.is_set():
                log.warning("job_lost", job_id=job_id)
            elif self.giving_back.is_set():
                self.store.run(ops.release(job_id, owner))
                self.queue.release(receipt)
                log.info("job_given_back", job_id=job_id)
            elif self.store.run(ops.cancel_owned(job_id, owner)):
                self.queue.ack(receipt)
                log.info("job_cancelled", job_id=job_id)
        except Exception as error:  # shared.errors says, in one place, whether a retry can help
            if not isinstance(error, ServiceError):
                log.exception("job_attempt_crashed", job_id=job_id)
            elif error.internal_detail:
                log.warning("job_error_detail", job_id=job_id, code=error.code, detail=error.internal_detail)
            # The decoder names the local file; the user knows the file by their own name.
            reason = user_message(error).replace(f"'{_local_name(job)}'", f"'{job.filename}'")
            if is_transient(error):
                self._retry_later(job, owner, message, reason)
                return
            callback = self.notifier.failed(job, reason)
            if self.store.run(ops.fail_owned(job_id, owner, reason, callback=callback)):
                self.queue.ack(receipt)
                log.info("job_failed", job_id=job_id, error=reason)
                self.notifier.kick(callback)

    def _retry_later(self, job: Job, owner: str, message: QueueMessage, error: str) -> None:
        """Give the job back for another attempt; on the last one, fail it (the message then goes
        on to the DLQ, where it stays for people to inspect)."""
        ops, receives = self.store.ops, message.receive_count
        log.warning("job_attempt_failed", job_id=job.job_id, receives=receives, error=error)
        if receives >= self.settings.max_receive_count:
            reason = f"gave up after {receives} attempts: {error}"
            callback = self.notifier.failed(job, reason)
            if self.store.run(ops.fail_owned(job.job_id, owner, reason, callback=callback)):
                self.queue.release(message.receipt)
                self.notifier.kick(callback)
        elif self.store.run(ops.release(job.job_id, owner, last_error=error)):
            delay = min(self.settings.visibility_timeout_seconds, 10 * receives)
            self.queue.release(message.receipt, delay)

    def _fetch_source(self, job: Job, workdir: Path) -> Path:
        """The job's audio on local disk: from S3, or from its URL (size, time and address limits)."""
        if job.source_url:
            return fetch_to_file(
                job.source_url,
                workdir / _local_name(job),
                max_bytes=self.settings.url_fetch_max_bytes,
                timeout=self.settings.url_fetch_timeout_seconds,
                allow_private=self.settings.url_fetch_allow_private,
            )
        return self.blobs.download(job.upload_key, workdir / _local_name(job))

    def _put_result(self, job: Job, body: bytes) -> None:
        """`results/{job_id}.json`, and the same at a drop-folder job's own result name."""
        for key in (result_key(job.job_id), job.result_copy_key):
            if key:
                self.blobs.put(key, body, content_type="application/json")

    def _run_pipeline(self, job: Job, source: Path, lease: Lease, workdir: Path) -> Any:
        from gpu_worker.pipeline.run import run_pipeline

        def progress(stage: Stage, fraction: float) -> None:
            lease.report(stage)
            self.hooks.at_stage(job, stage, lease.should_stop)

        def run(path: Path) -> Any:
            return run_pipeline(
                path,
                _pipeline_options(job),
                request_id=job.job_id,
                progress=progress,
                should_stop=lease.should_stop,
                settings=self.settings,
            )

        if job.openai is not None:
            return self._run_openai(job, source, progress, lease, workdir)
        if job.listen and job.listen.multichannel:
            from gpu_worker.multichannel import merge_channels, split_channels

            channels = split_channels(source, workdir / "channels")
            if len(channels) > 1:
                return merge_channels([run(path) for path in channels], source)
        return run(source)

    def _run_openai(self, job: Job, source: Path, progress: Any, lease: Lease, workdir: Path) -> Any:
        """A /v1/audio job: fetch its speaker references, publish segments as they are decoded when
        it streams, and store Whisper's segments beside the result (gpu_worker.openai_record)."""
        from gpu_worker.openai_record import SegmentPublisher, final_record, put_record
        from gpu_worker.pipeline.run import run_pipeline_detailed

        assert job.openai is not None
        known = tuple(
            (speaker.name, self.blobs.download(speaker.key, workdir / "known" / Path(speaker.key).name))
            for speaker in job.openai.known_speakers
        )
        publisher = SegmentPublisher(self.blobs, job.job_id) if job.openai.stream else None
        run = run_pipeline_detailed(
            source,
            _pipeline_options(job, known),
            request_id=job.job_id,
            progress=progress,
            should_stop=lease.should_stop,
            settings=self.settings,
            on_segment=publisher,
        )
        assert run.transcript is not None
        record = final_record(run.transcript, run.response.metadata.duration, run.speaker_names)
        put_record(self.blobs, job.job_id, record)
        return run.response
