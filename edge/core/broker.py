"""How every MQTT client of ours reaches the broker: settings, TLS and credentials, one client factory.

The unit's uplink, the collector and `watch` all connect through `client()`: paho 2 with VERSION2
callbacks, MQTT 5, TLS or mutual TLS and username/password as the settings ask, reconnecting with
backoff. A unit takes the settings from its config's `mqtt` section (which embeds BrokerConfig); the
tracer's and field tools take them from command-line options, validated by the same model.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from pydantic import Field, ValidationError, field_validator, model_validator

from edge.core import settings as strict
from edge.core.errors import ConfigError
from edge.core.settings import ConfigPath, Section

SHORT_LIVED_S = 5  # a connection the broker closes this soon after opening it...
SHORT_LIVED_IN_A_ROW = 3  # ...this many times in a row: most likely another client uses the same client id


class TlsConfig(Section):
    ca_file: ConfigPath = Field(description="CA certificate that signed the broker's certificate")
    cert_file: ConfigPath | None = Field(None, description="Client certificate, for mutual TLS")
    key_file: ConfigPath | None = Field(None, description="Client private key, for mutual TLS")

    @field_validator("ca_file", "cert_file")
    @classmethod
    def _files(cls, path: Path | None, info) -> Path | None:
        return path if path is None else strict.readable(path, info.field_name.replace("_", " "), info)

    @field_validator("key_file")
    @classmethod
    def _key(cls, path: Path | None, info) -> Path | None:
        return path if path is None else strict.private(path, "TLS private key", info)

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("mutual TLS needs both cert_file and key_file")
        return self


class BrokerConfig(Section):
    host: str = Field("localhost", min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    tls: TlsConfig | None = None
    username: str | None = None
    password_file: ConfigPath | None = Field(None, description="File holding the password (keep it mode 0600)")
    topic_prefix: str = Field("traceon", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")

    @field_validator("password_file")
    @classmethod
    def _password(cls, path: Path | None, info) -> Path | None:
        return path if path is None else strict.private(path, "password file", info)


def secure(client: mqtt.Client, settings: BrokerConfig) -> mqtt.Client:
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


def client(
    settings: BrokerConfig, client_id: str = "", *, manual_ack: bool = False, reconnect: tuple[int, int] = (1, 30)
) -> mqtt.Client:
    """A paho client for `settings`, not yet connected (the caller sets its callbacks and will first)."""
    made = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
    )
    made.reconnect_delay_set(*reconnect)
    return secure(made, settings)


class LinkWatch:
    """What a client's connections say about the broker: unreachable (said when it starts, then every
    `say_again_s` if given), or closing each connection right after it opens (another client took the id)."""

    def __init__(self, settings: BrokerConfig, say_again_s: float | None = None):
        self.where = f"{settings.host}:{settings.port}"
        self.say_again_s = say_again_s
        self._said_at: float | None = None  # when the unreachable broker was last said
        self._connected_at, self._short_lived = 0.0, 0

    def connected(self) -> None:
        self._said_at, self._connected_at = None, time.monotonic()

    def unreachable(self) -> tuple[str, bool]:
        """From paho's on_connect_fail: why it could not connect, and whether to say so now."""
        why = f"cannot reach the broker at {self.where}: {sys.exc_info()[1]}"
        now = time.monotonic()
        due = self._said_at is None or (self.say_again_s is not None and now - self._said_at >= self.say_again_s)
        if due:
            self._said_at = now
        return why, due

    def closed(self) -> bool:
        """From on_disconnect: True once, when the connections look taken over by another client's id."""
        short = time.monotonic() - self._connected_at < SHORT_LIVED_S
        self._short_lived = self._short_lived + 1 if short else 0
        return self._short_lived == SHORT_LIVED_IN_A_ROW


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


def from_options(args: argparse.Namespace) -> BrokerConfig:
    """The options as validated settings; ConfigError names each wrong option."""
    host, port = split_host(args.broker)
    tls = None
    if args.tls_ca or args.tls_cert or args.tls_key:
        tls = {"ca_file": args.tls_ca, "cert_file": args.tls_cert, "key_file": args.tls_key}
    given = {"host": host, "port": port or (8883 if tls else 1883), "tls": tls, "username": args.username}
    given |= {"password_file": args.password_file, "topic_prefix": args.prefix}
    try:
        return BrokerConfig.model_validate(given, context={"base": Path.cwd()})
    except ValidationError as e:
        option = lambda loc: OPTION.get(".".join(map(str, loc)), ".".join(map(str, loc)))  # noqa: E731
        raise strict.refuse("the broker options", e, option, show_given=False) from None


def split_host(text: str) -> tuple[str, int | None]:
    """HOST, HOST:PORT or [IPv6]:PORT."""
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or None
    elif text.count(":") == 1:
        host, port = text.split(":")
    if port is not None and not port.isdigit():
        raise ConfigError(f"  --broker: {text!r} is not HOST or HOST:PORT")
    return host, int(port) if port else None
