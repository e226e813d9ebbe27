"""The account's resource packs as ``GET /account/costs`` shows them: what each pack held, what
the account's finished tasks have drawn from it, and its status at the mock's current time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Final

from .config import ResourcePack

# The packs every account holds when the configuration names none.
DEFAULT_PACKS: Final = (
    ResourcePack("Video Generation Pack", "video", 1000.0),
    ResourcePack("Image Generation Pack", "image", 1000.0),
    ResourcePack("Virtual Try-On Pack", "virtual_try_on", 100.0),
    # Sound effects, speech and voice clones draw on an audio pack (package_type "audio").
    ResourcePack("Audio Generation Pack", "audio", 100.0),
)


def subscribe_infos(
    packs: Iterable[ResourcePack],
    draws: Iterable[tuple[int, str, float]],
    *,
    account: str,
    now_ms: int,
    start_ms: int,
    end_ms: int,
    name: str | None = None,
) -> list[dict[str, Any]]:
    """``resource_pack_subscribe_infos``: the packs valid at some time in [start_ms, end_ms]
    (and named ``name``, if given). Each draw ``(when_ms, kind, units)`` comes out of the packs
    of its kind that were in force then, soonest to expire first."""
    packs = list(packs)
    remaining = [float(pack.total_quantity) for pack in packs]
    by_expiry = sorted(range(len(packs)), key=lambda i: packs[i].invalid_time)
    for when, kind, units in sorted(draws):
        for i in by_expiry:
            pack = packs[i]
            if units <= 0:
                break
            if pack.kind == kind and pack.effective_time <= when < pack.invalid_time:
                drawn = min(units, remaining[i])
                remaining[i] -= drawn
                units -= drawn
    infos = []
    for index, pack in enumerate(packs):
        if name is not None and pack.name != name:
            continue
        if pack.invalid_time < start_ms or pack.effective_time > end_ms:
            continue
        infos.append(
            {
                "resource_pack_name": pack.name,
                "resource_pack_id": hashlib.sha256(f"{account}\0{pack.name}".encode()).hexdigest()[:32],
                "resource_pack_type": pack.pack_type,
                "total_quantity": float(pack.total_quantity),
                "remaining_quantity": round(remaining[index], 4),
                "purchase_time": pack.effective_time,
                "effective_time": pack.effective_time,
                "invalid_time": pack.invalid_time,
                "status": _status(pack, remaining[index], now_ms),
            }
        )
    return infos


def _status(pack: ResourcePack, remaining: float, now_ms: int) -> str:
    if now_ms < pack.effective_time:
        return "toBeOnline"
    if now_ms >= pack.invalid_time:
        return "expired"
    if remaining <= 0:
        return "runOut"
    return "online"
