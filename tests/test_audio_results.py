"""The audio files the mock serves are real: PyAV's decoders open them and get the length the
answer announces. MP3s are the committed silent frame (tests/make_mp3_asset.py) repeated; WAVs
are written with the wave module. No FFmpeg runs in the server."""

from __future__ import annotations

import io
import wave

import av
import pytest

from mockkling import media


def _decode(path: str) -> tuple[int, int, str]:
    """(samples, sample rate, codec) of the first audio stream of a file."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples, stream.rate, stream.codec_context.name


def test_the_committed_frame_stands_alone() -> None:
    """One MPEG-1 Layer III frame, 48 kHz mono 32 kbit/s, no CRC, borrowing nothing from the
    frame before it (main_data_begin 0): any number of copies is a valid stream."""
    frame = (media._ASSETS / "silence-48k-32k.mp3frame").read_bytes()
    assert len(frame) == 96
    header = int.from_bytes(frame[:4], "big")
    assert header >> 21 == 0x7FF  # frame sync
    assert (header >> 19) & 3 == 3 and (header >> 17) & 3 == 1  # MPEG-1, Layer III
    assert (header >> 12) & 0xF == 1 and (header >> 10) & 3 == 1  # 32 kbit/s, 48 kHz
    assert (header >> 6) & 3 == 3  # mono
    assert frame[4] << 1 | frame[5] >> 7 == 0


@pytest.mark.parametrize("seconds", [1.0, 3.0, 4.8, 5.5, 10.0, 20.0])
def test_mp3_lasts_whole_frames_never_shorter(seconds: float) -> None:
    samples, rate, codec = _decode(str(media.mp3_file(seconds)))
    assert (rate, codec) == (48000, "mp3float")
    assert samples / rate == pytest.approx(media.mp3_seconds(seconds))
    assert seconds <= media.mp3_seconds(seconds) < seconds + media.MP3_FRAME_SECONDS


@pytest.mark.parametrize("seconds", [1.0, 3.0, 5.5, 7.3, 20.0])
def test_wav_lasts_exactly(seconds: float) -> None:
    path = media.wav_file(seconds)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, media.WAV_RATE)
        assert wav.getnframes() == round(seconds * media.WAV_RATE)
    samples, rate, _codec = _decode(str(path))
    assert samples / rate == pytest.approx(seconds) == media.wav_seconds(seconds)


def test_files_are_built_once_and_bounded() -> None:
    assert media.mp3_file(2.0) == media.mp3_file(2.0)
    assert media.mp3_seconds(10_000) == media.MAX_AUDIO_SECONDS
    assert media.mp3_seconds(0.1) == 1.008  # at least a second: decoders probe a few frames
    assert media.seconds_text(5.0) == "5.0" and media.seconds_text(5.016) == "5.016"
    with wave.open(io.BytesIO(media._wav(16))) as wav:
        assert wav.getnframes() == 16
