"""The operators' console for tests: its accounts (one per role, and a tracer scoped to one site), signing in
through the real login form, and the console served by uvicorn on a free loopback port in a thread."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from servers import free_port

from edge.console import accounts
from edge.console.app import ConsoleSettings, build_app
from edge.console.audit import AuditKey
from edge.console.db import ConsoleDb
from support.wait import wait_until

PASSWORD = "correct horse battery staple"
# name: (role, sites); "scoped" may trace only at site "north", "lookout" sees checkpoints of "north" only
PEOPLE = {
    "ada": ("admin", None),
    "tess": ("tracer", None),
    "otto": ("auditor", None),
    "vera": ("viewer", None),
    "scoped": ("tracer", frozenset({"north"})),
    "lookout": ("viewer", frozenset({"north"})),
}


@dataclass
class ConsoleSetup:
    settings: ConsoleSettings
    key: AuditKey

    def db(self) -> ConsoleDb:
        return ConsoleDb.open(self.settings.db_url, audit_key=self.key)


def console_setup(folder: Path, db_url: str, key_files: tuple[Path, ...] = (), **options) -> ConsoleSetup:
    """An audit key, the console's tables in `db_url` and one account per entry of PEOPLE."""
    key_path = folder / "audit.key"
    key = AuditKey.generate(key_path)
    db = ConsoleDb.open(db_url, audit_key=key)
    try:
        with db.transaction() as tx:
            for name, (role, sites) in PEOPLE.items():
                accounts.add_user(tx, name, PASSWORD, role, sites, by="setup", address="test")
    finally:
        db.close()
    return ConsoleSetup(ConsoleSettings(db_url=db_url, audit_key=key_path, key_files=key_files, **options), key)


def form_token(page: str) -> str:
    """The CSRF token of the first form of a page."""
    found = re.search(r'name="csrf" value="([^"]*)"', page)
    assert found, "the page has a form with a CSRF token"
    return found[1]


def sign_in(client, name: str, password: str = PASSWORD):
    """Sign in through /login as a browser does (its form's token and cookie); the answer to the POST."""
    token = form_token(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf": token}, follow_redirects=False)


class Served:
    """The console served by uvicorn on 127.0.0.1 at a free port, in a thread of this process."""

    def __init__(self, settings: ConsoleSettings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(build_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        wait_until(lambda: self.server.started, 20, f"the console to listen on {self.url}")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def random_person(rng, bits: int = 1024) -> str:
    """A FaceHash text under the tests' KEY of a made-up person (random bits: about half differ from any other's)."""
    from edge.core import facehash
    from support.events import KEY

    return str(facehash.from_packed(KEY.id, bytes(rng.integers(0, 256, bits // 8, dtype="uint8")), bits))


def store_events(db_url: str, seen: list[tuple[str, str, float, list[str]]]) -> None:
    """Store events as the collector does: (site, checkpoint, seconds after support.events.T0, FaceHashes)."""
    from edge.core import events
    from edge.tracer import store
    from support.events import checked, event_of

    batch = []
    for site, checkpoint, seconds, codes in seen:
        body = event_of(codes, checkpoint, seconds)
        body["site"] = site
        batch.append(checked(events.validate(body)))
    opened = store.open_store(db_url)
    try:
        opened.add(batch)
    finally:
        opened.close()


def store_statuses(db_url: str, said: list[tuple[str, str, float, str]]) -> None:
    """Store units' status transitions as the collector does: (site, checkpoint, seconds after T0, online|offline),
    each from unit-1 of that checkpoint (the device support.events.event_of names)."""
    from edge.tracer import store, unit_reports
    from support.events import T0

    reports = [
        unit_reports.status((site, checkpoint, "unit-1"), state.encode(), round((T0 + seconds) * 1000))
        for site, checkpoint, seconds, state in said
    ]
    opened = store.open_store(db_url)
    try:
        opened.add([], reports=reports)
    finally:
        opened.close()


def key_file(folder: Path) -> Path:
    """The tests' FaceHash key (support.events.KEY) as the deployment's key file, mode 0600."""
    from edge.core import facehash
    from support.events import KEY

    path = folder / "deployment.key"
    path.write_text(f"{facehash.KEY_HEADER}\n{KEY.secret.hex()}\n")
    path.chmod(0o600)
    return path
