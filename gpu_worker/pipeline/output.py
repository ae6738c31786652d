"""`generating_output` stage: turn the pipeline's results into the Deepgram response models."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from statistics import fmean
from typing import Any

from shared import deepgram as dg

from .overlaps import overlaps, speaker_turns
from .postprocess import Paragraph, PostProcessed, WordGroup
from .types import DecodedAudio, Diarization, SpeakerWord, Transcript

_PUNCTUATION = re.compile(r"^[^\w']+|[^\w']+$")
_MODEL_NAMESPACE = uuid.UUID("6f1d2b7e-4d4b-4c55-9a4c-6e2a6c5a9d10")


def normalized_word(text: str) -> str:
    """Deepgram's `word`: lower case without surrounding punctuation (`punctuated_word` keeps it)."""
    return _PUNCTUATION.sub("", text).lower() or text.lower()


def model_id(name: str) -> str:
    """A stable id per model name, as Deepgram lists model ids in `metadata.models`."""
    return str(uuid.uuid5(_MODEL_NAMESPACE, name))


def _word(word: SpeakerWord, diarized: bool) -> dg.Word:
    return dg.Word(
        word=normalized_word(word.text),
        start=word.start,
        end=word.end,
        confidence=round(min(max(word.probability, 0.0), 1.0), 4),
        speaker=word.speaker if diarized else None,
        speaker_confidence=round(word.speaker_confidence, 4) if diarized else None,
        punctuated_word=word.text,
    )


def _utterance(group: WordGroup, diarized: bool) -> dg.Utterance:
    return dg.Utterance(
        start=group.start,
        end=group.end,
        confidence=round(group.confidence, 4),
        channel=0,
        transcript=group.text,
        words=[_word(word, diarized) for word in group.words],
        speaker=group.speaker if diarized else None,
        id=str(uuid.uuid4()),
    )


def _paragraph(paragraph: Paragraph, diarized: bool) -> dg.Paragraph:
    sentences = [dg.Sentence(text=s.text, start=s.start, end=s.end) for s in paragraph.sentences]
    return dg.Paragraph(
        sentences=sentences,
        speaker=paragraph.sentences[0].speaker if diarized else None,
        num_words=len(paragraph.words),
        start=paragraph.sentences[0].start,
        end=paragraph.sentences[-1].end,
    )


def _paragraphs_transcript(paragraphs: tuple[Paragraph, ...], diarized: bool) -> str:
    blocks = []
    for paragraph in paragraphs:
        text = " ".join(sentence.text for sentence in paragraph.sentences)
        label = f"Speaker {paragraph.sentences[0].speaker}: " if diarized else ""
        blocks.append(label + text)
    return "\n\n" + "\n\n".join(blocks) + "\n" if blocks else ""


def build_response(
    *,
    request_id: str,
    audio: DecodedAudio,
    transcript: Transcript,
    post: PostProcessed,
    diarized: bool,
    pipeline_info: dict[str, Any],
    diarization: Diarization | None = None,
) -> dg.DeepgramResponse:
    """The response of record: what `/jobs/{id}/result` returns and every exporter reads.

    With a diarization, the additive `speaker_turns` and `overlaps` carry what one speaker per
    word can't: who else was talking."""
    words = [_word(word, diarized) for word in post.words]
    confidence = round(fmean(word.probability for word in post.words), 4) if post.words else 0.0
    alternative = dg.Alternative(
        transcript=" ".join(word.text for word in post.words),
        confidence=confidence,
        words=words,
        paragraphs=dg.Paragraphs(
            transcript=_paragraphs_transcript(post.paragraphs, diarized),
            paragraphs=[_paragraph(paragraph, diarized) for paragraph in post.paragraphs],
        ),
    )
    channel = dg.Channel(
        alternatives=[alternative],
        detected_language=transcript.language,
        language_confidence=round(transcript.language_probability, 4),
    )
    metadata = dg.Metadata(
        request_id=request_id,
        sha256=audio.sha256,
        created=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        duration=round(audio.duration, 3),
        channels=1,
        models=[model_id(transcript.model_name)],
        model_info={"name": transcript.model_name, "arch": "whisper", **pipeline_info},
    )
    return dg.DeepgramResponse(
        metadata=metadata,
        results=dg.Results(
            channels=[channel],
            utterances=[_utterance(group, diarized) for group in post.utterances],
            speaker_turns=speaker_turns(diarization) if diarized and diarization else None,
            overlaps=(
                overlaps(diarization.overlapping_turns or diarization.turns)
                if diarized and diarization
                else None
            ),
        ),
    )
