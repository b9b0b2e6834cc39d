"""The console's own files: the vendored HTMX is the recorded one, served with the security headers, and nothing
outside the static folder can be reached through it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import edge.console
from edge.console.app import ConsoleSettings, build_app

STATIC = Path(edge.console.__file__).parent / "static"


@pytest.fixture
def client(tmp_path):
    # no database is touched by these pages: a path that is not there proves it
    app = build_app(ConsoleSettings(db_url=str(tmp_path / "none.db"), audit_key=tmp_path / "none.key"))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def test_the_vendored_htmx_is_the_recorded_release():
    recorded = (STATIC / "VENDORED.md").read_text()
    row = re.search(r"`htmx.min.js` \| npm package `htmx.org`.*\| (\S+) \| `([0-9a-f]{64})` \|", recorded)
    assert row, "VENDORED.md lists htmx.min.js with its version and sha256"
    assert row[1] == "2.0.11"
    assert hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest() == row[2]
    assert "Zero-Clause BSD" in (STATIC / "htmx.LICENSE").read_text()


def test_static_files_are_served_from_the_package_with_the_headers(client):
    js = client.get("/static/htmx.min.js")
    assert js.status_code == 200
    assert js.content == (STATIC / "htmx.min.js").read_bytes()
    assert js.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in js.headers["content-security-policy"]
    css = client.get("/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/static//etc/passwd",
        "/static/..%5capp.py",
    ],
)
def test_a_path_out_of_the_static_folder_is_not_served(client, path):
    answer = client.get(path)
    assert answer.status_code == 404, path
    assert "import" not in answer.text and "[project]" not in answer.text and "root:" not in answer.text
    assert answer.headers["content-type"].startswith("text/html")  # the console's own 404 page


def test_the_pages_reference_no_other_origin():
    templates = Path(edge.console.__file__).parent / "templates"
    for page in templates.glob("*.html"):
        text = page.read_text()
        assert "http://" not in text and "https://" not in text, page.name
        assert "style=" not in text, f"{page.name}: a style attribute, which the CSP blocks"
        assert "<script>" not in text and "onclick" not in text and " on" + "load=" not in text, page.name
