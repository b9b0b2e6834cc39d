"""How every MQTT client of ours reaches the broker: TLS, mutual TLS and credentials, one code path.

A unit takes them from its config's `mqtt` section; `collect`, `watch` and `trace`'s tools take the
same settings from command-line options, validated by the same pydantic model (`edge.config.Mqtt`).
"""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

from pydantic import ValidationError

from edge.unit import config
from edge.unit.config import Mqtt


def secure(client, settings: Mqtt):
    """TLS or mutual TLS, and username/password, as the settings ask."""
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.tls.ca_file),
            certfile=str(settings.tls.cert_file) if settings.tls.cert_file else None,
            keyfile=str(settings.tls.key_file) if settings.tls.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    if settings.username:
        password = settings.password_file.read_text().strip() if settings.password_file else None
        client.username_pw_set(settings.username, password)
    return client


def add_options(parser: argparse.ArgumentParser) -> None:
    """The broker options of every tracer-side command (the same meaning as a unit's `mqtt` section)."""
    group = parser.add_argument_group("broker", "the same settings as a unit's `mqtt` section")
    group.add_argument("--broker", required=True, metavar="HOST[:PORT]", help="port 1883, or 8883 with --tls-ca")
    group.add_argument("--prefix", default="traceon", help="the units' topic prefix")
    group.add_argument("--tls-ca", type=Path, metavar="FILE", help="CA certificate of the broker: connect with TLS")
    group.add_argument("--tls-cert", type=Path, metavar="FILE", help="client certificate, for mutual TLS")
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="client private key, for mutual TLS")
    group.add_argument("--username", metavar="NAME")
    group.add_argument("--password-file", type=Path, metavar="FILE", help="file holding the password (mode 0600)")


OPTION = {"host": "--broker", "port": "--broker", "tls.ca_file": "--tls-ca", "tls.cert_file": "--tls-cert"}
OPTION |= {"tls.key_file": "--tls-key", "tls": "--tls-cert/--tls-key", "password_file": "--password-file"}
OPTION |= {"username": "--username", "topic_prefix": "--prefix"}


def settings(args: argparse.Namespace) -> Mqtt:
    """The options as validated settings; ConfigError names each wrong option."""
    host, port = split_host(args.broker)
    tls = None
    if args.tls_ca or args.tls_cert or args.tls_key:
        tls = {"ca_file": args.tls_ca, "cert_file": args.tls_cert, "key_file": args.tls_key}
    given = {"host": host, "port": port or (8883 if tls else 1883), "tls": tls, "username": args.username}
    given |= {"password_file": args.password_file, "topic_prefix": args.prefix}
    try:
        return Mqtt.model_validate(given, context={"base": Path.cwd()})
    except ValidationError as e:
        lines = []
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {OPTION.get(where, where)}: {err['msg'].removeprefix('Value error, ')}")
        raise config.ConfigError(f"the broker options have {len(lines)} problem(s):\n" + "\n".join(lines)) from None


def split_host(text: str) -> tuple[str, int | None]:
    """HOST, HOST:PORT or [IPv6]:PORT."""
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or None
    elif text.count(":") == 1:
        host, port = text.split(":")
    if port is not None and not port.isdigit():
        raise config.ConfigError(f"  --broker: {text!r} is not HOST or HOST:PORT")
    return host, int(port) if port else None
