"""The Kling contract kit: checks that a server at any base URL honours mockkling's openapi.yaml.

Run it with ``mockkling contract BASE_URL --access-key AK --secret-key SK`` or
``pytest contracts --kling-base-url BASE_URL --kling-access-key AK --kling-secret-key SK``
(every option also reads a ``KLING_*`` environment variable). It is safe against a paid
service: it creates at most ``--kling-max-tasks`` tasks (default 2, of which it plans 1, or 2 with
``--kling-fail-prompt``), ``--kling-read-only`` creates none, and the header says what it will
spend before any test runs.

Everything the checks need comes from fixtures defined here: ``kling`` (the target: an httpx
client, credentials, a schemathesis schema bound to the target), ``budget`` (the task cap) and
``conform`` (schemathesis's response checks for a request the kit made itself).
"""

from __future__ import annotations

import importlib
import inspect
import os
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import checks as st_checks

from mockkling import catalogue
from mockkling.auth import make_jwt
from mockkling.spec import default_spec
from mockkling.transport import SyncASGITransport

# The task the kit creates to watch a lifecycle: the cheapest generation there is.
PROBE_MODEL, PROBE_MODE, PROBE_DURATION = "kling-v1", "std", "5"
# The model-in-path design's probe (with an API key): its cheapest endpoint, at its defaults.
MODEL_API_PROBE = "/text-to-video/kling-2.5-turbo"
# The families --kling-families can create a task of: (model, mode, duration) for the spend line,
# and the create body, given the media URLs (MEDIA, or --kling-media). Lip sync and multi-element
# editing are left out: their create needs a session made from one of the account's videos.
MEDIA = {
    "image": "https://example.com/mockkling-contract/portrait.jpg",
    "video": "https://example.com/mockkling-contract/dance.mp4",
    "audio": "https://example.com/mockkling-contract/speech.mp3",
}
FAMILY_PROBES: dict[str, tuple[str, tuple[str, str, str], Callable[[dict[str, str]], dict[str, Any]]]] = {
    "omni-video": (
        "omni-video",
        ("kling-video-o1", "pro", "5"),
        lambda media: {
            "model_name": "kling-video-o1",
            "prompt": "mockkling contract check: a paper boat on a pond",
            "aspect_ratio": "16:9",
            "duration": "5",
        },
    ),
    "motion-control": (
        "motion-control",
        ("kling-v2-6", "std", "5"),
        lambda media: {
            "image_url": media["image"],
            "video_url": media["video"],
            "character_orientation": "image",
            "mode": "std",
        },
    ),
    "avatar": (
        "avatar/image2video",
        ("", "std", "5"),
        lambda media: {"image": media["image"], "sound_file": media["audio"]},
    ),
}
PROBE_PROMPT = "mockkling contract check: a calm sea at dawn, slow pan"

# Checks on a response to a request the kit built itself (no re-sending, no generation).
RESPONSE_CHECKS = [
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value else default


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kling", "Kling contract kit (each option also reads the KLING_* variable named)")
    add = group.addoption
    add("--kling-base-url", default=_env("KLING_BASE_URL"), help="the server to check (KLING_BASE_URL)")
    add(
        "--kling-app",
        default=_env("KLING_APP"),
        metavar="MODULE:ATTR",
        help="check an ASGI app in process instead: an app, or a function of no arguments "
        "returning one (KLING_APP)",
    )
    add("--kling-access-key", default=_env("KLING_ACCESS_KEY"), help="access key (KLING_ACCESS_KEY)")
    add("--kling-secret-key", default=_env("KLING_SECRET_KEY"), help="secret key (KLING_SECRET_KEY)")
    add(
        "--kling-api-key",
        default=_env("KLING_API_KEY"),
        help="a raw bearer key (sk-...), as gateways take, instead of access/secret keys (KLING_API_KEY)",
    )
    add(
        "--kling-read-only",
        action="store_true",
        default=_env("KLING_READ_ONLY", "") not in ("", "0", "false", "no"),
        help="send no POST at all: create no task (KLING_READ_ONLY=1)",
    )
    add(
        "--kling-max-tasks",
        type=int,
        default=int(_env("KLING_MAX_TASKS", "2") or 2),
        help="never create more tasks than this (default 2; KLING_MAX_TASKS)",
    )
    add(
        "--kling-fail-prompt",
        default=_env("KLING_FAIL_PROMPT"),
        help="a prompt the server refuses: one more task, to check that failed tasks carry a message "
        "(KLING_FAIL_PROMPT)",
    )
    add(
        "--kling-families",
        default=_env("KLING_FAMILIES"),
        metavar="LIST",
        help="one more task for each of these endpoint families (comma-separated: "
        f"{', '.join(FAMILY_PROBES)}), checked through its lifecycle (KLING_FAMILIES)",
    )
    add(
        "--kling-media",
        default=_env("KLING_MEDIA"),
        metavar="KIND=URL,...",
        help="media those tasks send, which the server must be able to fetch: image=URL, video=URL, "
        "audio=URL (KLING_MEDIA; example URLs otherwise, which only a mock takes)",
    )
    add(
        "--kling-examples",
        type=int,
        default=int(_env("KLING_EXAMPLES", "10") or 10),
        help="generated requests per read operation and mode (default 10; KLING_EXAMPLES)",
    )
    add(
        "--kling-poll-interval",
        type=float,
        default=float(_env("KLING_POLL_INTERVAL", "5") or 5),
        help="seconds between polls of a task (default 5; KLING_POLL_INTERVAL)",
    )
    add(
        "--kling-task-timeout",
        type=float,
        default=float(_env("KLING_TASK_TIMEOUT", "900") or 900),
        help="seconds a task may take to finish (default 900; KLING_TASK_TIMEOUT)",
    )
    add(
        "--kling-ca-file",
        default=_env("KLING_CA_FILE"),
        help="a CA file to verify HTTPS with (KLING_CA_FILE)",
    )
    add(
        "--kling-seed",
        type=int,
        default=int(_env("KLING_SEED", "0") or 0),
        help="seed for generated requests (default 0; KLING_SEED)",
    )


# -- settings, spending and the summary ---------------------------------------------------------


@dataclass
class Settings:
    base_url: str | None
    app: str | None
    access_key: str | None
    secret_key: str | None
    api_key: str | None
    read_only: bool
    max_tasks: int
    fail_prompt: str | None
    examples: int
    poll_interval: float
    task_timeout: float
    ca_file: str | None
    seed: int
    families: tuple[str, ...] = ()
    media: dict[str, str] | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        opt = config.getoption
        settings = cls(
            base_url=opt("kling_base_url"),
            app=opt("kling_app"),
            access_key=opt("kling_access_key"),
            secret_key=opt("kling_secret_key"),
            api_key=opt("kling_api_key"),
            read_only=opt("kling_read_only"),
            max_tasks=opt("kling_max_tasks"),
            fail_prompt=opt("kling_fail_prompt"),
            examples=opt("kling_examples"),
            poll_interval=opt("kling_poll_interval"),
            task_timeout=opt("kling_task_timeout"),
            ca_file=opt("kling_ca_file"),
            seed=opt("kling_seed"),
            families=families_of(opt("kling_families")),
            media=_media(opt("kling_media")),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if not self.base_url and not self.app:
            raise pytest.UsageError(
                "kling contract: give the server to check: --kling-base-url URL (or KLING_BASE_URL)"
            )
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise pytest.UsageError(
                f"kling contract: the base URL must start with http:// or https://: {self.base_url}"
            )
        if bool(self.access_key) != bool(self.secret_key):
            raise pytest.UsageError("kling contract: give the access key and the secret key together")
        if not (self.access_key or self.api_key):
            raise pytest.UsageError(
                "kling contract: give credentials: --kling-access-key AK --kling-secret-key SK, "
                "or --kling-api-key KEY (mockkling's defaults are mockkling-access-key / "
                "mockkling-secret-key-for-local-tests)"
            )
        unknown = [name for name in self.families if name not in FAMILY_PROBES]
        if unknown:
            raise pytest.UsageError(
                f"kling contract: no probe for {', '.join(unknown)}; families: {', '.join(FAMILY_PROBES)}"
            )
        if self.max_tasks < 0 or self.examples < 1 or self.poll_interval < 0 or self.task_timeout <= 0:
            raise pytest.UsageError(
                "kling contract: max-tasks >= 0, examples >= 1, poll-interval >= 0, task-timeout > 0"
            )

    @property
    def target(self) -> str:
        return self.base_url or f"app {self.app} (in process)"

    def planned_tasks(self) -> list[str]:
        """The tasks this run will create, in order; the budget cuts the list at max_tasks."""
        if self.read_only:
            return []
        plan = ["lifecycle probe"]
        if self.fail_prompt:
            plan.append("fail-prompt probe")
        if self.api_key:
            plan.append("model-in-path probe")
        plan += [f"{family} probe" for family in self.families]
        return plan[: self.max_tasks]

    def probe_costs(self) -> list[tuple[str, str, float]]:
        """(task, what it is, units at published prices) for each task the run plans."""
        costs = []
        for what in self.planned_tasks():
            family = what.removesuffix(" probe")
            if family in FAMILY_PROBES:
                action, (model, mode, duration), _body = FAMILY_PROBES[family]
                units = float(catalogue.units(model, mode, duration, action=action))
                costs.append((what, f"{action} {model or 'default'} {mode} {duration}s", units))
            elif what == "model-in-path probe":
                route = catalogue.MODEL_ROUTES[MODEL_API_PROBE.lstrip("/")]
                seconds, resolution = route.default_duration, route.default_resolution
                units = route.rate(catalogue.SILENT, resolution) * seconds
                costs.append((what, f"POST {MODEL_API_PROBE} ({resolution}, {seconds}s)", units))
            else:
                units = float(catalogue.units(PROBE_MODEL, PROBE_MODE, PROBE_DURATION))
                costs.append((what, f"text2video {PROBE_MODEL} {PROBE_MODE} {PROBE_DURATION}s", units))
        return costs

    def spend_lines(self) -> list[str]:
        plan = self.planned_tasks()
        if self.read_only:
            lines = ["spend: --kling-read-only: sends no POST and creates no task"]
        else:
            costs = self.probe_costs()
            lines = [
                f"spend: creates at most {len(plan)} task(s) (limit --kling-max-tasks {self.max_tasks}), "
                f"about {sum(units for *_, units in costs):g} unit(s) in all at published prices",
                *(f"spend: the {what} is {kind}: about {units:g} unit(s)" for what, kind, units in costs),
                "spend: plus a few invalid POSTs, which a compliant server refuses without creating a task",
            ]
            if len(plan) < 1 + bool(self.fail_prompt) + bool(self.api_key) + len(self.families):
                lines.append("spend: the task limit is below the plan: checks beyond it are skipped")
        checks = len(read_checks())
        lines.append(
            f"spend: about {checks * self.examples} generated GET requests ({self.examples} for each of "
            f"{checks} read checks), each with up to two auth probes"
        )
        return lines


def read_checks() -> list[tuple[str, str]]:
    """(operationId, "valid" | "invalid") for the generated reads: every GET of the official
    surface with valid input, and with invalid input where the schema constrains the query
    (Authorization is test_contract_auth.py's business)."""
    spec = default_spec()
    gets = [
        op for _path, method, op in spec.operations() if method == "get" and "official" in op.get("tags", ())
    ]
    checks = [(op["operationId"], "valid") for op in gets]
    for op in gets:
        if any(spec.resolve(param).get("in") == "query" for param in op.get("parameters", [])):
            checks.append((op["operationId"], "invalid"))
    return checks


_STASH_SETTINGS = pytest.StashKey[Settings]()
_STASH_BUDGET = pytest.StashKey["Budget"]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The read checks, one test each; one family-probe test per family of --kling-families
    (none named: skipped, saying how)."""
    if "read_check" in metafunc.fixturenames:
        checks = read_checks()
        metafunc.parametrize("read_check", checks, ids=[f"{op}-{mode}" for op, mode in checks])
    if "family" not in metafunc.fixturenames:
        return
    families = metafunc.config.stash[_STASH_SETTINGS].families
    reason = f"give --kling-families ({', '.join(FAMILY_PROBES)}) to follow their tasks' lifecycle"
    params = list(families) or [pytest.param("", marks=pytest.mark.skip(reason=reason))]
    metafunc.parametrize("family", params, scope="module")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "creates_tasks: the test creates (paid) tasks on the target")
    config.addinivalue_line("markers", "posts: the test sends POST requests (skipped with --kling-read-only)")
    settings = Settings.from_config(config)
    config.stash[_STASH_SETTINGS] = settings
    config.stash[_STASH_BUDGET] = Budget(settings.max_tasks)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Say what the run will spend before anything is sent, whatever the verbosity."""
    settings = session.config.stash[_STASH_SETTINGS]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    auth = f"JWT for access key {settings.access_key}" if settings.access_key else "raw bearer key"
    for line in [f"kling contract: target {settings.target}, auth: {auth}", *settings.spend_lines()]:
        reporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.stash[_STASH_SETTINGS].read_only:
        return
    skip = pytest.mark.skip(reason="--kling-read-only: sends no POST")
    for item in items:
        if item.get_closest_marker("posts") or item.get_closest_marker("creates_tasks"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if config.option.collectonly:
        return
    settings = config.stash[_STASH_SETTINGS]
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = len(stats.get("skipped", []))
    budget = config.stash[_STASH_BUDGET]
    verdict = "PASS" if exitstatus == 0 else "FAIL"
    terminalreporter.write_line(
        f"kling contract: {verdict} {settings.target}: {passed} passed, {failed} failed, {skipped} skipped; "
        f"created {budget.created} task(s) of at most {settings.max_tasks}"
    )


# -- the target -----------------------------------------------------------------------------------


class Budget:
    """Counts the tasks the kit creates and refuses to go past the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.created = 0
        self._made: dict[str, tuple[Any, BaseException | None]] = {}

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()``, run at most once per session whatever happens: its failure is kept and
        raised again, so a probe that breaks never creates a second task."""
        if key not in self._made:
            try:
                self._made[key] = (make(), None)
            except BaseException as exc:  # pytest's skip and fail outcomes included
                self._made[key] = (None, exc)
        value, error = self._made[key]
        if error is not None:
            raise error
        return value

    def spend(self, what: str) -> None:
        """Call before a request that creates a task: skips the test once the limit is reached."""
        if self.created >= self.limit:
            pytest.skip(f"task limit reached ({self.limit}): not creating the {what}")
        self.created += 1


def families_of(option: str | None) -> tuple[str, ...]:
    """--kling-families' names, each once, in order."""
    return tuple(dict.fromkeys(name.strip() for name in (option or "").split(",") if name.strip()))


def _media(option: str | None) -> dict[str, str]:
    """--kling-media's KIND=URL pairs over the example URLs."""
    media = dict(MEDIA)
    for pair in (option or "").split(","):
        if not pair.strip():
            continue
        kind, sep, url = pair.strip().partition("=")
        if not sep or kind not in MEDIA or not url.startswith(("http://", "https://")):
            raise pytest.UsageError(
                f"kling contract: --kling-media takes image=URL,video=URL,audio=URL, not {pair!r}"
            )
        media[kind] = url
    return media


def _load_app(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise pytest.UsageError(f"kling contract: --kling-app takes MODULE:ATTR, not {spec!r}")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if inspect.isfunction(target):
        required = [
            p
            for p in inspect.signature(target).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if not required:
            target = target()
    return target


class Target:
    """The server under test: how to reach it, sign in to it, and generate requests for it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = _load_app(settings.app) if settings.app else None
        self.base_url = (settings.base_url or "http://kling-contract.test").rstrip("/")
        self.verify: ssl.SSLContext | bool = True
        if settings.ca_file:
            self.verify = ssl.create_default_context(cafile=settings.ca_file)
        transport: httpx.BaseTransport | None = SyncASGITransport(self.app) if self.app is not None else None
        self.client = httpx.Client(
            base_url=self.base_url, transport=transport, verify=self.verify, timeout=60
        )
        self.schema = schemathesis.openapi.from_dict(default_spec().document)
        if self.app is not None:
            self.schema.app = self.app
        else:
            self.schema.config.update(base_url=self.base_url, tls_verify=settings.ca_file or True)

    def token(self, **claims: Any) -> str:
        """A fresh credential: a JWT from the access/secret keys, else the raw key."""
        if self.settings.access_key and self.settings.secret_key:
            return make_jwt(self.settings.access_key, self.settings.secret_key, **claims)
        assert self.settings.api_key
        return self.settings.api_key

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    model_api_probe = MODEL_API_PROBE

    def family_probe(self, family: str) -> tuple[str, dict[str, Any]]:
        """The action and create body of a --kling-families probe, with the run's media URLs."""
        action, _cost, body = FAMILY_PROBES[family]
        return action, body(self.settings.media or MEDIA)

    def api_key_headers(self) -> dict[str, str]:
        """The model-in-path design's credential: the raw API key (skips the test without one)."""
        if not self.settings.api_key:
            pytest.skip("the model-in-path routes take an API key: give --kling-api-key (KLING_API_KEY)")
        return {"Authorization": f"Bearer {self.settings.api_key}"}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", self.headers())
        return self.client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", self.headers())
        return self.client.post(path, **kwargs)

    def close(self) -> None:
        self.client.close()


@pytest.fixture(scope="session")
def kling_settings(pytestconfig: pytest.Config) -> Settings:
    return pytestconfig.stash[_STASH_SETTINGS]


@pytest.fixture(scope="session")
def kling(kling_settings: Settings) -> Iterator[Target]:
    target = Target(kling_settings)
    yield target
    target.close()


@pytest.fixture(scope="session")
def budget(pytestconfig: pytest.Config) -> Budget:
    return pytestconfig.stash[_STASH_BUDGET]


Conform = Callable[..., None]


@pytest.fixture(scope="session")
def conform(kling: Target) -> Conform:
    """``conform(operation_id, response, path_parameters=..., query=..., body=...)``: fail unless
    the status is documented for the operation and the body matches its schema."""

    def check(operation_id: str, response: httpx.Response, **case: Any) -> None:
        __tracebackhide__ = True
        operation = kling.schema.find_operation_by_id(operation_id)
        operation.Case(**case).validate_response(response, checks=RESPONSE_CHECKS)

    return check


@pytest.fixture(scope="session")
def wait() -> Callable[[float], None]:
    """Sleep between polls of a remote server (the kit cannot move a server's clock)."""
    return time.sleep
