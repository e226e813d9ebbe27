"""`mockkling serve --workers 2 --state FILE`: the workers share one state. Each step pins its
requests to one worker by stopping the other (SIGSTOP), so a read provably runs on another
worker than the create it reads."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from serve_process import ServeProcess

from mockkling import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, make_jwt

pytestmark = pytest.mark.slow  # `mockkling serve --workers 2` in child processes

T2V = "/v1/videos/text2video"


@contextmanager
def only(server: ServeProcess, worker: int) -> Iterator[httpx.Client]:
    """A client whose connections can be accepted only by worker ``worker``: the others are
    stopped meanwhile (briefly: the server restarts a worker that misses its 5 s health check)."""
    others = [pid for n, pid in enumerate(server.worker_pids) if n != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def test_workers_share_tasks_and_never_collide_on_ids(tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {make_jwt(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)}"}
    # The same seed in both workers: without a salt per store they would draw the same ids.
    with ServeProcess("--state", str(tmp_path / "state.db"), "--seed", "3", workers=2) as server:
        assert len(server.worker_pids) == 2
        created: dict[int, list[str]] = {}
        for worker in (0, 1):
            with only(server, worker) as client:
                answers = [
                    client.post(
                        T2V, json={"prompt": f"w{worker}", "external_task_id": f"w{worker}-{i}"}, headers=auth
                    )
                    for i in range(20)
                ]
                assert [a.status_code for a in answers] == [200] * 20
                created[worker] = [a.json()["data"]["task_id"] for a in answers]
                # An external_task_id taken on the other worker is taken here too.
                if worker == 1:
                    taken = client.post(T2V, json={"prompt": "x", "external_task_id": "w0-0"}, headers=auth)
                    assert (taken.status_code, taken.json()["code"]) == (400, 1201)
        assert len(set(created[0]) | set(created[1])) == 40
        for worker, reader in ((0, 1), (1, 0)):
            with only(server, reader) as client:
                for task_id in created[worker]:
                    data = client.get(f"{T2V}/{task_id}", headers=auth).json()["data"]
                    assert data["task_id"] == task_id
                by_external = client.get(f"{T2V}/w{worker}-7", headers=auth).json()["data"]
                assert by_external["task_id"] == created[worker][7]
                listed = [
                    t["task_id"]
                    for t in client.get(T2V, params={"pageSize": 50}, headers=auth).json()["data"]
                ]
                assert (
                    listed == (created[0] + created[1])[::-1]
                )  # one list, newest first, both workers' tasks
