"""`traceon-edge console`: serve the web app (uvicorn), over TLS itself or behind a proxy that terminates it."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.core import broker
from edge.core.errors import ConfigError


def register(commands: argparse._SubParsersAction) -> None:
    console = commands.add_parser(
        "console",
        help="the operators' web console: trace a case, checkpoint history, audit log, notices",
        description="Serve the operators' console. Every trace, export, notice, sign-in and account change is "
        "recorded in the audit log, chained with the key in --audit-key (`traceon-edge audit keygen FILE`). "
        "Accounts are made on the server: `traceon-edge users add`.",
    )
    console.add_argument(
        "--db",
        required=True,
        metavar="URL",
        help="the collector's database: a SQLite file, sqlite:///… or postgresql://…",
    )
    console.add_argument("--audit-key", required=True, type=Path, metavar="FILE", help="the audit chain's key (0600)")
    console.add_argument(
        "--key-file",
        type=Path,
        action="append",
        default=[],
        metavar="KEY",
        help="the deployment's FaceHash key, to trace from photos (repeat for a key change)",
    )
    console.add_argument(
        "--key-chain",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="the tracer's key chain (the one `collect --key-chain` moves on): photos are hashed under every "
        "epoch of the trace's window it still holds",
    )
    console.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    console.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    console.add_argument("--ssl-certfile", type=Path, metavar="FILE", help="serve HTTPS with this certificate")
    console.add_argument("--ssl-keyfile", type=Path, metavar="FILE", help="…and this private key")
    console.add_argument(
        "--behind-tls",
        action="store_true",
        help="a reverse proxy on this host terminates TLS: cookies are marked Secure",
    )
    broker.add_options(console)
    for action in console._actions:
        if action.dest == "broker":  # notices go out over MQTT only when a broker is given
            action.required = False
            action.help = "publish notices retained to this broker (default: list them on /notices only)"
    console.set_defaults(handler=serve)


def settings(args):
    from edge.console.app import ConsoleSettings

    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        raise ConfigError("--ssl-certfile and --ssl-keyfile go together")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port: {args.port} is not a port (1–65535)")
    if not args.audit_key.is_file():
        raise ConfigError(
            f"--audit-key: there is no key file at {args.audit_key} (make one: traceon-edge audit keygen FILE)"
        )
    return ConsoleSettings(
        db_url=args.db,
        audit_key=args.audit_key,
        key_files=tuple(args.key_file),
        key_chains=tuple(args.key_chain),
        broker=broker.from_options(args) if args.broker else None,
        prefix=args.prefix,
        secure_cookies=bool(args.ssl_certfile or args.behind_tls),
    )


def serve(args) -> int:
    import uvicorn

    from edge.console import audit
    from edge.console.app import build_app
    from edge.core import keychain
    from edge.core.facehash import load_key

    chosen = settings(args)
    audit.AuditKey.load(chosen.audit_key)  # a key file that is missing or readable by others stops us here
    for path in chosen.key_files:
        load_key(path)
    for path in chosen.key_chains:
        keychain.load(path)  # missing, readable by others or not a chain: said now, not at the first photo
    uvicorn.run(
        build_app(chosen),
        host=args.host,
        port=args.port,
        ssl_certfile=str(args.ssl_certfile) if args.ssl_certfile else None,
        ssl_keyfile=str(args.ssl_keyfile) if args.ssl_keyfile else None,
        proxy_headers=args.behind_tls,  # the client's address from X-Forwarded-For, trusted from 127.0.0.1 only
        server_header=False,
        log_level="info",
    )
    return 0
