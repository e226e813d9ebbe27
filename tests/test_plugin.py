"""The pytest plugin, tested as its users meet it: test files run by pytester in a fresh session
with the plugin loaded from its entry point."""

from __future__ import annotations

import re
import shutil
import socket
import threading
from pathlib import Path

import httpcore
import httpx
import pytest

from mockkling import plugin
from mockkling.testing import KlingMock, SharedServer

pytest_plugins = ["pytester"]
# pytester drops the modules an inner run imported first. httpx imports httpcore lazily, so load it
# here: a fresh copy imported later would raise exceptions httpx no longer recognises.
_KEEP_LOADED = (httpcore,)


# Plugins that inner runs do without: pytest-benchmark, where installed, asks git about the
# checkout from inside the session (a child process, which only slow tests may start).
QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:benchmark")


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(source)
    return pytester.runpytest_inprocess(*QUIET_PLUGINS, *args)


def mockkling_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("mockkling-")]


def port_is_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


IN_PROCESS_TESTS = """
import httpx
import jwt
import pytest

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_API_KEY, DEFAULT_SECRET_KEY, ManualClock


def create(mock, prompt="a cat", **fields):
    response = mock.client.post("/v1/videos/text2video", json={"prompt": prompt, **fields})
    assert response.status_code == 200, response.text
    return response.json()["data"]["task_id"]


def status(mock, task_id):
    return mock.client.get(f"/v1/videos/text2video/{task_id}").json()["data"]


def test_a_task_runs_its_lifecycle_on_the_manual_clock(kling_mock):
    task_id = create(kling_mock)
    assert isinstance(kling_mock.clock, ManualClock)
    assert status(kling_mock, task_id)["task_status"] == "submitted"  # the clock does not move by itself
    kling_mock.advance(1)
    assert status(kling_mock, task_id)["task_status"] == "processing"
    kling_mock.advance(4)
    data = status(kling_mock, task_id)
    assert data["task_status"] == "succeed"
    video = kling_mock.client.get(data["task_result"]["videos"][0]["url"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert [task.task_id for task in kling_mock.tasks] == [task_id]


def test_each_test_gets_a_fresh_mock(kling_mock):
    assert kling_mock.tasks == []
    assert kling_mock.client.get("/v1/videos/text2video").json()["data"] == []


def test_default_credentials_and_jwt_factory(kling_mock):
    assert (kling_mock.access_key, kling_mock.secret_key) == (DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    assert kling_mock.api_key == DEFAULT_API_KEY
    token = kling_mock.jwt(ttl_seconds=60)
    claims = jwt.decode(token, DEFAULT_SECRET_KEY, algorithms=["HS256"])
    assert claims["iss"] == DEFAULT_ACCESS_KEY and claims["exp"] - claims["nbf"] == 65
    for authorization in (f"Bearer {token}", f"Bearer {kling_mock.api_key}"):
        answer = kling_mock.client.get("/v1/videos/text2video", headers={"Authorization": authorization})
        assert answer.status_code == 200
    expired = kling_mock.jwt(now=0)
    answer = kling_mock.client.get("/v1/videos/text2video", headers={"Authorization": f"Bearer {expired}"})
    assert answer.json()["code"] == 1004


def test_the_transport_goes_into_your_own_client(kling_mock):
    with httpx.Client(transport=kling_mock.transport, base_url="https://api.klingai.com") as client:
        answer = client.get("/v1/videos/text2video")
    assert answer.status_code == 401 and answer.json()["code"] == 1001  # no token: the mock's own answer
    assert answer.elapsed.total_seconds() >= 0


@pytest.mark.anyio
async def test_async_client(kling_mock):
    async with kling_mock.async_client() as client:
        created = await client.post("/v1/videos/text2video", json={"prompt": "a dog"})
        task_id = created.json()["data"]["task_id"]
        kling_mock.advance(5)
        answer = await client.get(f"/v1/videos/text2video/{task_id}")
    assert answer.json()["data"]["task_status"] == "succeed"


@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


def test_in_process_fixture(pytester: pytest.Pytester) -> None:
    result = run(pytester, IN_PROCESS_TESTS)
    result.assert_outcomes(passed=5)


@pytest.mark.slow
def test_an_inner_session_leaves_the_outer_sessions_server_running(
    pytester: pytest.Pytester, kling_mock_server: SharedServer
) -> None:
    """A session run in process by another (pytester, as a plugin's own tests do) stops only its
    own servers when it ends: the outer session's server still answers."""
    result = run(pytester, "def test_nothing(kling_mock_live):\n    assert kling_mock_live.base_url\n")
    result.assert_outcomes(passed=1)
    assert kling_mock_server.running
    answer = httpx.get(kling_mock_server.url + "/v1/videos/text2video")  # no test mounted: 503
    assert answer.status_code == 503 and answer.json()["code"] == 5001


MARKER_TESTS = """
import pytest

from mockkling import SystemClock

pytestmark = pytest.mark.kling_mock(queue_seconds=0, run_seconds=2, seed=11)


def create(mock, prompt="a cat"):
    return mock.client.post("/v1/videos/text2video", json={"prompt": prompt}).json()["data"]["task_id"]


def status(mock, task_id):
    return mock.client.get(f"/v1/videos/text2video/{task_id}").json()["data"]


def test_module_marker_applies(kling_mock):
    task_id = create(kling_mock)
    assert status(kling_mock, task_id)["task_status"] == "processing"  # queue_seconds=0
    kling_mock.advance(2)
    assert status(kling_mock, task_id)["task_status"] == "succeed"


@pytest.mark.kling_mock(run_seconds=10, fail_words=["forbidden"])
def test_closest_marker_wins_and_markers_combine(kling_mock):
    task_id = create(kling_mock, "something forbidden")
    assert status(kling_mock, task_id)["task_status"] == "processing"  # queue_seconds=0 from the module
    kling_mock.advance(9)
    assert status(kling_mock, task_id)["task_status"] == "processing"  # run_seconds=10 from the test
    kling_mock.advance(1)
    data = status(kling_mock, task_id)
    assert data["task_status"] == "failed" and data["task_status_msg"]


SEEDED_IDS = []


@pytest.mark.parametrize("round", [1, 2])
def test_a_seed_gives_the_same_ids(kling_mock, round):
    SEEDED_IDS.append(create(kling_mock))
    if round == 2:
        assert SEEDED_IDS[0] == SEEDED_IDS[1]


@pytest.mark.kling_mock(accounts={"team-ak": "team-sk"}, api_keys=["sk-team"])
def test_accounts_replace_the_default(kling_mock):
    assert (kling_mock.access_key, kling_mock.secret_key) == ("team-ak", "team-sk")
    assert create(kling_mock)
    default = kling_mock.jwt("mockkling-access-key", "mockkling-secret-key-for-local-tests")
    answer = kling_mock.client.get("/v1/videos/text2video", headers={"Authorization": f"Bearer {default}"})
    assert answer.json()["code"] == 1000
    answer = kling_mock.client.get("/v1/videos/text2video", headers={"Authorization": "Bearer sk-team"})
    assert answer.status_code == 200


@pytest.mark.kling_mock(clock="system")
def test_the_wall_clock_on_request(kling_mock):
    assert isinstance(kling_mock.backend.clock, SystemClock)
    with pytest.raises(TypeError, match="wall clock"):
        kling_mock.advance(1)


@pytest.mark.kling_mock(queue_secs=1)
def test_an_unknown_option_is_an_error(kling_mock):
    pass


@pytest.mark.kling_mock(fail_words="forbidden")
def test_a_bad_value_is_an_error(kling_mock):
    pass


@pytest.mark.kling_mock(5)
def test_positional_options_are_an_error(kling_mock):
    pass
"""


def test_marker(pytester: pytest.Pytester) -> None:
    result = run(pytester, MARKER_TESTS, "--strict-markers")
    result.assert_outcomes(passed=6, errors=3)
    output = result.stdout.str()
    for message in (
        "@pytest.mark.kling_mock: unknown kling_mock option(s) ['queue_secs']; known: queue_seconds,",
        "@pytest.mark.kling_mock: fail_words must be a list of strings, not 'forbidden'",
        "@pytest.mark.kling_mock takes keyword options only, not (5,)",
    ):
        assert message in output
    assert "Traceback" not in output and "During handling" not in output


def test_the_config_fixture_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest
from mockkling import Config, Timing

@pytest.fixture
def kling_mock_config():
    return Config(accounts={"ci-ak": "ci-sk"}, timing=Timing(0, 0))
"""
    )
    result = run(
        pytester,
        """
def test_uses_the_overridden_config(kling_mock):
    assert kling_mock.access_key == "ci-ak"
    task_id = kling_mock.client.post("/v1/videos/text2video", json={"prompt": "x"}).json()["data"]["task_id"]
    data = kling_mock.client.get(f"/v1/videos/text2video/{task_id}").json()["data"]
    assert data["task_status"] == "succeed"
""",
    )
    result.assert_outcomes(passed=1)


LIVE_TESTS = """
import json
import urllib.request

import httpx
import pytest

PORTS = []


def test_real_http_from_any_client(kling_mock_live):
    assert kling_mock_live.base_url.startswith("http://127.0.0.1:")
    PORTS.append(kling_mock_live.base_url)
    request = urllib.request.Request(
        kling_mock_live.base_url + "/v1/videos/text2video",
        data=json.dumps({"prompt": "a cat"}).encode(),
        headers={**kling_mock_live.auth_headers(), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        task_id = json.load(answer)["data"]["task_id"]
    kling_mock_live.advance(5)  # the server thread reads the same clock
    data = kling_mock_live.client.get(f"/v1/videos/text2video/{task_id}").json()["data"]
    assert data["task_status"] == "succeed"
    assert data["task_result"]["videos"][0]["url"].startswith(kling_mock_live.base_url)


@pytest.mark.kling_mock(queue_seconds=0, run_seconds=0)
def test_state_is_reset_and_the_server_shared(kling_mock_live, kling_mock_server):
    PORTS.append(kling_mock_live.base_url)
    assert PORTS[0] == PORTS[1] == kling_mock_server.url  # one server for the session
    assert kling_mock_live.client.get("/v1/videos/text2video").json()["data"] == []
    created = kling_mock_live.client.post("/v1/videos/text2video", json={"prompt": "x"})
    task_id = created.json()["data"]["task_id"]
    data = kling_mock_live.client.get(f"/v1/videos/text2video/{task_id}").json()["data"]
    assert data["task_status"] == "succeed"  # this test's marker, on the shared server


def test_between_tests_the_server_says_so(kling_mock_server):
    answer = httpx.get(kling_mock_server.url + "/v1/videos/text2video")
    assert answer.status_code == 503 and answer.json()["code"] == 5001


def test_report_the_port(kling_mock_server):
    print("PORT", kling_mock_server.url.rsplit(":", 1)[1])
"""


@pytest.mark.slow
def test_live_fixture_shares_one_server_and_stops_clean(pytester: pytest.Pytester) -> None:
    before = mockkling_threads()
    result = run(pytester, LIVE_TESTS, "-s")
    result.assert_outcomes(passed=4)
    found = re.search(r"PORT (\d+)", result.stdout.str())
    assert found is not None
    port = int(found.group(1))
    assert mockkling_threads() == before  # the server thread is gone
    assert port_is_closed(port)  # and so is its port


@pytest.mark.slow
def test_the_listen_address_comes_from_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(plugin.PORT_ENV, str(port))
    result = run(
        pytester,
        f"""
def test_port(kling_mock_live):
    assert kling_mock_live.base_url == "http://127.0.0.1:{port}"
""",
    )
    result.assert_outcomes(passed=1)


HTTPS_TESTS = """
import os
import shutil
import subprocess
import sys

import httpx
import pytest


def test_https_with_a_ca_to_trust(kling_mock_live_https):
    mock = kling_mock_live_https
    assert mock.base_url.startswith("https://127.0.0.1:") and mock.ca_file.is_file()
    assert mock.client.get("/v1/videos/text2video").status_code == 200  # verified against the CA
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(mock.base_url + "/v1/videos/text2video")  # the system trust store does not know it
    localhost = mock.base_url.replace("127.0.0.1", "localhost")
    assert httpx.get(localhost + "/openapi.yaml", verify=mock.verify).status_code == 200


def test_a_child_process_trusts_it_through_the_environment(kling_mock_live_https):
    mock = kling_mock_live_https
    env = {**os.environ, **mock.trust_env()}
    assert set(mock.trust_env()) == {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"}
    code = f"import httpx; print(httpx.get({mock.base_url!r} + '/v1/videos/text2video').json()['code'])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "1001", done.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_node_trusts_it_through_node_extra_ca_certs(kling_mock_live_https):
    mock = kling_mock_live_https
    url = mock.base_url + "/v1/videos/text2video"
    script = f"fetch({url!r}).then(r => r.json()).then(j => console.log(j.code))"
    env = {**os.environ, **mock.trust_env()}
    done = subprocess.run(["node", "-e", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "1001", done.stderr
"""


@pytest.mark.slow
def test_https_fixture(pytester: pytest.Pytester) -> None:
    result = run(pytester, HTTPS_TESTS)
    node = shutil.which("node") is not None
    result.assert_outcomes(passed=2 + node, skipped=1 - node)


@pytest.mark.slow
def test_each_xdist_worker_has_its_own_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import os
import pytest

@pytest.mark.parametrize("n", range(4))
def test_record(kling_mock_live, n, tmp_path_factory):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    task = kling_mock_live.client.post("/v1/videos/text2video", json={"prompt": "x"})
    assert task.status_code == 200
    assert len(kling_mock_live.tasks) == 1  # never another worker's or another test's task
    out = tmp_path_factory.getbasetemp().parent / f"{worker}-{n}.txt"
    out.write_text(kling_mock_live.base_url)
"""
    )
    # Plain asserts and no unrelated plugins: each worker starts in seconds even without bytecode caching.
    quick = ["--assert=plain", "-p", "no:schemathesis", "-p", "no:benchmark", "-p", "no:cacheprovider"]
    result = pytester.runpytest_subprocess(*quick, "-n", "2", "--dist", "load")
    result.assert_outcomes(passed=4)
    records = {p.name.split("-")[0]: p.read_text() for p in Path(pytester.path).rglob("gw*-*.txt")}
    assert set(records) == {"gw0", "gw1"}, records
    assert records["gw0"] != records["gw1"]  # one server per worker


@pytest.mark.slow
def test_sessionfinish_stops_a_leftover_server(pytester: pytest.Pytester) -> None:
    session = pytester.getpathnode(pytester.path).session  # a session of its own, not this one
    server = SharedServer().start()
    session.config.stash[plugin._SERVERS] = [server]
    port = int(server.url.rsplit(":", 1)[1])
    plugin.pytest_sessionfinish(session)
    assert not server.running and port_is_closed(port)
    assert session.config.stash[plugin._SERVERS] == []


def test_the_handle_works_without_pytest() -> None:
    with KlingMock.in_process(queue_seconds=0, run_seconds=1) as mock:
        created = mock.client.post("/v1/videos/text2video", json={"prompt": "a cat"})
        task_id = created.json()["data"]["task_id"]
        mock.advance(1)
        data = mock.client.get(f"/v1/videos/text2video/{task_id}").json()["data"]
    assert data["task_status"] == "succeed"
    assert mock._client is None  # closed on exit
