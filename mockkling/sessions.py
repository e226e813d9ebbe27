"""The video endpoints that answer at once: face identification (the session advanced lip sync
works on), multi-element selection sessions, and image segmentation.

Each is a function ``run(backend, account, body, base_url) -> data``, a row of
``routes.official.CALLS``. What they make is kept as records in the one task store
(``Backend.add_record``): a session lives 24 hours, as the official pages say, a segmentation's
masks 30 days, like every result. An unknown, expired or other account's session is refused with
400 / 1201 naming ``session_id``, the same way whichever it is. The files their answers link to
(face thumbnails, masks, preview videos) are served by routes/media.py.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Final

from . import catalogue, media, validation
from .backend import Backend, is_record
from .errors import invalid_value
from .tasks import Task

# The sessions' answers carry no cost of their own: the task made from them is billed.
NO_UNITS: Final = "0"
# Selection sessions: the frame rate of every video the mock serves.
FPS: Final = 24
# How far a selected object's mask reaches around each point, as a share of the short side.
POINT_RADIUS: Final = 0.08
# Files of a selection session (routes/media.py): name -> kind.
SELECTION_FILES: Final = {
    "normalized.mp4": "video",
    "preview.mp4": "video",
    "tracking.mp4": "video",
    "cover.png": "image",
}


def _source(backend: Backend, account: str, body: dict[str, Any]) -> validation.SourceVideo:
    """The video of an identify-face or init-selection body: ``video_id`` or ``video_url``, one."""
    video_id, video_url = body.get("video_id"), body.get("video_url")
    validation.exactly_one("video_id", video_id, "video_url", video_url)
    lookup = backend.lookup(account)
    if video_id:
        return validation.source_video("video_id", video_id, lookup, by_id=True)
    return validation.source_video("video_url", str(video_url), lookup, by_id=False)


def _field(body: dict[str, Any]) -> str:
    return "video_id" if body.get("video_id") else "video_url"


def _session(backend: Backend, account: str, action: str, session_id: str) -> Task:
    session = backend.find_record(account, action, session_id)
    if session is None:
        raise invalid_value(f"session_id: session {session_id[:64]} does not exist or has expired")
    return session


def served_record(backend: Backend, action: str, ident: str) -> Task | None:
    """A record whose files may be downloaded (the URL is the credential, as for result files):
    any account's, while it lives and is not deleted."""
    task = backend.tasks.get(ident)
    if task is None or task.action != action or not is_record(task):
        return None
    extra = task.extra or {}
    if extra.get("deleted") or backend.now_ms() >= extra.get("expires_ms", backend.now_ms() + 1):
        return None
    return task


# -- identify-face ---------------------------------------------------------------------------------


def face_image_url(base_url: str, session_id: str, face_id: str) -> str:
    return f"{base_url}/media/faces/{session_id}/{face_id}.png"


def identify_face(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/videos/identify-face``: a session (24 h) with the faces of a video the account
    made (``video_id``) or of a URL. A video of 2 to 60 s at 720p or 1080p; the mock finds one
    face, lip-syncable over the whole video."""
    source = _source(backend, account, body)
    field = _field(body)
    low, high = catalogue.FACE_VIDEO_SECONDS
    if not low <= source.seconds <= high:
        raise invalid_value(
            f"{field}: the video lasts {source.seconds:g}s; it must last {low} to {high} seconds"
        )
    if source.resolution not in catalogue.FACE_RESOLUTIONS:
        raise invalid_value(
            f"{field}: the video is {source.resolution}; faces are found in 720p or 1080p videos"
        )
    faces = [{"face_id": "0", "start_time": 0, "end_time": round(source.seconds * 1000)}]
    extra = {**source.extra(), "duration": source.duration, "faces": faces}
    session = backend.add_record(
        account, catalogue.FACE_SESSIONS, extra=extra, lifetime_seconds=catalogue.SESSION_SECONDS
    )
    return {
        "session_id": session.task_id,
        "final_unit_deduction": NO_UNITS,
        "face_data": [
            {**face, "face_image": face_image_url(base_url, session.task_id, str(face["face_id"]))}
            for face in faces
        ],
    }


# -- multi-element selection sessions --------------------------------------------------------------


def selection_url(base_url: str, session_id: str, name: str) -> str:
    return f"{base_url}/media/selections/{session_id}/{name}"


def _selection_data(session: Task, **more: Any) -> dict[str, Any]:
    return {"status": 0, "session_id": session.task_id, "final_unit_deduction": NO_UNITS, **more}


def init_selection(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/videos/multi-elements/init-selection``: a selection session (24 h) on a video
    of 2-5 s or 7-10 s, 720 to 2160 px a side (the mock's videos are 24 fps)."""
    source = _source(backend, account, body)
    field = _field(body)
    seconds = source.seconds
    if not (2 <= seconds <= 5 or 7 <= seconds <= 10):
        raise invalid_value(f"{field}: the video lasts {seconds:g}s; it must last 2 to 5 or 7 to 10 seconds")
    width, height = media.video_size(source.aspect_ratio, source.resolution)
    if not (min(width, height) >= 720 and max(width, height) <= 2160):
        raise invalid_value(f"{field}: the video is {width}x{height}; each side must be 720 to 2160 pixels")
    millis = round(seconds * 1000)
    extra = {
        **source.extra(),
        "duration": source.duration,
        "width": width,
        "height": height,
        "total_frame": round(seconds * FPS),
        "selections": [],
        "next_object": 0,
    }
    session = backend.add_record(
        account, catalogue.SELECTION_SESSIONS, extra=extra, lifetime_seconds=catalogue.SESSION_SECONDS
    )
    return _selection_data(
        session,
        fps=float(FPS),
        original_duration=millis,
        width=width,
        height=height,
        total_frame=extra["total_frame"],
        normalized_video=selection_url(base_url, session.task_id, "normalized.mp4"),
    )


def _frame(extra: dict[str, Any], frame_index: int) -> None:
    if not 0 <= frame_index < extra["total_frame"]:
        raise invalid_value(
            f"frame_index: {frame_index}; the video's frames are 0 to {extra['total_frame'] - 1}"
        )


def _masks(extra: dict[str, Any], frame_index: int) -> list[dict[str, Any]]:
    """The masks of the objects selected on one frame: a disc around each of an object's points,
    as COCO RLE and as a PNG, each of the video's size (``[width, height]``, as the page shows)."""
    width, height = extra["width"], extra["height"]
    short = min(width, height)
    rx, ry = POINT_RADIUS * short / width, POINT_RADIUS * short / height
    out = []
    for selection in extra["selections"]:
        if selection["frame_index"] != frame_index:
            continue
        shapes = tuple(("ellipse", point["x"], point["y"], rx, ry) for point in selection["points"])
        pixels = media.mask(width, height, shapes)
        size = [width, height]
        out.append(
            {
                "object_id": selection["object_id"],
                "rle_mask": {"size": size, "counts": media.coco_rle(width, height, pixels)},
                "png_mask": {
                    "size": size,
                    "base64": base64.b64encode(media.mask_png(width, height, pixels)).decode(),
                },
            }
        )
    return out


def _changed(backend: Backend, session: Task, change: Callable[[Task], None]) -> Task:
    """The session after ``change``, made as one step: two requests changing its selections at
    once each keep their change (as they would not reading, changing and writing it apart)."""
    changed = backend.tasks.modify(session.task_id, change)
    if changed is None:  # gone meanwhile (a reset)
        raise invalid_value(f"session_id: session {session.task_id[:64]} does not exist or has expired")
    return changed


def _points(body: dict[str, Any]) -> list[dict[str, float]]:
    return [{"x": float(point["x"]), "y": float(point["y"])} for point in body["points"]]


def add_selection(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/videos/multi-elements/add-selection``: one more object, selected by points on
    one frame; the answer holds the masks of every object selected on that frame."""
    session = _session(backend, account, catalogue.SELECTION_SESSIONS, body["session_id"])
    frame_index, points = body["frame_index"], _points(body)
    _frame(session.extra or {}, frame_index)

    def add(stored: Task) -> None:
        extra = stored.extra or {}
        extra["selections"].append(
            {"frame_index": frame_index, "points": points, "object_id": extra["next_object"]}
        )
        extra["next_object"] += 1

    session = _changed(backend, session, add)
    masks = _masks(session.extra or {}, frame_index)
    return _selection_data(session, res={"frame_index": frame_index, "rle_mask_list": masks})


def delete_selection(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/videos/multi-elements/delete-selection``: drop the selection made on that frame
    with exactly these points (as add-selection sent them)."""
    session = _session(backend, account, catalogue.SELECTION_SESSIONS, body["session_id"])
    frame_index, points = body["frame_index"], _points(body)
    _frame(session.extra or {}, frame_index)

    def delete(stored: Task) -> None:
        extra = stored.extra or {}
        kept = [
            s for s in extra["selections"] if not (s["frame_index"] == frame_index and s["points"] == points)
        ]
        if len(kept) == len(extra["selections"]):
            raise invalid_value(f"points: no selection on frame {frame_index} has exactly these points")
        extra["selections"] = kept

    session = _changed(backend, session, delete)
    masks = _masks(session.extra or {}, frame_index)
    return _selection_data(session, res={"frame_index": frame_index, "rle_mask_list": masks})


def clear_selection(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/videos/multi-elements/clear-selection``: drop every selection of the session."""
    session = _session(backend, account, catalogue.SELECTION_SESSIONS, body["session_id"])

    def clear(stored: Task) -> None:
        (stored.extra or {})["selections"] = []

    return _selection_data(_changed(backend, session, clear))


def preview_selection(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/videos/multi-elements/preview-selection``: the video with its selections
    tracked, its cover and the tracking output; refused while nothing is selected."""
    session = _session(backend, account, catalogue.SELECTION_SESSIONS, body["session_id"])
    if not (session.extra or {}).get("selections"):
        raise invalid_value("session_id: nothing is selected yet; select with add-selection first")
    res = {
        "video": selection_url(base_url, session.task_id, "preview.mp4"),
        "video_cover": selection_url(base_url, session.task_id, "cover.png"),
        "tracking_output": selection_url(base_url, session.task_id, "tracking.mp4"),
    }
    return _selection_data(session, res=res)


# -- image-recognize -------------------------------------------------------------------------------

# Masks keep the image's shape, at most this many pixels on the long side (URLs: a square).
MASK_LONG_SIDE: Final = 1024


def segmentation_url(base_url: str, record_id: str, kind: str) -> str:
    return f"{base_url}/media/segmentations/{record_id}/{kind}.png"


def image_recognize(backend: Backend, account: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``POST /v1/videos/image-recognize``: one PNG mask per segmentation type (subject, head,
    face, clothes), of the image's shape; every type is found (``is_contain`` true)."""
    dims = media.check_image("image", body["image"]) or (1, 1)
    width, height = media.fit(*dims, long_side=MASK_LONG_SIDE)
    record = backend.add_record(
        account,
        catalogue.IMAGE_RECOGNITIONS,
        extra={"size": [width, height]},
        lifetime_seconds=media.RETENTION_MS / 1000,
    )
    images = [
        {"type": kind, "is_contain": True, "url": segmentation_url(base_url, record.task_id, kind)}
        for kind in catalogue.SEGMENTATION_TYPES
    ]
    return {"final_unit_deduction": NO_UNITS, "task_result": {"images": images}}
