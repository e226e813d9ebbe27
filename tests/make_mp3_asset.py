"""Builds mockkling/assets/silence-48k-32k.mp3frame: one MPEG-1 Layer III frame of silence.

The mock's MP3 results (text to audio, video to audio, speech, voice trials) are this frame
repeated: 1152 samples at 48 kHz mono, 32 kbit/s CBR, so every frame is 96 bytes and lasts
exactly 24 ms, and a file of N frames lasts N x 24 ms. It was made once, with PyAV's bundled
LAME, and committed; the server never encodes audio (no FFmpeg at run time):

    python tests/make_mp3_asset.py            # rewrites the asset

How: two seconds of digital silence are encoded with the bit reservoir off (``reservoir=0``),
so no frame borrows bytes from the one before it (``main_data_begin`` is 0) and any number of
copies of one frame is a valid stream. The LAME/Info tag frame at the start is dropped; the
steady-state frames that follow are identical, and the script checks that before writing one.
tests/test_audio_results.py decodes the mock's files with PyAV to hold them to this.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import av

ASSET = Path(__file__).resolve().parent.parent / "mockkling" / "assets" / "silence-48k-32k.mp3frame"
RATE, BIT_RATE, FRAME_BYTES = 48000, 32000, 96


def encode_silence(seconds: int = 2) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=RATE, layout="mono")
        stream.bit_rate = BIT_RATE
        stream.options = {"reservoir": "0"}
        frame = av.AudioFrame(format="s16", layout="mono", samples=RATE * seconds)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate = RATE
        for packet in (*stream.encode(frame), *stream.encode(None)):
            container.mux(packet)
    return out.getvalue()


def frames(data: bytes) -> list[bytes]:
    """The MPEG audio frames of a stream (after any ID3v2 tag), each as its bytes."""
    i = 0
    if data[:3] == b"ID3":
        i = 10 + ((data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F))
    out = []
    kbps = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
    while i + 4 <= len(data):
        header = int.from_bytes(data[i : i + 4], "big")
        if header >> 21 != 0x7FF:
            raise ValueError(f"no frame sync at byte {i}")
        length = 144 * kbps[(header >> 12) & 0xF] * 1000 // RATE + ((header >> 9) & 1)
        out.append(data[i : i + length])
        i += length
    return out


def main() -> int:
    audio = frames(encode_silence())[1:]  # the first frame is LAME's Info tag
    steady = audio[len(audio) // 2]
    assert len(steady) == FRAME_BYTES, len(steady)
    assert audio.count(steady) > len(audio) // 2, "silent frames are not all alike"
    # Side information starts after the 4-byte header (no CRC): main_data_begin is its first
    # 9 bits, and 0 means the frame carries all its own data.
    assert steady[1] & 1, "the frame has a CRC"
    assert (steady[4] << 1 | steady[5] >> 7) == 0, "the frame borrows from the bit reservoir"
    ASSET.write_bytes(steady)
    print(f"wrote {ASSET} ({len(steady)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
