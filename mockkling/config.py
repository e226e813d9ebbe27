"""Configuration: defaults, a TOML file, ``MOCKKLING_*`` environment variables and CLI flags.

Later sources override earlier ones in that order. Accounts are the exception: the built-in
default account exists only when no source names an account or an API key, so a user who
configures credentials gets exactly those.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import webhooks
from .contents import Policy
from .fault_rules import FaultRule
from .journal import DEFAULT_BODY_BYTES, DEFAULT_HEADER_BYTES, DEFAULT_SIZE
from .limits import Limits

# Documented default credentials for local use (docs/surfaces.md, "Credentials").
DEFAULT_ACCESS_KEY = "mockkling-access-key"
DEFAULT_SECRET_KEY = "mockkling-secret-key-for-local-tests"
DEFAULT_API_KEY = "sk-mockkling-local-key"
# The default account's published webhook secret (whsec_ + Base64 of its key): callbacks from a
# mock with no configured credentials are signed with it, so a receiver can be tested at once.
DEFAULT_WEBHOOK_SECRET = "whsec_bW9ja2tsaW5nLWxvY2FsLXdlYmhvb2stc2VjcmV0IQ=="

# The official task_status_msg of a task refused by content moderation.
MODERATION_MESSAGE = "Failure to pass the risk control system"

# -- gateway profiles ------------------------------------------------------------------------
# How the gateway surfaces answer (mockkling/gateway_profiles.py): as the seed document says
# ("seed", the default), as the seed's own gateway really does ("ppwapi", pipiwei123/ppwapi), or
# as mainline new-api does ("new-api", QuantumNous/new-api, with its OpenAI-style video API).
GATEWAY_PROFILES = ("seed", "ppwapi", "new-api")
DEFAULT_GATEWAY = "seed"


def gateway_profile(value: object, where: str) -> str:
    """``value`` as a gateway profile name; ConfigError naming the choices otherwise."""
    if value not in GATEWAY_PROFILES:
        raise ConfigError(f"{where} must be one of {', '.join(GATEWAY_PROFILES)}, not {value!r}")
    return str(value)


class ConfigError(ValueError):
    """A configuration value the mock cannot use; the message says which and why."""


# -- shared state (issue 20): ``state_file`` may name a Redis server instead of a file --------
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis_url(state: str | None) -> bool:
    """Whether a ``--state`` value names a Redis server (``redis://HOST:PORT/DB``) rather than a file."""
    return state is not None and state.startswith(REDIS_SCHEMES)


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds a task spends in ``submitted`` and then in ``processing``."""

    queue_seconds: float = 1.0
    run_seconds: float = 4.0

    def __post_init__(self) -> None:
        for name in ("queue_seconds", "run_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{name} must be a number >= 0, not {value!r}")


@dataclass(frozen=True, slots=True)
class FailRule:
    """Tasks whose prompt contains ``prompt_contains`` (case-insensitive) end ``failed``."""

    prompt_contains: str
    message: str = MODERATION_MESSAGE

    def __post_init__(self) -> None:
        if not isinstance(self.prompt_contains, str) or not self.prompt_contains:
            raise ConfigError("a fail rule needs a non-empty prompt_contains")
        if not isinstance(self.message, str):
            raise ConfigError("a fail rule's message must be a string")


# Loopback only: callbacks never leave the machine unless the configuration says so.
DEFAULT_CALLBACK_HOSTS = ("localhost", "127.0.0.0/8", "::1")


@dataclass(frozen=True, slots=True)
class CallbackSettings:
    """Where and how persistently the mock POSTs ``callback_url`` notifications.

    ``allowed_hosts`` entries: ``*`` (any host), an IP address or CIDR network, ``*.suffix``,
    or an exact host name. They are matched against the URL's host as written (names are
    never resolved); a task whose callback host matches none is created but gets no callback.
    Each notification is tried ``attempts`` times at most, each attempt waiting at most
    ``timeout_seconds`` for an answer, with ``backoff_seconds`` before the first retry,
    doubling after each failure.
    """

    allowed_hosts: tuple[str, ...] = DEFAULT_CALLBACK_HOSTS
    attempts: int = 4
    backoff_seconds: float = 1.0
    timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        hosts = self.allowed_hosts
        if isinstance(hosts, str) or not all(isinstance(h, str) and h for h in hosts):
            raise ConfigError(f"allowed_hosts must be a list of non-empty strings, not {hosts!r}")
        object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in hosts))
        for host in self.allowed_hosts:
            if "/" in host:
                try:
                    ipaddress.ip_network(host, strict=False)
                except ValueError:
                    raise ConfigError(f"allowed_hosts: {host!r} is not a valid network") from None
        if (
            isinstance(self.attempts, bool)
            or not isinstance(self.attempts, int)
            or not 1 <= self.attempts <= 20
        ):
            raise ConfigError(f"attempts must be an integer from 1 to 20, not {self.attempts!r}")
        for name, low in (("backoff_seconds", 0.0), ("timeout_seconds", 0.001)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= 300:
                raise ConfigError(f"{name} must be a number from {low:g} to 300, not {value!r}")


PACK_KINDS = ("video", "image", "virtual_try_on", "audio")
PACK_TYPES = ("decreasing_total", "constant_period")


@dataclass(frozen=True, slots=True)
class ResourcePack:
    """A prepaid resource pack that every account holds, as ``GET /account/costs`` shows it.
    ``kind`` says which tasks draw on it; times are ms since the epoch."""

    name: str
    kind: str = "video"
    total_quantity: float = 1000.0
    pack_type: str = "decreasing_total"
    effective_time: int = 1_704_067_200_000  # 2024-01-01
    invalid_time: int = 4_102_444_800_000  # 2100-01-01

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("a resource pack needs a non-empty name")
        if self.kind not in PACK_KINDS:
            raise ConfigError(f"resource pack {self.name!r}: kind must be one of {', '.join(PACK_KINDS)}")
        if self.pack_type not in PACK_TYPES:
            raise ConfigError(
                f"resource pack {self.name!r}: pack_type must be one of {', '.join(PACK_TYPES)}"
            )
        quantity = self.total_quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity < 0:
            raise ConfigError(f"resource pack {self.name!r}: total_quantity must be a number >= 0")
        times = (self.effective_time, self.invalid_time)
        if any(isinstance(t, bool) or not isinstance(t, int) for t in times) or times[0] > times[1]:
            raise ConfigError(
                f"resource pack {self.name!r}: effective_time and invalid_time must be integers (ms), "
                "effective_time first"
            )


@dataclass(slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    # access key -> secret key
    accounts: dict[str, str] = field(default_factory=dict)
    # raw API key (sk-...) -> the account (access key) it acts for
    api_keys: dict[str, str] = field(default_factory=dict)
    # Accept "Bearer AK|SK", what gateways of the new-api family send to a non-Kling base URL.
    accept_key_pairs: bool = True
    timing: Timing = field(default_factory=Timing)
    # Per "model" or "model:mode" overrides of ``timing``.
    timings: dict[str, Timing] = field(default_factory=dict)
    fail_rules: list[FailRule] = field(default_factory=list)
    # Seed for task ids and request ids; None draws a fresh seed.
    seed: int | None = None
    # Leeway, in seconds, when checking a token's exp and nbf.
    leeway_seconds: int = 10
    # Bodies larger than this are refused with 413 (two 10 MB images in Base64 fit).
    max_body_bytes: int = 32 * 1024 * 1024
    log_level: str = "info"
    # The mock's address as callback receivers should reach it (result URLs in callback
    # bodies); None means http://{host}:{port}.
    public_url: str | None = None
    callbacks: CallbackSettings = field(default_factory=CallbackSettings)
    # Result files answer 404, as the official CDN does once results are deleted, this many
    # seconds after their task ended; 0 keeps them for ever (the official API: 30 days).
    media_ttl_seconds: int = 0
    # Each account's resource packs (GET /account/costs); empty means the default packs.
    resource_packs: list[ResourcePack] = field(default_factory=list)
    # Keep tasks in this SQLite file (durable, shareable by workers), or all the state in Redis
    # (redis://HOST:PORT/DB: shared by every process on it); None keeps it in memory.
    state_file: str | None = None
    # In memory, at most this many tasks are kept (the oldest go first; about 430 B each); 0: no
    # bound. A state file keeps every task.
    max_tasks: int = 200_000
    # Fault rules in force from the start (``[[faults]]``, ``--fault``; see fault_rules.py).
    faults: list[FaultRule] = field(default_factory=list)
    # Per-account request rate, running tasks and balance (``[limits]``; see limits.py).
    limits: Limits = field(default_factory=Limits)
    # The control API (/__mockkling/): a token it requires, and whether non-loopback
    # clients may use it at all.
    admin_token: str | None = None
    control_remote: bool = False
    # The request journal: entries kept (0 switches it off), body bytes kept per entry.
    journal_size: int = DEFAULT_SIZE
    journal_body_bytes: int = DEFAULT_BODY_BYTES
    # Header bytes kept per journal entry (names and values); past that, values are cut.
    journal_header_bytes: int = DEFAULT_HEADER_BYTES
    # What one connection may ask (connections.py): header bytes (431 past them), seconds to send
    # a complete request head (closed past them), connections open at once (503 past them).
    max_header_bytes: int = 16 * 1024
    request_timeout_seconds: float = 10.0
    max_connections: int = 1000
    # -- testing without touching the code under test (interception, the proxy) --------------
    # Tasks move one status every this many queries (and not with the clock); None: by the clock.
    polls_per_status: int | None = None
    # Where result URLs point (e.g. the real CDN's host, under interception); None: the address
    # the client reached the mock at.
    media_url: str | None = None
    # Which gateway the gateway surfaces answer as (GATEWAY_PROFILES); the official surface is
    # the same under every profile.
    gateway: str = DEFAULT_GATEWAY
    # -- the model-in-path design (docs/model-in-path-api.md) --
    # How the mock reads what the official pages leave open ([model_api], --model-api K=V).
    model_api: Policy = field(default_factory=Policy)
    # Webhook secrets signing every account's callbacks (several during a rotation); None: not
    # configured (the default account then has DEFAULT_WEBHOOK_SECRET), () signs nothing.
    webhook_secret: tuple[str, ...] | None = None
    # An account's own webhook secrets, instead of webhook_secret (access key -> secrets).
    webhook_secrets: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def with_defaults(self) -> Config:
        """This configuration, with the default account when none is configured."""
        if self.accounts or self.api_keys:
            return self
        return replace(
            self,
            accounts={DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY},
            api_keys={DEFAULT_API_KEY: DEFAULT_ACCESS_KEY},
            webhook_secret=(DEFAULT_WEBHOOK_SECRET,) if self.webhook_secret is None else self.webhook_secret,
        )

    def timing_for(self, model: str, mode: str) -> Timing:
        return self.timings.get(f"{model}:{mode}") or self.timings.get(model) or self.timing

    def public_base_url(self) -> str:
        """``public_url``, or the address the server listens on (a wildcard bind as loopback)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Config:
        try:
            with Path(path).open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        return cls().merge(data, source=str(path))

    def merge(self, data: Mapping[str, Any], *, source: str = "config") -> Config:
        """A copy with the keys of a parsed TOML document applied."""
        out = replace(
            self,
            accounts=dict(self.accounts),
            api_keys=dict(self.api_keys),
            webhook_secrets=dict(self.webhook_secrets),
        )
        for key, value in data.items():
            if key in ("host", "log_level", "state_file"):
                setattr(out, key, _typed(value, str, f"{source}: {key}"))
            elif key in ("public_url", "media_url"):
                setattr(out, key, _public_url(value, f"{source}: {key}"))
            elif key == "polls_per_status":
                out.polls_per_status = _typed(value, int, f"{source}: {key}")
                if out.polls_per_status < 1:
                    raise ConfigError(f"{source}: polls_per_status must be >= 1, not {value}")
            elif key == "callbacks":
                out.callbacks = _callbacks(out.callbacks, value, f"{source}: callbacks")
            elif key in (
                "port",
                "leeway_seconds",
                "max_body_bytes",
                "journal_size",
                "journal_body_bytes",
                "journal_header_bytes",
                "max_tasks",
                "max_header_bytes",
                "max_connections",
            ):
                setattr(out, key, _typed(value, int, f"{source}: {key}"))
                if key in ("max_header_bytes", "max_connections") and value < 1:
                    raise ConfigError(f"{source}: {key} must be >= 1, not {value}")
                if key.startswith(("journal", "max_tasks")) and value < 0:
                    raise ConfigError(f"{source}: {key} must be >= 0, not {value}")
            elif key == "request_timeout_seconds":
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
                    raise ConfigError(
                        f"{source}: {key} must be a number of seconds in (0, 3600], not {value!r}"
                    )
                out.request_timeout_seconds = float(value)
            elif key == "media_ttl_seconds":
                out.media_ttl_seconds = _typed(value, int, f"{source}: {key}")
                if out.media_ttl_seconds < 0:
                    raise ConfigError(f"{source}: media_ttl_seconds must be >= 0")
            elif key == "resource_packs":
                packs = _typed(value, list, f"{source}: resource_packs")
                try:
                    out.resource_packs = [
                        ResourcePack(**_typed(p, dict, f"{source}: resource_packs")) for p in packs
                    ]
                except (TypeError, ConfigError) as exc:
                    raise ConfigError(f"{source}: resource_packs: {exc}") from None
            elif key == "seed":
                out.seed = _typed(value, int, f"{source}: seed")
            elif key in ("accept_key_pairs", "control_remote"):
                setattr(out, key, _typed(value, bool, f"{source}: {key}"))
            elif key == "admin_token":
                out.admin_token = _typed(value, str, f"{source}: admin_token")
                if not out.admin_token.strip():
                    raise ConfigError(f"{source}: admin_token cannot be empty (leave it out for no token)")
            elif key == "faults":
                out.faults = [
                    _rule(rule, f"{source}: faults[{i}]")
                    for i, rule in enumerate(_typed(value, list, f"{source}: faults"))
                ]
            elif key == "limits":
                table = _typed(value, dict, f"{source}: limits")
                try:
                    out.limits = Limits.from_dict(table)
                except ValueError as exc:
                    raise ConfigError(f"{source}: {exc}") from None
            elif key == "timing":
                out.timing = _timing(value, f"{source}: timing")
            elif key == "timings":
                table = _typed(value, dict, f"{source}: timings")
                out.timings = {k: _timing(v, f"{source}: timings.{k}") for k, v in table.items()}
            elif key == "accounts":
                for i, entry in enumerate(_typed(value, list, f"{source}: accounts")):
                    where = f"{source}: accounts[{i}]"
                    entry = _typed(entry, dict, where)
                    ak = _typed(entry.get("access_key"), str, f"{where}.access_key")
                    out.accounts[ak] = _typed(entry.get("secret_key"), str, f"{where}.secret_key")
                    for k in _typed(entry.get("api_keys", []), list, f"{where}.api_keys"):
                        out.api_keys[_typed(k, str, f"{where}.api_keys")] = ak
                    if "webhook_secret" in entry:
                        secrets = _webhook_secrets(entry["webhook_secret"], f"{where}.webhook_secret")
                        out.webhook_secrets[ak] = secrets
            elif key == "webhook_secret":
                out.webhook_secret = _webhook_secrets(value, f"{source}: webhook_secret")
            elif key == "model_api":
                try:
                    if isinstance(value, list):  # KEY=VALUE pairs (the environment)
                        out.model_api = Policy.parse([str(v) for v in value], out.model_api)
                    else:
                        table = _typed(value, dict, f"{source}: model_api")
                        out.model_api = Policy.from_dict({**out.model_api.to_dict(), **table})
                except ValueError as exc:
                    raise ConfigError(f"{source}: {exc}") from None
            elif key == "api_keys":
                for k in _typed(value, list, f"{source}: api_keys"):
                    k = _typed(k, str, f"{source}: api_keys")
                    out.api_keys[k] = k
            elif key == "gateway":
                out.gateway = gateway_profile(value, f"{source}: gateway")
            elif key == "fail_rules":
                rules = _typed(value, list, f"{source}: fail_rules")
                try:
                    out.fail_rules = [FailRule(**_typed(r, dict, f"{source}: fail_rules")) for r in rules]
                except TypeError as exc:
                    raise ConfigError(f"{source}: fail_rules: {exc}") from exc
            else:
                raise ConfigError(f"{source}: unknown setting {key!r}")
        return out

    def merge_env(self, environ: Mapping[str, str] = os.environ) -> Config:
        """A copy with the ``MOCKKLING_*`` variables applied (see docs/configuration.md)."""
        data: dict[str, Any] = {}
        for name, key, kind in _ENV:
            raw = environ.get(name)
            if name == "MOCKKLING_ADMIN_TOKEN" and raw is not None and not raw.strip():
                # As the flag and the file: an empty token must not quietly mean no token.
                raise ConfigError(f"{name} cannot be empty: unset it for no token")
            if raw is None or raw == "":
                continue
            data[key] = _parse_env(name, raw, kind)
        if "access_key" in data or "secret_key" in data:
            ak, sk = data.pop("access_key", None), data.pop("secret_key", None)
            if not (ak and sk):
                raise ConfigError("MOCKKLING_ACCESS_KEY and MOCKKLING_SECRET_KEY go together")
            data["accounts"] = [{"access_key": ak, "secret_key": sk}]
        if "callback_hosts" in data:
            data["callbacks"] = {"allowed_hosts": data.pop("callback_hosts")}
        timing = {k: data.pop(k) for k in ("queue_seconds", "run_seconds") if k in data}
        if timing:
            data["timing"] = {
                "queue_seconds": self.timing.queue_seconds,
                "run_seconds": self.timing.run_seconds,
            } | timing
        return self.merge(data, source="environment")


_ENV: tuple[tuple[str, str, type], ...] = (
    ("MOCKKLING_HOST", "host", str),
    ("MOCKKLING_PORT", "port", int),
    ("MOCKKLING_SEED", "seed", int),
    ("MOCKKLING_LOG_LEVEL", "log_level", str),
    ("MOCKKLING_MAX_BODY_BYTES", "max_body_bytes", int),
    ("MOCKKLING_ACCESS_KEY", "access_key", str),
    ("MOCKKLING_SECRET_KEY", "secret_key", str),
    ("MOCKKLING_API_KEYS", "api_keys", list),
    ("MOCKKLING_QUEUE_SECONDS", "queue_seconds", float),
    ("MOCKKLING_RUN_SECONDS", "run_seconds", float),
    ("MOCKKLING_PUBLIC_URL", "public_url", str),
    ("MOCKKLING_CALLBACK_HOSTS", "callback_hosts", list),
    ("MOCKKLING_MEDIA_TTL_SECONDS", "media_ttl_seconds", int),
    ("MOCKKLING_STATE", "state_file", str),
    ("MOCKKLING_MAX_TASKS", "max_tasks", int),
    ("MOCKKLING_MAX_HEADER_BYTES", "max_header_bytes", int),
    ("MOCKKLING_REQUEST_TIMEOUT_SECONDS", "request_timeout_seconds", float),
    ("MOCKKLING_MAX_CONNECTIONS", "max_connections", int),
    ("MOCKKLING_ADMIN_TOKEN", "admin_token", str),
    ("MOCKKLING_POLLS_PER_STATUS", "polls_per_status", int),
    ("MOCKKLING_MEDIA_URL", "media_url", str),
    ("MOCKKLING_GATEWAY", "gateway", str),
    ("MOCKKLING_WEBHOOK_SECRET", "webhook_secret", list),
    ("MOCKKLING_MODEL_API", "model_api", list),
)


def _parse_env(name: str, raw: str, kind: type) -> Any:
    if kind is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


def _typed(value: Any, kind: type, where: str) -> Any:
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer, not {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where} must be of type {kind.__name__}, not {value!r}")
    return value


def _rule(value: Any, where: str) -> FaultRule:
    table = _typed(value, dict, where)
    try:
        return FaultRule.from_dict(table)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _timing(value: Any, where: str) -> Timing:
    table = _typed(value, dict, where)
    unknown = set(table) - {"queue_seconds", "run_seconds"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        return Timing(**table)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _webhook_secrets(value: Any, where: str) -> tuple[str, ...]:
    """One secret or a list of them (a rotation: each signs); "" or [] signs nothing."""
    secrets = [value] if isinstance(value, str) else _typed(value, list, where)
    out = tuple(_typed(secret, str, where) for secret in secrets if secret != "")
    for secret in out:
        try:
            webhooks.key_of(secret)
        except webhooks.WebhookError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return out


def _public_url(value: Any, where: str) -> str:
    url: str = _typed(value, str, where)
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1].strip("/")) == 0:
        raise ConfigError(f"{where} must be an http(s) URL such as http://127.0.0.1:8000, not {url!r}")
    return url


def _callbacks(current: CallbackSettings, value: Any, where: str) -> CallbackSettings:
    """``current`` with the keys of a ``[callbacks]`` table applied."""
    table = dict(_typed(value, dict, where))
    unknown = set(table) - set(CallbackSettings.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if "allowed_hosts" in table:
        table["allowed_hosts"] = tuple(_typed(table["allowed_hosts"], list, f"{where}.allowed_hosts"))
    try:
        return replace(current, **table)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
