"""The review page in a real browser (Chromium through Playwright) when the server guards itself:
`phashdb review`'s own token, carried by the page's address into a cookie, and a page of
another site trying to make changes."""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import test_review
from PIL import Image as PILImage

import phashdb
from phashdb.serve import Running, ServeConfig

browser, collection = test_review.browser, test_review.collection  # the same fixtures


def test_the_page_opened_with_the_servers_token_works_and_keeps_it_out_of_sight(
    browser, collection, tmp_path
):
    token = secrets.token_urlsafe(24)
    db = tmp_path / "index"
    problems = []
    with Running(ServeConfig(db=str(db), workers=2, token=token)) as server:
        page = browser.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{server.url}/?token={token}")
        assert page.url == server.url + "/"  # the token is out of the address and the history
        page.wait_for_selector("body[data-loaded='1']")
        page.wait_for_function(
            "[...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth)"
        )
        assert page.eval_on_selector_all("section.group", "s => s.length") == 3
        [cookie] = page.context.cookies()
        assert (cookie["value"], cookie["httpOnly"], cookie["sameSite"]) == (token, True, "Strict")
        assert page.evaluate("document.cookie") == ""  # no script of the page can read it
        page.keyboard.press("n")  # a change, sent with the cookie
        page.wait_for_function("document.body.dataset.done === '1'")
        with phashdb.open(db) as index:
            assert len(index.decisions()) == 1
        # Another tab without the cookie, and a wrong token, are refused.
        other = browser.new_page()
        assert other.goto(server.url + "/v1/duplicates").status == 401
        assert other.goto(f"{server.url}/?token=wrong").status == 401
    assert problems == []


@pytest.fixture
def other_site():
    """The port of a plain web server on loopback that answers every GET with an empty page."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>another site</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    thread.join()


def test_a_page_of_another_site_cannot_upload_or_restore(browser, other_site, tmp_path, photos):
    with Running(ServeConfig(db=str(tmp_path / "index"), uploads=tmp_path / "uploads")) as server:
        page = browser.new_page()
        # A page of another site (another server on this machine, named localhost: private
        # network checks let it reach loopback): its "simple" requests need no preflight, so
        # only the server's origin check stands in their way.
        page.goto(f"http://localhost:{other_site}/")
        sent = page.evaluate(
            """async ([url, bytes]) => {
                const send = (path, init) => fetch(url + path, { mode: "no-cors", ...init })
                    .then((r) => r.type, (e) => String(e));
                return [await send("/v1/trash/x/restore", { method: "POST" }),
                        await send("/v1/images", { method: "POST", body: new Uint8Array(bytes),
                                                   headers: { "Content-Type": "text/plain" } })];
            }""",
            [server.url, list(photos["coffee"].read_bytes())],
        )
        # The browser sent them (an opaque answer, which the page cannot read; the upload may
        # instead see the connection closed under its unread body).
        assert sent[0] == "opaque" and sent[1] in ("opaque", "TypeError: Failed to fetch"), sent
        with phashdb.open(tmp_path / "index") as index:
            assert len(index) == 0
        assert not [p for p in (tmp_path / "uploads").iterdir() if p.is_file()]
        # The same upload from the server's own page is taken.
        page.goto(server.url + "/")
        status = page.evaluate(
            """async (bytes) => (await fetch("/v1/images", { method: "POST",
                body: new Uint8Array(bytes) })).status""",
            list(photos["coffee"].read_bytes()),
        )
        assert status == 201


def test_the_api_docs_render_without_the_internet(browser, tmp_path):
    with Running(ServeConfig(db=str(tmp_path / "index"))) as server:
        page = browser.new_page()
        asked = []

        def local_only(route):
            asked.append(route.request.url)
            if route.request.url.startswith(server.url):
                return route.continue_()
            return route.abort()  # no internet

        page.route("**/*", local_only)
        page.goto(server.url + "/docs")
        page.wait_for_selector(".swagger-ui .information-container .title")
        assert "phashdb" in page.inner_text(".swagger-ui .information-container .title")
        assert page.locator(".opblock-summary-path", has_text="/v1/images").count() >= 1
        assert all(url.startswith(server.url) for url in asked), asked


def test_the_page_works_with_file_names_that_are_not_utf8(browser, tmp_path, photos):
    folder = tmp_path / "pictures"
    folder.mkdir()
    odd = os.fsdecode(bytes(folder) + b"/caf\xe9.jpg")  # Latin-1, as old cameras' cards hold
    copy = folder / "copy.jpg"
    shutil.copy(photos["chelsea"], odd)
    PILImage.open(photos["chelsea"]).save(copy, quality=80)
    db = tmp_path / "index"
    with phashdb.open(db) as index:
        index.add(odd)
        index.add(copy, keep_duplicate=True)
    problems = []
    with Running(ServeConfig(db=str(db), workers=2)) as server:
        page = browser.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-loaded='1']")
        page.wait_for_function(
            "[...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth)"
        )
        ids = page.eval_on_selector_all("figure", "f => f.map(x => x.dataset.id)")
        assert sorted(ids) == sorted([odd, str(copy)])
        while page.get_attribute(".current figure.selected", "data-id") != odd:
            page.keyboard.press("l")
        for step, key in enumerate("nutu", 1):  # decide, undo, trash, undo: each by its id
            page.keyboard.press(key)
            page.wait_for_function(f"document.body.dataset.done === '{step}'")
            assert "error" not in page.inner_text("#status").lower(), (
                key,
                page.inner_text("#status"),
            )
            with phashdb.open(db) as index:
                decided, stored = index.decisions(), {i.id for i in index.images()}
            assert decided == [] if key != "n" else len(decided) == 1
            assert (odd in stored) == (key != "t") and os.path.exists(odd) == (key != "t")
    assert problems == []
