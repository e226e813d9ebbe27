"""The task lifecycle is lawful: a created task is found by its task_id and its
external_task_id, its status only moves forward (submitted -> processing -> succeed | failed),
`succeed` carries videos with URLs, `failed` carries a message, and lists show it, newest first.

The kit creates at most ``--kling-max-tasks`` tasks (the probe, and one with
``--kling-fail-prompt`` if given); the read-only checks look at tasks that already exist."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from mockkling.tasks import RANK, TERMINAL

ACTION, CREATE, GET, LIST = "text2video", "createText2Video", "getText2VideoTask", "listText2VideoTasks"
LISTS = {
    "text2video": "listText2VideoTasks",
    "image2video": "listImage2VideoTasks",
    # 2026 video endpoints
    "omni-video": "listOmniVideoTasks",
    "motion-control": "listMotionControlTasks",
    "avatar/image2video": "listAvatarImage2VideoTasks",
    "advanced-lip-sync": "listAdvancedLipSyncTasks",
    "multi-elements": "listMultiElementsTasks",
}
PROBE = {"model_name": "kling-v1", "mode": "std", "duration": "5"}


@dataclass
class Watched:
    """One created task, and every view of it the kit saw until it finished (or time ran out)."""

    body: dict[str, Any]
    created: dict[str, Any]
    views: list[dict[str, Any]] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return str(self.created["task_id"])

    @property
    def last(self) -> dict[str, Any]:
        return self.views[-1]


def create_and_watch(
    kling,
    conform,
    budget,
    what: str,
    prompt: str = "",
    *,
    action: str = ACTION,
    body: dict[str, Any] | None = None,
) -> Watched:
    """Create one task (the text2video probe with ``prompt``, or ``body`` on ``action``), then
    poll it until it finishes or the task timeout passes, checking every answer's schema."""
    budget.spend(what)
    body = {**(body if body is not None else {**PROBE, "prompt": prompt})}
    body["external_task_id"] = f"mockkling-contract-{uuid.uuid4().hex}"
    create, get = _operations(action)
    response = kling.post(f"/v1/videos/{action}", json=body)
    conform(create, response, body=body)
    assert response.status_code == 200, f"create answered {response.status_code}: {response.text}"
    envelope = response.json()
    assert envelope["code"] == 0, f"create answered code {envelope['code']}: {envelope}"
    watched = Watched(body, envelope["data"])
    deadline = time.monotonic() + kling.settings.task_timeout
    while True:
        response = kling.get(f"/v1/videos/{action}/{watched.task_id}")
        conform(get, response, path_parameters={"task_id": watched.task_id})
        assert response.status_code == 200, f"query answered {response.status_code}: {response.text}"
        watched.views.append(response.json()["data"])
        if watched.last["task_status"] in TERMINAL or time.monotonic() > deadline:
            return watched
        time.sleep(kling.settings.poll_interval)


def _operations(action: str) -> tuple[str, str]:
    """The create and query operations of an action, named after its list operation."""
    name = LISTS[action].removeprefix("list").removesuffix("Tasks")
    return f"create{name}", f"get{name}Task"


# Module-scoped, and made once even if they fail: a test error must never cost another task.
@pytest.fixture(scope="module")
def probe(kling, conform, budget) -> Watched:
    prompt = "mockkling contract check: a calm sea at dawn"
    return budget.once("probe", lambda: create_and_watch(kling, conform, budget, "lifecycle probe", prompt))


@pytest.fixture(scope="module")
def refused_probe(kling, conform, budget) -> Watched:
    if not kling.settings.fail_prompt:
        pytest.skip("give --kling-fail-prompt to check that failed tasks carry a message")
    prompt = kling.settings.fail_prompt
    return budget.once(
        "refused", lambda: create_and_watch(kling, conform, budget, "fail-prompt probe", prompt)
    )


def assert_lawful(views: list[dict[str, Any]]) -> None:
    """Status never moves back, created_at never changes, updated_at never decreases."""
    unknown = [view["task_status"] for view in views if view["task_status"] not in RANK]
    assert not unknown, f"statuses outside the lifecycle: {unknown}"
    ranks = [RANK[view["task_status"]] for view in views]
    assert ranks == sorted(ranks), f"status moved backwards: {[v['task_status'] for v in views]}"
    created = {view["created_at"] for view in views}
    assert len(created) == 1, f"created_at changed: {sorted(created)}"
    updated = [view["updated_at"] for view in views]
    assert updated == sorted(updated), f"updated_at went back: {updated}"


def assert_finished_well(task: dict[str, Any]) -> None:
    status = task["task_status"]
    if status == "succeed":
        videos = (task.get("task_result") or {}).get("videos") or []
        assert videos, f"task {task['task_id']} succeeded without videos"
        for video in videos:
            url = urlsplit(video["url"])
            assert url.scheme in ("http", "https") and url.netloc, f"not an absolute URL: {video['url']!r}"
    elif status == "failed":
        assert task["task_status_msg"], f"task {task['task_id']} failed without a task_status_msg"


@pytest.mark.creates_tasks
class TestCreatedTask:
    def test_created_answer(self, probe: Watched) -> None:
        created = probe.created
        assert created["task_status"] == "submitted", f"a new task is {created['task_status']}, not submitted"
        echoed = created["task_info"].get("external_task_id")
        assert echoed == probe.body["external_task_id"], f"task_info.external_task_id is {echoed!r}"

    def test_status_only_moves_forward(self, probe: Watched) -> None:
        assert_lawful([probe.created, *probe.views])

    def test_it_finishes_and_succeeds_with_videos(self, probe: Watched, kling) -> None:
        status = probe.last["task_status"]
        assert status in TERMINAL, f"still {status} after {kling.settings.task_timeout:g}s"
        assert status == "succeed", f"a plain prompt failed: {probe.last['task_status_msg']!r}"
        assert_finished_well(probe.last)

    def test_external_task_id_finds_the_task(self, probe: Watched, kling, conform) -> None:
        external = probe.body["external_task_id"]
        response = kling.get(f"/v1/videos/{ACTION}/{external}")
        conform(GET, response, path_parameters={"task_id": external})
        assert response.status_code == 200, f"external_task_id {external} not found: {response.text}"
        data = response.json()["data"]
        assert data["task_id"] == probe.task_id, (
            f"external_task_id found {data['task_id']}, not {probe.task_id}"
        )
        echoed = data["task_info"].get("external_task_id")
        assert echoed == external, f"task_info.external_task_id is {echoed!r}, not {external!r}"
        assert_lawful([*probe.views, data])

    def test_the_list_shows_it(self, probe: Watched, kling, conform) -> None:
        query = {"pageNum": 1, "pageSize": 30}
        response = kling.get(f"/v1/videos/{ACTION}", params=query)
        conform(LIST, response, query=query)
        tasks = response.json()["data"]
        listed = [task for task in tasks if task["task_id"] == probe.task_id]
        assert listed, f"task {probe.task_id} is not on the first page of its list"
        assert_lawful([*probe.views, listed[0]])

    def test_a_refused_task_fails_with_a_message(self, refused_probe: Watched, kling) -> None:
        assert_lawful(refused_probe.views)
        task = refused_probe.last
        assert task["task_status"] == "failed", f"the fail prompt ended {task['task_status']}"
        assert_finished_well(task)


@pytest.mark.parametrize("action", LISTS)
def test_existing_tasks_are_lawful(kling, conform, action: str) -> None:
    """Read-only: whatever tasks the account has are well-formed, newest first, and findable."""
    query = {"pageNum": 1, "pageSize": 10}
    response = kling.get(f"/v1/videos/{action}", params=query)
    conform(LISTS[action], response, query=query)
    assert response.status_code == 200, f"list answered {response.status_code}: {response.text}"
    tasks = response.json()["data"]
    created = [task["created_at"] for task in tasks]
    assert created == sorted(created, reverse=True), "the list is not newest first"
    for task in tasks:
        if task["task_status"] in TERMINAL:
            assert_finished_well(task)
        external = task["task_info"].get("external_task_id")
        if external:
            found = kling.get(f"/v1/videos/{action}/{external}")
            found_id = found.json()["data"]["task_id"] if found.status_code == 200 else found.status_code
            assert found_id == task["task_id"], (
                f"external_task_id {external} finds {found_id}, not {task['task_id']}"
            )


@pytest.fixture(scope="module")
def family_probe(kling, conform, budget, family: str) -> Watched:
    action, body = kling.family_probe(family)
    return budget.once(
        f"{family} probe",
        lambda: create_and_watch(kling, conform, budget, f"{family} probe", action=action, body=body),
    )


@pytest.mark.creates_tasks
class TestFamilyProbe:
    """--kling-families: a task of each named endpoint family, followed as the text2video probe is."""

    def test_its_lifecycle_is_lawful(self, family_probe: Watched) -> None:
        assert family_probe.created["task_status"] == "submitted"
        assert_lawful([family_probe.created, *family_probe.views])

    def test_it_finishes_and_succeeds_with_videos(self, family_probe: Watched, kling) -> None:
        status = family_probe.last["task_status"]
        assert status in TERMINAL, f"still {status} after {kling.settings.task_timeout:g}s"
        assert status == "succeed", (
            f"the {family_probe.body} task failed: {family_probe.last['task_status_msg']!r}"
        )
        assert_finished_well(family_probe.last)
