"""Configuration from a TOML file, MOCKKLING_* variables and CLI flags, in that order."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mockkling import DEFAULT_ACCESS_KEY, Config, ConfigError, FailRule, Timing
from mockkling.cli import _parser, build_config, main


def _serve_args(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(["serve", *argv])


def test_defaults() -> None:
    config = build_config(_serve_args(), environ={})
    assert (config.host, config.port) == ("127.0.0.1", 8000)
    assert DEFAULT_ACCESS_KEY in config.accounts
    assert config.timing == Timing(1.0, 4.0)


def test_cli_flags(tmp_path: Path) -> None:
    config = build_config(
        _serve_args(
            "--host", "127.0.0.2", "--port", "9000",
            "--access-key", "ak1", "--secret-key", "sk1",
            "--access-key", "ak2", "--secret-key", "sk2",
            "--api-key", "sk-abc",
            "--queue-seconds", "0", "--run-seconds", "1",
            "--fail-word", "nsfw", "--seed", "7",
        ),
        environ={},
    )  # fmt: skip
    assert (config.host, config.port, config.seed) == ("127.0.0.2", 9000, 7)
    assert config.accounts == {"ak1": "sk1", "ak2": "sk2"}  # no default account once one is given
    assert config.api_keys == {"sk-abc": "sk-abc"}
    assert config.timing == Timing(0, 1)
    assert config.fail_rules == [FailRule("nsfw")]


def test_unpaired_keys_are_an_error() -> None:
    with pytest.raises(ConfigError, match="pairs"):
        build_config(_serve_args("--access-key", "ak1"), environ={})


def test_toml_file_then_env_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "mock.toml"
    path.write_text(
        """
port = 8100
seed = 3
[timing]
queue_seconds = 2
run_seconds = 30
[timings."kling-v1:pro"]
queue_seconds = 0
run_seconds = 60
[[accounts]]
access_key = "file-ak"
secret_key = "file-sk"
api_keys = ["sk-file"]
[[fail_rules]]
prompt_contains = "bad"
message = "nope"
"""
    )
    env = {"MOCKKLING_CONFIG": str(path), "MOCKKLING_PORT": "8200", "MOCKKLING_RUN_SECONDS": "9"}
    config = build_config(_serve_args("--port", "8300"), environ=env)
    assert config.port == 8300
    assert config.seed == 3
    assert config.timing == Timing(2, 9)
    assert config.timing_for("kling-v1", "pro") == Timing(0, 60)
    assert config.timing_for("kling-v1", "std") == Timing(2, 9)
    assert config.accounts == {"file-ak": "file-sk"}
    assert config.api_keys == {"sk-file": "file-ak"}
    assert config.fail_rules == [FailRule("bad", "nope")]
    assert build_config(_serve_args(), environ=env).port == 8200


def test_env_credentials() -> None:
    env = {
        "MOCKKLING_ACCESS_KEY": "env-ak",
        "MOCKKLING_SECRET_KEY": "env-sk",
        "MOCKKLING_API_KEYS": "sk-1, sk-2",
    }
    config = build_config(_serve_args(), environ=env)
    assert config.accounts == {"env-ak": "env-sk"}
    assert set(config.api_keys) == {"sk-1", "sk-2"}
    with pytest.raises(ConfigError):
        build_config(_serve_args(), environ={"MOCKKLING_ACCESS_KEY": "only-ak"})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("port = 'eighty'", "port"),
        ("colour = 'blue'", "unknown setting 'colour'"),
        ("[timing]\nqueue_seconds = -1", "queue_seconds"),
        ("[timing]\nwait = 1", "unknown keys"),
        ("port = ", "not valid TOML"),
        ("[[accounts]]\naccess_key = 'a'", "secret_key"),
        ("seed = true", "seed"),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        Config.from_file(path)


def test_bad_env_value() -> None:
    with pytest.raises(ConfigError, match="MOCKKLING_PORT"):
        build_config(_serve_args(), environ={"MOCKKLING_PORT": "http"})


def test_main_reports_config_errors_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read config file" in capsys.readouterr().err
