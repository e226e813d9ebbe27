"""Media: checking the images clients send, and the result files the mock serves.

Images are checked as the official API checks them: a URL is taken as it is (never fetched);
anything else must be raw Base64 (no ``data:`` prefix) of a real JPEG or PNG of at most 10 MB,
at least 300 px a side, with an aspect ratio between 1:2.5 and 2.5:1.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import invalid_value

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_IMAGE_SIDE = 300
MIN_ASPECT, MAX_ASPECT = 1 / 2.5, 2.5
IMAGE_FORMATS = frozenset({"JPEG", "PNG"})
# Base64 of MAX_IMAGE_BYTES, with room for padding and line breaks.
_MAX_BASE64_CHARS = MAX_IMAGE_BYTES * 4 // 3 + 1024


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def check_image(field: str, value: str) -> tuple[int, int] | None:
    """Check an image field; return (width, height) for Base64 images, None for URLs."""
    if is_url(value):
        return None
    if value[:5].lower() == "data:":
        raise invalid_value(f"{field}: send raw Base64 without the 'data:' prefix")
    if len(value) > _MAX_BASE64_CHARS:
        raise invalid_value(f"{field}: image is larger than 10MB")
    try:
        raw = base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_value(f"{field}: not a URL and not valid Base64") from None
    if len(raw) > MAX_IMAGE_BYTES:
        raise invalid_value(f"{field}: image is larger than 10MB")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            fmt, (width, height) = img.format, img.size
            img.verify()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        raise invalid_value(f"{field}: not a valid JPEG or PNG image") from None
    if fmt not in IMAGE_FORMATS:
        raise invalid_value(f"{field}: image format {fmt} is not supported; use JPG, JPEG or PNG")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise invalid_value(
            f"{field}: image is {width}x{height}; each side must be at least {MIN_IMAGE_SIDE}px"
        )
    if not MIN_ASPECT <= width / height <= MAX_ASPECT:
        raise invalid_value(f"{field}: aspect ratio {width}:{height} is outside 1:2.5 to 2.5:1")
    return width, height


_ASSETS = Path(__file__).resolve().parent / "assets"


def video_file(duration: str) -> Path:
    """A small, valid H.264 MP4 of the given duration ("5" or "10" seconds)."""
    return _ASSETS / ("video-10s.mp4" if duration == "10" else "video-5s.mp4")
