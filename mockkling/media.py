"""Media: checking the files clients send, and the result files the mock serves.

Images are checked as the official API checks them: a URL is taken as it is (never fetched);
anything else must be raw Base64 (no ``data:`` prefix) of a real JPEG or PNG of at most 10 MB,
at least 300 px a side, with an aspect ratio between 1:2.5 and 2.5:1.

Result files are real: H.264 MP4 videos of the task's duration and PNG images of the task's
shape, built once and cached as files in a private directory, so Starlette's FileResponse serves
them with lengths, HEAD and byte ranges. Their names come from the mock's own values (seconds,
sizes), never from a request path.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import io
import math
import os
import re
import shutil
import struct
import tempfile
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from fractions import Fraction
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Final
from urllib.parse import urlsplit

from .errors import KlingError, invalid_value

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_IMAGE_SIDE = 300
MIN_ASPECT, MAX_ASPECT = 1 / 2.5, 2.5
# Every image is decoded in full (in a worker thread, for large bodies); this bounds the work a
# 10 MB file can ask for. The real service's limit is not published.
MAX_DECODED_PIXELS = 36_000_000
IMAGE_FORMATS = frozenset({"JPEG", "PNG"})
IMAGE_SUFFIXES: Final = (".jpg", ".jpeg", ".png")
# The file types a URL may name and the pages speak of: a URL naming one an endpoint does not
# take is refused; any other ending (none, ".php", ...) says nothing of the file and is taken.
MEDIA_SUFFIXES: Final = frozenset(
    {
        *(".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"),
        *(".svg", ".mp4", ".mov", ".avi", ".mkv", ".webm", ".flv", ".wmv", ".m4v", ".3gp", ".mpeg"),
        *(".mpg", ".mp3", ".wav", ".m4a", ".aac", ".ogg", ".oga", ".flac", ".opus", ".wma", ".amr"),
    }
)


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def check_suffix(field: str, url: str, allowed: tuple[str, ...]) -> None:
    """Refuse a URL whose path names a media file of a type not in ``allowed`` (the real
    service refuses such a file once fetched; the mock never fetches)."""
    try:
        suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    except ValueError:  # "http://[", say: an http(s) URL that does not parse
        raise invalid_value(f"{field} is not a valid URL") from None
    if suffix in MEDIA_SUFFIXES and suffix not in allowed:
        raise invalid_value(f"{field}: {suffix} files are not supported; use {', '.join(allowed)}")


def check_image(field: str, value: str, *, max_bytes: int = MAX_IMAGE_BYTES) -> tuple[int, int] | None:
    """Check an image field; return (width, height) for Base64 images, None for URLs. The
    legacy design takes images of up to 10 MB, the model-in-path design up to 50 MB."""
    if is_url(value):
        check_suffix(field, value, IMAGE_SUFFIXES)
        return None
    if value[:5].lower() == "data:":
        raise invalid_value(f"{field}: send raw Base64 without the 'data:' prefix")
    too_large = f"{field}: image is larger than {max_bytes // (1024 * 1024)}MB"
    if len(value) > max_bytes * 4 // 3 + 1024:
        raise invalid_value(too_large)
    try:
        raw = base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_value(f"{field}: not a URL and not valid Base64") from None
    if len(raw) > max_bytes:
        raise invalid_value(too_large)
    # Pillow is imported on first use: a server that never sees an image never loads it.
    from PIL import Image

    try:
        # Pillow warns about a client's damaged metadata (EXIF tags past the end, say); the image
        # itself is judged below, and a warnings filter set to "error" must not turn it into a 500.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(raw)) as img:
                fmt, (width, height) = img.format, img.size
                _check_shape(field, fmt, width, height)  # cheap refusals before decoding
                # Decoded in full, as the real service does: a file whose header looks right but
                # whose pixels are missing or corrupt (no IDAT, bad zlib, no scan) is refused.
                img.load()
            if fmt == "PNG":
                _check_png_rows(raw)
    except Image.DecompressionBombError:
        # A small file can declare a huge canvas; Pillow refuses to decode it, and says so.
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise invalid_value(f"{field}: image has more than {limit:,} pixels, too many to decode") from None
    except KlingError:
        raise
    except Exception:  # any decoder failure (OSError, IndexError, zlib.error, ...) is bad input
        raise invalid_value(f"{field}: not a valid JPEG or PNG image") from None
    return width, height


# PNG colour type -> samples per pixel (the PNG specification, IHDR).
_PNG_SAMPLES: Final = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7's passes: (first column, first row, column step, row step).
_ADAM7: Final = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def _check_png_rows(raw: bytes) -> None:
    """Raise ValueError unless the PNG's image data holds every row its header promises: Pillow
    leaves the missing rows of a short (but valid zlib) stream blank without a word."""
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", raw[16:29])
    bits = _PNG_SAMPLES[colour] * depth
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    expected = 0
    for column, row, column_step, row_step in passes:
        columns = max(0, (width - column + column_step - 1) // column_step)
        rows = max(0, (height - row + row_step - 1) // row_step)
        if columns and rows:
            expected += rows * (1 + (columns * bits + 7) // 8)
    stream, position, got = zlib.decompressobj(), 8, 0
    while position + 8 <= len(raw) and got < expected:
        length, kind = struct.unpack(">I4s", raw[position : position + 8])
        if kind == b"IDAT":
            got += len(stream.decompress(raw[position + 8 : position + 8 + length], expected - got + 1))
        position += 12 + length
    if got < expected:
        raise ValueError(f"PNG image data ends after {got} of {expected} bytes")


def _check_shape(field: str, fmt: str | None, width: int, height: int) -> None:
    if fmt not in IMAGE_FORMATS:
        raise invalid_value(f"{field}: image format {fmt} is not supported; use JPG, JPEG or PNG")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise invalid_value(
            f"{field}: image is {width}x{height}; each side must be at least {MIN_IMAGE_SIDE}px"
        )
    if not MIN_ASPECT <= width / height <= MAX_ASPECT:
        raise invalid_value(f"{field}: aspect ratio {width}:{height} is outside 1:2.5 to 2.5:1")
    if width * height > MAX_DECODED_PIXELS:
        raise invalid_value(
            f"{field}: image is {width}x{height}; the mock decodes at most {MAX_DECODED_PIXELS:,} pixels"
        )


def check_base64_file(field: str, value: str, max_bytes: int, kinds: str) -> bytes:
    """Raw Base64 of a file of at most ``max_bytes`` (audio, for lip sync); the decoded bytes."""
    if value[:5].lower() == "data:":
        raise invalid_value(f"{field}: send raw Base64 without the 'data:' prefix")
    if len(value) > max_bytes * 4 // 3 + 1024:
        raise invalid_value(f"{field}: file is larger than {max_bytes // (1024 * 1024)}MB")
    try:
        raw = base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_value(f"{field}: not valid Base64 of {kinds}") from None
    if not raw:
        raise invalid_value(f"{field}: the file is empty")
    if len(raw) > max_bytes:
        raise invalid_value(f"{field}: file is larger than {max_bytes // (1024 * 1024)}MB")
    return raw


# -- result files ------------------------------------------------------------------------------

_ASSETS = Path(__file__).resolve().parent / "assets"
# Result videos come in these shapes: real 5-second H.264 clips at 24 fps (built by
# tests/tools/make_video_assets.py); other durations are a clip's timeline stretched (stretch_mp4).
VIDEO_RATIOS: Final = {"16:9": "16x9", "9:16": "9x16", "1:1": "1x1"}
# Resolution classes, by the picture's short side in pixels.
VIDEO_RESOLUTIONS: Final = {"720p": 720, "1080p": 1080, "4k": 2160}
ASSET_SECONDS: Final = 5
# The official API deletes results, and refuses them as sources, this long after they are made.
RETENTION_MS = 30 * 24 * 3600 * 1000
# Result images keep the requested shape at a small size: this many pixels on the long side.
IMAGE_LONG_SIDE = 320
_PALETTE = ((38, 70, 83), (42, 157, 143), (233, 196, 106), (244, 162, 97), (231, 111, 81))


def video_id_for(task_id: str) -> str:
    """The id of a task's result video (``task_result.videos[].id``)."""
    return f"{task_id}-0"


def task_id_of_video(video_id: str) -> str | None:
    """The task a video id names, or None if it is not a video id the mock gave out."""
    task_id, sep, index = video_id.rpartition("-")
    return task_id if sep and index == "0" and task_id else None


def audio_id_for(task_id: str, index: int = 0) -> str:
    """The id of a task's result audio clip (``task_result.audios[].id``)."""
    return f"{task_id}-a{index}"


def task_id_of_audio(audio_id: str) -> str | None:
    """The task an audio id names, or None if it is not an audio id the mock gave out."""
    task_id, sep, index = audio_id.rpartition("-a")
    return task_id if sep and index.isascii() and index.isdigit() and task_id else None


def video_seconds(duration: str) -> int:
    """A task's duration string as whole seconds (5 for anything unreadable)."""
    try:
        return max(1, round(float(duration)))
    except ValueError:
        return 5


def nearest_ratio(aspect_ratio: str) -> str:
    """The served aspect ratio closest to ``aspect_ratio`` ("W:H", e.g. an input image's "640:480");
    16:9 for anything unreadable."""
    width, _, height = aspect_ratio.partition(":")
    try:
        wanted = math.log(float(width) / float(height))
    except (ValueError, ZeroDivisionError):
        return "16:9"
    return min(VIDEO_RATIOS, key=lambda r: abs(math.log(_ratio_value(r)) - wanted))


def _ratio_value(ratio: str) -> float:
    width, _, height = ratio.partition(":")
    return int(width) / int(height)


def video_file(duration: str, aspect_ratio: str = "16:9", resolution: str = "720p") -> Path:
    """A valid H.264 MP4 lasting ``duration`` seconds (a string such as "5", "15" or "7.3", to the
    millisecond), of the served shape nearest ``aspect_ratio`` at ``resolution``
    (``VIDEO_RESOLUTIONS``; 720p when unknown)."""
    millis = video_millis(duration)
    resolution = resolution if resolution in VIDEO_RESOLUTIONS else "720p"
    shape = f"{VIDEO_RATIOS[nearest_ratio(aspect_ratio)]}-{resolution}"
    asset = _ASSETS / f"video-{shape}.mp4"
    if millis == ASSET_SECONDS * 1000:
        return asset
    if millis % 1000 == 0:
        seconds = millis // 1000
        return _cached(f"video-{shape}-{seconds}s.mp4", lambda: stretch_mp4(asset.read_bytes(), seconds))
    length = Fraction(millis, 1000)
    return _cached(f"video-{shape}-{millis}ms.mp4", lambda: stretch_mp4(asset.read_bytes(), length))


def video_millis(duration: str) -> int:
    """A task's duration string as whole milliseconds, at least 1 s (5 s for anything unreadable):
    an avatar video lasts as long as its audio, "7.3" seconds say."""
    try:
        seconds = float(duration)
    except ValueError:
        return ASSET_SECONDS * 1000
    if not math.isfinite(seconds):
        return ASSET_SECONDS * 1000
    return max(1000, round(seconds * 1000))


def fit(width: int, height: int, long_side: int = IMAGE_LONG_SIDE) -> tuple[int, int]:
    """(width, height) scaled so the long side is ``long_side``, keeping the aspect ratio."""
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def aspect_size(aspect_ratio: str) -> tuple[int, int]:
    """The result size for an aspect ratio such as "16:9"."""
    w, _, h = aspect_ratio.partition(":")
    return fit(int(w), int(h))


def image_file(width: int, height: int, index: int) -> Path:
    """A PNG of the given size; ``index`` picks its colour, so the images of one task differ."""
    colour = index % len(_PALETTE)
    return _cached(f"image-{width}x{height}-{colour}.png", lambda: _png(width, height, _PALETTE[colour]))


def _png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), colour)
    inset = min(width, height) // 4
    lighter = tuple(min(255, c + 60) for c in colour)
    ImageDraw.Draw(img).rectangle((inset, inset, width - inset - 1, height - inset - 1), fill=lighter)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


# -- the file cache ----------------------------------------------------------------------------

_cache_lock = threading.Lock()


@cache
def _cache_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="mockkling-media-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _cached(name: str, build: Callable[[], bytes]) -> Path:
    """The cached file ``name``, built on first use; written atomically, so readers never see
    half a file."""
    with _cache_lock:
        path = _cache_dir() / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)  # in case a temp cleaner removed it
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(build())
            os.replace(tmp, path)
        return path


# -- MP4 timelines -----------------------------------------------------------------------------

_CONTAINERS = frozenset({b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl"})


def _boxes(buf: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each ISO BMFF box in ``buf[start:end]``, depth first."""
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, i)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", buf, i + 8)
            header = 16
        elif size == 0:
            size = end - i
        if size < header or i + size > end:
            raise ValueError(f"malformed MP4 box {kind!r} at {i}")
        yield kind, i + header, i + size
        if kind in _CONTAINERS:
            yield from _boxes(buf, i + header, i + size)
        i += size


def stretch_mp4(source: bytes, seconds: int | Fraction) -> bytes:
    """A copy of a single-track MP4 whose timeline lasts ``seconds``: every sample, composition
    offset and edit is scaled by one factor, so the same frames play longer or shorter and every
    parser reads the new duration. Only values change; no box moves or changes size."""
    out = bytearray(source)
    boxes = list(_boxes(out, 0, len(out)))
    mvhd = next(start for kind, start, _ in boxes if kind == b"mvhd")
    v1 = out[mvhd] == 1
    movie_scale, movie_duration = struct.unpack_from(">IQ" if v1 else ">II", out, mvhd + (20 if v1 else 12))
    # The movie's length in its own ticks (milliseconds in the assets); every time scales by one factor.
    movie_len = max(1, round(Fraction(seconds) * movie_scale))
    factor = Fraction(movie_len, movie_duration)

    def scale(fmt: str, at: int, by: int) -> None:
        (value,) = struct.unpack_from(fmt, out, at)
        struct.pack_into(fmt, out, at, value * by)

    for kind, start, _end in boxes:
        v1 = out[start] == 1
        if kind == b"mvhd":
            struct.pack_into(">Q" if v1 else ">I", out, start + (24 if v1 else 16), movie_len)
        elif kind == b"tkhd":
            struct.pack_into(">Q" if v1 else ">I", out, start + (28 if v1 else 20), movie_len)
        elif kind == b"mdhd":
            # The media clock ticks denominator times faster; media times grow by the numerator.
            at = start + (20 if v1 else 12)
            scale(">I", at, factor.denominator)
            scale(">Q" if v1 else ">I", at + 4, factor.numerator)
        elif kind == b"elst":
            (count,) = struct.unpack_from(">I", out, start + 4)
            size = 20 if v1 else 12
            for n in range(count):
                at = start + 8 + n * size
                struct.pack_into(">Q" if v1 else ">I", out, at, movie_len // count)
                # media_time is in media units; -1 (an empty edit) stays as it is.
                time_fmt, time_at = (">q", at + 8) if v1 else (">i", at + 4)
                (media_time,) = struct.unpack_from(time_fmt, out, time_at)
                if media_time > 0:
                    struct.pack_into(time_fmt, out, time_at, media_time * factor.numerator)
        elif kind in (b"stts", b"ctts"):
            (count,) = struct.unpack_from(">I", out, start + 4)
            fmt = ">i" if kind == b"ctts" and v1 else ">I"
            for n in range(count):
                scale(fmt, start + 8 + n * 8 + 4, factor.numerator)
    return bytes(out)


# -- 2026 video endpoints: audio lengths, the mock's own URLs, masks and face thumbnails ----------

# Audio formats by the mutagen class that reads them; the endpoints name which they take.
AUDIO_FORMATS: Final = {"MP3": "mp3", "WAVE": "wav", "MP4": "m4a", "AAC": "aac"}
_MEDIA_VIDEO_PATH: Final = "/media/videos/"


def audio_seconds(field: str, raw: bytes, formats: frozenset[str]) -> float:
    """The length in seconds of an audio file (``formats``: some of "mp3", "wav", "m4a", "aac"),
    read from its headers by mutagen; 400 / 1201 naming ``field`` for anything else."""
    # mutagen is imported on first use: a server that never sees an audio file never loads it.
    import mutagen

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audio = mutagen.File(io.BytesIO(raw))
    except Exception:  # mutagen raises many kinds of errors on damaged files
        audio = None
    kind = AUDIO_FORMATS.get(type(audio).__name__) if audio is not None else None
    length = getattr(getattr(audio, "info", None), "length", 0) if kind else 0
    if kind not in formats or not (isinstance(length, int | float) and math.isfinite(length) and length > 0):
        names = ", ".join(f".{name}" for name in sorted(formats))
        raise invalid_value(f"{field}: not a valid audio file ({names})")
    return float(length)


def task_id_of_media_url(url: str) -> str | None:
    """The task whose result video a URL names, when it is one of the mock's own result files
    (``.../media/videos/{task_id}.mp4``, on whatever host the client reached it by)."""
    if not is_url(url):
        return None
    path = url.split("?", 1)[0].split("#", 1)[0]
    _head, sep, tail = path.partition(_MEDIA_VIDEO_PATH)
    task_id, dot, ext = tail.rpartition(".")
    if not sep or dot != "." or ext != "mp4" or not task_id or "/" in task_id:
        return None
    return task_id


def video_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """(width, height) of a served result video: its short side is the resolution's."""
    width, _, height = VIDEO_RATIOS[nearest_ratio(aspect_ratio)].partition("x")
    short = VIDEO_RESOLUTIONS.get(resolution, 720)
    w, h = int(width), int(height)
    scale = short / min(w, h)
    return round(w * scale) // 2 * 2, round(h * scale) // 2 * 2


def mask(width: int, height: int, shapes: tuple[tuple[str, float, float, float, float], ...]) -> bytes:
    """A binary mask (0 or 255 per pixel, row-major), white inside ``shapes``: ("ellipse" or
    "rect", centre x, centre y, half width, half height), all as fractions of the image."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for kind, cx, cy, rx, ry in shapes:
        box = ((cx - rx) * width, (cy - ry) * height, (cx + rx) * width, (cy + ry) * height)
        (draw.ellipse if kind == "ellipse" else draw.rectangle)(box, fill=255)
    return img.tobytes()


def mask_png(width: int, height: int, pixels: bytes) -> bytes:
    """A mask as a greyscale PNG."""
    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("L", (width, height), pixels).save(out, format="PNG", optimize=True)
    return out.getvalue()


_RUNS: Final = re.compile(rb"\x00+|[^\x00]+")


def coco_rle(width: int, height: int, pixels: bytes) -> str:
    """A mask in COCO's compressed RLE (``counts``, as pycocotools writes it): runs of 0s and 1s
    in column-major order, starting with 0s, each run delta-coded as 5-bit groups in ASCII."""
    from PIL import Image

    columns = Image.frombytes("L", (width, height), pixels).transpose(Image.Transpose.TRANSPOSE).tobytes()
    counts = [m.end() - m.start() for m in _RUNS.finditer(columns)]
    if columns[:1] not in (b"", b"\x00"):
        counts.insert(0, 0)  # the first run counts 0s
    out = []
    for i, count in enumerate(counts):
        value = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            chunk = value & 0x1F
            value >>= 5
            more = value != -1 if chunk & 0x10 else value != 0
            if more:
                chunk |= 0x20
            out.append(chr(chunk + 48))
    return "".join(out)


# The masks image-recognize answers, by type: where a portrait's subject, head, face and clothes are.
SEGMENTATION_SHAPES: Final[dict[str, tuple[tuple[str, float, float, float, float], ...]]] = {
    "object_seg": (("ellipse", 0.5, 0.25, 0.14, 0.17), ("rect", 0.5, 0.7, 0.26, 0.3)),
    "head_seg": (("ellipse", 0.5, 0.25, 0.14, 0.17),),
    "face_seg": (("ellipse", 0.5, 0.28, 0.1, 0.12),),
    "cloth_seg": (("rect", 0.5, 0.7, 0.26, 0.3),),
}


def segmentation_file(kind: str, width: int, height: int) -> Path:
    """The PNG mask image-recognize serves for one segmentation type (SEGMENTATION_SHAPES)."""
    shapes = SEGMENTATION_SHAPES[kind]
    return _cached(
        f"mask-{kind}-{width}x{height}.png", lambda: mask_png(width, height, mask(width, height, shapes))
    )


def face_file(index: int) -> Path:
    """A face thumbnail (identify-face's ``face_image``): a small PNG of a drawn face."""
    from PIL import Image, ImageDraw

    def build() -> bytes:
        img = Image.new("RGB", (160, 160), _PALETTE[index % len(_PALETTE)])
        draw = ImageDraw.Draw(img)
        draw.ellipse((30, 20, 130, 140), fill=(240, 200, 170))
        draw.ellipse((55, 60, 70, 75), fill=(40, 40, 40))
        draw.ellipse((90, 60, 105, 75), fill=(40, 40, 40))
        draw.arc((60, 85, 100, 115), 20, 160, fill=(150, 60, 60), width=4)
        out = io.BytesIO()
        img.save(out, format="PNG", optimize=True)
        return out.getvalue()

    return _cached(f"face-{index % len(_PALETTE)}.png", build)


# -- audio results (issue 16: text to audio, video to audio, speech, voice trials) ------------
#
# MP3s are one committed frame of silence repeated (tests/make_mp3_asset.py built it with PyAV):
# MPEG-1 Layer III, 48 kHz mono, 32 kbit/s, 96 bytes and 24 ms a frame, each frame complete in
# itself. WAVs are 16-bit mono PCM written with the wave module. Nothing is encoded at run time.

_MP3_FRAME = _ASSETS / "silence-48k-32k.mp3frame"
MP3_FRAME_SECONDS = 0.024
WAV_RATE = 16000
# No clip the mock makes lasts longer (a 1000-character speech at the slowest speed is shorter),
# or shorter (decoders probing an MP3 want a few frames to recognise it).
MAX_AUDIO_SECONDS = 600.0
MIN_AUDIO_SECONDS = 1.0


def _clip(seconds: float) -> float:
    return min(max(seconds, MIN_AUDIO_SECONDS), MAX_AUDIO_SECONDS)


def _mp3_frames(seconds: float) -> int:
    # Rounded first, so 4.8 s is 200 frames and not 201 for a float's last bit.
    return math.ceil(round(_clip(seconds) / MP3_FRAME_SECONDS, 6))


def mp3_seconds(seconds: float) -> float:
    """How long the MP3 of a ``seconds`` clip lasts: whole 24 ms frames, never shorter."""
    return round(_mp3_frames(seconds) * MP3_FRAME_SECONDS, 3)


def wav_seconds(seconds: float) -> float:
    """How long the WAV of a ``seconds`` clip lasts (whole samples: exact to 1/16000 s)."""
    return round(round(_clip(seconds) * WAV_RATE) / WAV_RATE, 3)


def seconds_text(seconds: float) -> str:
    """A duration as the API writes one: a string of seconds, "5.0", "5.016"."""
    text = f"{seconds:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def mp3_file(seconds: float) -> Path:
    """A silent MP3 lasting ``mp3_seconds(seconds)``."""
    frames = _mp3_frames(seconds)
    return _cached(f"audio-{frames}f.mp3", lambda: _MP3_FRAME.read_bytes() * frames)


def wav_file(seconds: float) -> Path:
    """A silent 16-bit mono WAV lasting ``wav_seconds(seconds)``."""
    samples = round(_clip(seconds) * WAV_RATE)
    return _cached(f"audio-{samples}s.wav", lambda: _wav(samples))


def _wav(samples: int) -> bytes:
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(WAV_RATE)
        wav.writeframes(bytes(2 * samples))
    return out.getvalue()
