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


def variants(modes: tuple[str, ...], seconds: range | tuple[int, ...]) -> frozenset[str]:
    """The variants ``"mode:duration"`` of every mode at every duration: the Kling 3.0 generation
    takes any whole duration from 3 to 15 seconds, which makes too many variants to list."""
    return frozenset(f"{mode}:{second}" for mode in modes for second in seconds)


# -- the Kling 3.0 generation and the 2026 video endpoints (omni, motion control, avatar,
# advanced lip sync, multi-element editing): their variants and capabilities ------------------
BOTH_MODES: Final = ("std", "pro")
V3_SECONDS: Final = range(3, 16)  # "3" to "15"
O1_SECONDS: Final = range(3, 11)  # "3" to "10"
V3_ALL: Final = variants(BOTH_MODES, V3_SECONDS)
O1_ALL: Final = variants(BOTH_MODES, O1_SECONDS)
# kling-v3 on text2video and image2video (the official Kling 3.0 page): every feature at every
# mode and duration it takes; camera control and the motion brush are not among them.
_V3_T2V: Final = {"generate": V3_ALL, "sound": V3_ALL, "voice": V3_ALL, "multi_shot": V3_ALL}
_V3_I2V: Final = {**_V3_T2V, "start_end_frame": V3_ALL, "element": V3_ALL}

# The official API's hosts (international, China, and the old domain), and the host of the
# result URLs in the official examples' answers: what interception and the proxy answer for.
KLING_HOSTS: Final = ("api.klingai.com", "api-singapore.klingai.com", "api-beijing.klingai.com")
MEDIA_HOST: Final = "p1.a.kwimgs.com"
MEDIA_URL: Final = f"https://{MEDIA_HOST}"

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
    # The resource-pack kind its tasks draw on: "video", "image", "virtual_try_on" or "audio".
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
            "kling-v3": _V3_T2V,
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
            "kling-v3": _V3_I2V,
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
            # Kling Image 3.0 (the 3.0 API specification's capability map): text to image, one
            # reference image, element_list, 1k or 2k; no image_reference, no auto ratio.
            "kling-v3": {
                "text2image": RATIOS,
                "image2image": RATIOS,
                "element": RATIOS,
                "2k": RATIOS,
                "2k_image2image": RATIOS,
            },
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
    # -- 2026 video endpoints --
    # Omni video: kling-video-o1 lasts 3 to 10 s, kling-v3-omni 3 to 15 s and adds sound and
    # multi-shot. The page's default model, "kling-v1", is not among its models: the mock
    # defaults to kling-video-o1 (see docs/endpoints-video.md).
    "omni-video": Endpoint(
        "/v1/videos/omni-video",
        (VIDEOS,),
        "video",
        ("mode", "duration"),
        {
            "kling-video-o1": {"generate": O1_ALL},
            "kling-v3-omni": {"generate": V3_ALL, "sound": V3_ALL, "multi_shot": V3_ALL},
        },
        "kling-video-o1",
    ),
    # Motion control: no model_name on the page; real clients send kling-v2-6 or kling-v3. The
    # video lasts as long as the motion reference, so only the mode is a variant axis.
    "motion-control": Endpoint(
        "/v1/videos/motion-control",
        (VIDEOS,),
        "video",
        ("mode",),
        {"kling-v2-6": {"generate": MODES}, "kling-v3": {"generate": MODES, "element": MODES}},
        "kling-v2-6",
    ),
    # Avatar and advanced lip sync take no model: the video lasts as long as the audio (avatar)
    # or the source video (lip sync).
    "avatar": Endpoint("/v1/videos/avatar/image2video", (VIDEOS,), "video", (), {}),
    "advanced-lip-sync": Endpoint("/v1/videos/advanced-lip-sync", (VIDEOS,), "video", (), {}),
    # Multi-element editing of a selection session's video (the capability map: kling-v1-6).
    "multi-elements": Endpoint(
        "/v1/videos/multi-elements",
        (VIDEOS,),
        "video",
        ("mode", "duration"),
        {"kling-v1-6": {"addition": ALL, "swap": ALL, "removal": ALL}},
        "kling-v1-6",
    ),
}

# Resources that endpoints make and other endpoints refer to by id, each kept under its own
# action in the one task store (Backend.add_record, Backend.find_record).
CUSTOM_VOICES: Final = "custom-voices"  # a task; the voice_id is its task_id
CUSTOM_ELEMENTS: Final = "custom-elements"  # a record made at once; the element_id (digits) is its id
FACE_SESSIONS: Final = "identify-face"  # a record; the session_id is its id
SELECTION_SESSIONS: Final = "multi-elements-selection"  # a record; the session_id is its id
IMAGE_RECOGNITIONS: Final = "image-recognize"  # a record: one segmentation, its masks served 30 days
# How long the sessions live (identify-face, multi-elements selection): 24 hours, per the pages.
SESSION_SECONDS: Final = 24 * 3600
# identify-face: Kling videos of 2 to 60 seconds at 720p or 1080p.
FACE_VIDEO_SECONDS: Final = (2, 60)
FACE_RESOLUTIONS: Final = frozenset({"720p", "1080p"})
# The segmentation types image-recognize answers, in the page's order.
SEGMENTATION_TYPES: Final = ("object_seg", "head_seg", "face_seg", "cloth_seg")
# A video or audio given by URL is never fetched: it is taken to last this long, unless the URL
# is one of the mock's own result files (then its task says how long it lasts).
UNKNOWN_MEDIA_SECONDS: Final = 5

# The official voice and element libraries (``owned_by: "kling"``), PRESET_VOICE_IDS and
# PRESET_ELEMENT_IDS, are defined with their data (PRESET_VOICES, PRESET_ELEMENTS) further down.

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

# Result video resolution by model and mode, from the capability map: 720p in std and 1080p in
# pro unless a model says otherwise.
VIDEO_RESOLUTIONS: Final[dict[str, dict[str, str]]] = {
    "kling-v1": {"std": "720p", "pro": "720p"},
    "kling-v2-master": {"std": "720p", "pro": "720p"},
    "kling-v2-1-master": {"std": "1080p", "pro": "1080p"},
}


def video_shape(task: Task) -> tuple[str, str]:
    """(aspect ratio, resolution class) of a task's result video: what its rules recorded in
    ``extra`` (``aspect_ratio``; ``resolution`` where the request names one), else 16:9 at the
    model and mode's resolution (720p in std, 1080p in pro unless VIDEO_RESOLUTIONS says else)."""
    extra = task.extra or {}
    default = VIDEO_RESOLUTIONS.get(task.model, {}).get(task.mode, "1080p" if task.mode == "pro" else "720p")
    return extra.get("aspect_ratio") or "16:9", extra.get("resolution") or default


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
    "multi_shot": "multi_shot",
    "element": "element_list",
    "addition": "edit_mode addition",
    "swap": "edit_mode swap",
    "removal": "edit_mode removal",
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
    # Kling 3.0 and the omni models: 0.6 and 0.8 units a second (silent), per published prices.
    "kling-v3": (3.0, 4.0),
    "kling-v3-omni": (3.0, 4.0),
    "kling-video-o1": (3.0, 4.0),
}
# Endpoints whose price differs from the model's (motion control bills 0.9 / 1.2 units a second
# of output on kling-v3).
UNITS_5S_BY_ACTION: Final[dict[tuple[str, str], tuple[float, float]]] = {
    ("motion-control", "kling-v3"): (4.5, 6.0),
}
MODEL_FREE_5S: Final = {"lip-sync": 0.5, "effects": 2.0, "avatar": 2.0, "advanced-lip-sync": 1.0}
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
    if action in UNITS_PER_TASK:
        value = UNITS_PER_TASK[action]
    elif endpoint is not None and endpoint.makes(IMAGES):
        value = UNITS_PER_IMAGE_OF_ACTION.get(action, UNITS_PER_IMAGE.get(model, 1.0)) * count
    else:
        seconds = float(EXTEND_SECONDS) if action == "video-extend" else _seconds(duration)
        if model:
            std, pro = UNITS_5S_BY_ACTION.get((action, model)) or UNITS_5S.get(model, (1.0, 3.5))
            per_5s = pro if mode == "pro" else std
        else:
            per_5s = MODEL_FREE_5S.get(action, 1.0)
        value = per_5s * seconds / 5
    return f"{value:g}"


def _seconds(duration: str) -> float:
    """A duration string ("5", "7.3") as seconds; 5 for anything else."""
    try:
        seconds = float(duration)
    except ValueError:
        return 5.0
    return seconds if 0 < seconds < 1e6 else 5.0


def task_units(task: Task) -> str:
    """``final_unit_deduction`` for a finished task."""
    if task.action in MODEL_ROUTES:  # the model-in-path design bills per second (section below)
        return model_api_units(task)
    count = (task.extra or {}).get("n", 1)
    return units(task.model, task.mode, task.duration, action=task.action, count=count)


# -- images, audio and the general library (issue 16) --------------------------------------------
#
# Sources: the official pages copied in WHQ25/rawgenai, docs/research/kling/ (omni-image-o1.md,
# multi-image-to-image.md, image-generation.md, text-to-audio.md, video-to-audio.md, tts.md,
# custom-voices.md, custom-elements.md, ai-multi-shot.md, capability-map.md), the English API
# reference and the Kling 3.0 API specification's capability map. Where they disagree,
# docs/endpoints-images-audio.md says what the mock does and why.

TTS: Final = "tts"  # speech: answered at once, kept as a record (no query route)
# Endpoints whose task has ended when it is answered: a fate reaches one only when it names it.
INSTANT_ACTIONS: Final = frozenset({TTS})
AI_MULTI_SHOT: Final = "ai-multi-shot"
OMNI_RATIOS: Final = RATIOS | {"auto"}

ENDPOINTS.update(
    {
        # text2image: no reference; image2image: image_list or element_list; 2k, 4k: resolution;
        # series: result_type series. The variant is the aspect ratio, auto included.
        "omni-image": Endpoint(
            "/v1/images/omni-image",
            (IMAGES,),
            "image",
            ("aspect_ratio",),
            {
                "kling-image-o1": {"text2image": RATIOS, "image2image": OMNI_RATIOS, "2k": OMNI_RATIOS},
                "kling-v3-omni": {
                    "text2image": OMNI_RATIOS,
                    "image2image": OMNI_RATIOS,
                    "2k": OMNI_RATIOS,
                    "4k": OMNI_RATIOS,
                    "series": OMNI_RATIOS,
                },
            },
            "kling-image-o1",
        ),
        "multi-image2image": Endpoint(
            "/v1/images/multi-image2image",
            (IMAGES,),
            "image",
            ("aspect_ratio",),
            {"kling-v2": {"generate": RATIOS}, "kling-v2-1": {"generate": RATIOS}},
            "kling-v2",
        ),
        "text-to-audio": Endpoint("/v1/audio/text-to-audio", (AUDIOS,), "audio", (), {}),
        # The source video comes back with its new sound track, and the track alone.
        "video-to-audio": Endpoint("/v1/audio/video-to-audio", (VIDEOS, AUDIOS), "audio", (), {}),
        TTS: Endpoint("/v1/audio/tts", (AUDIOS,), "audio", (), {}),
        CUSTOM_VOICES: Endpoint("/v1/general/custom-voices", (VOICES,), "audio", (), {}),
        AI_MULTI_SHOT: Endpoint("/v1/general/ai-multi-shot", (IMAGES,), "image", (), {}),
    }
)

FEATURE_NAMES.update(
    {
        "element": "element_list",
        "4k": "resolution 4k",
        "series": "result_type series",
    }
)

# Task actions whose tasks their owner may delete (a deleted one vanishes from lists and queries).
DELETABLE: Final = frozenset({CUSTOM_VOICES})
# Endpoints whose requests take no watermark_info, so their tasks show none (§10 of the digest).
NO_WATERMARK_INFO: Final = frozenset(
    {"virtual-try-on", "text-to-audio", "video-to-audio", TTS, CUSTOM_VOICES, "ai-multi-shot"}
)

# Omni image: images and elements referred to, at most; a series of "auto" images has this many.
OMNI_IMAGE_MAX_REFERENCES: Final = 10
SERIES_AUTO_IMAGES: Final = 4
# Omni video (both designs): images and elements referred to, at most, with a reference video
# (True) and without; elements beside a first frame, at most (Kling 3.0 Omni).
OMNI_VIDEO_MAX_REFERENCES: Final = {True: 4, False: 7}
OMNI_FIRST_FRAME_MAX_ELEMENTS: Final = 3
# AI multi-shot makes this many views of the element from its frontal image.
MULTI_SHOT_IMAGES: Final = 3
# Video to audio takes a video of this many seconds, as .mp4 or .mov.
VIDEO_TO_AUDIO_SECONDS: Final = (3.0, 20.0)
VIDEO_SUFFIXES: Final = (".mp4", ".mov")
# A custom voice is cloned from 5 to 30 s of one clean voice: an audio or video file, or a video
# the account made with kling-v2-6 and sound on, an avatar or a lip sync (these actions).
VOICE_SECONDS: Final = (5.0, 30.0)
VOICE_FILE_SUFFIXES: Final = (".mp3", ".wav", ".mp4", ".mov")
VOICE_SOURCE_ACTIONS: Final = frozenset({"lip-sync", "advanced-lip-sync", "avatar"})
VOICE_SOURCE_MODEL: Final = "kling-v2-6"
# Speech: speeds outside the range are brought into it (the page: "automatically rounded"); a
# clip lasts as long as its text takes to say at this many characters a second, at speed 1.
TTS_SPEEDS: Final = (0.8, 2.0)
SPEECH_CHARS_PER_SECOND: Final = {"zh": 4.0, "en": 14.0}
# A voice's trial clip (trial_url) lasts this long.
TRIAL_SECONDS: Final = 3.0


@dataclass(frozen=True, slots=True)
class PresetVoice:
    """A voice of the official library: its names in the languages it speaks."""

    voice_id: str
    name_zh: str | None
    name_en: str | None

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(lang for lang, name in (("zh", self.name_zh), ("en", self.name_en)) if name)

    @property
    def name(self) -> str:
        """The name the international API lists it by: English where it has one."""
        return self.name_en or self.name_zh or self.voice_id


# The official voices: id | Chinese name | English name ("-": not in that language). The ids and
# names are the ones Kuaishou's own client offers (KwaiVGI/ComfyUI-KLingAI-API, py/nodes.py,
# LipSyncTextInputNode.audio_types); the same ids serve lip sync and speech.
_VOICE_TABLE: Final = """
genshin_vindi2 | 阳光少年 | Sunny
zhinen_xuesheng | 懂事小弟 | Sage
tiyuxi_xuedi | 运动少年 | -
ai_shatang | 青春少女 | Blossom
genshin_klee2 | 温柔小妹 | Peppy
genshin_kirara | 元气少女 | Dove
ai_kaiya | 阳光男生 | Shine
tiexin_nanyou | 幽默小哥 | -
ai_chenjiahao_712 | 文艺小哥 | Lyric
girlfriend_1_speech02 | 甜美邻家 | -
chat1_female_new-3 | 温柔姐姐 | Tender
girlfriend_2_speech02 | 职场女青 | -
cartoon-boy-07 | 活泼男童 | Zippy
cartoon-girl-01 | 俏皮女童 | Sprite
ai_huangyaoshi_712 | 稳重老爸 | Rock
you_pingjing | 温柔妈妈 | Helen
ai_laoguowang_712 | 严肃上司 | Titan
chengshu_jiejie | 优雅贵妇 | Grace
zhuxi_speech02 | 慈祥爷爷 | -
uk_oldman3 | 唠叨爷爷 | -
laopopo_speech02 | 唠叨奶奶 | Prattle
heainainai_speech02 | 和蔼奶奶 | Hearth
dongbeilaotie_speech02 | 东北老铁 | -
chongqingxiaohuo_speech02 | 重庆小伙 | -
chuanmeizi_speech02 | 四川妹子 | -
chaoshandashu_speech02 | 潮汕大叔 | -
ai_taiwan_man2_speech02 | 台湾男生 | -
xianzhanggui_speech02 | 西安掌柜 | -
tianjinjiejie_speech02 | 天津姐姐 | -
diyinnansang_DB_CN_M_04-v2 | 新闻播报男 | -
yizhipiannan-v1 | 译制片男 | -
guanxiaofang-v2 | 元气少女 | -
tianmeixuemei-v1 | 撒娇女友 | -
daopianyansang-v1 | 刀片烟嗓 | -
mengwa-v1 | 乖巧正太 | -
AOT | - | Ace
oversea_male1 | - | Anchor
girlfriend_4_speech02 | - | Melody
chat_0407_5-1 | - | Siren
uk_boy1 | - | Bud
PeppaPig_platform | - | Candy
ai_huangzhong_712 | - | Beacon
calm_story1 | - | Lore
uk_man2 | - | Crag
reader_en_m-v1 | - | The Reader
commercial_lady_en_f-v1 | - | Commercial Lady
"""


def _voices(table: str) -> dict[str, PresetVoice]:
    voices = {}
    for line in table.strip().splitlines():
        voice_id, zh, en = (part.strip() for part in line.split("|"))
        voices[voice_id] = PresetVoice(voice_id, None if zh == "-" else zh, None if en == "-" else en)
    return voices


PRESET_VOICES: Final = _voices(_VOICE_TABLE)
# Accepted by every endpoint that takes a voice_id (validation.check_voice), listed by
# presets-voices.
PRESET_VOICE_IDS: Final = frozenset(PRESET_VOICES)

# Element tags (tag_list): id -> (name, description), as custom-elements.md lists them.
ELEMENT_TAGS: Final = {
    "o_101": ("热梗", "网络热梗或流行文化"),
    "o_102": ("人物", "人物角色"),
    "o_103": ("动物", "动物或宠物"),
    "o_104": ("道具", "道具或物品"),
    "o_105": ("服饰", "服装或穿戴"),
    "o_106": ("场景", "背景场景"),
    "o_107": ("特效", "特殊效果"),
    "o_108": ("其他", "其他类别"),
}


@dataclass(frozen=True, slots=True)
class PresetElement:
    """An element of the official library; its images are served by the mock
    (``/media/elements/{element_id}/{index}.png``: 0 the frontal image, then the others)."""

    element_id: str
    name: str
    description: str
    tags: tuple[str, ...]
    refer_images: int = 2


# The official element library. Its real contents are not public: these are the mock's own,
# except the first id, which the official omni-image example sends, so that example runs as is.
PRESET_ELEMENTS: Final = {
    element.element_id: element
    for element in (
        PresetElement("829836802793406551", "Astronaut", "An astronaut in a white suit", ("o_102",), 3),
        PresetElement("829836802793406552", "Corgi", "A corgi with a red collar", ("o_103",)),
        PresetElement("829836802793406553", "Vintage camera", "A silver film camera", ("o_104",)),
        PresetElement("829836802793406554", "Trench coat", "A beige double-breasted coat", ("o_105",), 1),
        PresetElement("829836802793406555", "Neon street", "A rainy street at night", ("o_106",)),
        PresetElement("829836802793406556", "Sparkles", "Golden sparkles drifting up", ("o_107",), 1),
    )
}
# Accepted by every endpoint that takes an element_id (validation.check_element), listed by
# presets-elements.
PRESET_ELEMENT_IDS: Final = frozenset(PRESET_ELEMENTS)

# Units a finished task costs regardless of its size (the published price list); and per result
# image where one endpoint's price differs from its models' on /v1/images/generations.
UNITS_PER_TASK: Final = {
    "text-to-audio": 0.25,
    "video-to-audio": 0.25,
    TTS: 0.05,
    CUSTOM_VOICES: 0.05,
    "ai-multi-shot": 5.0,
}
UNITS_PER_IMAGE_OF_ACTION: Final = {"omni-image": 2.0, "multi-image2image": 4.0}
UNITS_PER_IMAGE.update({"kling-v3": 2.0})
# Models whose start and end frame videos are silent only (capability map, kling-v2-6:
# start and end frames, silent videos only); sound "on" with image + image_tail is refused.
SILENT_START_END_FRAMES: Final = frozenset({"kling-v2-6"})


# -- the model-in-path design ------------------------------------------------------------------
#
# Kling's second API design (mid-2026), served beside the legacy one on the same task store: the
# model rides in the path (POST /text-to-video/kling-3.0), the body is a top-level ``prompt``
# (text-to-video) or a typed ``contents`` array, plus ``settings`` and ``options``, and tasks
# are read through /tasks. Each (operation, model) page is one ModelRoute; a task it creates has
# the route's path without its slash as its action ("text-to-video/kling-3.0"), so fates,
# limits, the journal and the control API tell the endpoints apart. Sources: the official pages
# as ../shared/reference/kling-new-api-standard.md digests them (sections 4-6, 9.3).

TEXT_TO_VIDEO: Final = "text-to-video"
IMAGE_TO_VIDEO: Final = "image-to-video"
OMNI_VIDEO: Final = "omni-video"
MOTION_CONTROL: Final = "motion-control"
MODEL_API_OPERATIONS: Final = (TEXT_TO_VIDEO, IMAGE_TO_VIDEO, OMNI_VIDEO, MOTION_CONTROL)


def model_in_path(path: str) -> str | None:
    """The model a model-in-path create names (``/text-to-video/kling-3.0``), else None."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "" and parts[1] in MODEL_API_OPERATIONS and parts[2]:
        return parts[2]
    return None


# contents[].type values, and the ones that carry an image (URL or Base64) or a video (URL).
IMAGE_ITEMS: Final = frozenset({"first_frame", "last_frame", "refer_image", "image"})
VIDEO_ITEMS: Final = frozenset({"feature_video", "base_video", "video"})
REFERENCE_VIDEOS: Final = frozenset({"feature_video", "base_video"})

# The legacy design's modes, as the new one's resolutions replace them (720p = std, 1080p = pro).
LEGACY_MODES: Final = {"720p": "std", "1080p": "pro"}

# Billing kinds of a per-second rate: a silent video, one with native audio, one made from a
# reference video (feature_video / base_video).
SILENT: Final = "silent"
WITH_AUDIO: Final = "audio"
WITH_VIDEO: Final = "video"


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """One model-in-path endpoint, ``POST /{operation}/{model}``, and what its page allows.

    ``None`` for a setting means the page has no such field. ``items`` maps each contents item
    type the page lists to the most items of that type a body may hold (None: no count stated).
    """

    operation: str
    model: str
    # The model_name the legacy design calls the same model ("" where it has none): what the
    # rates below are checked against (tests/test_model_api.py), and the docs' comparison.
    legacy_model: str
    resolutions: tuple[str, ...]
    durations: tuple[int, ...] | None
    aspect_ratios: tuple[str, ...] | None
    audio: tuple[str, ...] | None
    default_audio: str
    multi_shot: bool
    items: dict[str, int | None]
    prompt_max: int
    # Units per second of output, by billing kind (SILENT, WITH_AUDIO, WITH_VIDEO) and resolution.
    rates: dict[str, dict[str, float]]
    character_orientation: bool = False
    default_resolution: str = "720p"
    default_duration: int = 5

    @property
    def action(self) -> str:
        """The tasks' action, and the path without its leading slash."""
        return f"{self.operation}/{self.model}"

    @property
    def path(self) -> str:
        return f"/{self.action}"

    @property
    def operation_id(self) -> str:
        """``create<Operation><Model>`` in openapi.yaml, e.g. createTextToVideoKling30Turbo."""
        words = [*self.operation.split("-"), *self.model.replace(".", "").split("-")]
        return "create" + "".join(word[:1].upper() + word[1:] for word in words)

    @property
    def takes_contents(self) -> bool:
        """Text-to-video takes a top-level ``prompt``; every other operation a ``contents`` array."""
        return self.operation != TEXT_TO_VIDEO

    def settings_fields(self) -> frozenset[str]:
        """The ``settings`` keys this page lists."""
        fields = {"resolution"}
        for name, present in (
            ("duration", self.durations is not None),
            ("aspect_ratio", self.aspect_ratios is not None),
            ("audio", self.audio is not None),
            ("multi_shot", self.multi_shot),
            ("character_orientation", self.character_orientation),
        ):
            if present:
                fields.add(name)
        return frozenset(fields)

    def rate(self, kind: str, resolution: str) -> float:
        """Units per second for a video of this billing kind and resolution (the silent rate
        where the page prices no other)."""
        table = self.rates.get(kind) or self.rates[SILENT]
        return table.get(resolution) or self.rates[SILENT][resolution]


_HD: Final = ("720p", "1080p")
_UHD: Final = ("720p", "1080p", "4k")
_RATIOS3: Final = ("16:9", "9:16", "1:1")
_D3_15: Final = tuple(range(3, 16))
_D5_10: Final = (5, 10)
_OMNI_ITEMS: Final[dict[str, int | None]] = {
    "prompt": 1,
    "first_frame": 1,
    "last_frame": 1,
    "refer_image": 7,
    "feature_video": 1,
    "base_video": 1,
    "element": 7,
}
_RATES_30: Final = {
    SILENT: {"720p": 0.6, "1080p": 0.8, "4k": 3.0},
    WITH_AUDIO: {"720p": 0.9, "1080p": 1.2, "4k": 3.0},
}
_RATES_26: Final = {SILENT: {"720p": 0.3, "1080p": 0.5}, WITH_AUDIO: {"1080p": 1.0}}
_RATES_25T: Final = {SILENT: {"720p": 0.3, "1080p": 0.5}}
# Turbo has no audio field and always makes sound: its one rate includes audio.
_RATES_30T: Final = {SILENT: {"720p": 0.8, "1080p": 1.0}}
_RATES_MOTION_30: Final = {SILENT: {"720p": 0.9, "1080p": 1.2}}
# No public figure for 2.6 motion control: the mock bills 2.6's silent rates.
_RATES_MOTION_26: Final = _RATES_26

MODEL_ROUTES: Final[dict[str, ModelRoute]] = {
    route.action: route
    for route in (
        ModelRoute(
            TEXT_TO_VIDEO, "kling-3.0-turbo", "", _HD, _D3_15, _RATIOS3, None, "", False, {}, 3072, _RATES_30T
        ),
        ModelRoute(
            IMAGE_TO_VIDEO,
            "kling-3.0-turbo",
            "",
            _HD,
            _D3_15,
            None,
            None,
            "",
            False,
            {"prompt": 1, "first_frame": 1},
            2500,
            _RATES_30T,
        ),
        ModelRoute(
            TEXT_TO_VIDEO,
            "kling-3.0",
            "kling-v3",
            _UHD,
            _D3_15,
            _RATIOS3,
            ("native", "off"),
            "off",
            True,
            {},
            3072,
            _RATES_30,
        ),
        ModelRoute(
            IMAGE_TO_VIDEO,
            "kling-3.0",
            "kling-v3",
            _UHD,
            _D3_15,
            None,
            ("native", "off"),
            "off",
            True,
            {"prompt": 1, "first_frame": 1, "last_frame": 1, "element": 3},
            3072,
            _RATES_30,
        ),
        ModelRoute(
            OMNI_VIDEO,
            "kling-3.0-omni",
            "kling-v3-omni",
            _UHD,
            _D3_15,
            _RATIOS3,
            ("native", "original", "off"),
            "off",
            True,
            _OMNI_ITEMS,
            3072,
            {
                SILENT: {"720p": 0.6, "1080p": 0.8, "4k": 3.0},
                WITH_AUDIO: {"720p": 0.8, "1080p": 1.0, "4k": 3.0},
                WITH_VIDEO: {"720p": 0.9, "1080p": 1.2, "4k": 3.0},
            },
        ),
        # The O1 page gives audio original/off; a client corrected after live calls sends
        # native, which the mock accepts too (docs/model-in-path-api.md, "Decisions").
        ModelRoute(
            OMNI_VIDEO,
            "kling-o1",
            "kling-video-o1",
            _HD,
            tuple(range(3, 11)),
            _RATIOS3,
            ("native", "original", "off"),
            "off",
            False,
            _OMNI_ITEMS,
            2500,
            {SILENT: {"720p": 0.6, "1080p": 0.8}, WITH_VIDEO: {"720p": 0.9, "1080p": 1.2}},
        ),
        ModelRoute(
            MOTION_CONTROL,
            "kling-3.0",
            "kling-v3",
            _HD,
            None,
            None,
            ("original", "off"),
            "original",
            False,
            {"prompt": 1, "image": 1, "video": 1, "element": 1},
            2500,
            _RATES_MOTION_30,
            character_orientation=True,
        ),
        ModelRoute(
            MOTION_CONTROL,
            "kling-2.6",
            "kling-v2-6",
            _HD,
            None,
            None,
            ("original", "off"),
            "original",
            False,
            {"prompt": 1, "image": 1, "video": 1},
            2500,
            _RATES_MOTION_26,
            character_orientation=True,
        ),
        ModelRoute(
            TEXT_TO_VIDEO,
            "kling-2.6",
            "kling-v2-6",
            _HD,
            _D5_10,
            _RATIOS3,
            ("native", "off"),
            "off",
            False,
            {},
            2500,
            _RATES_26,
        ),
        ModelRoute(
            IMAGE_TO_VIDEO,
            "kling-2.6",
            "kling-v2-6",
            _HD,
            _D5_10,
            None,
            ("native", "off"),
            "off",
            False,
            {"prompt": 1, "first_frame": 1, "last_frame": 1, "voice": 2},
            2500,
            _RATES_26,
        ),
        ModelRoute(
            TEXT_TO_VIDEO,
            "kling-2.5-turbo",
            "kling-v2-5-turbo",
            _HD,
            _D5_10,
            _RATIOS3,
            None,
            "",
            False,
            {},
            2500,
            _RATES_25T,
        ),
        ModelRoute(
            IMAGE_TO_VIDEO,
            "kling-2.5-turbo",
            "kling-v2-5-turbo",
            _HD,
            _D5_10,
            None,
            None,
            "",
            False,
            {"prompt": 1, "first_frame": 1, "last_frame": 1},
            2500,
            _RATES_25T,
        ),
    )
}
# Every new-design task is a video task, drawing on the video resource pack: the ``product_type``
# a /tasks list filters on.
MODEL_API_PRODUCT: Final = "video"

# Registered as endpoints too, so the machinery every task shares (result files, the resource
# packs of /account/costs, limits) serves them as it serves the legacy ones.
for _route in MODEL_ROUTES.values():
    ENDPOINTS[_route.action] = Endpoint(
        _route.path,
        (VIDEOS,),
        "video",
        ("resolution", "duration"),
        {_route.model: {"generate": ANY}},
        _route.model,
    )


def model_route(action: str) -> ModelRoute | None:
    """The model-in-path endpoint behind an action, None for a legacy action."""
    return MODEL_ROUTES.get(action)


def model_api_units(task: Task) -> str:
    """Units a finished new-design task deducts: its route's per-second rate for its
    resolution and billing kind (``extra["billing_kind"]``), times its seconds."""
    route = MODEL_ROUTES[task.action]
    extra = task.extra or {}
    resolution = extra.get("resolution") or route.default_resolution
    seconds = float(task.duration) if task.duration.isdigit() else float(route.default_duration)
    value = route.rate(extra.get("billing_kind") or SILENT, resolution) * seconds
    return f"{round(value, 4):g}"
