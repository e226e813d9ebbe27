"""Authentication: Kling's HS256 JWTs, and the raw keys gateways send instead.

A verified token is cached until it expires, so the common case (a client reusing its token)
costs one dict lookup and two comparisons; an expired cached token is still refused.
Token times are checked against the wall clock, not the task clock: advancing a test's
controlled clock never expires a client's token.
"""

from __future__ import annotations

import hmac
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from .errors import KlingError
from .journal import MASK

ALGORITHM = "HS256"
# The live answer to an AK/SK JWT on a model-in-path route (401 / 1002).
AK_SK_REFUSED = (
    "Authentication error. The current API does not support AK/SK; please go to the console "
    "(https://kling.ai/dev/api-key) to create API key."
)
# Longer than any token a client has a reason to send; bigger ones are refused unread.
MAX_TOKEN_LENGTH = 8192
_CACHE_SIZE = 8192


def make_jwt(
    access_key: str,
    secret_key: str,
    *,
    ttl_seconds: int = 1800,
    now: float | None = None,
    nbf_offset: int = -5,
) -> str:
    """A token as the official SDK builds it: iss = access key, exp = now + 1800, nbf = now - 5."""
    issued = int(time.time() if now is None else now)
    claims = {"iss": access_key, "exp": issued + ttl_seconds, "nbf": issued + nbf_offset}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret_key, algorithm=ALGORITHM, headers={"typ": "JWT"})


class Authenticator:
    """Maps an ``Authorization`` header to the account it acts for, or raises KlingError."""

    def __init__(
        self,
        accounts: Mapping[str, str],
        api_keys: Mapping[str, str],
        *,
        accept_key_pairs: bool = True,
        leeway_seconds: int = 10,
        now: Callable[[], float] = time.time,
        reload: Callable[[], tuple[dict[str, str], dict[str, str]] | None] | None = None,
    ) -> None:
        self.accounts = dict(accounts)
        self.api_keys = dict(api_keys)
        self.accept_key_pairs = accept_key_pairs
        self.leeway = leeway_seconds
        self._now = now
        # Accounts and keys other processes added (a shared state): read again when a credential
        # is unknown or its signature fails, so one added or re-keyed anywhere works everywhere.
        self._reload = reload
        # token -> (account, nbf, exp)
        self._cache: dict[str, tuple[str, float, float]] = {}

    def clear_cache(self) -> None:
        self._cache.clear()

    def _reloaded(self) -> bool:
        """Take in the accounts and keys added elsewhere; whether any changed."""
        found = self._reload() if self._reload is not None else None
        if found is None:
            return False
        accounts, api_keys = found
        changed = any(self.accounts.get(k) != v for k, v in accounts.items()) or any(
            self.api_keys.get(k) != v for k, v in api_keys.items()
        )
        if changed:
            self.accounts.update(accounts)
            self.api_keys.update(api_keys)
            self._cache.clear()
        return changed

    def add_account(self, access_key: str, secret_key: str, api_keys: Iterable[str] = ()) -> None:
        """Add (or re-key) an account; its raw API keys act for it too. Tokens verified under
        an old secret are forgotten."""
        self.accounts[access_key] = secret_key
        for key in api_keys:
            self.api_keys[key] = access_key
        self._cache.clear()

    def add_api_key(self, key: str, account: str | None = None) -> None:
        """Accept a raw key (``sk-...``); it acts for ``account``, or for an account of its own."""
        self.api_keys[key] = account or key
        self._cache.clear()

    def account_of(self, authorization: bytes | None) -> str | None:
        """The account behind an ``Authorization`` value, with or without ``Bearer`` (a gateway
        takes a bare key); None if there is none or it is refused. For the request layer, which
        must know the account before the route decides how to answer."""
        if not authorization:
            return None
        token = authorization.decode("latin-1").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            return None
        try:
            return self.verify_token(token)
        except KlingError:
            return None

    def label(self, account: str | None) -> str | None:
        """The account as the journal shows it. A raw key configured on its own is an account
        named by the key itself: it is shown masked like the key in a header ("sk-***abcd")."""
        if account is None or self.api_keys.get(account) != account:
            return account
        return f"{account[:3]}{MASK}{account[-4:]}" if len(account) >= 12 else MASK

    def authenticate(self, authorization: str | None) -> str:
        """The account behind ``Authorization: Bearer <token>`` (official surface)."""
        if not authorization or not authorization.strip():
            raise KlingError(1001)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise KlingError(1002, "Authorization must be 'Bearer <token>'")
        return self.verify_token(token)

    def authenticate_key(self, authorization: str | None) -> str:
        """The account behind a gateway key: ``Authorization: sk-...`` as the seed shows it, or
        ``Bearer sk-...`` as gateways take it. Only configured keys pass: no JWT, no ``AK|SK``."""
        value = (authorization or "").strip()
        if not value:
            raise KlingError(1001)
        scheme, _, rest = value.partition(" ")
        key = rest.strip() if scheme.lower() == "bearer" else value
        account = self.api_keys.get(key)
        if account is None and self._reload is not None and self._reloaded():
            account = self.api_keys.get(key)
        if account is None:
            raise KlingError(1000, "Authentication failed: unknown API key")
        return account

    def authenticate_api_key(self, authorization: str | None) -> str:
        """The account behind ``Authorization: Bearer <API key>`` on the model-in-path routes,
        which take API keys only: a legacy AK/SK credential (a JWT, or ``AK|SK``) is refused
        with the official message, an unknown key as the live service refuses it."""
        if not authorization or not authorization.strip():
            raise KlingError(1001)
        scheme, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise KlingError(1002, "Authorization must be 'Bearer <API key>'")
        account = self.api_keys.get(key)
        if account is None and self._reload is not None and self._reloaded():
            account = self.api_keys.get(key)
        if account is not None:
            return account
        if key.count(".") == 2 or "|" in key:
            raise KlingError(1002, AK_SK_REFUSED)
        raise KlingError(1002, "api key not found")

    def verify_token(self, token: str) -> str:
        cached = self._cache.get(token)
        if cached is not None:
            account, nbf, exp = cached
            self._check_times(nbf, exp)
            return account
        if len(token) > MAX_TOKEN_LENGTH:
            raise KlingError(1002, "Authorization token is too long")
        raw_account = self.raw_key_account(token)
        if raw_account is not None:
            return raw_account
        try:
            return self._verify_jwt(token)
        except KlingError:
            if self._reload is None or not self._reloaded():
                raise
        return self.raw_key_account(token) or self._verify_jwt(token)

    def raw_key_account(self, key: str) -> str | None:
        """The account of a raw key (an ``sk-`` key, or ``AK|SK`` when allowed), else None."""
        account = self.api_keys.get(key)
        if account is not None:
            return account
        if self.accept_key_pairs and "|" in key:
            ak, _, sk = key.partition("|")
            secret = self.accounts.get(ak)
            if secret is not None and hmac.compare_digest(secret.encode(), sk.encode()):
                return ak
        return None

    def _verify_jwt(self, token: str) -> str:
        if token.count(".") != 2:
            raise KlingError(1002, "Authorization token is not a JWT")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise KlingError(1002, "Authorization token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise KlingError(1002, f"Authorization token must be signed with {ALGORITHM}")
        iss = unverified.get("iss")
        secret = self.accounts.get(iss) if isinstance(iss, str) else None
        if secret is None or not isinstance(iss, str):
            raise KlingError(1000, "Authentication failed: unknown access key (iss)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                claims: dict[str, Any] = jwt.decode(
                    token,
                    secret,
                    algorithms=[ALGORITHM],
                    options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
                )
        except jwt.InvalidSignatureError:
            raise KlingError(1000, "Authentication failed: token signature is invalid") from None
        except jwt.PyJWTError:
            raise KlingError(1002, "Authorization token is malformed") from None
        exp = _number_claim(claims, "exp", required=True)
        nbf = _number_claim(claims, "nbf", required=False)
        self._check_times(nbf, exp)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[token] = (iss, nbf, exp)
        return iss

    def _check_times(self, nbf: float, exp: float) -> None:
        now = self._now()
        if now + self.leeway < nbf:
            raise KlingError(1003)
        if now - self.leeway >= exp:
            raise KlingError(1004)


def _number_claim(claims: Mapping[str, Any], name: str, *, required: bool) -> float:
    """A NumericDate claim. NaN, Infinity (Python's JSON reader takes both) and null are refused
    like any other non-number: a NaN ``exp`` would never expire."""
    if name not in claims:
        if required:
            raise KlingError(1002, f"Authorization token has no '{name}' claim")
        return float("-inf")
    value = claims[name]
    if isinstance(value, int) and not isinstance(value, bool):
        # A JSON integer may have hundreds of digits; past a float's range it is simply "never".
        return float(value) if abs(value) < 2**1000 else (math.inf if value > 0 else -math.inf)
    if not isinstance(value, float) or not math.isfinite(value):
        raise KlingError(1002, f"Authorization token claim '{name}' must be a number")
    return value
