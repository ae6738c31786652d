"""`PUT/GET /jobs/{id}/speakers` on a real emulator: names stored with the job, validated, scoped to
the key's project, and used by every export while the result's `speaker` ints stay ints."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api_lambda import keys_cli
from shared.deepgram import (
    DeepgramResponse,
    SpeakerTurn,
    Utterance,
    Word,
)
from shared.exporters import export
from shared.resources import result_key
from tests.fixtures_aws import AwsEnv
from tests.test_api import WAV, deepgram_result, submit


def two_speaker_result(job_id: str) -> DeepgramResponse:
    words = [
        Word(word="hello", start=0.5, end=0.8, confidence=0.9, speaker=0, punctuated_word="Hello."),
        Word(word="hi", start=1.0, end=1.3, confidence=0.9, speaker=1, punctuated_word="Hi!"),
    ]
    utterances = [
        Utterance(
            start=w.start,
            end=w.end,
            confidence=0.9,
            channel=0,
            transcript=w.punctuated_word or w.word,
            words=[w],
            speaker=w.speaker,
            id=f"u{i}",
        )
        for i, w in enumerate(words)
    ]
    return deepgram_result(job_id, words, duration=1.5, utterances=utterances)


def completed_job(api: TestClient, aws: AwsEnv, headers: dict[str, str] | None = None) -> str:
    answer = api.post("/jobs", files={"file": ("call.wav", WAV, "audio/wav")}, headers=headers or {})
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["job_id"]
    aws.store.run(aws.store.ops.claim(job_id, "w1"))
    aws.client("s3").put_object(
        Bucket=aws.settings.bucket_name,
        Key=result_key(job_id),
        Body=two_speaker_result(job_id).model_dump_json(exclude_none=True),
    )
    aws.store.run(aws.store.ops.complete(job_id, "w1"))
    return job_id


def test_names_are_stored_with_the_job_and_label_every_export(api: TestClient, aws: AwsEnv) -> None:
    job_id = completed_job(api, aws)
    assert api.get(f"/jobs/{job_id}/speakers").json() == {"job_id": job_id, "names": {}}

    answer = api.put(f"/jobs/{job_id}/speakers", json={"names": {"0": "  Alice ", "1": "Bob <CEO>"}})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"job_id": job_id, "names": {"0": "Alice", "1": "Bob <CEO>"}}
    assert aws.job(job_id).speaker_names == {"0": "Alice", "1": "Bob <CEO>"}
    assert api.get(f"/jobs/{job_id}/speakers").json()["names"] == {"0": "Alice", "1": "Bob <CEO>"}

    def fetch(fmt: str) -> str:
        answer = api.get(f"/jobs/{job_id}/result", params={"format": fmt})
        assert answer.status_code == 200, answer.text
        return answer.text

    assert "[Alice] Hello." in fetch("srt") and "[Bob <CEO>] Hi!" in fetch("srt")
    assert "<v Alice>Hello." in fetch("vtt") and "<v Bob &lt;CEO&gt;>Hi!" in fetch("vtt")
    assert "Alice: Hello." in fetch("txt") and "Bob <CEO>: Hi!" in fetch("txt")
    rttm = [line.split() for line in fetch("rttm").splitlines()]
    assert [fields[7] for fields in rttm] == ["Alice", "Bob_<CEO>"]

    document = api.get(f"/jobs/{job_id}/result").json()
    assert document["results"]["speaker_names"] == {"0": "Alice", "1": "Bob <CEO>"}
    words = document["results"]["channels"][0]["alternatives"][0]["words"]
    assert [w["speaker"] for w in words] == [0, 1]  # Deepgram's ints stay ints

    # A new mapping replaces the old one; an empty name removes a speaker's name.
    answer = api.put(f"/jobs/{job_id}/speakers", json={"names": {"1": "Bea", "0": ""}})
    assert answer.json()["names"] == {"1": "Bea"}
    assert "[Speaker 0] Hello." in fetch("srt") and "[Bea] Hi!" in fetch("srt")
    assert api.put(f"/jobs/{job_id}/speakers", json={"names": {}}).json()["names"] == {}
    assert aws.job(job_id).speaker_names is None
    assert "speaker_names" not in api.get(f"/jobs/{job_id}/result").json()["results"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ({"-1": "A"}, "greater than or equal to 0"),
        ({"x": "A"}, "valid integer"),
        ({"0": "A" * 101}, "longer than 100 characters"),
        ({"0": "Al\nice"}, "control character"),
        ({"0": "Al\x07ice"}, "control character"),
        ({"7": "Ghost"}, "speaker 7 is not in this job's result (its speakers: 0, 1)"),
    ],
)
def test_bad_ids_and_names_are_422_with_a_reason(
    api: TestClient, aws: AwsEnv, names: dict[str, str], message: str
) -> None:
    job_id = completed_job(api, aws)
    answer = api.put(f"/jobs/{job_id}/speakers", json={"names": names})
    assert answer.status_code == 422
    assert message in str(answer.json()["detail"])
    assert aws.job(job_id).speaker_names is None


def test_only_completed_jobs_take_names(api: TestClient, aws: AwsEnv) -> None:
    job_id = submit(api).json()["job_id"]
    answer = api.put(f"/jobs/{job_id}/speakers", json={"names": {"0": "Alice"}})
    assert answer.status_code == 409 and answer.json()["detail"].endswith("it is queued")
    unknown = api.put("/jobs/nope/speakers", json={"names": {"0": "Alice"}})
    assert unknown.status_code == 404


@pytest.mark.parametrize("aws_overrides", [{"AUTH_REQUIRED": "true"}])
def test_names_belong_to_the_jobs_project(api: TestClient, aws: AwsEnv) -> None:
    alpha, beta = keys_cli.create(aws.settings, "alpha"), keys_cli.create(aws.settings, "beta")
    job_id = completed_job(api, aws, {"Authorization": f"Token {alpha}"})
    body = {"names": {"0": "Alice"}}
    assert api.put(f"/jobs/{job_id}/speakers", json=body).status_code == 401
    for method in ("GET", "PUT"):
        answer = api.request(
            method, f"/jobs/{job_id}/speakers", json=body, headers={"Authorization": f"Token {beta}"}
        )
        assert answer.status_code == 404, method
    answer = api.put(f"/jobs/{job_id}/speakers", json=body, headers={"Authorization": f"Token {alpha}"})
    assert answer.status_code == 200 and answer.json()["names"] == {"0": "Alice"}


def test_exporters_take_names_without_a_job() -> None:
    response = two_speaker_result("r1")
    assert "[Speaker 0] Hello." in export(response, "srt")
    assert "[Ann] Hello." in export(response, "srt", {0: "Ann"})
    assert json.loads(export(response, "json", {0: "Ann"}))["results"]["speaker_names"] == {"0": "Ann"}
    # RTTM from the diarizer's own turns (overlapping) takes the names too.
    turns = [
        SpeakerTurn(speaker=0, start=0.5, end=1.1, confidence=0.9),
        SpeakerTurn(speaker=1, start=1.0, end=1.3, confidence=0.9),
    ]
    with_turns = response.model_copy(
        update={"results": response.results.model_copy(update={"speaker_turns": turns})}
    )
    assert [line.split()[7] for line in export(with_turns, "rttm", {1: "Bo Li"}).splitlines()] == [
        "speaker_0",
        "Bo_Li",
    ]
