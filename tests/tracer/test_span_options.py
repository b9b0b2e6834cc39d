"""The tracer's span options: a wrong or too long span ends the command with exit 78 naming the option."""

from __future__ import annotations

import pytest
from support.events import KEY, checked, event_of

from edge import cli
from edge.core import facehash
from edge.tracer import store

CODE = str(facehash.from_packed(KEY.id, bytes(128), 1024))


@pytest.fixture
def one_sighting(tmp_path):
    url = str(tmp_path / "s.sqlite")
    db = store.open_store(url)
    db.add([checked(event_of([CODE], "door", 0))])
    db.close()
    return url


@pytest.mark.parametrize(
    "option, text, said",
    [
        ("--since", "999999999d", "--since: '999999999d' is longer than 3650d, the longest span allowed here"),
        ("--stride", "3000000d", "--stride: '3000000d' is longer than 3650d"),
        ("--since", "²d", "--since: '²d' is not a duration: use a number and s, m, h or d"),
    ],
)
def test_trace_refuses_a_wrong_span_naming_the_option(one_sighting, capsys, option, text, said):
    assert cli.main(["trace", CODE, "--db", one_sighting, option, text, "--format", "html"]) == 78
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--retention", "--session-expiry"])
def test_collect_refuses_a_wrong_span_before_it_connects(tmp_path, capsys, option):
    args = ["collect", "--broker", "127.0.0.1:1", "--db", str(tmp_path / "c.sqlite"), option, "999999999d"]
    assert cli.main(args) == 78
    assert f"{option}: '999999999d' is longer than 3650d" in capsys.readouterr().err


def test_trace_at_the_bound_writes_its_html_report(tmp_path, one_sighting):
    page = tmp_path / "trace.html"
    args = ["trace", CODE, "--db", one_sighting, "--since", "3650d", "--stride", "3650d", "--format", "html"]
    assert cli.main([*args, "--output", str(page)]) == 0
    assert "the stride (3650d) before the first" in page.read_text()
