"""No password of a database URL reaches a message: not in the user part, not as ?password= or
&sslpassword=, not quoted back by the driver's own error."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.collector import Collector

from edge import cli
from edge.core.errors import StoreError
from edge.tracer.store import open_store, redacted
from edge.tracer.store.urls import scrubbed

SECRET = "Sekr3tPw"
SHAPES = [
    "postgresql://tracer:{pw}@db.example:5432/sightings",
    "postgresql://tracer@db.example/sightings?password={pw}",
    "postgresql://db.example/sightings?sslmode=require&password={pw}",
    "postgresql://db.example/sightings?PASSWORD=x&pass%77ord={pw}",
    "postgresql:///sightings?host=/run/postgresql&password={pw}&application_name=collect",
    "postgres://tracer:{pw}@h1:5432,h2:5433/sightings?sslpassword={pw}&passfile=/etc/pgpass",
    "postgresql://tracer:{pw}@[::1/sightings",
    "postgresql://db.example/sightings?password={pw}#and-more",
]


@pytest.mark.parametrize("shape", SHAPES)
def test_a_password_in_any_place_is_hidden(shape):
    shown = redacted(shape.format(pw=SECRET))
    assert SECRET not in shown
    assert shown.startswith(shape.partition("://")[0] + "://")


def test_what_is_not_secret_is_shown_as_written():
    url = "postgresql:///sightings?host=/run/postgresql&passfile=/etc/pgpass&sslmode=require"
    assert redacted(url) == url
    assert redacted("/var/lib/traceon/sightings.sqlite") == "/var/lib/traceon/sightings.sqlite"
    assert redacted("postgresql://tracer:x@h/db?password=y") == "postgresql://tracer:***@h/db?password=***"


@given(
    shape=st.sampled_from(SHAPES),
    password=st.text(min_size=1),
    encode=st.booleans(),
)
def test_the_message_does_not_depend_on_the_password(shape, password, encode):
    written = quote(password, safe="") if encode else password.replace("&", "").replace("@", "").replace("/", "")
    assert redacted(shape.format(pw=written)) == redacted(shape.format(pw="x"))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://tracer:{pw}%zz@127.0.0.1:1/db",  # libpq quotes the token it cannot decode
        "postgresql://127.0.0.1:1/db?password={pw}%zz",
        "postgresql://tracer:{pw} x@127.0.0.1:1/db",  # and the one with a space
    ],
)
def test_the_drivers_error_is_shown_without_the_password(url):
    with pytest.raises(StoreError, match="cannot connect to the database") as error:
        open_store(url.format(pw=SECRET))
    assert SECRET not in str(error.value)


def test_upgrade_db_and_the_collectors_start_line_hide_the_password(postgres, broker, capsys):
    url = f"{postgres}?password={SECRET}&sslpassword={SECRET}"  # trust auth: the server ignores them
    assert cli.main(["upgrade-db", "--db", url]) == 0
    said = capsys.readouterr().out
    assert "schema" in said and SECRET not in said
    collector = Collector(broker.port, url)
    try:
        line = collector.wait_for("storing into")
    finally:
        everything = collector.stop()
    assert "password=***" in line and SECRET not in everything


@given(shape=st.sampled_from(SHAPES[:-1]), password=st.text(min_size=1).filter(lambda p: "*" not in p))
def test_a_drivers_message_quoting_the_password_is_scrubbed(shape, password):
    """(Not the last shape: for libpq, the `#and-more` after it is part of the password.)"""
    url = shape.format(pw=quote(password, safe=""))
    assert password not in scrubbed(f'invalid token: "{password}" in {url}', url)
