"""The model catalogue: every official endpoint, which models serve it, with which options.

Data only, read by validation, billing, the routes and the docs tests. Sources: the official
capabilities map and endpoint pages (see docs/surfaces.md, "Sources").

Each endpoint names the request fields that select a *variant* (``axes``: for most video
endpoints mode and duration, for image generation the aspect ratio), and each of its models maps
a feature to the set of variants, written ``"std:5"``, ``"16:9"``..., where the official API
allows it. "generate" is plain generation. An endpoint with no models is model-independent.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .tasks import Task

ALL: Final = frozenset({"std:5", "std:10", "pro:5", "pro:10"})
PRO: Final = frozenset({"pro:5", "pro:10"})
STD5: Final = frozenset({"std:5"})
PRO5: Final = frozenset({"pro:5"})
FIVE: Final = frozenset({"std:5", "pro:5"})
MODES: Final = frozenset({"std", "pro"})
# The one variant of an endpoint without option axes.
ANY: Final = frozenset({""})
RATIOS: Final = frozenset({"16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9"})
RATIOS_NO_21_9: Final = RATIOS - {"21:9"}

Capabilities = dict[str, frozenset[str]]

# Result kinds: the keys of ``task_result`` a finished task carries (video-to-audio has two).
VIDEOS: Final = "videos"
IMAGES: Final = "images"
AUDIOS: Final = "audios"
VOICES: Final = "voices"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One official task endpoint: where it lives, what it returns and which models serve it."""

    path: str
    # The keys of task_result, in order: VIDEOS ({id, url, duration}), IMAGES ({index, url}),
    # AUDIOS ({id, url_mp3, url_wav, ...}), VOICES ({voice_id, ...}); views.py renders each.
    results: tuple[str, ...]
    # The resource-pack kind its tasks draw on: "video", "image" or "virtual_try_on".
    pack: str
    # Request fields whose values, joined by ":", name the variant a feature is checked against.
    axes: tuple[str, ...]
    # model -> feature -> allowed variants; empty for a model-independent endpoint.
    models: dict[str, Capabilities]
    default_model: str = ""

    def makes(self, kind: str) -> bool:
        """Whether a finished task of this endpoint has results of ``kind`` (VIDEOS, ...)."""
        return kind in self.results


_DUAL_EFFECTS: Final = {"hug": ALL, "kiss": ALL, "heart_gesture": ALL}
_EXTEND: Final = {"generate": MODES}

ENDPOINTS: Final[dict[str, Endpoint]] = {
    "text2video": Endpoint(
        "/v1/videos/text2video",
        (VIDEOS,),
        "video",
        ("mode", "duration"),
        {
            "kling-v1": {"generate": ALL, "camera_control": STD5},
            "kling-v1-6": {"generate": ALL},
            "kling-v2-master": {"generate": ALL},
            "kling-v2-1-master": {"generate": ALL},
            "kling-v2-5-turbo": {"generate": ALL},
            "kling-v2-6": {"generate": ALL, "sound": PRO},
        },
        "kling-v1",
    ),
    "image2video": Endpoint(
        "/v1/videos/image2video",
        (VIDEOS,),
        "video",
        ("mode", "duration"),
        {
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
        "kling-v1",
    ),
    "multi-image2video": Endpoint(
        "/v1/videos/multi-image2video",
        (VIDEOS,),
        "video",
        ("mode", "duration"),
        {"kling-v1-6": {"generate": ALL}},
        "kling-v1-6",
    ),
    # The extension keeps the model and mode of the video it extends (the request has neither).
    "video-extend": Endpoint(
        "/v1/videos/video-extend",
        (VIDEOS,),
        "video",
        ("mode",),
        {"kling-v1": _EXTEND, "kling-v1-5": _EXTEND, "kling-v1-6": _EXTEND},
    ),
    "lip-sync": Endpoint("/v1/videos/lip-sync", (VIDEOS,), "video", (), {}),
    # Models serve only the dual-character effects below; the other scenes take no model.
    "effects": Endpoint(
        "/v1/videos/effects",
        (VIDEOS,),
        "video",
        ("mode", "duration"),
        {
            "kling-v1": _DUAL_EFFECTS,
            "kling-v1-5": _DUAL_EFFECTS,
            "kling-v1-6": {**_DUAL_EFFECTS, "fight": ALL},
        },
        "kling-v1",
    ),
    "image-generation": Endpoint(
        "/v1/images/generations",
        (IMAGES,),
        "image",
        ("aspect_ratio",),
        {
            "kling-v1": {"text2image": RATIOS_NO_21_9, "image2image": RATIOS_NO_21_9},
            "kling-v1-5": {"text2image": RATIOS, "subject": RATIOS, "face": RATIOS},
            "kling-v2": {"text2image": RATIOS, "restyle": RATIOS, "2k": RATIOS},
            "kling-v2-new": {"restyle": RATIOS},
            "kling-v2-1": {"text2image": RATIOS},
        },
        "kling-v1",
    ),
    "virtual-try-on": Endpoint(
        "/v1/images/kolors-virtual-try-on",
        (IMAGES,),
        "virtual_try_on",
        (),
        {"kolors-virtual-try-on-v1": {"generate": ANY}, "kolors-virtual-try-on-v1-5": {"generate": ANY}},
        "kolors-virtual-try-on-v1",
    ),
    "image-expand": Endpoint("/v1/images/editing/expand", (IMAGES,), "image", (), {}),
}

# Resources that endpoints make and other endpoints refer to by id, each kept under its own
# action in the one task store (Backend.add_record, Backend.find_record).
CUSTOM_VOICES: Final = "custom-voices"  # a task; the voice_id is its task_id
CUSTOM_ELEMENTS: Final = "custom-elements"  # a record made at once; the element_id (digits) is its id
FACE_SESSIONS: Final = "identify-face"  # a record; the session_id is its id
SELECTION_SESSIONS: Final = "multi-elements-selection"  # a record; the session_id is its id

# The official voice and element libraries (``owned_by: "kling"``): accepted by every endpoint
# that takes a voice_id or element_id, listed by presets-voices and presets-elements. The real
# libraries' ids are not public; these are the mock's own.
PRESET_VOICE_IDS: Final = frozenset(
    {"kling-voice-anna", "kling-voice-ben", "kling-voice-chen", "kling-voice-dai"}
)
PRESET_ELEMENT_IDS: Final = frozenset({"100001", "100002", "100003"})

# Effects that take one image (``input.image``) and no model; 5 or 10 seconds. The names are
# kept as the official scene list gives them, a block of words.
SINGLE_IMAGE_EFFECTS: Final = frozenset(
    """
    fortune_god_transform new_year_feast ring_in_new horse_year_firework pet_vlogger crystal_horse
    lateral_shift_transition drunk_dance drunk_dance_pet daoma_dance bouncy_dance
    smooth_sailing_dance new_year_greeting lion_dance prosperity great_success golden_horse_fortune
    red_packet_box lucky_horse_year lucky_red_packet lucky_money_come lion_dance_pet
    dumpling_making_pet fish_making_pet pet_red_packet lantern_glow expression_challenge overdrive
    heart_gesture_dance poping martial_arts running nezha motorcycle_dance subject_3_dance
    ghost_step_dance phantom_jewel zoom_out dollar_rain_pro pet_bee_pro countdown_teleport
    santa_random_surprise magic_match_tree bullet_time_360 happy_birthday birthday_star
    thumbs_up_pro tiger_hug_pro pet_lion_pro surprise_bouquet bouquet_drop 3d_cartoon_1_pro
    firework_2026 glamour_photo_shoot box_of_joy first_toast_of_the_year my_santa_pic santa_gift
    steampunk_christmas snowglobe christmas_photo_shoot ornament_crash santa_express
    instant_christmas particle_santa_surround coronation_of_frost building_sweater spark_in_the_snow
    scarlet_and_snow cozy_toon_wrap bullet_time_lite magic_cloak balloon_parade jumping_ginger_joy
    bullet_time c4d_cartoon_pro pure_white_wings black_wings golden_wing pink_pink_wings
    venomous_spider throne_of_king luminous_elf woodland_elf japanese_anime_1 american_comics
    guardian_spirit swish_swish snowboarding witch_transform vampire_transform
    pumpkin_head_transform demon_transform mummy_transform zombie_transform cute_pumpkin_transform
    cute_ghost_transform knock_knock_halloween halloween_escape baseball inner_voice a_list_look
    memory_alive trampoline trampoline_night pucker_up guess_what feed_mooncake rampage_ape flyer
    dishwasher pet_chinese_opera magic_fireball gallery_ring pet_moto_rider muscle_pet
    squeeze_scream pet_delivery running_man disappear mythic_style steampunk 3d_cartoon_2
    eagle_snatch hug_from_past firework media_interview pet_chef santa_gifts santa_hug girlfriend
    boyfriend heart_gesture_1 pet_wizard smoke_smoke instant_kid dollar_rain cry_cry
    building_collapse gun_shot mushroom double_gun pet_warrior lightning_power jesus_hug shark_alert
    long_hair lie_flat polar_bear_hug brown_bear_hug jazz_jazz office_escape_plow fly_fly
    watermelon_bomb pet_dance boss_coming wool_curly pet_bee marry_me swing_swing day_to_night
    piggy_morph wig_out car_explosion ski_ski siblings construction_worker let's_ride snatched
    magic_broom felt_felt jumpdrop splashsplash surfsurf fairy_wing angel_wing dark_wing skateskate
    plushcut jelly_press jelly_slice jelly_squish jelly_jiggle pixelpixel yearbook instant_film
    anime_figure rocketrocket bloombloom dizzydizzy fuzzyfuzzy squish expansion
    """.split()  # noqa: SIM905
)
# Two-person effects that take two images (``input.images``) and no model; 5 seconds only.
TWO_PERSON_EFFECTS: Final = frozenset(
    {"cheers_2026", "kiss_pro", "fight_pro", "hug_pro", "heart_gesture_pro"}
)

# A video extension adds this many seconds; an extended video may not exceed MAX_VIDEO_SECONDS.
EXTEND_SECONDS: Final = 5
MAX_VIDEO_SECONDS: Final = 180
# Lip sync takes a Kling video of at most this many seconds.
LIP_SYNC_MAX_SECONDS: Final = 10

# Kept for callers of the first release: the video models of text2video and image2video.
VIDEO_MODELS: Final = {action: ENDPOINTS[action].models for action in ("text2video", "image2video")}

DEFAULT_MODEL: Final = "kling-v1"
DEFAULT_MODE: Final = "std"
DEFAULT_DURATION: Final = "5"

# Human names for the features, used in error messages.
FEATURE_NAMES: Final = {
    "generate": "generation",
    "camera_control": "camera_control",
    "camera_control_simple": "camera_control of type simple",
    "start_end_frame": "start and end frames (image + image_tail)",
    "end_frame": "an end frame without a start frame (image_tail only)",
    "motion_brush": "motion brush (static_mask/dynamic_masks)",
    "sound": "sound",
    "voice": "voice_list",
    "hug": "the hug effect",
    "kiss": "the kiss effect",
    "heart_gesture": "the heart_gesture effect",
    "fight": "the fight effect",
    "text2image": "text to image",
    "image2image": "image to image",
    "subject": "image_reference subject",
    "face": "image_reference face",
    "restyle": "image to image (restyle)",
    "2k": "resolution 2k",
}

# Units billed for a 5 s video in (std, pro); 10 s costs twice as much. Approximate public pricing,
# returned as ``final_unit_deduction``. Model-independent video endpoints bill MODEL_FREE_5S.
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
MODEL_FREE_5S: Final = {"lip-sync": 0.5, "effects": 2.0}
# Units billed per result image, by model ("" for image expansion).
UNITS_PER_IMAGE: Final[dict[str, float]] = {
    "kling-v1": 0.25,
    "kling-v1-5": 0.25,
    "kling-v2": 1.0,
    "kling-v2-new": 1.0,
    "kling-v2-1": 1.0,
    "kolors-virtual-try-on-v1": 1.0,
    "kolors-virtual-try-on-v1-5": 1.0,
    "": 0.5,
}


def models_for(action: str) -> list[str]:
    """The model names an endpoint accepts, in catalogue order."""
    return list(ENDPOINTS[action].models)


def allows(action: str, model: str, feature: str, variant: str) -> bool:
    """Whether the official API allows ``feature`` for this model and variant of an endpoint."""
    allowed = ENDPOINTS[action].models.get(model, {}).get(feature)
    return allowed is not None and variant in allowed


def supports(action: str, model: str, feature: str, mode: str, duration: str) -> bool:
    """Whether the official API allows ``feature`` for this model, mode and duration."""
    return allows(action, model, feature, f"{mode}:{duration}")


@functools.lru_cache(maxsize=1024)  # read on every query of a finished task; few distinct inputs
def units(model: str, mode: str, duration: str, *, action: str = "text2video", count: int = 1) -> str:
    """``final_unit_deduction`` for a finished task: a numeric string, as the API sends it."""
    endpoint = ENDPOINTS.get(action)
    if endpoint is not None and endpoint.makes(IMAGES):
        value = UNITS_PER_IMAGE.get(model, 1.0) * count
    else:
        if action == "video-extend":
            seconds = float(EXTEND_SECONDS)
        else:
            seconds = float(duration) if duration.isdigit() else 5.0
        if model:
            std, pro = UNITS_5S.get(model, (1.0, 3.5))
            per_5s = pro if mode == "pro" else std
        else:
            per_5s = MODEL_FREE_5S.get(action, 1.0)
        value = per_5s * seconds / 5
    return f"{value:g}"


def task_units(task: Task) -> str:
    """``final_unit_deduction`` for a finished task."""
    count = (task.extra or {}).get("n", 1)
    return units(task.model, task.mode, task.duration, action=task.action, count=count)
