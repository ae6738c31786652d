"""The official `openai` SDK from PyPI, unmodified with only `base_url` changed, against this
service: the API over real HTTP on loopback, a worker process running the real pipeline (tiny.en)
on synthesized speech (evaluation/synthetic.py). Every response format, word and segment timestamps,
streamed events, a diarized two-speaker conversation, and known speakers named from samples.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from pathlib import Path

import openai
import pytest
from openai.types.audio import Transcription, TranscriptionDiarized, TranscriptionVerbose

from evaluation.synthetic import CorpusItem
from tests.fixtures_aws import AwsEnv, WorkerProcess
from tests.fixtures_corpus import trimmed

pytestmark = pytest.mark.slow


def sdk(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="any-key-auth-is-off", timeout=300, max_retries=0)


def clip(item: CorpusItem, start: float, end: float, target: Path) -> Path:
    if not target.exists():
        subprocess.run(
            ["sox", str(item.path), str(target), "trim", f"{start:.2f}", f"{end - start:.2f}"], check=True
        )
    return target


@pytest.fixture(scope="module")
def clips(corpus, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    item = corpus["two_speakers"]
    folder = tmp_path_factory.mktemp("openai-clips")
    turns = item.turns
    return {
        "both": trimmed(item.path, turns[1].end + 0.3, folder / "both.wav"),
        "male": clip(item, turns[2].start - 0.1, turns[2].end + 0.1, folder / "male.wav"),
        "female": clip(item, turns[3].start - 0.1, turns[3].end + 0.1, folder / "female.wav"),
    }


def data_url(path: Path) -> str:
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def test_every_format_word_timestamps_and_a_stream(
    live_api: str, spawn_worker: Callable[..., WorkerProcess], clips: dict[str, Path]
) -> None:
    worker = spawn_worker()
    client = sdk(live_api)
    audio = clips["both"].read_bytes()
    file = ("both.wav", audio, "audio/wav")

    plain = client.audio.transcriptions.create(
        model="whisper-1", file=file, prompt="A talk about the garden.", temperature=0.2, include=["logprobs"]
    )
    assert isinstance(plain, Transcription), worker.log()
    assert "garden" in plain.text.lower()  # sampled from 0.2: only the clearest word is asserted
    assert plain.logprobs and all(p.logprob <= 0 for p in plain.logprobs)

    verbose = client.audio.transcriptions.create(
        model="tiny.en",
        file=file,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        temperature=0.2,
    )
    assert isinstance(verbose, TranscriptionVerbose) and verbose.language == "english"
    assert verbose.duration == pytest.approx(len(audio) / 32000, abs=0.1)
    assert "garden" in " ".join(w.word for w in verbose.words).lower()
    assert all(
        a.start <= b.start and a.start <= a.end
        for a, b in zip(verbose.words, verbose.words[1:], strict=False)
    )
    assert verbose.segments and all(s.tokens and s.avg_logprob < 0 for s in verbose.segments)
    assert {s.temperature for s in verbose.segments} <= {0.2, 0.4, 0.6, 0.8, 1.0}  # decoded from 0.2 up

    text = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="text")
    assert text.endswith("\n") and "garden" in text.lower() and "tomatoes" in text.lower()  # greedy
    srt = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="srt")
    assert srt.startswith("1\n00:00:0") and " --> " in srt
    vtt = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:0")

    events = list(client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=file, stream=True))
    kinds = [event.type for event in events]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) == {"transcript.text.delta"}, worker.log()
    assert "".join(event.delta for event in events[:-1]) == events[-1].text
    assert "garden" in events[-1].text.lower()


def test_a_diarized_conversation_and_known_speakers(
    live_api: str,
    spawn_worker: Callable[..., WorkerProcess],
    clips: dict[str, Path],
    conversation,
    aws: AwsEnv,
) -> None:
    worker = spawn_worker()
    client = sdk(live_api)
    item = conversation
    file = ("conversation.wav", item.path.read_bytes(), "audio/wav")

    diarized = client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize", file=file, response_format="diarized_json"
    )
    assert isinstance(diarized, TranscriptionDiarized), worker.log()
    assert {s.speaker for s in diarized.segments} >= {"A", "B"}
    assert diarized.segments[0].speaker == "A" and "garden" in diarized.text.lower()

    named = client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=file,
        response_format="diarized_json",
        known_speaker_names=["Sam", "Ann"],
        known_speaker_references=[data_url(clips["male"]), data_url(clips["female"])],
    )
    assert isinstance(named, TranscriptionDiarized), worker.log()

    def voice_at(segment) -> str:
        middle = (segment.start + segment.end) / 2
        turn = min(
            item.turns,
            key=lambda t: (
                0 if t.start <= middle <= t.end else min(abs(t.start - middle), abs(t.end - middle))
            ),
        )
        return {"spk0": "Sam", "spk1": "Ann"}[turn.speaker]  # spk0 speaks first (the male voice)

    right = [s for s in named.segments if s.speaker == voice_at(s)]
    assert len(right) >= 0.8 * len(named.segments), [(s.speaker, s.start, s.text) for s in named.segments]
    assert {s.speaker for s in named.segments} == {"Sam", "Ann"}

    events = list(
        client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize", file=file, response_format="diarized_json", stream=True
        )
    )
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert len({s.speaker for s in segments}) >= 2 and events[-1].type == "transcript.text.done"
