"""`/jobs/{id}/speakers`: names for a job's diarized speakers, stored with the job.

The result keeps Deepgram's `speaker` ints; the names label the exports (`?format=srt|vtt|txt|rttm`)
and appear as an added `results.speaker_names` in the JSON. The console renames speakers here.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, NonNegativeInt, field_validator

from api_lambda.auth import PrincipalDep, visible_job
from api_lambda.deps import AwsDep, SettingsDep
from api_lambda.schemas import ErrorBody
from shared.deepgram import DeepgramResponse
from shared.errors import InvalidParameter, JobStateConflict
from shared.jobs import Job, JobStatus
from shared.resources import result_key

MAX_NAME_CHARACTERS = 100
MAX_NAMED_SPEAKERS = 100

router = APIRouter(prefix="/jobs", tags=["jobs"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown (or expired) job"},
    409: {"model": ErrorBody, "description": "The job has no result (yet) to name speakers in"},
    422: {"model": ErrorBody, "description": "A bad speaker id or name"},
}


class SpeakerNamesBody(BaseModel):
    names: Annotated[
        dict[NonNegativeInt, str],
        Field(
            max_length=MAX_NAMED_SPEAKERS,
            description='Deepgram speaker id → name, e.g. {"0": "Alice"}; an empty name removes it. '
            "Replaces the names stored before.",
        ),
    ]

    @field_validator("names")
    @classmethod
    def _clean(cls, names: dict[int, str]) -> dict[int, str]:
        cleaned = {}
        for speaker, raw in names.items():
            name = raw.strip()
            if len(name) > MAX_NAME_CHARACTERS:
                raise ValueError(f"speaker {speaker}'s name is longer than {MAX_NAME_CHARACTERS} characters")
            if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
                raise ValueError(f"speaker {speaker}'s name contains a control character")
            if name:
                cleaned[speaker] = name
        return cleaned


class SpeakerNames(BaseModel):
    job_id: str
    names: dict[str, str] = Field(description="Speaker id (as a string) → name; {} when none are set")


def _names_of(job: Job) -> SpeakerNames:
    return SpeakerNames(job_id=job.job_id, names=job.speaker_names or {})


async def _result_speakers(aws: AwsDep, settings: SettingsDep, job_id: str) -> set[int]:
    response = DeepgramResponse.model_validate_json(await aws.blobs.get(result_key(job_id)))
    words = [w for channel in response.results.channels for w in channel.alternatives[0].words]
    turns = response.results.speaker_turns or []  # a speaker may have turns but no word of its own
    return {w.speaker for w in words if w.speaker is not None} | {t.speaker for t in turns}


@router.get("/{job_id}/speakers", response_model=SpeakerNames, responses=_ERRORS)
async def get_speaker_names(job_id: str, aws: AwsDep, principal: PrincipalDep) -> SpeakerNames:
    return _names_of(await visible_job(aws, principal, job_id))


@router.put("/{job_id}/speakers", response_model=SpeakerNames, responses=_ERRORS)
async def put_speaker_names(
    job_id: str, body: SpeakerNamesBody, settings: SettingsDep, aws: AwsDep, principal: PrincipalDep
) -> SpeakerNames:
    """Name a completed job's speakers (ids as in its result); the exports use the names."""
    job = await visible_job(aws, principal, job_id)
    if job.status is not JobStatus.COMPLETED:
        raise JobStateConflict(f"Job {job_id} has no result to name speakers in: it is {job.status.value}")
    known = await _result_speakers(aws, settings, job_id)
    unknown = sorted(set(body.names) - known)
    if unknown:
        raise InvalidParameter(
            f"speaker {', '.join(map(str, unknown))} is not in this job's result "
            f"(its speakers: {', '.join(map(str, sorted(known))) or 'none'})"
        )
    updated = await aws.store.run(aws.store.ops.set_speaker_names(job_id, body.names))
    if updated is None:  # deleted or expired between the read and the write
        raise JobStateConflict(f"Job {job_id} changed while its speakers were renamed; try again")
    return _names_of(updated)
