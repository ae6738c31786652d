"""The audio-in stage on real files made with ffmpeg, sox and espeak-ng: containers, resampling,
downmixing, hashing, and every typed error an upload can earn."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from gpu_worker.pipeline.audio import AudioProbe, file_sha256, load_audio, probe_audio
from gpu_worker.pipeline.types import SAMPLE_RATE
from shared import errors

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("ffmpeg", "sox", "espeak-ng")),
    reason="needs ffmpeg, sox and espeak-ng",
)

TONE = "sine=frequency=440:duration=2:sample_rate=44100"


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def ffmpeg(out: Path, *args: str | Path) -> Path:
    run("ffmpeg", "-nostdin", "-v", "error", "-y", *args, out)
    return out


def cut(src: Path, out: Path, fraction: float = 0.5) -> Path:
    """The first `fraction` of a file's bytes, as an interrupted upload would leave it."""
    data = src.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a 2 s, 44.1 kHz stereo 440 Hz tone in several containers."""
    root = tmp_path_factory.mktemp("media")
    wav = ffmpeg(root / "tone.wav", "-f", "lavfi", "-i", TONE, "-ac", "2")
    ffmpeg(root / "tone.mp3", "-i", wav)
    ffmpeg(root / "tone.m4a", "-i", wav, "-c:a", "aac")
    ffmpeg(root / "tone.webm", "-i", wav, "-c:a", "libopus")
    ffmpeg(root / "tone.ogg", "-i", wav, "-c:a", "libvorbis")
    ffmpeg(root / "tone.flac", "-i", wav)
    ffmpeg(
        root / "clip.mp4",
        *("-f", "lavfi", "-i", "color=c=blue:s=64x64:d=2:r=10", "-i", wav),
        *("-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", "-shortest"),
    )
    return root


CONTAINERS = ["tone.wav", "tone.mp3", "tone.m4a", "tone.webm", "tone.ogg", "tone.flac", "clip.mp4"]


@pytest.mark.parametrize("name", CONTAINERS)
def test_each_container_decodes_to_16k_mono_float32(media: Path, name: str) -> None:
    audio = load_audio(media / name)

    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.duration == pytest.approx(2.0, abs=0.1)
    assert audio.duration == len(audio.samples) / SAMPLE_RATE
    assert audio.source_channels == 2
    assert audio.source_path == media / name
    assert dominant_frequency(audio.samples) == pytest.approx(440, abs=5)


def test_speech_from_espeak(tmp_path: Path) -> None:
    wav = tmp_path / "hello.wav"
    run("espeak-ng", "-w", wav, "hello world, this is a test")
    expected = float(subprocess.run(["soxi", "-D", str(wav)], capture_output=True, text=True).stdout)

    audio = load_audio(wav)

    assert audio.source_channels == 1
    assert audio.duration == pytest.approx(expected, abs=0.1)
    assert np.sqrt(np.mean(audio.samples**2)) > 0.01


def test_resampling_keeps_pitch_and_length(tmp_path: Path) -> None:
    wav = ffmpeg(
        tmp_path / "a440.wav", "-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=44100"
    )

    audio = load_audio(wav)

    assert len(audio.samples) == pytest.approx(SAMPLE_RATE, rel=0.01)
    assert dominant_frequency(audio.samples) == pytest.approx(440, abs=5)


def test_stereo_with_sound_only_on_the_left_is_not_silent(tmp_path: Path) -> None:
    wav = ffmpeg(
        tmp_path / "left.wav",
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=44100"),
        *("-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono:d=1"),
        *("-filter_complex", "[0][1]amerge=inputs=2[a]", "-map", "[a]"),
    )

    audio = load_audio(wav)

    assert audio.source_channels == 2
    tone_rms = 0.125 / np.sqrt(2)  # lavfi's sine has amplitude 1/8
    assert np.sqrt(np.mean(audio.samples**2)) == pytest.approx(tone_rms / 2, rel=0.05)  # (L + R) / 2
    assert dominant_frequency(audio.samples) == pytest.approx(440, abs=5)


def test_downmix_of_loud_stereo_stays_within_full_scale(tmp_path: Path) -> None:
    wav = ffmpeg(
        tmp_path / "loud.wav",
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=44100"),
        *("-af", "volume=7.9,pan=stereo|c0=c0|c1=c0", "-c:a", "pcm_f32le"),  # both channels peak at 0.99
    )
    audio = load_audio(wav)

    assert 0.95 < np.abs(audio.samples).max() <= 1.0


def test_sample_rate_change_mid_stream(tmp_path: Path) -> None:
    """Two MP3s back to back (44.1 kHz mono, then 22.05 kHz stereo): both halves come out at 16 kHz."""
    first = ffmpeg(tmp_path / "a.mp3", "-f", "lavfi", "-i", "sine=f=440:d=1:sample_rate=44100")
    second = ffmpeg(tmp_path / "b.mp3", "-f", "lavfi", "-i", "sine=f=880:d=1:sample_rate=22050", "-ac", "2")
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(first.read_bytes() + second.read_bytes())

    audio = load_audio(joined)

    assert audio.duration == pytest.approx(2.0, abs=0.15)
    assert dominant_frequency(audio.samples[2000:14000]) == pytest.approx(440, abs=5)
    assert dominant_frequency(audio.samples[-14000:-2000]) == pytest.approx(880, abs=5)


def test_sha256_matches_hashlib(media: Path, tmp_path: Path) -> None:
    audio = load_audio(media / "tone.flac")
    assert audio.sha256 == hashlib.sha256((media / "tone.flac").read_bytes()).hexdigest()

    big = tmp_path / "big.bin"  # several 1 MiB blocks and a partial one
    big.write_bytes(np.random.default_rng(0).bytes(3 * 2**20 + 12345))
    assert file_sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest()


def test_probe_reads_metadata_without_decoding(media: Path) -> None:
    probe = probe_audio(media / "clip.mp4")

    assert isinstance(probe, AudioProbe)
    assert "mp4" in probe.container
    assert (probe.codec, probe.channels, probe.sample_rate) == ("aac", 2, 44100)
    assert probe.duration == pytest.approx(2.0, abs=0.1)
    assert probe.duration_declared
    assert probe.size_bytes == (media / "clip.mp4").stat().st_size


def test_probe_of_a_stream_without_length_header(tmp_path: Path, media: Path) -> None:
    """WebM written to a pipe (as browsers' MediaRecorder does) carries no duration."""
    webm = tmp_path / "streamed.webm"
    with webm.open("wb") as out:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(media / "tone.wav"), "-c:a", "libopus", "-f", "webm", "-"],
            stdout=out,
            check=True,
        )

    probe = probe_audio(webm)

    assert probe.codec == "opus"
    assert probe.duration is None
    assert not probe.duration_declared
    assert load_audio(webm).duration == pytest.approx(2.0, abs=0.1)


def test_vbr_mp3_without_length_tag_is_not_called_truncated(tmp_path: Path, media: Path) -> None:
    """Without a Xing tag ffmpeg estimates the length from the first frame's bitrate; that guess must
    not make a whole file look cut."""
    mp3 = ffmpeg(tmp_path / "vbr.mp3", "-i", media / "tone.wav", "-q:a", "4", "-write_xing", "0")

    assert not probe_audio(mp3).duration_declared
    assert load_audio(mp3).duration == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize(("streamed", "max_ratio"), [(False, 1.05), (True, 1.6)])
def test_samples_are_held_once(tmp_path: Path, streamed: bool, max_ratio: float) -> None:
    """Peak Python-side memory is the result array (plus growth slack when the length is unknown) and
    the 1 MiB hashing block, not a list of chunks plus their concatenation."""
    flac = tmp_path / "seventy_seconds.flac"
    tone = ("-f", "lavfi", "-i", "sine=f=440:d=70:sample_rate=16000")
    if streamed:  # written to a pipe, ffmpeg can't go back to put the total into STREAMINFO
        with flac.open("wb") as out:
            subprocess.run(["ffmpeg", "-v", "error", *tone, "-f", "flac", "-"], stdout=out, check=True)
    else:
        ffmpeg(flac, *tone)
    assert (probe_audio(flac).duration is None) == streamed

    tracemalloc.start()
    try:
        audio = load_audio(flac)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert audio.duration == pytest.approx(70.0, abs=0.01)
    assert peak < max_ratio * audio.samples.nbytes + 2**20 + 64 * 1024


# --- typed errors ----------------------------------------------------------------------------


def assert_rejects(
    path: Path, error: type[errors.InvalidAudio], *words: str, probe: bool = False
) -> errors.InvalidAudio:
    """`load_audio` refuses `path` with `error`, naming the file and each of `words`; with `probe`,
    `probe_audio` refuses it with the same error."""
    with pytest.raises(error) as caught:
        load_audio(path)
    message = str(caught.value)
    assert path.name in message
    for word in words:
        assert word in message
    if probe:
        with pytest.raises(error):
            probe_audio(path)
    return caught.value


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "nothing.mp3"
    empty.touch()

    assert_rejects(empty, errors.EmptyFile, "empty", probe=True)


def test_text_and_random_bytes_are_not_audio(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("Lorem ipsum dolor sit amet. " * 500)  # ffmpeg's tty demuxer reads .txt as ANSI art
    named_like_audio = tmp_path / "notes.mp3"
    named_like_audio.write_text("this is not an mp3\n" * 50)
    noise = tmp_path / "noise.wav"
    noise.write_bytes(np.random.default_rng(1).bytes(20_000))

    for path in (text, named_like_audio, noise):
        error = assert_rejects(path, errors.NotAudio)
        assert error.status_code == 400
        with pytest.raises(errors.NotAudio):
            probe_audio(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_an_image_is_not_audio(tmp_path: Path, suffix: str) -> None:
    image = ffmpeg(tmp_path / f"photo{suffix}", "-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1")

    assert_rejects(image, errors.NotAudio, "image", probe=True)


def test_video_without_audio_track(tmp_path: Path) -> None:
    video = ffmpeg(
        tmp_path / "silent_film.mp4", "-f", "lavfi", "-i", "color=c=red:s=64x64:d=1", "-c:v", "libx264"
    )

    assert_rejects(video, errors.NoAudioStream, "no audio stream", probe=True)


def test_zero_length_wav(tmp_path: Path) -> None:
    wav = tmp_path / "blank.wav"
    run("sox", "-n", "-r", "16000", "-c", "1", wav, "trim", "0", "0")

    assert_rejects(wav, errors.ZeroLengthAudio, "no samples", probe=True)


def test_truncated_wav(media: Path, tmp_path: Path) -> None:
    """ffmpeg alone would decode the first half as a valid 1 s file; the RIFF data size says 2 s."""
    half = cut(media / "tone.wav", tmp_path / "half.wav")

    assert_rejects(half, errors.TruncatedAudio, "truncated", "2.00 s", probe=True)


def test_wav_header_without_its_data(media: Path, tmp_path: Path) -> None:
    header_only = tmp_path / "header_only.wav"
    header_only.write_bytes((media / "tone.wav").read_bytes()[:200])

    assert_rejects(header_only, errors.TruncatedAudio, "truncated")


@pytest.mark.parametrize("name", ["tone.mp3", "tone.flac"])
def test_truncated_file_with_length_header(media: Path, tmp_path: Path, name: str) -> None:
    """MP3 (Xing tag) and FLAC (STREAMINFO) declare their length; decoding half of it is a cut file."""
    half = cut(media / name, tmp_path / f"half_{name}")

    assert_rejects(half, errors.TruncatedAudio, "truncated", "declares 2.00 s")


def test_truncated_m4a_missing_its_index(media: Path, tmp_path: Path) -> None:
    """ffmpeg writes the `moov` index at the end: the first half has no index and can't be opened."""
    half = cut(media / "tone.m4a", tmp_path / "half.m4a")

    assert_rejects(half, errors.TruncatedAudio, "MP4/M4A", "truncated", probe=True)


def test_truncated_faststart_m4a(media: Path, tmp_path: Path) -> None:
    """With the index first the cut file opens, but holds less audio than the index lists."""
    full = ffmpeg(tmp_path / "fast.m4a", "-i", media / "tone.wav", "-c:a", "aac", "-movflags", "+faststart")
    half = cut(full, tmp_path / "half_fast.m4a")

    assert_rejects(half, errors.TruncatedAudio, "truncated")


def test_truncated_ogg(media: Path, tmp_path: Path) -> None:
    half = cut(media / "tone.ogg", tmp_path / "half.ogg")

    assert_rejects(half, errors.TruncatedAudio, "truncated")


# --- duration limit --------------------------------------------------------------------------


def test_too_long_by_declared_duration(media: Path) -> None:
    error = assert_rejects_long(media / "tone.flac", 1.0)
    assert "2.0 s long" in str(error)  # rejected from STREAMINFO, before decoding
    assert error.status_code == 413

    assert load_audio(media / "tone.flac", max_duration_seconds=2.5).duration == pytest.approx(2.0, abs=0.01)


def test_too_long_found_while_decoding(tmp_path: Path, media: Path) -> None:
    """Streamed FLAC has no total in STREAMINFO: decoding stops once it passes the limit."""
    flac = tmp_path / "streamed.flac"
    with flac.open("wb") as out:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(media / "tone.wav"), "-f", "flac", "-"],
            stdout=out,
            check=True,
        )
    assert probe_audio(flac).duration is None

    error = assert_rejects_long(flac, 0.5)
    assert "decoding stopped" in str(error)


def assert_rejects_long(path: Path, max_seconds: float) -> errors.AudioTooLong:
    with pytest.raises(errors.AudioTooLong) as caught:
        load_audio(path, max_duration_seconds=max_seconds)
    assert path.name in str(caught.value)
    return caught.value
