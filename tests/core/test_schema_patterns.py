"""Every pattern of the event and health schemas matches the whole string, as JSON Schema (ECMA-262) means it:
Python's `$` also matches before a final newline, and its `\\d` also matches other scripts' digits."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.events import KEY, sample_event, sample_health

from edge.core import events, facehash
from edge.core.errors import Refused
from edge.tracer import intake

FREE_TEXT = {"health": {"camera", "broker", "outbox/problem", "outbox/faults/0/moved_to"}, "event": set()}
ODD = ["\n", "\r\n", "\r", "\x00", "\t", "\x0b", "\x85", "\u2028"]


def full_event(scheme: str = "fh1") -> dict:
    """A version 3 event as a unit publishes it, with one person of `scheme` (1,024 bits), so the FaceHash patterns
    are walked too."""
    body = sample_event(1)
    body.update(schema_version=3, key_id=KEY.id, scheme=scheme, faces=1)
    body["persons"] = [
        {
            "facehash": str(facehash.from_packed(KEY.id, bytes(128), 1024, scheme)),
            "frames": 1,
            "quality": {"size": 1, "frontalness": 1, "sharpness": 1},
        }
    ]
    return body


SAMPLES = {"event": full_event, "event-fh2": lambda: full_event("fh2"), "health": sample_health}


def schema_of(sample: str) -> str:
    return sample.split("-")[0]


def leaves(value, path=()):
    """(path, text) of every string in a message."""
    if isinstance(value, str):
        yield path, value
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from leaves(child, (*path, key))


def changed(body: dict, path: tuple, text: str) -> dict:
    """A copy of `body` with the string at `path` replaced by `text`."""
    root = place = copy.deepcopy(body)
    *parents, last = path
    for key in parents:
        place = place[key]
    place[last] = text
    return root


def refusals(message: dict, name: str) -> list:
    """Every schema error, with those inside oneOf/anyOf branches."""
    found, stack = [], list(events.validator(schema_of(name)).iter_errors(message))
    while stack:
        error = stack.pop()
        found.append(error)
        stack.extend(error.context or ())
    return found


def checked_fields(name: str) -> list[tuple]:
    return [p for p, _ in leaves(SAMPLES[name]()) if "/".join(map(str, p)) not in FREE_TEXT[schema_of(name)]]


def schema_patterns(value) -> set[str]:
    """Every `pattern` in a schema."""
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    own = {value["pattern"]} if isinstance(value, dict) and isinstance(value.get("pattern"), str) else set()
    return own.union(*(schema_patterns(child) for child in children))


@pytest.mark.parametrize("name", SAMPLES)
def test_the_samples_are_valid_and_their_free_text_fields_are_the_known_ones(name):
    sample = SAMPLES[name]()
    assert refusals(sample, name) == []
    assert {"/".join(map(str, p)) for p, _ in leaves(sample)} >= FREE_TEXT[schema_of(name)]
    for path, _ in leaves(sample):  # a new string field without a pattern, format or enum shows up here
        if "/".join(map(str, path)) not in FREE_TEXT[schema_of(name)]:
            assert refusals(changed(sample, path, "? ?"), name), f"{name} field {path} takes any text"


@pytest.mark.parametrize("schema", ["event", "health"])
@pytest.mark.parametrize("odd", ODD, ids=repr)
def test_a_control_character_after_any_checked_field_is_refused(schema, odd):
    used = set()
    for name in [n for n in SAMPLES if schema_of(n) == schema]:
        sample = SAMPLES[name]()
        for path in checked_fields(name):
            text = dict(leaves(sample))[path]
            found = refusals(changed(sample, path, text + odd), name)
            assert found, f"{name} field {'/'.join(map(str, path))} takes {text + odd!r}"
            used |= {e.validator_value for e in found if e.validator == "pattern"}
    assert used == schema_patterns(events.schema(schema)), "a pattern of the schema is not walked by the samples"


@pytest.mark.parametrize("scheme", ["fh1", "fh2"])
@pytest.mark.parametrize("odd", ODD, ids=repr)
def test_the_collector_refuses_an_event_with_a_control_character_after_any_field(scheme, odd):
    body = full_event(scheme)
    now_ms = round(events.parse_utc(body["started_at"]).timestamp() * 1000)  # the collector's clock agrees
    for path in checked_fields("event" if scheme == "fh1" else "event-fh2"):
        bad = changed(body, path, dict(leaves(body))[path] + odd)
        with pytest.raises(Refused):
            intake.check_schema(bad)
        with pytest.raises(Refused):
            intake.check("traceon/s1/door/d1/events", json.dumps(bad).encode(), "traceon", now_ms=now_ms)
    intake.check("traceon/s1/door/d1/events", json.dumps(body).encode(), "traceon", now_ms=now_ms)  # taken


@given(
    name=st.sampled_from(sorted(SAMPLES)),
    pick=st.integers(min_value=0),
    where=st.integers(min_value=0),
    odd=st.characters(categories=["Cc", "Zl", "Zp"]),
)
def test_a_control_character_anywhere_in_a_checked_field_is_refused(name, pick, where, odd):
    sample = SAMPLES[name]()
    fields = checked_fields(name)
    path = fields[pick % len(fields)]
    text = dict(leaves(sample))[path]
    at = where % (len(text) + 1)
    assert refusals(changed(sample, path, text[:at] + odd + text[at:]), name)


@pytest.mark.parametrize("name", SAMPLES)
def test_digits_of_other_scripts_are_refused_where_the_schema_asks_for_digits(name):
    sample = SAMPLES[name]()
    for path in checked_fields(name):
        text = dict(leaves(sample))[path]
        if any(c.isdigit() for c in text):
            arabic = "".join(chr(0x660 + int(c)) if c.isdigit() else c for c in text)  # ٠١٢…
            assert refusals(changed(sample, path, arabic), name), f"{name} field {path} takes {arabic!r}"


def with_code(body: dict, scheme: str) -> dict:
    """`body` with its person's FaceHash made of another scheme."""
    body["persons"][0]["facehash"] = str(facehash.from_packed(KEY.id, bytes(128), 1024, scheme))
    return body


@pytest.mark.parametrize(
    "make, where",
    [
        (lambda: {k: v for k, v in full_event().items() if k != "scheme"}, "scheme is missing"),  # v3 names it
        (lambda: with_code(full_event("fh1"), "fh2"), "persons/0/facehash"),  # a code of another scheme
        (lambda: with_code(full_event("fh2"), "fh1"), "persons/0/facehash"),
        (lambda: with_code({**full_event(), "schema_version": 2, "scheme": "fh2"}, "fh2"), "scheme: must be fh1"),
        (lambda: with_code({**full_event(), "schema_version": 2}, "fh2") | {"scheme": "fh1"}, "persons/0/facehash"),
        (
            lambda: with_code({k: v for k, v in full_event().items() if k != "scheme"} | {"schema_version": 1}, "fh2"),
            "persons/0/facehash",
        ),  # versions 1 and 2 hold fh1 only, with or without `scheme`
    ],
)
def test_the_scheme_rules_of_the_versions(make, where):
    assert where in (events.problem(make()) or "")


def test_older_versions_without_a_scheme_still_validate():
    for version in (1, 2):
        body = {k: v for k, v in full_event().items() if k != "scheme"} | {"schema_version": version}
        assert events.problem(body) is None


def test_a_health_report_names_its_scheme_and_one_from_an_older_unit_without_it_is_still_read():
    assert sample_health()["scheme"] == "fh2" and events.problem(sample_health(), "health") is None
    older = {k: v for k, v in sample_health().items() if k != "scheme"}
    assert events.problem(older, "health") is None
    assert events.problem({**sample_health(), "scheme": "fh3"}, "health") == "scheme: must be one of fh1, fh2"
