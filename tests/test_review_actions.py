"""Group actions through the service (what the review page sends): two reviewers acting on one
group at once never both win, a stale action gets a 409 naming what changed, and a keeper
stored without a file gets a clear 4xx. A real HTTP client (httpx) against the running server."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import PHOTO_NAMES, skimage_photo
from PIL import Image as PILImage

import phashdb
from phashdb.serve import Running, ServeConfig

GROUPS = 20
ROUNDS = int(os.environ.get("PHASHDB_RACE_ROUNDS", "3"))  # CI sets more


@pytest.fixture
def groups(tmp_path, reopen):
    """An index of 20 pairs (a quarter of a photo and a smaller re-encoded copy of it), files
    in a folder, on each backend: its URL."""
    folder = tmp_path / "photos"
    folder.mkdir()
    with reopen() as index:
        for name in PHOTO_NAMES:
            img = skimage_photo(name).convert("RGB")
            w, h = img.size
            for k, box in enumerate([(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2),
                                     (0, h // 2, w // 2, h), (w // 2, h // 2, w, h)]):  # fmt: skip
                tile = img.crop(box)
                tile.save(folder / f"{name}-{k}.jpg", quality=92)
                copy = tile.resize((tile.width * 9 // 10, tile.height * 9 // 10))
                copy.save(folder / f"{name}-{k}-copy.jpg", quality=60)
                index.add(folder / f"{name}-{k}.jpg", keep_duplicate=True)
                index.add(folder / f"{name}-{k}-copy.jpg", keep_duplicate=True)
        return index.store.url


@pytest.fixture
def server(groups, tmp_path):
    with Running(ServeConfig(db=str(groups), uploads=tmp_path / "uploads", workers=2)) as running:
        yield running


class HeldUntilBothArrived:
    """The race, made to happen: the first action of a group to reach the point of moving
    files is held there until the other action on that group has reached the server."""

    def __init__(self, server) -> None:
        self.arrivals: dict[frozenset, int] = {}
        self.changed = threading.Condition()
        self.timed_out = False
        server.app.state.actions.arrived = self.arrived
        server.app.state.actions.moving = self.moving

    def arrived(self, request) -> None:
        with self.changed:
            key = frozenset(request.members)
            self.arrivals[key] = self.arrivals.get(key, 0) + 1
            self.changed.notify_all()

    def moving(self, request) -> None:
        with self.changed:
            key = frozenset(request.members)
            # A bound on a wait for a request that never comes (a broken test), not a timing.
            if not self.changed.wait_for(lambda: self.arrivals.get(key, 0) >= 2, timeout=60):
                self.timed_out = True


def keep_one(client, group, keeper: str, barrier: threading.Barrier) -> httpx.Response:
    members = [i["id"] for i in group["images"]]
    body = {"keeper": keeper, "ids": [i for i in members if i != keeper],
            "members": members, "version": group["version"]}  # fmt: skip
    barrier.wait()
    return client.post("/v1/trash", json=body)


def test_two_conflicting_actions_on_a_group_never_both_win(server, groups):
    hook = HeldUntilBothArrived(server)
    client = httpx.Client(base_url=server.url, timeout=120)
    # The lock and the checks are the same code on HBase, where a round costs far more: two.
    rounds = min(ROUNDS, 2) if groups.startswith("hbase://") else ROUNDS
    with ThreadPoolExecutor(2) as pool:
        for _ in range(rounds):
            shown = client.get("/v1/duplicates", params={"limit": 1000}).json()["groups"]
            assert len(shown) >= GROUPS
            for group in shown[:GROUPS]:
                a, b = (i["id"] for i in group["images"][:2])
                barrier = threading.Barrier(2)
                sent = [pool.submit(keep_one, client, group, k, barrier) for k in (a, b)]
                answers = [f.result() for f in sent]
                assert not hook.timed_out
                codes = [r.status_code for r in answers]
                assert sorted(codes) == [200, 409], [r.text for r in answers]
                winner, loser = (a, b) if codes[0] == 200 else (b, a)
                won, lost = sorted(answers, key=lambda r: r.status_code)
                assert [d["error"] for d in won.json()["done"]] == [None]
                assert f"the keeper {loser!r} is no longer" in lost.json()["error"]
                kept = [i["id"] for i in group["images"] if os.path.exists(i["path"])]
                assert kept == [winner]
                with phashdb.open(groups) as index:
                    assert [i["id"] for i in group["images"] if i["id"] in index] == [winner]
            for entry in client.get("/v1/trash").json()["trash"]:  # the next round: all back
                assert client.post(f"/v1/trash/{entry['id']}/restore").status_code == 200


def test_an_action_on_a_group_that_changed_is_refused_whole(server, groups):
    client = httpx.Client(base_url=server.url, timeout=60)
    group = client.get("/v1/duplicates").json()["groups"][0]
    a, b = (i["id"] for i in group["images"])
    members, version = [a, b], group["version"]
    assert client.post("/v1/trash", json={"keeper": a, "ids": [b]}).status_code == 200
    stale = client.post("/v1/trash", json={"keeper": a, "ids": [b], "members": members,
                                           "version": version})  # fmt: skip
    assert stale.status_code == 409 and f"{b!r} no longer in the index" in stale.json()["error"]
    seen = {"members": members, "version": version}
    decided = client.post("/v1/decisions", json={"pairs": [[a, b]], **seen})
    assert decided.status_code == 409 and f"{b!r} no longer" in decided.json()["error"]
    assert client.get("/v1/decisions").json()["decisions"] == []
    # Restored, then ingested again as another file: the same ids, another state.
    entry = client.get("/v1/trash").json()["trash"][0]["id"]
    client.post(f"/v1/trash/{entry}/restore")
    with phashdb.open(groups) as index:
        path = index.get(b).path
        with PILImage.open(path) as img:
            img.save(path, quality=40)
        index.remove(b)
        index.add(path, keep_duplicate=True)
    stale = client.post("/v1/trash", json={"keeper": a, "ids": [b], "members": members,
                                           "version": version})  # fmt: skip
    assert stale.status_code == 409 and "group changed" in stale.json()["error"]
    assert os.path.exists(path)
    missing = client.post("/v1/trash", json={"keeper": a, "ids": [b], "version": version})
    assert missing.status_code == 422 and "'members'" in missing.json()["error"]


def test_a_keeper_stored_without_a_file_gets_a_clear_4xx(tmp_path, photos):
    with Running(ServeConfig(db=str(tmp_path / "index"), uploads=None, workers=2)) as server:
        client = httpx.Client(base_url=server.url, timeout=60)
        with open(photos["camera"], "rb") as f:
            data = f.read()
        a = client.post("/v1/images", content=data).json()["id"]
        b = client.post("/v1/images", content=data + b"\0",
                        params={"on_duplicate": "keep"}).json()["id"]  # fmt: skip
        group = client.get("/v1/duplicates").json()["groups"][0]
        assert group["why"] == "stored without files"
        for body in ({"keeper": a, "ids": [b]},
                     {"keeper": a, "ids": [b], "members": [a, b], "version": group["version"]}):  # fmt: skip
            answer = client.post("/v1/trash", json=body)
            assert answer.status_code == 422, answer.text
            assert f"the keeper {a!r} is stored without a file" in answer.json()["error"]
        assert len(client.get("/v1/duplicates").json()["groups"][0]["images"]) == 2


def test_the_review_page_says_a_group_without_files_has_nothing_to_trash(tmp_path, photos):
    """In a real browser (Chromium): "t" on a group stored as hashes only (a server without
    --uploads) says so and sends nothing to /v1/trash (it used to send a request that failed
    with a 500)."""
    from test_review import CHROMIUM

    if CHROMIUM is None:
        pytest.skip("no chromium: the browser test is skipped")
    from playwright.sync_api import sync_playwright

    with Running(ServeConfig(db=str(tmp_path / "index"), uploads=None, workers=2)) as server:
        data = photos["camera"].read_bytes()
        httpx.post(server.url + "/v1/images", content=data)
        httpx.post(server.url + "/v1/images?on_duplicate=keep", content=data + b"\0")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            sent = []
            page.on("request", lambda r: r.method == "POST" and sent.append(r.url))
            page.goto(server.url + "/")
            page.wait_for_selector("body[data-loaded='1']")
            assert page.inner_text("section.group .why") == "stored without files"
            for step, keys in enumerate((["t"], ["l", "t"], ["Enter"], ["A"]), 1):
                for key in keys:  # the keeper, the other image, keep it, the group
                    page.keyboard.press(key)
                page.wait_for_function(f"document.body.dataset.done === '{step}'")
                assert "stored without their files" in page.inner_text("#status"), keys
            browser.close()
        assert sent == []
        assert len(httpx.get(server.url + "/v1/duplicates").json()["groups"][0]["images"]) == 2
