"""The command line: ``mockkling serve`` runs the mock on uvicorn (HTTP or HTTPS);
``mockkling contract`` runs the contract kit against a server."""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette

from . import contract
from .app import create_app
from .config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Config, ConfigError, FailRule, Timing
from .fault_rules import FaultRule
from .tls import TLSFiles, make_self_signed

# How `mockkling serve --workers N` hands its flags to the workers, each of which builds its
# configuration again (create_app_from_env below).
SERVE_ARGV_ENV: Final = "MOCKKLING_SERVE_ARGV"
# SIGTERM lets in-flight requests finish for at most this long before they are cancelled.
GRACEFUL_SHUTDOWN_SECONDS: Final = 30


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
        metavar="FILE",
        help="keep tasks in this SQLite file, durable across restarts and shared by --workers "
        "(default: in memory; $MOCKKLING_STATE)",
    )
    serve.add_argument(
        "--workers", type=int, default=1, metavar="N", help="worker processes sharing --state (default 1)"
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
    contract.add_parser(commands)
    return parser


def tls_files(args: argparse.Namespace, host: str) -> TLSFiles | None:
    """The certificate to serve HTTPS with, if the flags ask for HTTPS."""
    if args.self_signed:
        if args.ssl_certfile or args.ssl_keyfile:
            raise ConfigError("give either --self-signed or --ssl-certfile/--ssl-keyfile, not both")
        return make_self_signed(args.self_signed, hosts=[host] if host not in ("0.0.0.0", "::") else [])
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
    if args.public_url is not None:
        flags["public_url"] = args.public_url
    callbacks: dict[str, Any] = {}
    if args.callback_host:
        callbacks["allowed_hosts"] = [*config.callbacks.allowed_hosts, *args.callback_host]
    if args.callback_attempts is not None:
        callbacks["attempts"] = args.callback_attempts
    if args.callback_timeout is not None:
        callbacks["timeout_seconds"] = args.callback_timeout
    if callbacks:
        flags["callbacks"] = callbacks
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
        admin_token=args.admin_token or config.admin_token,
        control_remote=config.control_remote if args.control_remote is None else args.control_remote,
        state_file=args.state or config.state_file,
    ).with_defaults()


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
    return create_app(config=config_from_env())


def _banner(config: Config, workers: int = 1, tls: TLSFiles | None = None) -> str:
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
    if config.faults:
        lines.append(f"  fault rules: {len(config.faults)}")
    who = "any client" if config.control_remote else "loopback only"
    token = ", admin token required" if config.admin_token else ""
    lines.append(f"  control API: http://{config.host}:{config.port}/__mockkling/ ({who}{token})")
    where = f"in the state file {config.state_file}" if config.state_file else "in memory"
    lines.append(f"  stored {where}; {workers} worker{'s' if workers > 1 else ''}")
    if tls and tls.ca_file:
        lines.append(f"  HTTPS with a throwaway CA: {tls.ca_file}; have clients trust it with:")
        lines.extend(f"    export {name}={value}" for name, value in tls.trust_env().items())
    return "\n".join(lines)


def serve(
    config: Config,
    *,
    access_log: bool = False,
    workers: int = 1,
    argv: Sequence[str] = (),
    tls: TLSFiles | None = None,
) -> None:
    """Run the server until SIGINT/SIGTERM, which let in-flight requests finish and then close
    the state file. Several workers need the state file: it is what they share."""
    import uvicorn

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "log_level": config.log_level,
        "access_log": access_log,
        "lifespan": "on",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }
    if tls is not None:
        options.update(ssl_certfile=str(tls.certfile), ssl_keyfile=str(tls.keyfile))
    if workers == 1:
        app = create_app(config=config)  # opens the state file: a bad one stops us here
        print(_banner(config, workers, tls), file=sys.stderr, flush=True)
        uvicorn.run(app, **options)
        return
    if config.state_file is None:
        raise ConfigError("--workers needs --state FILE: workers share their tasks through it")
    from .storage import SQLiteTaskStore

    SQLiteTaskStore(config.state_file).close()  # a bad state file stops us before any worker starts
    os.environ[SERVE_ARGV_ENV] = json.dumps(list(argv))
    print(_banner(config, workers, tls), file=sys.stderr, flush=True)
    uvicorn.run("mockkling.cli:create_app_from_env", factory=True, workers=workers, **options)


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
        tls = tls_files(args, config.host)
        if tls and not config.public_url:
            # Result URLs in callbacks use the scheme clients reach us on (workers re-read argv).
            public_url = "https://" + config.public_base_url().removeprefix("http://")
            config = replace(config, public_url=public_url)
            argv = [*argv, "--public-url", public_url]
        if args.command == "serve":
            serve(config, access_log=args.access_log, workers=args.workers, argv=argv, tls=tls)
    except ConfigError as exc:
        print(f"mockkling: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
