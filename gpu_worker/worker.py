"""The job consumer: long-polls SQS, claims each job in the table, runs the pipeline, stores the
result, and only then lets go of the message.

Per message, in this order: claim (conditional update with owner + lease) → download the audio
→ run the pipeline, reporting stages → write the result to S3 → mark the job completed →
delete the message. A crash anywhere before the last step loses nothing: the message comes back
after its visibility timeout and the lapsed lease lets another worker claim the job. Redelivery
of a finished job is acknowledged and skipped. After `MAX_RECEIVE_COUNT` receives SQS moves the
message to the dead-letter queue, where `sweep_dead_letters` fails the job with a reason.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gpu_worker.callbacks import CallbackPolicy, outbox_entry
from gpu_worker.deliverer import Deliverer
from gpu_worker.lease import Lease
from gpu_worker.registry import Registration
from gpu_worker.task_protection import TaskProtection
from gpu_worker.url_fetch import fetch_to_file
from shared.backends import worker_backend
from shared.callback_outbox import OutboxEntry
from shared.errors import JobCancelled, JobNotFound, ServiceError, is_transient, user_message
from shared.filenames import stored_name
from shared.jobs import Job, JobStatus
from shared.listen_text import apply_listen_text
from shared.logging import get_logger
from shared.ports import QueueMessage
from shared.queue import JobMessage, UnreadableMessage
from shared.resources import result_key
from shared.settings import Settings
from shared.stages import Stage

log = get_logger(__name__)

_JOB_FOLDER = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CALLBACK_THREADS = 4
DLQ_HIDE_SECONDS = 12 * 3600  # a handled dead letter stays in the DLQ for people, out of our way
FAULT_ENV = "WORKER_FAULT_INJECTION"
"""Test-only: `crash@<text>` kills the process (SIGKILL) right after claiming a job whose file
name contains <text>; `hold@<text>` blocks such a job at its first stage until it is told to stop."""


def _pipeline_options(job: Job, known_speakers: tuple[tuple[str, Path], ...] = ()) -> Any:
    from gpu_worker.pipeline.options import PipelineOptions

    return PipelineOptions(**job.transcription_options().model_dump(), known_speakers=known_speakers)


def _local_name(job: Job) -> str:
    """The job's audio on local disk: the service's name (`audio.<ext>`), never the user's."""
    return stored_name(urlsplit(job.source_url).path if job.source_url else job.upload_key)


def _fault(job: Job) -> str | None:
    action, _, marker = os.environ.get(FAULT_ENV, "").partition("@")
    return action if marker and marker in job.filename else None


class Worker:
    def __init__(self, settings: Settings, *, session: Any = None) -> None:
        """`session`: a boto3 session for BACKEND=aws (default: one for AWS_REGION)."""
        self.settings = settings
        self.worker_id = settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        backend = worker_backend(settings, session=session, pool=4 * settings.worker_concurrency + 8)
        self.store = backend.store
        self.queue = backend.queue
        self.dead_letters = backend.dead_letters
        self.blobs = backend.blobs
        self.stopping = threading.Event()  # take no new jobs; finish the current ones
        self.giving_back = threading.Event()  # hand current jobs back at their next stage boundary
        self._stop_requests = itertools.count()
        self.protection = TaskProtection()
        # Callbacks wait in the job store's outbox and are delivered off the consumer threads,
        # fairly across tenants, by whichever worker is alive (gpu_worker.deliverer).
        self.callbacks = Deliverer(
            self.store,
            self.blobs,
            CallbackPolicy.from_settings(settings),
            owner=self.worker_id,
            threads=CALLBACK_THREADS,
            poll_seconds=settings.callback_poll_seconds,
        )

    # --- lifecycle ---------------------------------------------------------------------------
    def stop(self) -> None:
        """First SIGTERM/SIGINT: finish the jobs in hand, then exit. A second one gives them back."""
        # A signal handler can be interrupted by the next signal: count first (one C call, atomic),
        # act, and only then log.
        if next(self._stop_requests) == 0:
            self.stopping.set()
            log.info("worker_stopping", worker_id=self.worker_id)
        else:
            self.giving_back.set()
            log.warning("worker_giving_back_jobs", worker_id=self.worker_id)

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())

    def run(self) -> None:
        """Consume until stopped, with `worker_concurrency` consumer threads."""
        with Registration(self.store, self.settings, self.worker_id):
            self.clean_stale_workdirs()
            if self.settings.worker_preload:
                self._preload()
            threads = [
                threading.Thread(target=self._consume, args=(f"{self.worker_id}/{n}",), name=f"consumer-{n}")
                for n in range(self.settings.worker_concurrency)
            ]
            threads.append(threading.Thread(target=self._sweep_loop, name="dead-letters", daemon=True))
            for thread in threads:
                thread.start()
            self.callbacks.start()
            log.info("worker_started", worker_id=self.worker_id, concurrency=self.settings.worker_concurrency)
            for thread in threads[:-1]:
                while thread.is_alive():  # join in slices so signal handlers run promptly
                    thread.join(timeout=0.5)
            self.callbacks.close()  # attempts due now are made; later retries stay in the outbox
        log.info("worker_stopped", worker_id=self.worker_id)

    def clean_stale_workdirs(self) -> int:
        """Remove job folders a killed worker left in UPLOAD_DIR (`kill -9` runs no cleanup).

        Only folders named as job ids are touched, and not one whose job some live worker is still
        processing (several workers may share the folder). Returns how many were removed."""
        removed = 0
        folders = self.settings.upload_dir.iterdir() if self.settings.upload_dir.is_dir() else ()
        for folder in folders:
            if not folder.is_dir() or not _JOB_FOLDER.fullmatch(folder.name):
                continue
            try:
                job: Job | None = self.store.get(folder.name)
            except JobNotFound:
                job = None
            busy = (
                job is not None
                and job.status is JobStatus.PROCESSING
                and (job.lease_expires_at or 0) > time.time()
            )
            if not busy:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        if removed:
            log.info("stale_workdirs_removed", count=removed, upload_dir=str(self.settings.upload_dir))
        return removed

    def _preload(self) -> None:
        from gpu_worker.pipeline.run import warm_up

        try:
            warm_up(self.settings.default_whisper_model, self.settings)
        except ServiceError as error:  # the worker can still run the models it has
            log.warning("preload_failed", model=self.settings.default_whisper_model, error=str(error))

    def _consume(self, owner: str) -> None:
        while not self.stopping.is_set():
            try:
                messages = self.queue.receive(
                    max_messages=1,
                    wait_seconds=self.settings.poll_wait_seconds,
                    visibility_seconds=self.settings.visibility_timeout_seconds,
                )
            except Exception as error:
                log.warning("receive_failed", error=str(error))
                self.stopping.wait(1.0)
                continue
            for message in messages:
                if self.stopping.is_set():  # received during shutdown: let another worker have it
                    self._set_visibility(message.receipt, 0)
                    continue
                try:
                    self.handle(message, owner)
                except Exception:  # never let one message kill a consumer thread
                    log.exception("message_handling_failed", message_id=message.message_id)

    # --- one message -------------------------------------------------------------------------
    def _delete_message(self, receipt_handle: str) -> None:
        self.queue.delete(receipt_handle)

    def _set_visibility(self, receipt_handle: str, seconds: int) -> None:
        self.queue.change_visibility(receipt_handle, seconds)

    def handle(self, message: QueueMessage, owner: str) -> None:
        receipt, receives = message.receipt, message.receive_count
        try:
            job_message = JobMessage.from_body(message.body)
        except UnreadableMessage as error:
            # Perhaps a newer API's message: give other workers a chance, then the DLQ keeps it.
            log.error("unreadable_message", error=str(error), receives=receives)
            self._set_visibility(receipt, 0)
            return
        job_id = job_message.job_id
        ops = self.store.ops
        claim = self.store.run(ops.claim(job_id, owner))
        if not claim.won:
            if claim.job is None or claim.job.status.finished:  # deleted, cancelled, or already done
                log.info("skipping_finished_job", job_id=job_id, status=claim.job and claim.job.status)
                self._delete_message(receipt)
            else:  # another worker holds it (duplicate delivery): look again after its lease
                remaining = (claim.job.lease_expires_at or time.time()) - time.time()
                self._set_visibility(receipt, max(1, min(int(remaining) + 1, 43200)))
            return
        job = claim.job
        assert job is not None
        if job.cancel_requested:  # cancelled while its previous worker was dying
            if self.store.run(ops.cancel_owned(job_id, owner)):
                self._delete_message(receipt)
            return
        if _fault(job) == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        log.info("job_claimed", job_id=job_id, owner=owner, attempt=job.attempts, receives=receives)
        lease = Lease(
            store=self.store,
            queue=self.queue,
            receipt_handle=receipt,
            job_id=job_id,
            owner=owner,
            visibility_seconds=self.settings.visibility_timeout_seconds,
            give_back=self.giving_back,
        )
        workdir = self.settings.upload_dir / job_id
        try:
            with self.protection.busy(), lease:
                self._process(job, lease, workdir, receipt, receives)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _process(self, job: Job, lease: Lease, workdir: Path, receipt: str, receives: int) -> None:
        job_id, owner, ops = job.job_id, lease.owner, self.store.ops
        try:
            source = self._fetch_source(job, workdir)
            response = self._run_pipeline(job, source, lease, workdir)
            result = response.model_dump(mode="json", exclude_none=True)
            if job.listen is not None:  # Deepgram's text edits (numbers, redaction...), before storing
                result = apply_listen_text(result, job.listen)
            self._put_result(job, json.dumps(result).encode())
            callback = outbox_entry(self.store, self.blobs, job, result)
            if self.store.run(ops.complete(job_id, owner, callback=callback)):
                self._delete_message(receipt)
                log.info("job_completed", job_id=job_id)
                self.callbacks.kick(callback)
            else:
                log.warning("job_lost_before_completion", job_id=job_id)
        except JobCancelled:
            if lease.lost.is_set():
                log.warning("job_lost", job_id=job_id)
            elif self.giving_back.is_set():
                self.store.run(ops.release(job_id, owner))
                self._set_visibility(receipt, 0)
                log.info("job_given_back", job_id=job_id)
            elif self.store.run(ops.cancel_owned(job_id, owner)):
                self._delete_message(receipt)
                log.info("job_cancelled", job_id=job_id)
        except Exception as error:  # shared.errors says, in one place, whether a retry can help
            if not isinstance(error, ServiceError):
                log.exception("job_attempt_crashed", job_id=job_id)
            elif error.internal_detail:
                log.warning("job_error_detail", job_id=job_id, code=error.code, detail=error.internal_detail)
            # The decoder names the local file; the user knows the file by their own name.
            message = user_message(error).replace(f"'{_local_name(job)}'", f"'{job.filename}'")
            if is_transient(error):
                self._retry_later(job, owner, receipt, receives, message)
                return
            callback = self._failed(job, message)
            if self.store.run(ops.fail_owned(job_id, owner, message, callback=callback)):
                self._delete_message(receipt)
                log.info("job_failed", job_id=job_id, error=message)
                self.callbacks.kick(callback)

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

        hold = _fault(job) == "hold"

        def progress(stage: Stage, fraction: float) -> None:
            lease.report(stage)
            while hold and not lease.should_stop():  # test hook: park here until told to stop
                time.sleep(0.2)

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

    # --- callbacks ---------------------------------------------------------------------------
    def _failed(self, job: Job, error: str) -> OutboxEntry | None:
        """The outbox entry of a job failing with `error` (None: no callback)."""
        return outbox_entry(self.store, self.blobs, job, None, error=error)

    def _retry_later(self, job: Job, owner: str, receipt: str, receives: int, error: str) -> None:
        """Give the job back for another attempt; on the last one, fail it (the message then goes
        on to the DLQ, where it stays for people to inspect)."""
        ops = self.store.ops
        log.warning("job_attempt_failed", job_id=job.job_id, receives=receives, error=error)
        if receives >= self.settings.max_receive_count:
            reason = f"gave up after {receives} attempts: {error}"
            callback = self._failed(job, reason)
            if self.store.run(ops.fail_owned(job.job_id, owner, reason, callback=callback)):
                self._set_visibility(receipt, 0)
                self.callbacks.kick(callback)
        elif self.store.run(ops.release(job.job_id, owner, last_error=error)):
            self._set_visibility(receipt, min(self.settings.visibility_timeout_seconds, 10 * receives))

    # --- dead letters ------------------------------------------------------------------------
    def _sweep_loop(self) -> None:
        while not self.stopping.wait(self.settings.dead_letter_poll_seconds):
            try:
                self.sweep_dead_letters()
            except Exception as error:
                log.warning("dead_letter_sweep_failed", error=str(error))

    def sweep_dead_letters(self) -> int:
        """Fail the jobs whose messages SQS moved to the DLQ (their workers kept dying).

        The messages stay in the DLQ for people to look at; a job some live worker still holds is
        looked at again once its lease has run out. Returns how many jobs were failed.
        """
        failed = 0
        messages = self.dead_letters.receive(
            max_messages=10, wait_seconds=0, visibility_seconds=DLQ_HIDE_SECONDS
        )
        for message in messages:
            try:
                job = self.store.get(JobMessage.from_body(message.body).job_id)
            except (UnreadableMessage, JobNotFound):
                continue
            if job.status.finished:
                continue
            attempts = max(job.attempts, 1)
            reason = (
                f"gave up after {attempts} attempts; last error: {job.last_error}"
                if job.last_error
                else f"worker crashed {attempts} times while processing this job; giving up "
                f"(its message is in the dead-letter queue {self.settings.dlq_name})"
            )
            callback = self._failed(job, reason)
            if self.store.run(self.store.ops.fail_abandoned(job.job_id, reason, callback=callback)):
                failed += 1
                log.warning("dead_letter_job_failed", job_id=job.job_id, reason=reason)
                self.callbacks.kick(callback)
            else:  # a worker still holds it: look again after its lease
                self.dead_letters.change_visibility(
                    message.receipt, max(1, int((job.lease_expires_at or 0) - time.time()) + 1)
                )
        return failed
