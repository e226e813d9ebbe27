"""Signed callbacks: the Standard Webhooks scheme (Svix's) that Kling's Webhook Signature uses.

A secret is ``whsec_`` + Base64 of its key bytes. Each callback carries ``webhook-id`` (one per
notification, the same on every retry), ``webhook-timestamp`` (Unix seconds at sending) and
``webhook-signature``: ``v1,<Base64 HMAC-SHA256 of "{id}.{timestamp}.{raw body}">``, one per
secret in force, space-separated (both the old and the new secret sign during a rotation). The
callback sender signs with :func:`signature_header`; the pytest plugin and the test handle
verify with :func:`verify`. No dependencies beyond the standard library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

PREFIX: Final = "whsec_"
SIGNATURE_VERSION: Final = "v1"
# Receivers refuse a timestamp further than this from their clock (the official rule: 5 min).
TOLERANCE_SECONDS: Final = 5 * 60
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = "webhook-id", "webhook-timestamp", "webhook-signature"


class WebhookError(ValueError):
    """A secret that is not ``whsec_`` + Base64, or a callback that does not verify."""


def key_of(secret: str) -> bytes:
    """The key bytes of a ``whsec_`` secret; WebhookError if it is not one."""
    if not isinstance(secret, str) or not secret.startswith(PREFIX):
        raise WebhookError(f"a webhook secret starts with {PREFIX!r} (then Base64 of the key)")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError(f"a webhook secret is {PREFIX!r} + standard Base64; this one is not") from None
    if not key:
        raise WebhookError("a webhook secret needs at least one key byte")
    return key


def new_secret(size: int = 32) -> str:
    """A fresh random secret, as the console makes one."""
    return PREFIX + base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<signature>`` of ``body`` under ``secret``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(secrets_in_force: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: one signature per secret in force, space-separated."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_in_force)


def headers(
    secrets_in_force: Sequence[str], msg_id: str, body: bytes, *, now: float | None = None
) -> dict[str, str]:
    """The three headers a signed callback carries, timestamped now (the wall clock: a
    receiver compares it with its own); empty without a secret, as the official service sends
    none then."""
    if not secrets_in_force:
        return {}
    timestamp = int(time.time() if now is None else now)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(secrets_in_force, msg_id, timestamp, body),
    }


def verify(
    secret: str | Iterable[str],
    received_headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> Any:
    """Check a received callback as a receiver must: the three headers (names in any case),
    the timestamp within ``tolerance`` seconds of ``now`` (default: the wall clock), and one
    ``v1`` signature matching under ``secret`` (or any of several, during a rotation), compared
    in constant time. Returns the parsed JSON body; raises WebhookError saying what failed."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    lowered = {name.lower(): value for name, value in received_headers.items()}
    msg_id, stamp, signatures = (lowered.get(h) for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not (msg_id and stamp and signatures):
        raise WebhookError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not (stamp.isascii() and stamp.isdigit()):
        raise WebhookError(f"webhook-timestamp is not Unix seconds: {stamp[:32]!r}")
    timestamp = int(stamp)
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > tolerance:
        raise WebhookError(
            f"webhook-timestamp {timestamp} is more than {tolerance:g}s from now ({clock:.0f})"
        )
    candidates = [secret] if isinstance(secret, str) else list(secret)
    expected = [sign(s, msg_id, timestamp, raw).encode() for s in candidates]
    for given in signatures.split(" "):
        if any(hmac.compare_digest(given.encode(), e) for e in expected):
            return json.loads(raw)
    raise WebhookError("no webhook-signature matches the secret")
