"""The command line: ``mockkling serve`` runs the mock on uvicorn (HTTP or HTTPS);
``mockkling contract`` runs the contract kit against a server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import ssl
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from starlette.applications import Starlette

from . import callbacks, contract
from .app import create_app
from .backend import open_state
from .catalogue import KLING_HOSTS, MEDIA_HOST, MEDIA_URL
from .config import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_WEBHOOK_SECRET,
    GATEWAY_PROFILES,
    Config,
    ConfigError,
    FailRule,
    Timing,
    is_redis_url,
)
from .connections import Bounds, bounded, fastest_http, worker_protocol
from .fault_rules import FaultRule
from .proxy import KlingProxy
from .tls import TLSFiles, make_self_signed

if TYPE_CHECKING:
    import uvicorn

# How `mockkling serve --workers N` hands its flags to the workers, each of which builds its
# configuration again (create_app_from_env below).
SERVE_ARGV_ENV: Final = "MOCKKLING_SERVE_ARGV"
APP_FACTORY: Final = "mockkling.cli:create_app_from_env"
# SIGTERM lets in-flight requests finish for at most this long before they are cancelled.
GRACEFUL_SHUTDOWN_SECONDS: Final = 30
DEFAULT_PROXY_PORT: Final = 8001


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mockkling", description="A local mock of the Kling AI API.")
    parser.add_argument("--version", action="version", version=f"mockkling {version('mockkling')}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the mock server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000; 0 picks a free one)")
    serve.add_argument("--config", help="TOML config file (default: $MOCKKLING_CONFIG)")
    serve.add_argument(
        "--access-key",
        action="append",
        default=[],
        metavar="AK",
        help="an account's access key; repeatable, paired in order with --secret-key",
    )
    serve.add_argument(
        "--secret-key",
        action="append",
        default=[],
        metavar="SK",
        help="the secret key of the --access-key in the same position",
    )
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="a raw API key (sk-...) to accept; repeatable",
    )
    # -- the model-in-path design (docs/model-in-path-api.md) --
    serve.add_argument(
        "--account-api-key",
        action="append",
        default=[],
        metavar="ACCESS_KEY=KEY",
        help="an API key of an account given with --access-key or the config file; repeatable",
    )
    serve.add_argument(
        "--webhook-secret",
        action="append",
        default=None,
        metavar="SECRET",
        help="whsec_ secret signing every account's callbacks; repeat it for a rotation, '' for none "
        "(default: the default account's published secret)",
    )
    serve.add_argument(
        "--model-api",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="how to read what the official pages leave open, e.g. string_duration=accept "
        "(docs/model-in-path-api.md); repeatable",
    )
    serve.add_argument("--queue-seconds", type=float, help="seconds a task stays submitted")
    serve.add_argument("--run-seconds", type=float, help="seconds a task stays processing")
    serve.add_argument(
        "--fail-word",
        action="append",
        default=[],
        metavar="WORD",
        help="tasks whose prompt contains WORD fail as moderation refusals; repeatable",
    )
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="the mock's address as callback receivers reach it (default http://HOST:PORT)",
    )
    serve.add_argument(
        "--callback-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also deliver callbacks to HOST (a name, IP, CIDR network, *.suffix or *); "
        "repeatable; loopback is allowed by default",
    )
    serve.add_argument("--callback-attempts", type=int, metavar="N", help="attempts per callback (default 4)")
    serve.add_argument(
        "--callback-timeout", type=float, metavar="SECONDS", help="seconds to wait for a receiver (default 5)"
    )
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="RULE",
        help="a fault rule, e.g. 'POST /v1/videos/* 1303 x2', '503 p=0.1 seed=7', 'drop', 'delay=2s' "
        "(docs: faults-and-control.md); repeatable, checked in order",
    )
    serve.add_argument(
        "--rate-limit", type=int, metavar="N", help="requests per second per account (429/1302)"
    )
    serve.add_argument("--max-running", type=int, metavar="N", help="running tasks per account (429/1303)")
    serve.add_argument(
        "--balance", type=float, metavar="UNITS", help="units each account may spend (429/1102)"
    )
    serve.add_argument("--admin-token", help="token the control API (/__mockkling/) requires")
    serve.add_argument(
        "--control-remote",
        action="store_true",
        default=None,
        help="let non-loopback clients use the control API (set --admin-token too)",
    )
    serve.add_argument("--seed", type=int, help="seed for task and request ids (reproducible ids)")
    serve.add_argument(
        "--state",
        metavar="FILE|URL",
        help="keep tasks in this SQLite file, durable across restarts and shared by --workers, or all "
        "the state in Redis (redis://HOST:PORT/DB), shared by every process on it (default: in memory; "
        "$MOCKKLING_STATE)",
    )
    serve.add_argument(
        "--workers", type=int, default=1, metavar="N", help="worker processes sharing --state (default 1)"
    )
    # -- gateway profile --
    serve.add_argument(
        "--gateway",
        choices=GATEWAY_PROFILES,
        help="how the gateway surfaces answer: as the seed document says (seed, the default), as the "
        "seed's gateway really does (ppwapi) or as mainline new-api does (new-api); $MOCKKLING_GATEWAY",
    )
    limits = serve.add_argument_group("what one connection may ask")
    limits.add_argument(
        "--max-header-bytes", type=int, metavar="N", help="request head size, 431 past it (default 16384)"
    )
    limits.add_argument(
        "--request-timeout",
        type=float,
        metavar="SECONDS",
        help="time to send a whole head, and the longest pause in a body; closed past it (default 10)",
    )
    limits.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="open connections, 503 past it (default 1000)",
    )
    serve.add_argument(
        "--http",
        choices=["auto", "httptools", "h11"],
        default="auto",
        help="HTTP parser (default auto: httptools where installed)",
    )
    serve.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="event loop (default auto: uvloop where installed)",
    )
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--access-log", action="store_true", help="log every request")
    tls = serve.add_argument_group("HTTPS")
    tls.add_argument("--ssl-certfile", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    tls.add_argument("--ssl-keyfile", metavar="FILE", help="the private key of --ssl-certfile (PEM)")
    tls.add_argument(
        "--self-signed",
        metavar="DIR",
        help="serve HTTPS with a throwaway CA and a certificate for 127.0.0.1/localhost, written to DIR "
        "(DIR/ca.pem is the CA to trust)",
    )
    testing = serve.add_argument_group("testing code you do not change")
    testing.add_argument(
        "--proxy",
        nargs="?",
        const=DEFAULT_PROXY_PORT,
        type=int,
        metavar="PORT",
        help=f"also run an HTTPS proxy (default port {DEFAULT_PROXY_PORT}; 0 picks a free one) that answers "
        "the Kling hosts with the mock, for clients in any language (needs --self-signed DIR)",
    )
    testing.add_argument(
        "--polls-per-status",
        type=int,
        metavar="N",
        help="tasks move one status every N queries instead of with the clock",
    )
    testing.add_argument("--media-url", metavar="URL", help="where result URLs point (default: the mock)")
    contract.add_parser(commands)
    return parser


def tls_files(args: argparse.Namespace, host: str, *, proxy: bool = False) -> TLSFiles | None:
    """The certificate to serve HTTPS with, if the flags ask for HTTPS (with the proxy, it is
    also valid for the Kling hosts the proxy answers)."""
    if args.self_signed:
        if args.ssl_certfile or args.ssl_keyfile:
            raise ConfigError("give either --self-signed or --ssl-certfile/--ssl-keyfile, not both")
        hosts = [host] if host not in ("0.0.0.0", "::") else []
        if proxy:
            hosts += [*KLING_HOSTS, MEDIA_HOST]
        return make_self_signed(args.self_signed, hosts=hosts)
    if not (args.ssl_certfile or args.ssl_keyfile):
        return None
    if not (args.ssl_certfile and args.ssl_keyfile):
        raise ConfigError("give --ssl-certfile and --ssl-keyfile together")
    files = TLSFiles(Path(args.ssl_certfile), Path(args.ssl_keyfile))
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(files.certfile, files.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use {files.certfile} with {files.keyfile}: {exc}") from None
    return files


def build_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    """Defaults, then the config file, then the environment, then the flags."""
    env = dict(os.environ) if environ is None else environ
    path = args.config or env.get("MOCKKLING_CONFIG")
    config = Config.from_file(path) if path else Config()
    config = config.merge_env(env)
    if len(args.access_key) != len(args.secret_key):
        raise ConfigError("give --access-key and --secret-key the same number of times, in pairs")
    accounts = dict(config.accounts)
    accounts.update(zip(args.access_key, args.secret_key, strict=True))
    api_keys = dict(config.api_keys)
    api_keys.update((key, key) for key in args.api_key)
    for pair in args.account_api_key:
        account, sep, key = pair.partition("=")
        if not (sep and account and key):
            raise ConfigError(f"--account-api-key takes ACCESS_KEY=KEY, not {pair!r}")
        if account not in accounts:
            raise ConfigError(
                f"--account-api-key: no account {account!r}; give it with --access-key and --secret-key "
                "or in the config file"
            )
        api_keys[key] = account
    try:
        faults = [*config.faults, *(FaultRule.parse(spec) for spec in args.fault)]
        limits = replace(
            config.limits,
            **{
                name: value
                for name, value in (
                    ("rate", args.rate_limit),
                    ("concurrency", args.max_running),
                    ("balance", args.balance),
                )
                if value is not None
            },
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    timing = config.timing
    if args.queue_seconds is not None:
        timing = replace(timing, queue_seconds=args.queue_seconds)
    if args.run_seconds is not None:
        timing = replace(timing, run_seconds=args.run_seconds)
    flags: dict[str, Any] = {}
    for name, key in (
        ("public_url", "public_url"),
        ("media_url", "media_url"),
        ("polls_per_status", "polls_per_status"),
        ("max_header_bytes", "max_header_bytes"),
        ("request_timeout", "request_timeout_seconds"),
        ("max_connections", "max_connections"),
    ):
        if getattr(args, name) is not None:
            flags[key] = getattr(args, name)
    callbacks: dict[str, Any] = {}
    if args.callback_host:
        callbacks["allowed_hosts"] = [*config.callbacks.allowed_hosts, *args.callback_host]
    if args.callback_attempts is not None:
        callbacks["attempts"] = args.callback_attempts
    if args.callback_timeout is not None:
        callbacks["timeout_seconds"] = args.callback_timeout
    if callbacks:
        flags["callbacks"] = callbacks
    if args.gateway is not None:
        flags["gateway"] = args.gateway
    if args.webhook_secret is not None:
        flags["webhook_secret"] = args.webhook_secret
    if args.model_api:
        flags["model_api"] = args.model_api
    config = config.merge(flags, source="command line")
    return replace(
        config,
        host=args.host or config.host,
        port=config.port if args.port is None else args.port,
        accounts=accounts,
        api_keys=api_keys,
        timing=Timing(timing.queue_seconds, timing.run_seconds),
        fail_rules=[*config.fail_rules, *(FailRule(word) for word in args.fail_word)],
        seed=config.seed if args.seed is None else args.seed,
        log_level=args.log_level or config.log_level,
        faults=faults,
        limits=limits,
        admin_token=config.admin_token if args.admin_token is None else _admin_token(args.admin_token),
        control_remote=config.control_remote if args.control_remote is None else args.control_remote,
        state_file=args.state or config.state_file,
    ).with_defaults()


def _admin_token(token: str) -> str:
    if not token.strip():
        raise ConfigError("--admin-token cannot be empty: leave the flag out for no token")
    return token


def config_from_env(environ: Mapping[str, str] | None = None) -> Config:
    """The configuration a worker builds: the environment and config file, plus the flags that
    `mockkling serve` passed on in ``MOCKKLING_SERVE_ARGV`` (a JSON list), if any."""
    env = dict(os.environ if environ is None else environ)
    argv = json.loads(env.get(SERVE_ARGV_ENV) or '["serve"]')
    if not (isinstance(argv, list) and all(isinstance(arg, str) for arg in argv)):
        raise ConfigError(f"{SERVE_ARGV_ENV} must be a JSON list of strings")
    return build_config(_parser().parse_args(argv), env)


def create_app_from_env() -> Starlette:
    """The app factory of ``mockkling serve --workers N``, whose workers each build their own app:
    the configuration comes from the environment (``MOCKKLING_*``, the config file), plus the
    flags the command passed on. ``uvicorn --factory mockkling.cli:create_app_from_env``."""
    config = config_from_env()
    app = create_app(config=config)
    if SERVE_ARGV_ENV in os.environ:  # started by mockkling serve, whose flags end with the real port
        app.state.backend.listening_on(config.host, config.port)  # each worker refuses callbacks to itself
    return app


def _banner(
    config: Config, workers: int = 1, tls: TLSFiles | None = None, proxy: KlingProxy | None = None
) -> str:
    scheme = "https" if tls else "http"
    lines = [f"mockkling {version('mockkling')}: the Kling API on {scheme}://{config.host}:{config.port}"]
    # Only the published default pair is printed: a configured secret never reaches the output.
    if config.accounts.get(DEFAULT_ACCESS_KEY) == DEFAULT_SECRET_KEY:
        lines.append(
            f"  default credentials: access key {DEFAULT_ACCESS_KEY}, secret key {DEFAULT_SECRET_KEY}"
        )
    lines.append(f"  accounts: {', '.join(config.accounts) or '(none)'}; api keys: {len(config.api_keys)}")
    t = config.timing
    lines.append(f"  tasks: {t.queue_seconds:g}s submitted, then {t.run_seconds:g}s processing")
    lines.append(f"  callbacks to: {', '.join(config.callbacks.allowed_hosts) or '(none)'}")
    lines.append(f"  gateway surfaces answer as: {config.gateway}")
    lines.extend(_model_api_lines(config))
    if config.faults:
        lines.append(f"  fault rules: {len(config.faults)}")
    who = "any client" if config.control_remote else "loopback only"
    token = ", admin token required" if config.admin_token else ""
    lines.append(f"  control API: {scheme}://{config.host}:{config.port}/__mockkling/ ({who}{token})")
    if config.control_remote and not config.admin_token:
        lines.append(
            "  WARNING: --control-remote without --admin-token: anyone who reaches this port can "
            "reset and steer the mock; set --admin-token TOKEN"
        )
    where = f"in the state file {config.state_file}" if config.state_file else "in memory"
    if is_redis_url(config.state_file):
        shown = re.sub(r"//[^@/]*@", "//***@", config.state_file or "")  # never a password
        where = f"in Redis at {shown} (shared by every process on it)"
    lines.append(f"  stored {where}; {workers} worker{'s' if workers > 1 else ''}")
    if tls and tls.ca_file:
        lines.append(f"  HTTPS with a throwaway CA: {tls.ca_file}; have clients trust it with:")
        lines.extend(f"    export {name}={value}" for name, value in tls.trust_env().items())
    if proxy is not None:
        lines.append(f"  HTTPS proxy answering the Kling hosts on {proxy.url}; send clients through it with:")
        lines.append(f"    export HTTPS_PROXY={proxy.url}")
    return "\n".join(lines)


class ListenError(OSError):
    """The server cannot take its address (a port in use, an address not of this machine)."""


def server_options(config: Config, http: str = "auto", loop: str = "auto") -> dict[str, Any]:
    """uvicorn's HTTP parser (httptools by default, h11 where it is missing or asked for) with
    what one connection may ask (mockkling/connections.py), and its event loop (uvloop by
    default where installed)."""
    parser = fastest_http() if http == "auto" else http
    bounds = Bounds(config.max_header_bytes, config.request_timeout_seconds, config.max_connections)
    return {
        "http": bounded(parser, bounds),
        "h11_max_incomplete_event_size": config.max_header_bytes,
        "loop": loop,
    }


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts, so the banner tells the real
    port and a taken one is a clear error; it listens at once (connections wait in its backlog
    until the server accepts them), so the port answers as soon as it is printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def start_proxy(config: Config, tls: TLSFiles, port: int) -> KlingProxy:
    """The HTTPS proxy for the Kling hosts, in a thread of its own, forwarding to the mock."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tls.certfile, tls.keyfile)
    upstream_tls = ssl.create_default_context(cafile=str(tls.ca_file)) if tls.ca_file else None
    upstream = (_reachable(config.host), config.port)
    proxy = KlingProxy(
        [*KLING_HOSTS, MEDIA_HOST],
        server_tls,
        upstream,
        upstream_tls=upstream_tls,
        host=config.host,
        port=port,
    )
    started = threading.Event()

    async def run() -> None:
        await proxy.start()
        started.set()
        await asyncio.Event().wait()  # until the process ends

    threading.Thread(target=asyncio.run, args=(run(),), name="mockkling-proxy", daemon=True).start()
    if not started.wait(10):
        raise ConfigError(f"the proxy could not listen on {config.host}:{port}")
    return proxy


def _reachable(host: str) -> str:
    """An address of this machine that reaches a server bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _model_api_lines(config: Config) -> list[str]:
    """The banner's lines on the model-in-path design: its routes, the webhook secrets that sign
    callbacks (the published default in full, a configured one masked) and any non-default
    reading of the official pages."""
    lines = ["  model-in-path design: POST /{operation}/{model}, GET and POST /tasks (API keys only)"]
    if config.api_keys.get(DEFAULT_API_KEY) == DEFAULT_ACCESS_KEY:
        lines.append(f"  default API key (Authorization: Bearer ...): {DEFAULT_API_KEY}")

    def shown(secrets: tuple[str, ...]) -> str:
        if not secrets:
            return "none (callbacks unsigned)"
        return ", ".join(s if s == DEFAULT_WEBHOOK_SECRET else f"{s[:6]}...{s[-4:]}" for s in secrets)

    lines.append(f"  webhook secret: {shown(config.webhook_secret or ())}")
    lines.extend(f"    account {account}: {shown(own)}" for account, own in config.webhook_secrets.items())
    changed = {k: v for k, v in config.model_api.to_dict().items() if v != getattr(Config().model_api, k)}
    if changed:
        lines.append("  model_api readings: " + ", ".join(f"{k}={v}" for k, v in changed.items()))
    return lines


def serve(
    config: Config,
    *,
    access_log: bool = False,
    workers: int = 1,
    argv: Sequence[str] = (),
    tls: TLSFiles | None = None,
    proxy_port: int | None = None,
    http: str = "auto",
    loop: str = "auto",
) -> None:
    """Run the server until SIGINT/SIGTERM, which let in-flight requests finish and then close
    the state file. Several workers need the state file: it is what they share."""
    import uvicorn

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    if proxy_port is not None and (tls is None or tls.ca_file is None):
        raise ConfigError("--proxy needs --self-signed DIR: clients must trust the CA of its certificates")
    if proxy_port is not None and workers > 1:
        raise ConfigError("--proxy runs with one worker")
    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "log_level": config.log_level,
        "access_log": access_log,
        "lifespan": "on",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        **server_options(config, http, loop),
    }
    if tls is not None:
        options.update(ssl_certfile=str(tls.certfile), ssl_keyfile=str(tls.keyfile))
    _enough_open_files(config)
    if workers == 1:
        sock = _bind(config.host, config.port)
        with sock:
            config = replace(config, port=sock.getsockname()[1])
            app = create_app(config=config)  # opens the state file: a bad one stops us here
            app.state.backend.listening_on(config.host, config.port)
            proxy = start_proxy(config, tls, proxy_port) if proxy_port is not None and tls else None
            print(_banner(config, workers, tls, proxy), file=sys.stderr, flush=True)
            uvicorn.Server(uvicorn.Config(app, **{**options, "port": config.port})).run(sockets=[sock])
        return
    if config.state_file is None:
        raise ConfigError("--workers needs --state FILE or URL: workers share their tasks through it")
    if config.limits.any_limit and not is_redis_url(config.state_file):
        # A state file shares tasks only: each worker would count its own requests and tasks.
        raise ConfigError(
            "limits (--rate-limit, --max-running, --balance) with --workers need --state redis://...: "
            "on a state file each worker would enforce them on its own share of the requests"
        )
    open_state(config).close()  # a bad state file, or no Redis, stops us before any worker starts
    sock = _bind(config.host, config.port)
    with sock:
        config = replace(config, port=sock.getsockname()[1])
        # The workers rebuild the configuration from these flags: the real port last, so it wins.
        os.environ[SERVE_ARGV_ENV] = json.dumps([*argv, "--port", str(config.port)])
        print(_banner(config, workers, tls), file=sys.stderr, flush=True)
        # The workers take their protocol by import path: a class made here cannot cross to them.
        parser = fastest_http() if http == "auto" else http
        bounds = Bounds(config.max_header_bytes, config.request_timeout_seconds, config.max_connections)
        options.update(port=config.port, http=worker_protocol(parser, bounds))
        _run_workers(uvicorn.Config(APP_FACTORY, factory=True, workers=workers, **options), sock)


# Files a server holds besides its clients' connections and its callbacks' (the listening
# socket, the state file or Redis, result files being sent, the event loop's own).
SPARE_FILES: Final = 64


def _enough_open_files(config: Config) -> None:
    """Raise the soft limit on open files to what the bounds need (client connections, callback
    connections, spare), as far as the hard limit allows; say so when it does not, since past it
    the server would stop accepting connections instead of answering 503."""
    try:
        import resource
    except ImportError:  # not on POSIX: the platform's own limits apply
        return
    needed = config.max_connections + callbacks.MAX_CONNECTIONS + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < needed:
        print(
            f"WARNING: open files are limited to {soft}; --max-connections {config.max_connections} "
            f"needs {needed} (raise `ulimit -n`, or lower --max-connections)",
            file=sys.stderr,
            flush=True,
        )


def _run_workers(config: uvicorn.Config, sock: socket.socket) -> None:
    """What ``uvicorn.run`` does for several workers, on the socket bound here: its own ``fd=``
    would take the socket for a Unix one, which uvloop then serves as a pipe."""
    from uvicorn.supervisors import Multiprocess

    sock.set_inheritable(True)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[sock]).run()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after "--" goes to pytest untouched (mockkling contract ... -- -x -k auth).
    passthrough: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, passthrough = argv[:at], argv[at + 1 :]
    args = _parser().parse_args(argv)
    if args.command == "contract":
        args.pytest_args = passthrough
        return contract.run(args)
    try:
        config = build_config(args)
        tls = tls_files(args, config.host, proxy=args.proxy is not None)
        if args.proxy is not None and not config.media_url:
            config = replace(config, media_url=MEDIA_URL)  # result URLs on the real CDN's host
        if tls and not config.public_url:
            # Result URLs in callbacks use the scheme clients reach us on (workers re-read argv).
            public_url = "https://" + config.public_base_url().removeprefix("http://")
            config = replace(config, public_url=public_url)
            argv = [*argv, "--public-url", public_url]
        if args.command == "serve":
            serve(
                config,
                access_log=args.access_log,
                workers=args.workers,
                argv=argv,
                tls=tls,
                proxy_port=args.proxy,
                http=args.http,
                loop=args.loop,
            )
    except ConfigError as exc:
        print(f"mockkling: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:
        print(f"mockkling: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
