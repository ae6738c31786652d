"""The official `deepgram-sdk` from PyPI, unmodified, against this service: the API over real HTTP
on loopback, a worker process running the real pipeline (tiny.en) on synthesized speech.

Covers a file transcribed synchronously (also with `multichannel`), and a URL with a callback to a
receiver on loopback, whose body the SDK's own response model reads.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from deepgram import DeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.types.listen_v1accepted_response import ListenV1AcceptedResponse
from deepgram.types.listen_v1response import ListenV1Response

from tests.fixtures_aws import AwsEnv, Receiver, WorkerProcess, wait_for
from tests.fixtures_corpus import trimmed

pytestmark = pytest.mark.slow

WORKER_ENV = {"CALLBACK_RETRY_SECONDS": "0.2", "CALLBACK_MAX_ATTEMPTS": "3"}


@pytest.fixture
def aws_overrides() -> dict[str, str]:
    return {"URL_FETCH_ALLOW_PRIVATE": "true"}  # the test's audio server and receiver are on loopback


@pytest.fixture(scope="module")
def clips(corpus, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two voices, one sentence each, as mono clips and as the two channels of one stereo file."""
    item = corpus["two_speakers"]
    folder = tmp_path_factory.mktemp("sdk-clips")
    first = trimmed(item.path, item.turns[0].end + 0.3, folder / "first.wav")
    second = folder / "second.wav"
    start, end = item.turns[1].start - 0.2, item.turns[1].end + 0.3
    subprocess.run(
        ["sox", str(item.path), str(second), "trim", f"{start:.2f}", f"{end - start:.2f}"], check=True
    )
    both = folder / "both.wav"
    subprocess.run(
        ["sox", str(item.path), str(both), "trim", "0", f"{item.turns[1].end + 0.3:.2f}"], check=True
    )
    stereo = folder / "stereo.wav"
    subprocess.run(["sox", "-M", str(first), str(second), str(stereo)], check=True)
    return {"first": first, "second": second, "both": both, "stereo": stereo}


def sdk(base_url: str) -> DeepgramClient:
    ws = base_url.replace("http", "ws", 1)
    environment = DeepgramClientEnvironment(base=base_url, production=ws, agent=ws, agent_rest=base_url)
    return DeepgramClient(api_key="any-key-auth-is-off", environment=environment, timeout=300, max_retries=0)


def test_the_sdk_transcribes_a_file_and_a_stereo_file_per_channel(
    live_api: str, spawn_worker: Callable[..., WorkerProcess], clips: dict[str, Path], corpus
) -> None:
    worker = spawn_worker(**WORKER_ENV)
    client = sdk(live_api)
    turns = corpus["two_speakers"].turns

    response = client.listen.v1.media.transcribe_file(
        request=clips["both"].read_bytes(),
        model="nova-3",
        diarize=True,
        smart_format=True,
        utterances=True,
    )
    assert isinstance(response, ListenV1Response), worker.log()
    (model_id,) = response.metadata.models
    assert response.metadata.model_info[model_id]["name"] == "tiny.en"
    assert response.metadata.model_info[model_id]["requested_model"] == "nova-3"
    (channel,) = response.results.channels
    words = channel.alternatives[0].words
    assert words and all(isinstance(w.speaker, int) for w in words)
    assert "garden" in channel.alternatives[0].transcript.lower()
    assert channel.alternatives[0].paragraphs is not None  # smart_format
    assert response.results.utterances and {u.channel for u in response.results.utterances} == {0}
    assert turns[0].text.split()[0].lower() in channel.alternatives[0].transcript.lower()

    stereo = client.listen.v1.media.transcribe_file(
        request=clips["stereo"].read_bytes(), multichannel=True, diarize=True, utterances=True
    )
    assert isinstance(stereo, ListenV1Response), worker.log()
    assert stereo.metadata.channels == 2 and len(stereo.results.channels) == 2
    left, right = (c.alternatives[0].transcript for c in stereo.results.channels)
    assert "garden" in left and "garden" not in right and "tomatoes" in right
    assert all(w.speaker is not None for c in stereo.results.channels for w in c.alternatives[0].words)
    assert {u.channel for u in stereo.results.utterances} == {0, 1}


def test_the_sdk_transcribes_a_url_with_a_callback(
    live_api: str,
    spawn_worker: Callable[..., WorkerProcess],
    clips: dict[str, Path],
    receiver: Receiver,
    aws: AwsEnv,
) -> None:
    worker = spawn_worker(**WORKER_ENV)
    receiver.files["/audio/first.wav"] = clips["first"].read_bytes()
    receiver.answers = [500]  # the first delivery fails; the worker retries

    accepted = sdk(live_api).listen.v1.media.transcribe_url(
        url=f"{receiver.url}/audio/first.wav", callback=f"{receiver.url}/hook", diarize=True, punctuate=True
    )
    assert isinstance(accepted, ListenV1AcceptedResponse)
    request_id = accepted.request_id

    delivered = wait_for(
        lambda: [c for c in receiver.posts("/hook") if c.answered == 200],
        f"the callback to be delivered\n{worker.log()}",
    )
    assert len(delivered) == 1 and len(receiver.posts("/hook")) == 2
    result = ListenV1Response.model_validate_json(delivered[0].body)
    assert result.metadata.request_id == request_id
    words = result.results.channels[0].alternatives[0].words
    assert words and all(isinstance(w.speaker, int) for w in words)
    assert "garden" in result.results.channels[0].alternatives[0].transcript.lower()
    assert result.results.utterances is None  # not asked for

    job = wait_for(lambda: (j := aws.job(request_id)).callback_status == "delivered" and j, "the record")
    assert [a.status_code for a in job.callback_attempts] == [500, 200]
    assert job.source_url == f"{receiver.url}/audio/first.wav" and job.status.value == "completed"


def test_the_sdk_gets_redacted_spelled_out_text_in_every_view(
    live_api: str, spawn_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """Real speech with numbers: `redact=numbers` leaves no digit and no number word in the
    transcript, words, utterances, paragraphs, nor in the stored result's SRT export."""
    import re

    import httpx

    wav = tmp_path / "numbers.wav"
    text = "I paid twenty five dollars on the third of March. My account number is four five six seven."
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(tmp_path / "raw.wav"), text], check=True
    )
    subprocess.run(["sox", str(tmp_path / "raw.wav"), "-r", "16000", "-c", "1", str(wav)], check=True)
    worker = spawn_worker(**WORKER_ENV)
    response = sdk(live_api).listen.v1.media.transcribe_file(
        request=wav.read_bytes(), redact="numbers", utterances=True, paragraphs=True
    )
    assert isinstance(response, ListenV1Response), worker.log()
    alternative = response.results.channels[0].alternatives[0]
    texts = [alternative.transcript, *(w.punctuated_word or w.word for w in alternative.words)]
    texts += [u.transcript for u in response.results.utterances or []]
    texts += [s.text for p in alternative.paragraphs.paragraphs for s in p.sentences]
    spoken_numbers = r"\b(one|two|three|four|five|six|seven|eight|nine|twenty|third)\b"
    assert "[NUMBER_" in alternative.transcript, alternative.transcript
    assert "paid" in alternative.transcript.lower()
    for piece in texts:
        assert not re.search(r"\d|" + spoken_numbers, re.sub(r"\[NUMBER_\d+\]", "", piece).lower()), piece
    srt = httpx.get(f"{live_api}/jobs/{response.metadata.request_id}/result", params={"format": "srt"}).text
    cues = [line for line in srt.splitlines() if line and not re.match(r"^\d+$|^\d{2}:", line)]
    assert cues and not any(re.search(spoken_numbers, re.sub(r"\[NUMBER_\d+\]", "", c).lower()) for c in cues)
