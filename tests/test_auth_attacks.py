"""Attacks on authentication, each refused with its own code on every operation that takes a
credential, and no secret ever in a response or a log line.

Tokens are forged by hand (base64url JSON and HMAC-SHA256), not with PyJWT, so the server's
checks are tested against tokens PyJWT itself would refuse to build. The operations come from
openapi.yaml by security scheme: an operation added later is attacked too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from serve_process import ServeProcess

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_API_KEY, DEFAULT_SECRET_KEY, Backend, create_app
from mockkling.auth import AK_SK_REFUSED
from mockkling.spec import default_spec
from mockkling.transport import SyncASGITransport

AK, SK = DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
OTHER_AK, OTHER_SK = "other-tenant-ak", "other-tenant-secret-key-of-32-bytes!"
OTHER_API_KEY = "sk-other-tenant-key"
SPEC = default_spec()
# The signing tests use short keys on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def _seed_served(op: dict[str, Any]) -> bool:
    """Served by the default server: not a gateway operation of another profile only."""
    tags = op.get("tags", [])
    return "gateway-seed" in tags or not any(tag.startswith("gateway-") for tag in tags)


def _operations(scheme: str) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, method, op in SPEC.operations()
        if op.get("security") == [{scheme: []}] and _seed_served(op)
    ]


OFFICIAL_OPERATIONS = _operations("klingAuth")
GATEWAY_OPERATIONS = _operations("gatewayKey")
MODEL_API_OPERATIONS = _operations("klingApiKey")


def test_every_surface_with_credentials_is_attacked() -> None:
    schemes = {name for _p, _m, op in SPEC.operations() for entry in op.get("security", []) for name in entry}
    # A new scheme (the control API's admin token, say) needs its own attacks here.
    assert schemes <= {"klingAuth", "gatewayKey", "klingApiKey", "adminToken"}
    from mockkling.routes.official import CALLS
    from mockkling.validation import ACTIONS

    # Create, list and query one per task action; each call; /account/costs.
    assert len(OFFICIAL_OPERATIONS) == 3 * len(ACTIONS) + len(CALLS) + 1 and len(GATEWAY_OPERATIONS) == 6
    assert len(MODEL_API_OPERATIONS) == 14


# -- forging -------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(claims: Any, key: str | bytes = SK, header: Any = None, *, sign: bool = True) -> str:
    """A JWS with any header and claims, HMAC-SHA256-signed with ``key`` (or left unsigned)."""
    header = {"alg": "HS256", "typ": "JWT"} if header is None else header
    signing = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    raw_key = key.encode() if isinstance(key, str) else key
    signature = b64url(hmac.new(raw_key, signing.encode(), hashlib.sha256).digest()) if sign else ""
    return f"{signing}.{signature}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    out = {"iss": AK, "exp": now + 1800, "nbf": now - 5} | overrides
    return {k: v for k, v in out.items() if v is not ...}


def _asymmetric(alg: str) -> str:
    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(claims(), pem, algorithm=alg)


def _hmac(alg: str, key: str = SK) -> str:
    return jwt.encode(claims(), key, algorithm=alg)


NOW = int(time.time())
UNSIGNED = "Authorization token must be signed with HS256"
BAD_SIGNATURE = "Authentication failed: token signature is invalid"
UNKNOWN_ISS = "Authentication failed: unknown access key (iss)"
MALFORMED = "Authorization token is malformed"
EXP_TYPE = "Authorization token claim 'exp' must be a number"
NBF_TYPE = "Authorization token claim 'nbf' must be a number"

# Authorization header -> (business code, message) on the official surface; all are 401.
OFFICIAL_ATTACKS: dict[str, tuple[Callable[[], str | None], int, str]] = {
    "no-header": (lambda: None, 1001, "Authorization is empty"),
    "empty": (lambda: "", 1001, "Authorization is empty"),
    "blank": (lambda: "  ", 1001, "Authorization is empty"),
    "bearer-only": (lambda: "Bearer", 1002, "Authorization must be 'Bearer <token>'"),
    "token-scheme": (lambda: "Token abc.def.ghi", 1002, "Authorization must be 'Bearer <token>'"),
    "no-scheme": (lambda: _hmac("HS256"), 1002, "Authorization must be 'Bearer <token>'"),
    "basic-scheme": (
        lambda: "Basic " + b64url(f"{AK}:{SK}".encode()),
        1002,
        "Authorization must be 'Bearer <token>'",
    ),
    "alg-none": (
        lambda: "Bearer " + forge(claims(), header={"alg": "none", "typ": "JWT"}, sign=False),
        1002,
        UNSIGNED,
    ),
    "alg-None": (lambda: "Bearer " + forge(claims(), header={"alg": "None"}, sign=False), 1002, UNSIGNED),
    "alg-none-signed": (lambda: "Bearer " + forge(claims(), header={"alg": "none"}), 1002, UNSIGNED),
    "alg-lowercase": (lambda: "Bearer " + forge(claims(), header={"alg": "hs256"}), 1002, UNSIGNED),
    "alg-missing": (lambda: "Bearer " + forge(claims(), header={"typ": "JWT"}), 1002, UNSIGNED),
    "HS384": (lambda: "Bearer " + _hmac("HS384"), 1002, UNSIGNED),
    "HS512": (lambda: "Bearer " + _hmac("HS512"), 1002, UNSIGNED),
    "RS256": (lambda: "Bearer " + _asymmetric("RS256"), 1002, UNSIGNED),
    "ES256": (lambda: "Bearer " + _asymmetric("ES256"), 1002, UNSIGNED),
    "signed-with-access-key": (lambda: "Bearer " + forge(claims(), key=AK), 1000, BAD_SIGNATURE),
    "signed-with-another-secret": (lambda: "Bearer " + forge(claims(), key=OTHER_SK), 1000, BAD_SIGNATURE),
    "signed-with-empty-key": (lambda: "Bearer " + forge(claims(), key=""), 1000, BAD_SIGNATURE),
    "signature-stripped": (lambda: "Bearer " + forge(claims(), sign=False), 1000, BAD_SIGNATURE),
    "claims-swapped": (lambda: "Bearer " + _swap_claims(), 1000, BAD_SIGNATURE),
    "unknown-iss": (lambda: "Bearer " + forge(claims(iss="nobody"), key="x"), 1000, UNKNOWN_ISS),
    "no-iss": (lambda: "Bearer " + forge(claims(iss=...)), 1000, UNKNOWN_ISS),
    "iss-number": (lambda: "Bearer " + forge(claims(iss=123)), 1000, UNKNOWN_ISS),
    "iss-array": (lambda: "Bearer " + forge(claims(iss=[AK])), 1000, UNKNOWN_ISS),
    "iss-secret-key": (lambda: "Bearer " + forge(claims(iss=SK)), 1000, UNKNOWN_ISS),
    "exp-string": (lambda: "Bearer " + forge(claims(exp=str(NOW + 600))), 1002, EXP_TYPE),
    "exp-boolean": (lambda: "Bearer " + forge(claims(exp=True)), 1002, EXP_TYPE),
    "exp-null": (lambda: "Bearer " + forge(claims(exp=None)), 1002, EXP_TYPE),
    "exp-array": (lambda: "Bearer " + forge(claims(exp=[NOW + 600])), 1002, EXP_TYPE),
    "exp-nan": (lambda: "Bearer " + forge(claims(exp=float("nan"))), 1002, EXP_TYPE),
    "exp-infinity": (lambda: "Bearer " + forge(claims(exp=float("inf"))), 1002, EXP_TYPE),
    "exp-missing": (
        lambda: "Bearer " + forge(claims(exp=...)),
        1002,
        "Authorization token has no 'exp' claim",
    ),
    "nbf-string": (lambda: "Bearer " + forge(claims(nbf="now")), 1002, NBF_TYPE),
    "nbf-object": (lambda: "Bearer " + forge(claims(nbf={"t": 1})), 1002, NBF_TYPE),
    "nbf-null": (lambda: "Bearer " + forge(claims(nbf=None)), 1002, NBF_TYPE),
    "nbf-nan": (lambda: "Bearer " + forge(claims(nbf=float("nan"))), 1002, NBF_TYPE),
    "expired": (lambda: "Bearer " + forge(claims(exp=NOW - 60)), 1004, "Token has expired"),
    "not-yet-valid": (lambda: "Bearer " + forge(claims(nbf=NOW + 600)), 1003, "Token is not yet valid"),
    "claims-not-an-object": (lambda: "Bearer " + forge([AK]), 1002, MALFORMED),
    "header-not-an-object": (lambda: "Bearer " + forge(claims(), header=["HS256"]), 1002, MALFORMED),
    "not-base64": (lambda: "Bearer !!!.???.***", 1002, MALFORMED),
    "three-letters": (lambda: "Bearer a.b.c", 1002, MALFORMED),
    "not-a-jwt": (lambda: "Bearer not-a-jwt", 1002, "Authorization token is not a JWT"),
    "four-parts": (lambda: "Bearer " + _hmac("HS256") + ".x", 1002, "Authorization token is not a JWT"),
    "oversized": (lambda: "Bearer " + "a" * 9000, 1002, "Authorization token is too long"),
    "oversized-valid-jwt": (
        lambda: "Bearer " + forge(claims(pad="x" * 10_000)),
        1002,
        "Authorization token is too long",
    ),
    "huge-header": (lambda: "Bearer " + "a.b." + "c" * 1_000_000, 1002, "Authorization token is too long"),
    "unknown-sk-key": (lambda: "Bearer sk-unknown", 1002, "Authorization token is not a JWT"),
    "key-pair-wrong-secret": (lambda: f"Bearer {AK}|wrong", 1002, "Authorization token is not a JWT"),
    "key-pair-secret-as-access-key": (lambda: f"Bearer {SK}|{SK}", 1002, "Authorization token is not a JWT"),
}


def _swap_claims() -> str:
    """Another account's claims under a signature made for this one."""
    header, _claims, signature = forge(claims()).split(".")
    return f"{header}.{b64url(json.dumps(claims(iss=OTHER_AK)).encode())}.{signature}"


@pytest.fixture
def tenants(backend: Backend) -> Backend:
    backend.add_account(OTHER_AK, OTHER_SK, api_keys=[OTHER_API_KEY])
    return backend


def _call(client: httpx.Client, method: str, path: str, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    path = path.replace("{task_id}", "some-task")
    if path == "/account/costs":
        path += "?start_time=0&end_time=1"
    return client.request(method, path, headers=headers, json={} if method == "POST" else None)


@pytest.mark.parametrize("attack", OFFICIAL_ATTACKS, ids=OFFICIAL_ATTACKS.keys())
def test_official_attacks_are_refused_on_every_operation(
    tenants: Backend, client: httpx.Client, attack: str
) -> None:
    make, code, message = OFFICIAL_ATTACKS[attack]
    authorization = make()
    for method, path in OFFICIAL_OPERATIONS:
        response = _call(client, method, path, authorization)
        assert response.status_code == 401, (method, path, response.text)
        body = response.json()
        assert body == {"code": code, "message": message, "request_id": body["request_id"], "data": None}
    assert len(tenants.tasks) == 0


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [({"exp": 10**400}, 200, 0), ({"nbf": -(10**400)}, 200, 0), ({"exp": -(10**400)}, 401, 1004)],
    ids=["exp-400-digits", "nbf-minus-400-digits", "exp-minus-400-digits"],
)
def test_huge_integer_claims_are_numbers(
    client: httpx.Client, overrides: dict[str, int], status: int, code: int
) -> None:
    """A JSON integer too big for a float is a time far away, not a 500."""
    response = client.get(
        "/v1/videos/text2video", headers={"Authorization": "Bearer " + forge(claims(**overrides))}
    )
    assert (response.status_code, response.json()["code"]) == (status, code)


# Every one of these is "not one of the configured keys" to a gateway: it takes sk- keys only.
GATEWAY_ATTACKS: dict[str, Callable[[], str]] = {
    "official-jwt": lambda: "Bearer " + forge(claims()),
    "official-jwt-bare": lambda: forge(claims()),
    "alg-none-jwt": lambda: "Bearer " + forge(claims(), header={"alg": "none"}, sign=False),
    "RS256-jwt": lambda: "Bearer " + _asymmetric("RS256"),
    "key-pair": lambda: f"Bearer {AK}|{SK}",
    "secret-key": lambda: SK,
    "access-key": lambda: f"Bearer {AK}",
    "key-uppercased": lambda: DEFAULT_API_KEY.upper(),
    "key-prefix": lambda: DEFAULT_API_KEY[:-1],
    "key-with-suffix": lambda: DEFAULT_API_KEY + "x",
    "key-twice": lambda: f"{DEFAULT_API_KEY} {DEFAULT_API_KEY}",
    "bearer-twice": lambda: f"Bearer Bearer {DEFAULT_API_KEY}",
    "basic-scheme": lambda: "Basic " + b64url(DEFAULT_API_KEY.encode()),
    "oversized-key": lambda: "sk-" + "a" * 1_000_000,
}


@pytest.mark.parametrize("attack", GATEWAY_ATTACKS, ids=GATEWAY_ATTACKS.keys())
def test_gateway_attacks_are_refused_on_every_operation(
    tenants: Backend, client: httpx.Client, attack: str
) -> None:
    authorization = GATEWAY_ATTACKS[attack]()
    for method, path in GATEWAY_OPERATIONS:
        response = _call(client, method, path, authorization)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json() == {
            "code": "unauthorized",
            "message": "Authentication failed: unknown API key",
            "data": None,
        }
    assert len(tenants.tasks) == 0


# The model-in-path routes take API keys only: a legacy AK/SK credential, valid or not, gets the
# official refusal; anything else that is not a configured key is "api key not found".
NOT_FOUND = "api key not found"
MODEL_API_ATTACKS: dict[str, tuple[Callable[[], str | None], int, str]] = {
    "no-header": (lambda: None, 1001, "Authorization is empty"),
    "blank": (lambda: "  ", 1001, "Authorization is empty"),
    "bearer-only": (lambda: "Bearer", 1002, "Authorization must be 'Bearer <API key>'"),
    "no-scheme": (lambda: DEFAULT_API_KEY, 1002, "Authorization must be 'Bearer <API key>'"),
    "basic-scheme": (
        lambda: "Basic " + b64url(DEFAULT_API_KEY.encode()),
        1002,
        "Authorization must be 'Bearer <API key>'",
    ),
    "valid-jwt": (lambda: "Bearer " + forge(claims()), 1002, AK_SK_REFUSED),
    "expired-jwt": (lambda: "Bearer " + forge(claims(exp=NOW - 60)), 1002, AK_SK_REFUSED),
    "alg-none-jwt": (
        lambda: "Bearer " + forge(claims(), header={"alg": "none"}, sign=False),
        1002,
        AK_SK_REFUSED,
    ),
    "key-pair": (lambda: f"Bearer {AK}|{SK}", 1002, AK_SK_REFUSED),
    "unknown-key": (lambda: "Bearer api-key-kling-BOGUS", 1002, NOT_FOUND),
    "access-key": (lambda: f"Bearer {AK}", 1002, NOT_FOUND),
    "secret-key": (lambda: f"Bearer {SK}", 1002, NOT_FOUND),
    "key-uppercased": (lambda: f"Bearer {DEFAULT_API_KEY.upper()}", 1002, NOT_FOUND),
    "key-prefix": (lambda: f"Bearer {DEFAULT_API_KEY[:-1]}", 1002, NOT_FOUND),
    "key-with-suffix": (lambda: f"Bearer {DEFAULT_API_KEY}x", 1002, NOT_FOUND),
    "bearer-twice": (lambda: f"Bearer Bearer {DEFAULT_API_KEY}", 1002, NOT_FOUND),
    "oversized-key": (lambda: "Bearer " + "a" * 1_000_000, 1002, NOT_FOUND),
}


@pytest.mark.parametrize("attack", MODEL_API_ATTACKS, ids=MODEL_API_ATTACKS.keys())
def test_model_api_attacks_are_refused_on_every_operation(
    tenants: Backend, client: httpx.Client, attack: str
) -> None:
    make, code, message = MODEL_API_ATTACKS[attack]
    authorization = make()
    for method, path in MODEL_API_OPERATIONS:
        response = _call(client, method, path, authorization)
        assert response.status_code == 401, (method, path, response.text)
        body = response.json()
        assert body == {"code": code, "message": message, "request_id": body["request_id"]}
    assert len(tenants.tasks) == 0


def test_an_api_key_for_one_account_never_reaches_anothers_task(
    tenants: Backend, client: httpx.Client
) -> None:
    created = client.post(
        "/text-to-video/kling-3.0",
        json={"prompt": "x", "options": {"external_task_id": "private"}},
        headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
    ).json()["data"]
    other = {"Authorization": f"Bearer {OTHER_API_KEY}"}
    for params in ({"task_ids": created["id"]}, {"external_task_ids": "private"}):
        assert client.get("/tasks", params=params, headers=other).json()["data"] == []
    assert client.post("/tasks", json={}, headers=other).json()["data"] == {"count": 0, "has_more": False}


# -- one account's credential on another's task ------------------------------------------------------


def _official_token(ak: str, sk: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + forge(claims(iss=ak), key=sk)}


def test_a_token_for_one_account_never_reaches_anothers_task(
    tenants: Backend, client: httpx.Client, make_image: Callable[..., str]
) -> None:
    """Every official query route: the other account's task, by task_id and by external_task_id,
    is 'does not exist', exactly as a missing one; its own account still finds it."""
    mine, theirs = _official_token(AK, SK), _official_token(OTHER_AK, OTHER_SK)
    tenants.use_manual_clock()
    queries = [path for method, path in OFFICIAL_OPERATIONS if "{task_id}" in path]
    from mockkling.validation import ACTIONS

    assert len(queries) == len(ACTIONS)
    task = tenants.create_task(AK, "text2video", {"prompt": "x", "external_task_id": "private"})
    for path in queries:
        for ident in (task.task_id, "private"):
            response = client.get(path.replace("{task_id}", ident), headers=theirs)
            body = response.json()
            assert response.status_code == 404
            assert body == {
                "code": 1203,
                "message": f"task {ident} does not exist",
                "request_id": body["request_id"],
                "data": None,
            }
    assert client.get(f"/v1/videos/text2video/{task.task_id}", headers=mine).status_code == 200
    # Its lists show only its own tasks.
    assert client.get("/v1/videos/text2video", headers=theirs).json()["data"] == []


def test_a_key_for_one_account_never_reaches_anothers_gateway_task(
    tenants: Backend, client: httpx.Client
) -> None:
    created = client.post(
        "/v1/video/generations",
        json={"prompt": "x", "duration": 5},
        headers={"Authorization": DEFAULT_API_KEY},
    )
    task_id = created.json()["task_id"]
    other = {"Authorization": OTHER_API_KEY}
    for method, path in GATEWAY_OPERATIONS:
        if method != "GET":
            continue
        response = client.get(path.replace("{task_id}", task_id), headers=other)
        assert (response.status_code, response.json()) == (
            400,
            {"code": "task_not_exist", "message": f"task {task_id} does not exist", "data": None},
        )
    # Nor through the official surface, with the other account's raw key or a JWT.
    for authorization in (f"Bearer {OTHER_API_KEY}", _official_token(OTHER_AK, OTHER_SK)["Authorization"]):
        response = client.get(f"/v1/videos/text2video/{task_id}", headers={"Authorization": authorization})
        assert (response.status_code, response.json()["code"]) == (404, 1203)


# -- secrets stay out of responses and logs --------------------------------------------------------------


def _secrets(*tokens: str) -> list[str]:
    return [SK, OTHER_SK, DEFAULT_API_KEY, OTHER_API_KEY, *tokens]


def _bad_requests(client: httpx.Client, *, live: bool = False) -> Iterator[httpx.Response]:
    """Every attack above on one operation per surface, plus requests that carry good secrets.
    Over a socket, headers HTTP cannot carry (blank, or past uvicorn's size limit) are left out."""

    def sendable(value: str | None) -> bool:
        return not live or value is None or (bool(value.strip()) and len(value) <= 8000)

    for make, _code, _message in OFFICIAL_ATTACKS.values():
        authorization = make()
        if sendable(authorization):
            yield _call(client, "POST", "/v1/videos/text2video", authorization)
    for make_key in GATEWAY_ATTACKS.values():
        key = make_key()
        if sendable(key):
            yield _call(client, "POST", "/v1/video/generations", key)
    for authorization in (f"Bearer {AK}|{SK}", f"Bearer {DEFAULT_API_KEY}", f"Bearer {forge(claims())}"):
        yield client.post(
            "/v1/videos/text2video", content=b"{broken", headers={"Authorization": authorization}
        )
        yield client.get("/v1/videos/text2video/missing", headers={"Authorization": authorization})
    yield client.post("/v1/video/generations", json={"prompt": 1}, headers={"Authorization": OTHER_API_KEY})
    for make, _code, _message in MODEL_API_ATTACKS.values():
        authorization = make()
        if sendable(authorization):
            yield _call(client, "POST", "/text-to-video/kling-3.0", authorization)
    yield client.post(
        "/text-to-video/kling-3.0", content=b"{broken", headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    )


def test_no_secret_in_any_response_log_line_or_the_journal(
    tenants: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = forge(claims())

    def crash(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    tenants.list_tasks = crash  # type: ignore[method-assign]  # a logged traceback, too
    transport = SyncASGITransport(create_app(tenants))
    with httpx.Client(transport=transport, base_url="http://mock") as client:
        responses = list(_bad_requests(client))
        crashed = client.get("/v1/videos/text2video", headers={"Authorization": f"Bearer {token}"})
        assert (crashed.status_code, crashed.json()["code"]) == (500, 5000)  # logged, not raised
        journal = client.get("/__mockkling/journal", params={"limit": 1000}).json()["requests"]
    assert len(responses) > 60 and all(r.status_code in (400, 401, 404) for r in responses)
    assert "unhandled error on GET /v1/videos/text2video" in caplog.text
    assert len(journal) == len(responses) + 1  # every request above is in the journal
    recorded = json.dumps(journal)
    for secret in _secrets(token):
        for response in responses:
            assert secret not in response.text
        assert secret not in caplog.text
        assert secret not in recorded


@pytest.mark.slow
def test_no_secret_in_a_live_servers_output() -> None:
    """``mockkling serve`` with debug logging and the access log: after a run of bad requests its
    stdout and stderr, and its request journal, name no secret key, token or sk- key. The account
    uses the default access key with its own secret, which the start-up banner must not print."""
    own_secret = "my-own-secret-key-not-the-default-one"
    flags = ["--log-level", "debug", "--access-log", "--access-key", AK, "--secret-key", own_secret]
    flags += ["--access-key", OTHER_AK, "--secret-key", OTHER_SK, "--api-key", OTHER_API_KEY]
    token = forge(claims(), key=own_secret)
    with ServeProcess(*flags, stdout=True) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        responses = list(_bad_requests(client, live=True))
        good = client.get("/v1/videos/text2video", headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 200
        responses.append(
            client.get("/v1/videos/text2video", headers={"Authorization": f"Bearer {AK}|{own_secret}"})
        )
        journal = client.get("/__mockkling/journal", params={"limit": 1000})
        assert len(journal.json()["requests"]) > 60
        responses.append(journal)
    out, err = "".join(server.out_lines), server.text()
    assert "GET /v1/videos/text2video" in err + out  # the access log was on
    assert f"access key {AK}" not in err  # not the default account: no credentials to print
    for secret in [*_secrets(token), own_secret]:
        assert secret not in out + err, secret
        assert all(secret not in r.text for r in responses)
