"""The console in a real browser (Debian's headless Chromium through Playwright), served by uvicorn over a store
holding real FaceHashes of real photos: a tracer traces from an uploaded photo, sees the sightings, a contact and a
shaded offline period, exports CSV, publishes a notice that the public page lists; an auditor sees the trace's row.

Screenshots are saved under the test's tmp_path, and to /work/shots/ when TRACEON_SHOTS is set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.console import PASSWORD, Served, console_setup, key_file, store_events, store_statuses
from support.data import need_data

from edge.tracer.report import GAP_COLOURS

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip
PERSON, CONTACT = "barack_obama", "joe_biden"


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Shots:
    def __init__(self, folder: Path):
        self.folder = folder
        self.shared = Path("/work/shots") if os.environ.get("TRACEON_SHOTS") else None

    def take(self, page, name: str) -> None:
        page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)
        if self.shared:
            self.shared.mkdir(exist_ok=True)
            page.screenshot(path=str(self.shared / f"{name}.png"), full_page=True)


def sign_in(page, url: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")


def test_a_tracer_traces_from_a_photo_exports_and_notifies_and_an_auditor_sees_it(
    browser, embeddings, hasher, tmp_path
):
    faces = need_data("faces")
    code = lambda name: str(hasher.hash(embeddings[name]))  # noqa: E731
    path = str(tmp_path / "sightings.db")
    store_events(
        path,
        [
            ("north", "door", 0, [code(f"{PERSON}/2.jpg"), code(f"{CONTACT}/1.jpg")]),
            ("north", "door", 240, [code(f"{PERSON}/3.jpg")]),
            ("north", "door", 600, [code(f"{CONTACT}/2.jpg")]),
            ("south", "gate", 7200, [code(f"{PERSON}/4.jpg")]),
        ],
    )
    # north/door's unit was offline from 5 to 8 minutes after the first sighting: shaded on its timeline
    store_statuses(path, [("north", "door", -60, "online"), ("north", "door", 300, "offline"),
                          ("north", "door", 480, "online")])  # fmt: skip
    setup = console_setup(tmp_path, path, key_files=(key_file(tmp_path),))
    shots = Shots(tmp_path)
    with Served(setup.settings) as served:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        sign_in(page, served.url, "tess")
        assert page.url.endswith("/trace")
        page.set_input_files("input[name=photos]", str(faces / PERSON / "1.jpg"))
        page.fill("input[name=case_id]", "CASE-2031-17")
        page.fill("input[name=reason]", "index case tested positive")
        page.click("button:has-text('Trace')")
        page.wait_for_selector("h1:has-text('Trace 1')")
        report = page.inner_text("section.report")
        assert "north/door" in report and "south/gate" in report, report[:2000]
        assert "contact 1" in report and "first seen" in report  # the contacts table beside the timeline
        shaded = page.locator(f"section.report svg rect[fill='{GAP_COLOURS['offline']}']")
        assert shaded.count() >= 1, "the offline period is shaded on north/door's timeline"
        assert "offline" in report
        shots.take(page, "1-trace-result")

        with page.expect_download() as download:
            page.click("#export-csv")
        csv_text = Path(download.value.path()).read_text()
        assert csv_text.startswith("kind,") and "sighting" in csv_text and "contact" in csv_text

        page.click("#visits button:has-text('Publish a notice')")
        page.wait_for_selector("#said")
        assert "Notice published" in page.inner_text("#said")
        shots.take(page, "2-notice-published")
        assert not [e for e in errors if "Content Security Policy" in e], errors
        context.close()

        public = browser.new_context().new_page()
        public.goto(f"{served.url}/notices")
        assert "north/door" in public.inner_text("#notices")
        assert "CASE-2031-17" not in public.content()
        shots.take(public, "3-public-notices")

        auditor = browser.new_context().new_page()
        sign_in(auditor, served.url, "otto")
        assert auditor.url.endswith("/audit")
        row = auditor.locator("tr.action-trace").first
        assert "CASE-2031-17" in row.inner_text() and "tess" in row.inner_text()
        shots.take(auditor, "4-audit-log")
