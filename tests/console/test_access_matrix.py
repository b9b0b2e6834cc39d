"""Issue 20, must show 2: who may use each route of the console, as a table generated here and committed in
docs/CONSOLE_ACCESS.md; any cell that changes fails this test. The routes come from views/routes.ROUTES, so a
route added without its probes here fails too. Every POST carries a valid CSRF token of the row's own session,
so the table shows authorisation, not CSRF; CSRF, and the lock after ten wrong passwords, are tested below it.

Regenerate the table after a deliberate change: TRACEON_WRITE_MATRIX=1 pytest tests/console/test_access_matrix.py
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from support.console import PASSWORD, console_setup, form_token, random_person, sign_in, store_events

from edge.console import accounts, audit, notices
from edge.console.app import ConsoleSettings, build_app
from edge.console.views import routes
from edge.console.views.web import SESSION_COOKIE

DOC = Path(__file__).resolve().parents[2] / "docs" / "CONSOLE_ACCESS.md"
REWRITE = "TRACEON_WRITE_MATRIX"
LOCK_BOUND_S = 3600  # a lock after wrong passwords ends within an hour: an attacker cannot keep a user out long
COLUMNS = {  # column: the account of tests/support/console.PEOPLE signed in (None: nobody)
    "signed out": None,
    "admin": "ada",
    "tracer": "tess",
    "auditor": "otto",
    "viewer": "vera",
    "tracer of north": "scoped",
    "viewer of north": "lookout",
}
LEGEND = """\
Each cell is what the console answered: `ok` a page (2xx); `→/path` a redirect there (`→/login`: not signed
in; any other: the action was done); `400` refused as bad input, `403` refused (role, site scope or CSRF), `404`
nothing of theirs there. "north" and "south" are two sites; "tracer of north" and "viewer of north" are scoped
to north only. Every POST carries the row's own valid CSRF token, so the table shows authorisation alone.
"""


@dataclass
class World:
    client: TestClient
    name: str | None  # the account signed in
    token: str  # this session's CSRF token ("" signed out)
    app: object
    settings: object
    person: str
    own_trace: str  # the number of the trace this session ran (or would have had)
    other_trace: str  # a trace of another session of the same console
    notice: dict[str, int]  # a current notice per site
    visit: dict[str, str]  # the index of the own trace's visit per site ("99": none)

    def get(self, path: str):
        return self.client.get(path, follow_redirects=False)

    def post(self, path: str, data: dict):
        return self.client.post(path, data={"csrf": self.token} | data, follow_redirects=False)


Probe = Callable[[World], object]
TRACE_FORM = {"case_id": "C-20", "reason": "tested positive", "since": "14d", "stride": "30m"}


def _login_again(w: World):
    """A second sign-in from a fresh browser, with the row's own account (signed out: a wrong password)."""
    fresh = TestClient(w.app, base_url="http://127.0.0.1", raise_server_exceptions=False)
    return sign_in(fresh, w.name or "tess", PASSWORD if w.name else "not the password, sorry")


# (method, route path as in ROUTES) -> [(the row's label, the request)]; the table lists them in this order
PROBES: dict[tuple[str, str], list[tuple[str, Probe]]] = {
    ("GET", "/"): [("GET /", lambda w: w.get("/"))],
    ("GET", "/login"): [("GET /login", lambda w: w.get("/login"))],
    ("POST", "/login"): [("POST /login (own account; signed out: wrong password)", _login_again)],
    ("GET", "/checkpoints"): [("GET /checkpoints", lambda w: w.get("/checkpoints"))],
    ("GET", "/checkpoints/{site}/{checkpoint}"): [
        ("GET /checkpoints/north/door", lambda w: w.get("/checkpoints/north/door")),
        ("GET /checkpoints/south/gate", lambda w: w.get("/checkpoints/south/gate")),
        ("GET /checkpoints/north/nowhere", lambda w: w.get("/checkpoints/north/nowhere")),
    ],
    ("GET", "/trace"): [("GET /trace", lambda w: w.get("/trace"))],
    ("POST", "/trace"): [
        ("POST /trace (a FaceHash)", lambda w: w.post("/trace", TRACE_FORM | {"facehashes": w.person}))
    ],
    ("GET", "/trace/{number}"): [
        ("GET /trace/{own}", lambda w: w.get(f"/trace/{w.own_trace}")),
        ("GET /trace/{another session's}", lambda w: w.get(f"/trace/{w.other_trace}")),
    ],
    ("GET", "/trace/{number}/export.{fmt}"): [
        ("GET /trace/{own}/export.csv", lambda w: w.get(f"/trace/{w.own_trace}/export.csv")),
        ("GET /trace/{own}/export.json", lambda w: w.get(f"/trace/{w.own_trace}/export.json")),
        ("GET /trace/{own}/export.html", lambda w: w.get(f"/trace/{w.own_trace}/export.html")),
        ("GET /trace/{another session's}/export.csv", lambda w: w.get(f"/trace/{w.other_trace}/export.csv")),
    ],
    ("GET", "/notices"): [("GET /notices", lambda w: w.get("/notices"))],
    ("POST", "/notices"): [
        ("POST /notices (own trace's north visit)", lambda w: w.post("/notices", _visit(w, "north"))),
        ("POST /notices (own trace's south visit)", lambda w: w.post("/notices", _visit(w, "south"))),
        (
            "POST /notices (another session's trace)",
            lambda w: w.post("/notices", {"trace": w.other_trace, "visit": "0"}),
        ),
    ],
    ("POST", "/notices/{notice}/withdraw"): [
        ("POST /notices/{north}/withdraw", lambda w: w.post(f"/notices/{w.notice['north']}/withdraw", {})),
        ("POST /notices/{south}/withdraw", lambda w: w.post(f"/notices/{w.notice['south']}/withdraw", {})),
    ],
    ("GET", "/audit"): [("GET /audit", lambda w: w.get("/audit"))],
    ("GET", "/users"): [("GET /users", lambda w: w.get("/users"))],
    ("POST", "/users"): [
        ("POST /users (add)", lambda w: w.post("/users", {"name": "newbie", "password": PASSWORD, "role": "viewer"}))
    ],
    ("POST", "/users/{name}/{action}"): [
        ("POST /users/spare/disable", lambda w: w.post("/users/spare/disable", {})),
        ("POST /users/spare/enable", lambda w: w.post("/users/spare/enable", {})),
        ("POST /users/spare/password", lambda w: w.post("/users/spare/password", {"password": PASSWORD + "!"})),
    ],
    ("GET", "/report.css"): [("GET /report.css", lambda w: w.get("/report.css"))],
    ("GET", "/static/{path}"): [("GET /static/htmx.min.js", lambda w: w.get("/static/htmx.min.js"))],
    ("POST", "/logout"): [("POST /logout (last: it ends the session)", lambda w: w.post("/logout", {}))],
}


def _traced(w: World) -> dict:
    return TRACE_FORM | {"facehashes": w.person}


def _visit(w: World, site: str) -> dict:
    return {"trace": w.own_trace, "visit": w.visit[site]}


def route_keys() -> set[tuple[str, str]]:
    """(method, path) of every route the console serves (HEAD is GET's)."""
    keys = set()
    for route in routes.ROUTES:
        if isinstance(route, Mount):
            keys.add(("GET", route.path + "/{path}"))
        else:
            assert isinstance(route, Route)
            keys |= {(m, route.path) for m in route.methods if m != "HEAD"}
    return keys


def cell(answer) -> str:
    if 300 <= answer.status_code < 400:
        where = answer.headers["location"].split("?")[0]
        return "→" + re.sub(r"/\d+", "/{n}", where)
    return "ok" if 200 <= answer.status_code < 300 else str(answer.status_code)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The store and the console's tables, made once (argon2 is slow on purpose): two sites, the accounts of
    PEOPLE and a spare one, and a current notice per site; each world copies it."""
    folder = tmp_path_factory.mktemp("template")
    rng = np.random.default_rng(20)
    person, other = random_person(rng), random_person(rng)
    (folder / "person").write_text(person)
    path = str(folder / "sightings.db")
    store_events(path, [("north", "door", 0, [person, other]), ("south", "gate", 7200, [person, other])])
    setup = console_setup(folder, path)
    db = setup.db()
    try:
        with db.transaction() as tx:
            accounts.add_user(tx, "spare", PASSWORD, "viewer", None, by="setup", address="test")
            now = int(time.time() * 1000)
            for site, cp in (("north", "door"), ("south", "gate")):
                notices.publish(tx, setup.key, site, cp, now - 3_600_000, now, "setup", "test")
    finally:
        db.close()
    return folder


def world_for(template: Path, folder: Path, name: str | None) -> World:
    """A console of its own (a row's POSTs change it) signed in as `name`, after another session of tess ran a trace."""
    shutil.copytree(template, folder)
    person = (folder / "person").read_text()
    settings = ConsoleSettings(db_url=str(folder / "sightings.db"), audit_key=folder / "audit.key")
    app = build_app(settings)
    made = {n.site: n.id for n in notices.current(app.state.console.db())}
    other_session = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
    assert sign_in(other_session, "tess").status_code == 303
    other_page = other_session.post(
        "/trace", data=TRACE_FORM | {"facehashes": person, "csrf": form_token(other_session.get("/trace").text)}
    )
    other_trace = re.search(r"<h1>Trace (\d+)", other_page.text)[1]
    client = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
    token = ""
    if name:
        assert sign_in(client, name).status_code == 303
        token = form_token(client.get("/notices").text)
    w = World(client, name, token, app, settings, person, str(int(other_trace) + 1), other_trace, made, {})
    visits = _own_visits(w)
    w.visit = {site: str(visits.get(site, 99)) for site in ("north", "south")}
    return w


def _own_visits(w: World) -> dict[str, int]:
    """Runs the row's own trace (if its role may) and finds each site's visit in it."""
    answer = w.client.post("/trace", data=TRACE_FORM | {"facehashes": w.person, "csrf": w.token})
    found = re.search(r"<h1>Trace (\d+)", answer.text)
    if not found:
        return {}
    w.own_trace = found[1]
    kept = w.app.state.console.results.get(w.client.cookies[SESSION_COOKIE], int(w.own_trace))
    return {v.site: i for i, v in reversed(list(enumerate(kept.trace.visits)))}


def row_of(w: World) -> dict[str, str]:
    return {label: cell(probe(w)) for probes in PROBES.values() for label, probe in probes}


def as_table(columns: dict[str, dict[str, str]]) -> str:
    labels = list(next(iter(columns.values())))
    lines = ["| route | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(columns[c][label] for c in columns) + " |" for label in labels]
    return "\n".join(lines) + "\n"


def document(table: str) -> str:
    return (
        "# Who may use what in the console\n\n"
        "Generated by tests/console/test_access_matrix.py, which fails when any cell changes "
        f"(regenerate with `{REWRITE}=1 pytest tests/console/test_access_matrix.py`).\n\n"
        f"{LEGEND}\n{table}"
    )


def committed_table() -> str:
    text = DOC.read_text() if DOC.exists() else ""
    return text[text.find("| route |") :] if "| route |" in text else ""


def test_every_route_has_its_probes():
    missing = route_keys() - set(PROBES)
    extra = set(PROBES) - route_keys()
    assert not missing, f"routes with no row in the access matrix: {sorted(missing)}: add probes to PROBES"
    assert not extra, f"probes of routes the console no longer has: {sorted(extra)}"


def test_the_access_matrix_is_the_committed_one(template, tmp_path):
    columns = {
        column: row_of(world_for(template, tmp_path / str(i), name)) for i, (column, name) in enumerate(COLUMNS.items())
    }
    table = as_table(columns)
    if os.environ.get(REWRITE) == "1":
        DOC.write_text(document(table))
    assert table == committed_table(), (
        f"the access matrix is not the one in {DOC.name}; if the change is meant, run with {REWRITE}=1 and "
        f"commit docs/CONSOLE_ACCESS.md. Now:\n{table}"
    )


# --- CSRF: every POST of a signed-in user is refused without its own session's token -----------------------

POSTS = {  # a POST route, who may use it, and its form without the token
    "/logout": ("vera", {}),
    "/trace": ("tess", dict(TRACE_FORM)),
    "/notices": ("tess", {"trace": "1", "visit": "0"}),
    "/notices/{north}/withdraw": ("tess", {}),
    "/users": ("ada", {"name": "newbie", "password": PASSWORD, "role": "viewer"}),
    "/users/spare/disable": ("ada", {}),
}


def test_the_csrf_cases_cover_every_post_route_but_login():
    posted = {path for method, path in route_keys() if method == "POST"} - {"/login"}
    assert posted == {"/logout", "/trace", "/notices", "/notices/{notice}/withdraw", "/users", "/users/{name}/{action}"}


@pytest.mark.parametrize("how", ["missing", "wrong", "another session's", "from before logout"])
@pytest.mark.parametrize("path", list(POSTS))
def test_a_post_without_its_sessions_own_token_is_refused_and_does_nothing(template, tmp_path, path, how):
    name, form = POSTS[path]
    w = world_for(template, tmp_path / "w", name)
    form = form | {"facehashes": w.person} if path == "/trace" else form
    path = path.replace("{north}", str(w.notice["north"]))
    if how == "missing":
        token = None
    elif how == "wrong":
        token = w.token[:-2] + ("00" if not w.token.endswith("00") else "11")
    elif how == "another session's":
        other = TestClient(w.app, base_url="http://127.0.0.1", raise_server_exceptions=False)
        assert sign_in(other, name).status_code == 303
        token = form_token(other.get("/notices").text)
        assert token != w.token
    else:  # sign out, sign in again: the first session's token is replayed in the second
        token = w.token
        assert w.post("/logout", {}).status_code == 303
        assert sign_in(w.client, name).status_code == 303
    before = _state(w)
    data = form if token is None else form | {"csrf": token}
    answer = w.client.post(path, data=data, follow_redirects=False)
    assert answer.status_code == 403, answer.text
    assert "did not come from this console" in answer.text and "Traceback" not in answer.text
    assert _state(w) == before  # nothing done: no audit row, no account, notice or session changed
    assert w.client.get("/notices").status_code == 200  # still signed in and served


def _state(w: World) -> tuple:
    from edge.console.audit import AuditKey
    from edge.console.db import ConsoleDb

    db = ConsoleDb.open(w.settings.db_url, audit_key=AuditKey.load(w.settings.audit_key))
    try:
        with db.transaction() as tx:
            rows = tuple(tuple(tx.query(f"SELECT * FROM {t} ORDER BY 1")) for t in ("console_users", "notices"))
            sessions = tuple(row[:2] for row in tx.query("SELECT * FROM console_sessions ORDER BY 1"))  # not last seen
        return (*rows, sessions, len(audit.entries(db, limit=10_000)))
    finally:
        db.close()


# --- ten wrong passwords: the account and the address locked, for a bounded time, audited ------------------


def test_ten_wrong_passwords_lock_account_and_address_for_a_bounded_time_and_are_audited(template, tmp_path):
    w = world_for(template, tmp_path / "w", None)
    for attempt in range(10):
        answer = sign_in(w.client, "tess", f"wrong guess {attempt}")
        assert answer.status_code in (401, 429) and "Traceback" not in answer.text
    right = sign_in(w.client, "tess")
    assert right.status_code == 429, "the right password during the lock is refused too"
    retry = int(right.headers["retry-after"])
    assert 0 < retry <= LOCK_BOUND_S
    assert SESSION_COOKIE not in w.client.cookies
    assert sign_in(w.client, "vera").status_code == 429, "the address is locked for every account"
    for attempt in range(30):  # an attacker who keeps trying cannot stretch the lock beyond its bound
        sign_in(w.client, "tess", f"more guessing {attempt}")
    longest = int(sign_in(w.client, "tess").headers["retry-after"])
    assert 0 < longest <= LOCK_BOUND_S

    db = _db(w)
    try:
        locks = audit.entries(db, action="login-locked")
        assert {e.detail["scope"] for e in locks} == {"account", "address"}
        assert {e.detail.get("account") for e in locks if e.detail["scope"] == "account"} == {"tess"}
        assert all(0 < e.detail["locked_s"] <= LOCK_BOUND_S for e in locks)
        failed = audit.entries(db, action="login-failed", limit=10_000)
        assert len([e for e in failed if e.user == "tess"]) >= 10
        assert [e.detail["why"] for e in failed if e.user == "vera"] == ["locked"]
        # still locked now; an attacker who comes back each time a lock ends (the clock injected) meets locks
        # that grow but stay within the bound, and once the last has passed the right password works
        now = int(time.time() * 1000)
        assert accounts.login(db, "tess", PASSWORD, "testclient", now_ms=now).user is None
        waits = []
        for _ in range(12):
            wait_s = accounts.login(db, "tess", "still locked?", "testclient", now_ms=now).retry_after_s
            assert 0 < wait_s <= LOCK_BOUND_S
            waits.append(wait_s)
            now += wait_s * 1000  # the lock has just ended: one more wrong guess starts the next
            assert accounts.login(db, "tess", "back for more", "testclient", now_ms=now).why == "wrong name or password"
        assert waits[-1] > waits[0], f"the locks grow ({waits})"
        later = now + LOCK_BOUND_S * 1000 + 1000
        assert accounts.login(db, "tess", PASSWORD, "testclient", now_ms=later).user.name == "tess"
        assert accounts.login(db, "vera", PASSWORD, "testclient", now_ms=later).user.name == "vera"
    finally:
        db.close()


def _db(w: World):
    from edge.console.audit import AuditKey
    from edge.console.db import ConsoleDb

    return ConsoleDb.open(w.settings.db_url, audit_key=AuditKey.load(w.settings.audit_key))
