"""What a `/v1/audio/...` job publishes besides its Deepgram result: Whisper's segments
(`results/{job_id}.segments.json`, a `shared.openai_format.TranscriptRecord`).

A streamed job rewrites the object after each decoded segment (`complete: false`), which the
API's event stream polls: S3 (or the emulator) is the one channel both the AWS deployment and the
one-machine run have. Every job writes the final record before it is marked completed.
"""

from __future__ import annotations

from typing import Any

from gpu_worker.pipeline.types import Transcript, TranscriptSegment
from shared.logging import get_logger
from shared.openai_format import SegmentRecord, TranscriptRecord, WordRecord
from shared.resources import segments_key

log = get_logger(__name__)


def segment_record(segment: TranscriptSegment) -> SegmentRecord:
    return SegmentRecord(
        id=segment.id,
        seek=segment.seek,
        start=round(segment.start, 3),
        end=round(segment.end, 3),
        text=segment.text,
        tokens=list(segment.tokens),
        temperature=segment.temperature,
        avg_logprob=round(segment.avg_logprob, 6),
        compression_ratio=round(segment.compression_ratio, 6),
        no_speech_prob=round(segment.no_speech_prob, 6),
        words=[
            WordRecord(word=w.text, start=w.start, end=w.end, probability=w.probability)
            for w in segment.words
        ],
    )


def put_record(blobs: Any, job_id: str, record: TranscriptRecord) -> None:
    """`blobs`: the worker's blob store (shared.ports.BlobStore)."""
    blobs.put(segments_key(job_id), record.model_dump_json().encode(), content_type="application/json")


class SegmentPublisher:
    """`on_segment` for a streamed job: the record so far, rewritten per segment."""

    def __init__(self, blobs: Any, job_id: str) -> None:
        self.blobs, self.job_id = blobs, job_id
        self.segments: list[SegmentRecord] = []

    def __call__(self, segment: TranscriptSegment) -> None:
        self.segments.append(segment_record(segment))
        partial = TranscriptRecord(language="", duration=0.0, segments=self.segments, complete=False)
        try:
            put_record(self.blobs, self.job_id, partial)
        except Exception as error:  # a missed partial only delays the stream; the final record follows
            log.warning("partial_segments_not_published", job_id=self.job_id, error=str(error))


def final_record(transcript: Transcript, duration: float, speaker_names: dict[int, str]) -> TranscriptRecord:
    return TranscriptRecord(
        language=transcript.language,
        duration=round(duration, 3),
        segments=[segment_record(segment) for segment in transcript.segments],
        complete=True,
        speakers={str(speaker): name for speaker, name in speaker_names.items()},
    )
