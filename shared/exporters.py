"""Export a Deepgram response to SRT, WebVTT, plain text with speaker labels, and RTTM.

Lives in `shared/` (no torch) so the API can serve `?format=` from the stored JSON and the CLI
writes the same bytes. `speaker_names` (a job's `PUT /jobs/{id}/speakers`) replace the
"Speaker N" labels; speakers without a name keep theirs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.deepgram import DeepgramResponse, Word

# Captions longer than this are split at word boundaries, as subtitle guidelines suggest.
MAX_CUE_SECONDS = 7.0
MAX_CUE_CHARACTERS = 84


class ExportFormat(StrEnum):
    JSON = "json"
    SRT = "srt"
    VTT = "vtt"
    TXT = "txt"
    RTTM = "rttm"


MEDIA_TYPES: dict[ExportFormat, str] = {
    ExportFormat.JSON: "application/json",
    ExportFormat.SRT: "application/x-subrip",
    ExportFormat.VTT: "text/vtt",
    ExportFormat.TXT: "text/plain",
    ExportFormat.RTTM: "text/plain",
}


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    speaker: int | None
    text: str


SpeakerNames = Mapping[int, str]


def _speaker_label(speaker: int | None, names: SpeakerNames | None = None) -> str:
    if speaker is None:
        return "Unknown"
    return (names or {}).get(speaker) or f"Speaker {speaker}"


def _vtt_escape(text: str) -> str:
    """WebVTT cue text may not hold a raw `&`, `<` or `>` (a voice name could)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _rttm_speaker(speaker: int | None, names: SpeakerNames | None) -> str:
    """RTTM fields are space-separated: a name's whitespace becomes `_`."""
    if speaker is None:
        return "unknown"
    name = (names or {}).get(speaker)
    return re.sub(r"\s+", "_", name.strip()) if name and name.strip() else f"speaker_{speaker}"


def _text(words: list[Word]) -> str:
    return " ".join(word.punctuated_word or word.word for word in words)


def _word_runs(response: DeepgramResponse) -> Iterator[list[Word]]:
    """Utterances when present, else runs of one speaker's words."""
    if response.results.utterances:
        for utterance in response.results.utterances:
            yield list(utterance.words)
        return
    run: list[Word] = []
    for word in response.results.channels[0].alternatives[0].words:
        if run and word.speaker != run[-1].speaker:
            yield run
            run = []
        run.append(word)
    if run:
        yield run


def cues(response: DeepgramResponse) -> list[Cue]:
    """Caption cues: one per utterance, split when longer than a reader can follow."""
    result: list[Cue] = []
    for words in _word_runs(response):
        current: list[Word] = []
        for word in words:
            too_long = current and (
                word.end - current[0].start > MAX_CUE_SECONDS
                or len(_text([*current, word])) > MAX_CUE_CHARACTERS
            )
            if too_long:
                result.append(Cue(current[0].start, current[-1].end, current[0].speaker, _text(current)))
                current = []
            current.append(word)
        if current:
            result.append(Cue(current[0].start, current[-1].end, current[0].speaker, _text(current)))
    return result


def _timestamp(seconds: float, separator: str) -> str:
    milliseconds = round(seconds * 1000)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{milliseconds:03d}"


def to_srt(response: DeepgramResponse, speaker_names: SpeakerNames | None = None) -> str:
    blocks = [
        f"{index}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n"
        f"[{_speaker_label(cue.speaker, speaker_names)}] {cue.text}\n"
        for index, cue in enumerate(cues(response), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(response: DeepgramResponse, speaker_names: SpeakerNames | None = None) -> str:
    blocks = [
        f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n"
        f"<v {_vtt_escape(_speaker_label(cue.speaker, speaker_names))}>{_vtt_escape(cue.text)}\n"
        for cue in cues(response)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_txt(response: DeepgramResponse, speaker_names: SpeakerNames | None = None) -> str:
    lines = [
        f"[{_timestamp(words[0].start, '.')}] {_speaker_label(words[0].speaker, speaker_names)}: "
        f"{_text(words)}"
        for words in _word_runs(response)
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def to_rttm(
    response: DeepgramResponse, speaker_names: SpeakerNames | None = None, file_id: str | None = None
) -> str:
    """NIST RTTM speaker turns, as DER tools read them: the diarizer's own turns when the result has
    them (overlapping where speakers talk at once), else one SPEAKER line per utterance."""
    uri = (file_id or response.metadata.request_id).replace(" ", "_")
    lines = []
    if response.results.speaker_turns is not None:
        multichannel = response.metadata.channels > 1
        for turn in response.results.speaker_turns:
            speaker = (
                _rttm_speaker(turn.speaker, speaker_names)
                if speaker_names and turn.speaker in speaker_names
                else f"speaker_{turn.channel}_{turn.speaker}"
                if multichannel
                else f"speaker_{turn.speaker}"
            )
            lines.append(
                f"SPEAKER {uri} {turn.channel + 1} {turn.start:.3f} {max(turn.end - turn.start, 0.0):.3f} "
                f"<NA> <NA> {speaker} <NA> <NA>"
            )
        return "\n".join(lines) + ("\n" if lines else "")
    for words in _word_runs(response):
        start, end = words[0].start, words[-1].end
        speaker = _rttm_speaker(words[0].speaker, speaker_names)
        lines.append(f"SPEAKER {uri} 1 {start:.3f} {max(end - start, 0.0):.3f} <NA> <NA> {speaker} <NA> <NA>")
    return "\n".join(lines) + ("\n" if lines else "")


def to_json(response: DeepgramResponse, speaker_names: SpeakerNames | None = None) -> str:
    """The Deepgram JSON; names, when given, go in an added `results.speaker_names` (speaker ids
    as strings, as JSON keys must be), never in place of the `speaker` ints."""
    if speaker_names:
        named = {str(k): v for k, v in sorted(speaker_names.items())}
        response = response.model_copy(
            update={"results": response.results.model_copy(update={"speaker_names": named})}
        )
    return response.model_dump_json(exclude_none=True, indent=2)


EXPORTERS: dict[ExportFormat, Callable[[DeepgramResponse, SpeakerNames | None], str]] = {
    ExportFormat.JSON: to_json,
    ExportFormat.SRT: to_srt,
    ExportFormat.VTT: to_vtt,
    ExportFormat.TXT: to_txt,
    ExportFormat.RTTM: to_rttm,
}


def export(
    response: DeepgramResponse, fmt: ExportFormat | str, speaker_names: SpeakerNames | None = None
) -> str:
    return EXPORTERS[ExportFormat(fmt)](response, speaker_names)
