"""The README's examples are tests (as pytest-httpserver does it), so the docs cannot drift from
the code: every Python block that starts with ``# <file>.py`` runs as written, the CI shell
script runs as written against a sample project, and every ``mockkling`` command in the CI
examples parses with the real command line."""

from __future__ import annotations

import os
import re
import shlex
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpcore
import pytest
import yaml

from mockkling.cli import _parser

pytest_plugins = ["pytester"]
# pytester drops the modules an inner run imported first. httpx imports httpcore lazily, so load it
# here: a fresh copy imported later would raise exceptions httpx no longer recognises.
_KEEP_LOADED = (httpcore,)

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def example_files() -> dict[str, str]:
    """Python blocks that are files (their first line is ``# name.py``), by path. A
    ``conftest.py`` starts a directory of its own, holding it and the examples after it, so its
    overrides reach only the examples written for them."""
    files = {}
    folder = ""
    for body in blocks("python"):
        first = body.split("\n", 1)[0]
        if re.fullmatch(r"# [\w/]+\.py", first):
            name = first[2:]
            if name == "conftest.py":
                folder = f"suite{len(files)}/"
            files[folder + name] = body
    return files


def test_the_readme_has_an_example_for_each_fixture() -> None:
    source = "\n".join(example_files().values())
    for fixture in ("kling_mock", "kling_mock_live", "kling_mock_live_https", "kling_mock_config"):
        assert re.search(rf"\b{fixture}\b", source), fixture
    assert "@pytest.mark.kling_mock(" in source and "async_client()" in source


def test_the_fixture_examples_run_as_written(pytester: pytest.Pytester) -> None:
    files = example_files()
    for name, body in files.items():
        path = pytester.path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(body)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--strict-markers")
    tests = sum(len(re.findall(r"^(?:async )?def test_", body, re.M)) for body in files.values())
    assert tests >= 6
    result.assert_outcomes(passed=tests)


# -- the CI examples -------------------------------------------------------------------------------


def ci_script() -> str:
    scripts = [body for body in blocks("bash") if body.startswith("#!/usr/bin/env bash")]
    assert len(scripts) == 1
    return scripts[0]


def ci_workflow() -> dict[str, object]:
    workflows = [body for body in blocks("yaml") if body.startswith("# .github/workflows/")]
    assert len(workflows) == 1
    document: dict[str, object] = yaml.safe_load(workflows[0])
    return document


def mockkling_commands(text: str) -> list[list[str]]:
    """Each ``mockkling ...`` command line, as argv, shell redirections and defaults resolved."""
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("mockkling "):
            continue
        line = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", line)  # ${VAR:-default} -> default
        line = re.split(r"\s(?:>|2>|&|\|)", line)[0]
        commands.append(shlex.split(line)[1:])
    return commands


def test_the_ci_workflow_is_complete() -> None:
    workflow = ci_workflow()
    jobs = workflow["jobs"]
    assert isinstance(jobs, dict)
    steps = next(iter(jobs.values()))["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "pip install" in runs and "mockkling serve" in runs and "mockkling contract" in runs
    assert "pytest" in runs
    assert any("upload-artifact" in step.get("uses", "") for step in steps)


def test_every_mockkling_command_in_the_ci_examples_parses() -> None:
    workflow = ci_workflow()
    steps = next(iter(workflow["jobs"].values()))["steps"]  # type: ignore[attr-defined]
    workflow_commands = mockkling_commands("\n".join(step.get("run", "") for step in steps))
    script_commands = mockkling_commands(ci_script())
    assert [argv[0] for argv in script_commands] == ["serve", "contract"]
    for argv in workflow_commands + script_commands:
        _parser().parse_args(argv)  # exits (fails the test) on an unknown flag or a bad value
    # The workflow and the script do the same thing.
    assert workflow_commands == script_commands


def test_the_ci_script_runs_as_written(tmp_path: Path) -> None:
    """The script installs nothing here (pip is stubbed), starts the real server, runs a sample
    project's tests against it and the contract kit, and leaves no server behind."""
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_team.py").write_text(
        """
import os

import httpx
from mockkling import make_jwt


def test_our_code_against_the_mock():
    token = make_jwt(os.environ["KLING_ACCESS_KEY"], os.environ["KLING_SECRET_KEY"])
    client = httpx.Client(base_url=os.environ["KLING_BASE_URL"], headers={"Authorization": f"Bearer {token}"})
    created = client.post("/v1/videos/text2video", json={"prompt": "a cat"}).json()
    assert created["code"] == 0 and created["data"]["task_status"] == "submitted"
"""
    )
    stubs = tmp_path / "bin"
    stubs.mkdir()
    python = stubs / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "(pip stubbed: $*)"; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    script = tmp_path / "kling.sh"
    script.write_text(ci_script())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(stubs), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "KLING_PORT": str(port),
        "KLING_EXAMPLES": "2",  # a small budget for the kit's generated requests
    }
    done = subprocess.run(
        ["bash", str(script)], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "(pip stubbed: -m pip install mockkling[contract])" in output
    assert "1 passed" in output  # the sample project's test
    assert f"kling contract: PASS http://127.0.0.1:{port}" in output
    assert (project / "reports" / "kling-contract.xml").is_file()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the script left the server running"


def test_the_example_without_pytest_runs_as_written() -> None:
    [example] = [body for body in blocks("python") if body.startswith("from mockkling import KlingMock\n")]
    exec(compile(example, "README.md", "exec"), {})
