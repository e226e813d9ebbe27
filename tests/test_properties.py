"""Properties of the official surface under random schedules (hypothesis stateful testing).

Several accounts create tasks on both endpoints, query them by task_id and external_task_id on
either query path, list them page by page and move the clock, in any order. Throughout:

- every task is found by its owner, and by no other account (404 / 1203, as if missing);
- a task's status never moves backwards, and follows its schedule on the clock;
- each list page holds exactly the account's tasks on that endpoint, newest first;
- a duplicate external_task_id is refused and nothing already stored changes;
- no answer is ever a server error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from mockkling import Backend, Config, Timing, create_app, make_jwt
from mockkling.tasks import RANK
from mockkling.transport import SyncASGITransport

ACCOUNTS = {"ak-alpha": "sk-alpha-secret", "ak-beta": "sk-beta-secret", "ak-gamma": "sk-gamma-secret"}
ACTIONS = ("text2video", "image2video")
QUEUE_S, RUN_S = 1.0, 4.0
IMAGE_URL = "https://example.com/frame.png"  # accepted, never fetched


@dataclass(frozen=True)
class Ref:
    """What the test knows about a task it created."""

    owner: str
    action: str
    task_id: str
    external_id: str | None
    created_ms: int


class KlingModel(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.backend = Backend(Config(accounts=dict(ACCOUNTS), timing=Timing(QUEUE_S, RUN_S), seed=0))
        self.clock = self.backend.use_manual_clock()
        transport = SyncASGITransport(create_app(self.backend))
        self.client = httpx.Client(transport=transport, base_url="http://mockkling.test")
        self.tokens = {ak: make_jwt(ak, sk) for ak, sk in ACCOUNTS.items()}
        # (account, action) -> task ids, oldest first; task id -> highest status rank seen
        self.created: dict[tuple[str, str], list[str]] = {}
        self.rank: dict[str, int] = {}
        self.externals = 0

    def teardown(self) -> None:
        self.client.close()

    # -- HTTP, with the one invariant every answer obeys -----------------------------------------

    def call(self, account: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[account]}"}
        response = self.client.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 500, f"{method} {path}: server error {response.text}"
        return response

    def observe(self, ref: Ref, task: dict[str, Any]) -> None:
        """A view of ``ref``'s task: same identity, status never back, status on schedule."""
        assert task["task_id"] == ref.task_id
        assert task["created_at"] == ref.created_ms
        status = task["task_status"]
        rank = RANK[status]
        assert rank >= self.rank.get(ref.task_id, 0), f"{ref.task_id} went back to {status}"
        self.rank[ref.task_id] = rank
        age = self.clock.now_ms() - ref.created_ms
        expected = (
            "submitted"
            if age < QUEUE_S * 1000
            else "processing"
            if age < (QUEUE_S + RUN_S) * 1000
            else "succeed"
        )
        assert status == expected, f"{ref.task_id} is {status} at {age} ms, expected {expected}"
        if status == "succeed":
            assert task["task_result"]["videos"][0]["url"].startswith("http://mockkling.test/")

    # -- rules -------------------------------------------------------------------------------------

    @rule(
        target=tasks,
        owner=st.sampled_from(sorted(ACCOUNTS)),
        action=st.sampled_from(ACTIONS),
        externals=st.lists(st.booleans(), min_size=1, max_size=4),
    )
    def create(self, owner: str, action: str, externals: list[bool]) -> MultipleResults[Ref]:
        """One to four tasks in a row for one account and endpoint, so lists get long."""
        return multiple(*(self._create(owner, action, with_external) for with_external in externals))

    def _create(self, owner: str, action: str, with_external: bool) -> Ref:
        body: dict[str, Any] = {"prompt": "a lighthouse in a storm"}
        if action == "image2video":
            body["image"] = IMAGE_URL
        external = None
        if with_external:
            self.externals += 1
            external = f"ext-{self.externals}"
            body["external_task_id"] = external
        response = self.call(owner, "POST", f"/v1/videos/{action}", json=body)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["task_status"] == "submitted" and data["created_at"] == self.clock.now_ms()
        self.created.setdefault((owner, action), []).append(data["task_id"])
        return Ref(owner, action, data["task_id"], external, data["created_at"])

    @rule(ref=tasks, action=st.sampled_from(ACTIONS))
    def a_duplicate_external_id_is_refused(self, ref: Ref, action: str) -> None:
        if ref.external_id is None:
            return
        body: dict[str, Any] = {"prompt": "again", "external_task_id": ref.external_id}
        if action == "image2video":
            body["image"] = IMAGE_URL
        before = len(self.backend.tasks)
        response = self.call(ref.owner, "POST", f"/v1/videos/{action}", json=body)
        assert response.status_code == 400 and response.json()["code"] == 1201, response.text
        assert len(self.backend.tasks) == before

    @rule(ref=tasks, by_external=st.booleans(), path_action=st.sampled_from(ACTIONS))
    def the_owner_finds_it(self, ref: Ref, by_external: bool, path_action: str) -> None:
        ident = ref.external_id if by_external and ref.external_id else ref.task_id
        response = self.call(ref.owner, "GET", f"/v1/videos/{path_action}/{ident}")
        assert response.status_code == 200, response.text
        self.observe(ref, response.json()["data"])

    @rule(ref=tasks, other=st.sampled_from(sorted(ACCOUNTS)), by_external=st.booleans())
    def no_one_else_finds_it(self, ref: Ref, other: str, by_external: bool) -> None:
        if other == ref.owner:
            return
        ident = ref.external_id if by_external and ref.external_id else ref.task_id
        response = self.call(other, "GET", f"/v1/videos/{ref.action}/{ident}")
        assert (response.status_code, response.json()["code"]) == (404, 1203), response.text

    @rule(
        account=st.sampled_from(sorted(ACCOUNTS)),
        action=st.sampled_from(ACTIONS),
        page_size=st.integers(1, 4),
        page_num=st.integers(1, 4),
    )
    def lists_are_complete_and_ordered(
        self, account: str, action: str, page_size: int, page_num: int
    ) -> None:
        response = self.call(
            account, "GET", f"/v1/videos/{action}", params={"pageNum": page_num, "pageSize": page_size}
        )
        assert response.status_code == 200, response.text
        listed = response.json()["data"]
        newest_first = self.created.get((account, action), [])[::-1]
        expected = newest_first[(page_num - 1) * page_size : page_num * page_size]
        got = [task["task_id"] for task in listed]
        assert got == expected, f"{account} {action} page {page_num}x{page_size}: {got} != {expected}"
        created = [task["created_at"] for task in listed]
        assert created == sorted(created, reverse=True), f"not newest first: {created}"
        for task in listed:
            rank = RANK[task["task_status"]]
            assert rank >= self.rank.get(task["task_id"], 0)
            self.rank[task["task_id"]] = rank

    @rule(seconds=st.sampled_from([0, 0.25, 0.999, 1, 2.5, 4, 6]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(ref=consumes(tasks))
    def forget(self, ref: Ref) -> None:
        """Stop tracking a task (it stays stored): keeps the bundle small and varied."""

    @invariant()
    def the_store_holds_what_was_created(self) -> None:
        assert len(self.backend.tasks) == sum(len(ids) for ids in self.created.values())


KlingModel.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestKlingProperties = KlingModel.TestCase
