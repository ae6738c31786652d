"""`multichannel=true`: transcribe and diarize each audio channel on its own, as Deepgram does.

The pipeline reads one mono signal, so the worker splits the file into one 16 kHz mono WAV per
channel, runs the pipeline on each, and merges the answers: one `results.channels` entry per
channel (in channel order), utterances tagged with their channel index and sorted by time.
Speakers are numbered per channel, since each channel is diarized separately.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import av
import numpy as np

from gpu_worker.pipeline.audio import file_sha256, probe_audio
from gpu_worker.pipeline.types import SAMPLE_RATE
from shared.deepgram import DeepgramResponse, Results


def split_channels(source: Path, workdir: Path) -> list[Path]:
    """One 16-bit 16 kHz mono WAV per channel of the main audio stream; `[source]` for mono audio.

    Frames are resampled and written as they are decoded, so memory stays flat for any length.
    """
    if probe_audio(source).channels <= 1:  # also raises the usual errors for unusable files
        return [source]
    with ExitStack() as stack, av.open(str(source)) as container:
        stream = container.streams.best("audio")
        assert isinstance(stream, av.AudioStream)  # probe_audio found one (the stub says Stream | None)
        channels = stream.layout.nb_channels
        if channels <= 1:
            return [source]
        workdir.mkdir(parents=True, exist_ok=True)
        paths = [workdir / f"channel-{index}.wav" for index in range(channels)]
        writers = [stack.enter_context(wave.open(str(path), "wb")) for path in paths]
        for writer in writers:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(SAMPLE_RATE)
        resampler = av.AudioResampler(format="s16p", layout=stream.layout.name, rate=SAMPLE_RATE)

        def write(frames: list[av.AudioFrame]) -> None:
            for frame in frames:
                planes = frame.to_ndarray().reshape(channels, -1)
                for writer, plane in zip(writers, planes, strict=True):
                    writer.writeframes(np.ascontiguousarray(plane, dtype="<i2").tobytes())

        for frame in container.decode(stream):
            write(resampler.resample(frame))
        write(resampler.resample(None))
    return paths


def merge_channels(responses: Sequence[DeepgramResponse], source: Path) -> DeepgramResponse:
    """One response for the whole file from one response per channel (each of one channel)."""
    first = responses[0]
    utterances = sorted(
        (
            utterance.model_copy(update={"channel": index})
            for index, response in enumerate(responses)
            for utterance in response.results.utterances or []
        ),
        key=lambda u: (u.start, u.channel),
    )
    metadata = first.metadata.model_copy(
        update={
            "channels": len(responses),
            "sha256": file_sha256(source),  # of the file sent, not of a channel's WAV
            "duration": max(r.metadata.duration for r in responses),
        }
    )
    channels = [response.results.channels[0] for response in responses]
    diarized = any(response.results.speaker_turns is not None for response in responses)
    turns = [
        turn.model_copy(update={"channel": index})
        for index, response in enumerate(responses)
        for turn in response.results.speaker_turns or []
    ]
    overlaps = [
        overlap.model_copy(update={"channel": index})
        for index, response in enumerate(responses)
        for overlap in response.results.overlaps or []
    ]
    return DeepgramResponse(
        metadata=metadata,
        results=Results(
            channels=channels,
            utterances=utterances,
            speaker_turns=sorted(turns, key=lambda t: (t.start, t.channel)) if diarized else None,
            overlaps=sorted(overlaps, key=lambda o: (o.start, o.channel)) if diarized else None,
        ),
    )
