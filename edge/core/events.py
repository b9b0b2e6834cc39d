"""Sighting events and health reports: the checked-in JSON Schemas both sides hold them to, and their times.

An event is the first thing that leaves the vision stage for disk or network, so a unit builds it from an
explicit list of fields (edge.unit.sighting) and checks it against a schema that forbids anything else.
"""

from __future__ import annotations

import datetime
import json
import re
from functools import cache
from importlib import resources

import jsonschema

from edge.core.errors import EventError

SCHEMA_VERSION = (
    3  # 2: `clock` says whether the unit's clock could be trusted; 3: `scheme` names the FaceHashes' scheme
)


@cache
def schema(name: str = "event") -> dict:
    return json.loads(resources.files("edge.core").joinpath(f"{name}.schema.json").read_text())


@cache
def validator(name: str = "event") -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.extend(jsonschema.validators.validator_for(schema(name)), {"pattern": _pattern})
    return cls(schema(name), format_checker=cls.FORMAT_CHECKER)


@cache
def whole(pattern: str) -> re.Pattern:
    """A schema pattern read as ECMA-262 (JSON Schema's dialect) reads it: a final `$` ends the text and `\\d` is
    0-9. Python's `$` also matches before a final newline (`"key_id": "aaaaaaaa\\n"` got through) and its `\\d`
    any script's digits."""
    body = pattern.removesuffix("$")
    escaped = (len(body) - len(body.rstrip("\\"))) % 2  # `\$` is a dollar sign, not the end
    return re.compile(body + r"\Z" if body != pattern and not escaped else pattern, re.ASCII)


def _pattern(validator, pattern: str, instance, schema):
    if validator.is_type(instance, "string") and not whole(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def validate(message: dict, name: str = "event") -> dict:
    """`message` if it matches edge/<name>.schema.json (event or health): nothing else may leave a unit."""
    errors = sorted(validator(name).iter_errors(message), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or f"({name})"
        raise EventError(f"{name} does not match its schema at {where}: {errors[0].message}")
    return message


def problem(message, name: str = "event") -> str | None:
    """None if `message` matches edge/<name>.schema.json, else which field breaks which rule, in a few words
    that never quote the message (it may be hostile or huge): for people reading untrusted input."""
    error = jsonschema.exceptions.best_match(validator(name).iter_errors(message))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "the message"
    rule, limit = error.validator, error.validator_value
    if rule == "required":
        missing = [k for k in limit if isinstance(error.instance, dict) and k not in error.instance]
        return f"{where}: {missing[0] if missing else 'a field'} is missing"
    if rule == "type":
        return f"{where}: must be {' or '.join(limit) if isinstance(limit, list) else limit}"
    if rule == "enum":
        return f"{where}: must be one of {', '.join(map(str, limit))}"[:160]
    rules = {
        "additionalProperties": "holds a field the schema does not allow",
        "maxLength": f"is longer than {limit} characters",
        "pattern": "is not in the expected form",
        "format": f"is not a valid {limit}",
        "oneOf": "matches none of the forms allowed",
        "const": f"must be {limit}",
        "minimum": f"is below {limit}",
        "maximum": f"is above {limit}",
    }
    return f"{where}: {rules.get(rule, f'breaks the rule {rule} {limit}'[:80])}"


def utc(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_utc(stamp: str) -> datetime.datetime:
    """The moment an event's `...Z` stamp names (the inverse of `utc`)."""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
