"""The model catalogue: which model serves which endpoint, with which options.

Data only, read by validation, billing and the docs tests. Source: the official capabilities
map (see README, "Sources"). A feature maps to the set of ``mode:duration`` combinations where
the official API allows it; "generate" is plain generation.
"""

from __future__ import annotations

from typing import Final

ALL: Final = frozenset({"std:5", "std:10", "pro:5", "pro:10"})
PRO: Final = frozenset({"pro:5", "pro:10"})
STD5: Final = frozenset({"std:5"})
PRO5: Final = frozenset({"pro:5"})
FIVE: Final = frozenset({"std:5", "pro:5"})

Capabilities = dict[str, frozenset[str]]

# endpoint action -> model -> feature -> allowed "mode:duration" combinations
VIDEO_MODELS: Final[dict[str, dict[str, Capabilities]]] = {
    "text2video": {
        "kling-v1": {"generate": ALL, "camera_control": STD5},
        "kling-v1-6": {"generate": ALL},
        "kling-v2-master": {"generate": ALL},
        "kling-v2-1-master": {"generate": ALL},
        "kling-v2-5-turbo": {"generate": ALL},
        "kling-v2-6": {"generate": ALL, "sound": PRO},
    },
    "image2video": {
        "kling-v1": {"generate": ALL, "start_end_frame": FIVE, "motion_brush": FIVE},
        "kling-v1-5": {
            "generate": ALL,
            "start_end_frame": PRO,
            "end_frame": PRO,
            "motion_brush": PRO5,
            "camera_control_simple": PRO5,
        },
        "kling-v1-6": {"generate": ALL, "start_end_frame": PRO, "end_frame": PRO},
        "kling-v2-master": {"generate": ALL},
        "kling-v2-1": {"generate": ALL, "start_end_frame": PRO},
        "kling-v2-1-master": {"generate": ALL},
        "kling-v2-5-turbo": {"generate": ALL, "start_end_frame": PRO},
        "kling-v2-6": {"generate": ALL, "start_end_frame": PRO, "sound": PRO, "voice": PRO},
    },
}

DEFAULT_MODEL: Final = "kling-v1"
DEFAULT_MODE: Final = "std"
DEFAULT_DURATION: Final = "5"

# Human names for the features, used in error messages.
FEATURE_NAMES: Final = {
    "generate": "video generation",
    "camera_control": "camera_control",
    "camera_control_simple": "camera_control of type simple",
    "start_end_frame": "start and end frames (image + image_tail)",
    "end_frame": "an end frame without a start frame (image_tail only)",
    "motion_brush": "motion brush (static_mask/dynamic_masks)",
    "sound": "sound",
    "voice": "voice_list",
}

# Units billed for a 5 s video in (std, pro); 10 s costs twice as much. Approximate public pricing,
# returned as ``final_unit_deduction``.
UNITS_5S: Final[dict[str, tuple[float, float]]] = {
    "kling-v1": (1.0, 3.5),
    "kling-v1-5": (2.0, 3.5),
    "kling-v1-6": (2.0, 3.5),
    "kling-v2-master": (10.0, 10.0),
    "kling-v2-1": (2.0, 3.5),
    "kling-v2-1-master": (10.0, 10.0),
    "kling-v2-5-turbo": (1.5, 2.5),
    "kling-v2-6": (1.5, 2.5),
}


def models_for(action: str) -> list[str]:
    """The model names an endpoint accepts, in catalogue order."""
    return list(VIDEO_MODELS[action])


def supports(action: str, model: str, feature: str, mode: str, duration: str) -> bool:
    """Whether the official API allows ``feature`` for this model, mode and duration."""
    allowed = VIDEO_MODELS[action][model].get(feature)
    return allowed is not None and f"{mode}:{duration}" in allowed


def units(model: str, mode: str, duration: str) -> str:
    """``final_unit_deduction`` for a finished video task: a numeric string, as the API sends it."""
    std, pro = UNITS_5S.get(model, (1.0, 3.5))
    value = (pro if mode == "pro" else std) * (int(duration) / 5 if duration.isdigit() else 1)
    return f"{value:g}"
