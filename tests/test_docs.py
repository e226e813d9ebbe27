"""The README's and the docs site's examples are tests (as pytest-httpserver does it), so the docs
cannot drift from the code. Every fenced block is checked by its language:

- ``python``: a block whose first line is ``# <name>.py`` is a file of a test suite that runs
  with the plugin (a ``conftest.py`` starts a folder of its own); any other block runs as a script;
- ``bash``: the CI script runs as written against a sample project; a block that calls ``curl``
  runs as written against ``mockkling serve``; every other command is checked against what it
  names (the real command line, a script's flags, a path, an extra);
- ``toml`` loads as a configuration, ``yaml`` and ``json`` parse, the CI workflow is complete;
- ``text`` is output: the ``mockkling serve --help`` copy must be current, the rest is shown.

It also holds the README to 10 KB, its links to the pages and headings they name, the README's
test command to the one .ci/run runs, and the layers picture to the layers contract.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import socket
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpcore
import httpx
import layers_picture
import pytest
import yaml
from markdown.extensions.toc import slugify
from serve_process import ServeProcess

from mockkling import Config, ConfigError
from mockkling.cli import _parser, build_config

pytest_plugins = ["pytester"]
# pytester drops the modules an inner run imported first. httpx imports httpcore lazily, so load it
# here: a fresh copy imported later would raise exceptions httpx no longer recognises.
_KEEP_LOADED = (httpcore,)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
LANGUAGES = {"python", "bash", "toml", "yaml", "json", "text"}
# Where the examples say the server is: `mockkling serve` on its defaults.
DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def all_blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(page, line, match.group(1), match.group(2)))
    return found


def blocks(language: str) -> list[Block]:
    return [block for block in all_blocks() if block.language == language]


def params(found: list[Block]) -> list[object]:
    return [pytest.param(block, id=block.where) for block in found]


def test_every_block_is_fenced_at_the_margin_with_a_checked_language() -> None:
    """An indented or unlabelled block would escape every check below."""
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                assert line.startswith("```"), f"{page.name}:{number}: an indented code fence"
    for block in all_blocks():
        assert block.language in LANGUAGES, f"{block.where}: language {block.language!r} is not checked"


# -- Python ----------------------------------------------------------------------------------------


def is_file(block: Block) -> bool:
    return re.fullmatch(r"# [\w/]+\.py", block.body.split("\n", 1)[0]) is not None


def example_files() -> dict[str, str]:
    """Python blocks that are files (their first line is ``# name.py``), by path: each page's in a
    folder of its own, and a ``conftest.py`` starts another, holding it and the examples after it,
    so its overrides reach only the examples written for them."""
    files: dict[str, str] = {}
    folders: dict[Path, str] = {}
    for block in blocks("python"):
        if not is_file(block):
            continue
        name = block.body.split("\n", 1)[0][2:]
        folder = folders.setdefault(block.page, f"{block.page.stem.lower().replace('-', '_')}/")
        if name == "conftest.py":
            folder = folders[block.page] = f"{folder.rstrip('/')}_{len(files)}/"
        assert folder + name not in files, f"{block.where}: a second {name} on one page"
        files[folder + name] = block.body
    return files


def test_there_is_an_example_for_each_fixture() -> None:
    source = "\n".join(example_files().values())
    for fixture in ("kling_mock", "kling_mock_live", "kling_mock_live_https", "kling_mock_config"):
        assert re.search(rf"\b{fixture}\b", source), fixture
    assert "@pytest.mark.kling_mock(" in source and "async_client()" in source


@pytest.mark.slow  # the examples include live servers over HTTP and HTTPS and a child process
def test_the_test_file_examples_run_as_written(pytester: pytest.Pytester) -> None:
    files = example_files()
    for name, body in files.items():
        path = pytester.path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(body)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:benchmark", "--strict-markers")
    tests = sum(len(re.findall(r"^(?:async )?def test_", body, re.M)) for body in files.values())
    assert tests >= 9
    result.assert_outcomes(passed=tests)


@pytest.mark.parametrize("block", params([b for b in blocks("python") if not is_file(b)]))
def test_the_script_examples_run_as_written(block: Block) -> None:
    exec(compile(block.body, block.where, "exec"), {"__name__": "__main__"})


# -- configuration: TOML and the command line ------------------------------------------------------


@pytest.mark.parametrize("block", params(blocks("toml")))
def test_the_config_examples_load(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "mockkling.toml"
    path.write_text(block.body)
    assert Config.from_file(path) != Config()


def test_the_serve_help_on_the_configuration_page_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--help"])
    [shown] = [b.body for b in blocks("text") if b.body.startswith("usage: mockkling serve")]
    assert shown == out.getvalue(), "docs/configuration.md: paste the new `mockkling serve --help` there"


# -- shell: every command is run or checked --------------------------------------------------------


def commands(text: str) -> list[str]:
    """Each command of a shell block: continuation lines joined, comments dropped, ``&&`` split."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line.strip()) if not line.strip().startswith("#") else ""
        out.extend(part.strip() for part in line.split("&&") if part.strip())
    return out


def mockkling_commands(text: str) -> list[list[str]]:
    """Each ``mockkling ...`` command line, as argv, shell redirections and defaults resolved."""
    found = []
    for command in commands(text):
        if not command.startswith("mockkling "):
            continue
        command = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", command)  # ${VAR:-default} -> default
        command = re.split(r"\s(?:>|2>|&|\|)", command)[0]
        found.append(shlex.split(command)[1:])
    return found


def is_ci_script(block: Block) -> bool:
    return block.body.startswith("#!/usr/bin/env bash")


def is_session(block: Block) -> bool:
    return "curl " in block.body and not is_ci_script(block)


def check_command(argv: list[str], config_file: Path) -> None:
    """A command the docs show but the suite does not run: what it names must exist."""
    name, args = argv[0], argv[1:]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    if name == "mockkling":
        parsed = _parser().parse_args(args)  # exits (fails the test) on an unknown flag or a bad value
        if parsed.command == "serve":
            if parsed.config is not None:
                parsed.config = str(config_file)  # the configuration page's example file
            build_config(parsed, environ={})  # bad fault rules, limits or pairs raise ConfigError
    elif name == "pip":
        for extra in re.findall(r"\[(\w+)\]", " ".join(args)):
            assert extra in extras, f"no extra [{extra}] in pyproject.toml"
        for wheel in re.findall(r"mockkling-[\w.-]+?\.whl", " ".join(args)):
            assert wheel == f"mockkling-{version}-py3-none-any.whl", wheel
    elif name in ("python", "python3") and args[:1] == ["-m"] and args[1] in ("venv", "pip", "pytest"):
        check_command(args[1:], config_file)
    elif name in ("python", "python3"):
        script = ROOT / args[0]
        assert script.is_file(), args[0]
        for flag in re.findall(r"(?<!\S)(--[\w-]+)", " ".join(args[1:])):
            assert f'"{flag}"' in script.read_text(), f"{args[0]} has no {flag}"
    elif name == "pytest":
        for arg in args:
            if arg.endswith(".py") or arg in ("tests", "contracts"):
                assert (ROOT / arg).exists(), arg
        if "contracts" in args:
            conftest = (ROOT / "contracts" / "conftest.py").read_text()
            for flag in re.findall(r"(?<!\S)(--kling-[\w-]+)", " ".join(args)):
                assert f'"{flag}"' in conftest, f"the contract kit has no {flag}"
    elif name in ("venv", ".", "source"):
        pass  # making and entering a virtualenv
    elif name == "redis-server":  # docs/team-server.md: Redis for the replicas; its flags are directives
        directives = {"--appendonly", "--appendfsync", "--port", "--bind", "--dir", "--save"}
        assert set(args[::2]) <= directives, f"redis-server {' '.join(args)}: check these directives"
    else:
        raise AssertionError(f"{' '.join(argv)}: test_docs.py does not know how to check this command")


@pytest.mark.parametrize(
    "block", params([b for b in blocks("bash") if not (is_session(b) or is_ci_script(b))])
)
def test_every_command_names_what_exists(block: Block, tmp_path: Path) -> None:
    config_file = tmp_path / "mockkling.toml"
    config_file.write_text(next(b.body for b in blocks("toml") if b.page.name == "configuration.md"))
    for command in commands(block.body):
        check_command(shlex.split(command), config_file)


@pytest.fixture(scope="module")
def served() -> Iterator[ServeProcess]:
    with ServeProcess() as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("block", params([b for b in blocks("bash") if is_session(b)]))
def test_the_curl_sessions_run_as_written(block: Block, served: ServeProcess, tmp_path: Path) -> None:
    """Against a fresh ``mockkling serve`` state; curl fails on any HTTP error, so does the block."""
    httpx.post(f"{served.url}/__mockkling/reset").raise_for_status()
    stubs = tmp_path / "bin"
    stubs.mkdir()
    curl = stubs / "curl"
    curl.write_text('#!/bin/sh\nexec /usr/bin/curl --fail-with-body --max-time 20 "$@"\n')
    curl.chmod(curl.stat().st_mode | stat.S_IXUSR)
    script = tmp_path / "session.sh"
    script.write_text("set -euo pipefail\n" + block.body.replace(DEFAULT_URL, served.url))
    path = os.pathsep.join([str(stubs), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run(
        ["bash", str(script)], env={**os.environ, "PATH": path}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{block.where}\n{done.stdout}\n{done.stderr}"
    assert '"code":0' in done.stdout or '"task_id"' in done.stdout, done.stdout


# -- the CI examples -------------------------------------------------------------------------------


def ci_script() -> str:
    scripts = [block.body for block in blocks("bash") if is_ci_script(block)]
    assert len(scripts) == 1
    return scripts[0]


def ci_workflow() -> dict[str, object]:
    workflows = [block.body for block in blocks("yaml") if block.body.startswith("# .github/workflows/")]
    assert len(workflows) == 1
    document: dict[str, object] = yaml.safe_load(workflows[0])
    return document


def test_the_yaml_and_json_examples_parse() -> None:
    for block in blocks("yaml"):
        yaml.safe_load(block.body)
    for block in blocks("json"):
        json.loads(block.body)


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
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
    port = _free_port()
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


# -- the README, its links, and what it promises ---------------------------------------------------


def test_the_readme_is_short() -> None:
    assert README.stat().st_size <= 10 * 1024


def headings(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slugify(m.group(1), "-") for m in re.finditer(r"^#{1,6} (.+?)\s*$", text, re.M)}


def test_the_readmes_links_reach_a_page_and_heading() -> None:
    links = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#([^)]+))?\)", README.read_text())
    assert len(links) >= 10
    for target, anchor in links:
        page = ROOT / target
        assert page.is_file(), target
        if anchor:
            assert anchor in headings(page), f"{target}#{anchor}"


def test_ci_runs_the_readmes_test_command() -> None:
    """The README's second command is what .ci/run runs last, after its install and checks."""
    [two_commands] = [b.body for b in blocks("bash") if b.page == README and "mockkling serve" in b.body]
    install, test_command = commands(two_commands)[-2:]
    assert install == "pip install -e '.[test]'"
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and line[0] != "#"]
    assert ci_lines[-1] == test_command
    assert any(line.endswith(" -e '.[test]'") and "pip install" in line for line in ci_lines)
    assert any("mkdocs build --strict" in line for line in ci_lines)


def test_the_layers_picture_is_the_layers_contract() -> None:
    assert layers_picture.PICTURE.read_text() == layers_picture.render(), (
        "the layers changed: redraw docs/layers.svg with `python tests/layers_picture.py`"
    )
    modules = [m for _, row in layers_picture.layers() for m in row]
    assert len(modules) == len(set(modules)) >= 30


def test_the_architecture_page_names_every_module() -> None:
    """A newcomer finds each module of the package in the layer table, with its concern."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    modules = {path.name for path in (ROOT / "mockkling").glob("*.py") if path.name != "__init__.py"}
    assert {name for name in modules if f"`{name}`" not in page} == set()


def test_the_command_checker_refuses_what_it_cannot_vouch_for() -> None:
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        check_command(["mockkling", "serve", "--no-such-flag"], Path("unused.toml"))
    with pytest.raises(ConfigError):
        check_command(["mockkling", "serve", "--fault", "POST 9999"], Path("unused.toml"))
    with pytest.raises(AssertionError):
        check_command(["python", "tests/benchmarks/run.py", "--no-such-flag"], Path("unused.toml"))
    with pytest.raises(AssertionError):
        check_command(["rm", "-rf", "build"], Path("unused.toml"))


def test_every_test_starts_mockkling_serve_through_the_one_helper() -> None:
    """What the architecture page says of the suite: the command line is built in one place."""
    builders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path.name != "serve_process.py" and re.search(
            r"""["']mockkling\.cli["'],\s*["']serve["']""", path.read_text()
        ):
            builders.append(path.name)
    assert builders == []
    assert "serve_command" in (ROOT / "tests" / "benchmarks" / "run.py").read_text()
