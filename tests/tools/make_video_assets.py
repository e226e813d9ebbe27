"""Builds the result-video assets in mockkling/assets/ (run by hand; the files are committed).

    python tests/tools/make_video_assets.py

One 5-second H.264 clip at 24 fps per shape the mock serves: aspect ratios 16:9, 9:16 and 1:1 at
720p, 1080p and 4k (the short side is 720, 1080 or 2160 pixels). A bar slides across a still
background, so a player shows motion, and x264 at its lowest quality with one keyframe keeps each
file to tens of kilobytes. media.video_file stretches a clip's timeline to any other duration, so
no other length is needed. PyAV (a test dependency) encodes them; the server only reads them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np

ASSETS = Path(__file__).resolve().parents[2] / "mockkling" / "assets"
SECONDS, FPS = 5, 24
RATIOS = {"16x9": (16, 9), "9x16": (9, 16), "1x1": (1, 1)}
RESOLUTIONS = {"720p": 720, "1080p": 1080, "4k": 2160}
BACKGROUND, BAR = (38, 70, 83), (233, 196, 106)


def size(ratio: tuple[int, int], short_side: int) -> tuple[int, int]:
    w, h = ratio
    scale = short_side / min(w, h)
    return round(w * scale) // 2 * 2, round(h * scale) // 2 * 2  # H.264 4:2:0 wants even sides


def make(path: Path, width: int, height: int) -> None:
    frames = SECONDS * FPS
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "51", "preset": "veryslow", "g": str(frames), "bf": "0"}
        background = np.empty((height, width, 3), np.uint8)
        background[:] = BACKGROUND
        bar_w, bar_h = max(2, width // 8), max(2, height // 8)
        for i in range(frames):
            frame = background.copy()
            x = (width - bar_w) * i // (frames - 1)
            frame[(height - bar_h) // 2 : (height + bar_h) // 2, x : x + bar_w] = BAR
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> int:
    for ratio_name, ratio in RATIOS.items():
        for resolution, short_side in RESOLUTIONS.items():
            path = ASSETS / f"video-{ratio_name}-{resolution}.mp4"
            make(path, *size(ratio, short_side))
            print(f"{path.name}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
