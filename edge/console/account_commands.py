"""`traceon-edge users` and `traceon-edge audit`: accounts and the audit log, on the server.

A password is read from the terminal (twice) or from standard input (`--password-stdin`), never from the
command line, where `ps` and the shell's history would show it. Every change is audited as
"server:<unix user>", from the address "local".
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import pwd
import sys
import time

from edge.core.options import positive_int

ADDRESS = "local"


def register(commands: argparse._SubParsersAction) -> None:
    users = commands.add_parser("users", help="the console's accounts: add, passwd, disable, enable, list")
    actions = users.add_subparsers(dest="users_command", required=True)

    add = actions.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("admin", "tracer", "auditor", "viewer"))
    add.add_argument("--sites", default="all", metavar="A,B|all", help="the sites the user sees (default: all)")
    _password_options(add)
    _change_options(add)
    add.set_defaults(handler=users_add)

    passwd = actions.add_parser("passwd", help="set a user's password (ends the user's sessions)")
    passwd.add_argument("name")
    _password_options(passwd)
    _change_options(passwd)
    passwd.set_defaults(handler=users_passwd)

    for verb, about in (
        ("disable", "stop a user from logging in (ends the sessions)"),
        ("enable", "let a user in again"),
    ):
        sub = actions.add_parser(verb, help=about)
        sub.add_argument("name")
        _change_options(sub)
        sub.set_defaults(handler=users_switch, enabled=verb == "enable")

    listing = actions.add_parser("list", help="the users, their roles and sites (never a password hash)")
    _db_option(listing)
    listing.set_defaults(handler=users_list)

    audit = commands.add_parser("audit", help="the console's audit log: keygen, verify, list")
    verbs = audit.add_subparsers(dest="audit_command", required=True)
    keygen = verbs.add_parser("keygen", help="write a new audit key (32 random bytes, mode 0600; never overwrites)")
    keygen.add_argument("file")
    keygen.set_defaults(handler=audit_keygen)

    verify = verbs.add_parser("verify", help="check the chain: name every changed, missing or re-chained row")
    _db_option(verify)
    _key_option(verify)
    verify.add_argument(
        "--head", metavar="SEQ:MAC", help="the last head the journal logged (audit head seq=… mac=…): finds a cut tail"
    )
    verify.set_defaults(handler=audit_verify)

    listing = verbs.add_parser("list", help="the newest audit rows first")
    _db_option(listing)
    listing.add_argument("--since", metavar="SPAN", help="only rows of this last span (e.g. 7d, 12h)")
    listing.add_argument("--user")
    listing.add_argument("--action")
    listing.add_argument("--limit", type=positive_int, default=500)
    listing.set_defaults(handler=audit_list)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", required=True, metavar="URL", help="the tracer's database: a SQLite file or postgresql://…"
    )


def _key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audit-key", required=True, metavar="FILE", help="the audit key (audit keygen makes one)")


def _change_options(parser: argparse.ArgumentParser) -> None:
    _db_option(parser)
    _key_option(parser)


def _password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of standard input"
    )


# --- handlers: they import the console's modules (argon2, the store) only when they run -------------


def _by() -> str:
    try:
        name = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        name = str(os.geteuid())
    return f"server:{name}"


def _open(args, with_key: bool):
    from edge.console.audit import AuditKey
    from edge.console.db import ConsoleDb

    key = AuditKey.load(args.audit_key) if with_key else None  # the key first: a wrong key changes nothing
    if with_key:  # the new audit head goes to stderr, which the journal keeps when systemd or cron runs this
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    return ConsoleDb.open(args.db, audit_key=key), key


def _password(args) -> str:
    from edge.core.errors import AccountError

    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise AccountError("no terminal to ask the password on: pipe it in with --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ; nothing was changed")
    return first


def _sites(text: str) -> frozenset[str] | None:
    if text.strip() == "all":
        return None
    return frozenset(s.strip() for s in text.split(",") if s.strip())


def users_add(args) -> int:
    from edge.console import accounts

    sites = accounts.checked_sites(_sites(args.sites))  # before the password prompt: a typo costs no retyping
    accounts.checked_name(args.name)
    password = accounts.checked_password(_password(args))
    db, key = _open(args, with_key=True)
    try:
        with db.transaction() as tx:
            added = accounts.add_user(tx, args.name, password, args.role, sites, _by(), ADDRESS, key=key)
    finally:
        db.close()
    print(f"added {added.name} ({added.role}, sites: {_sites_shown(added.sites)})")
    return 0


def users_passwd(args) -> int:
    from edge.console import accounts

    password = accounts.checked_password(_password(args))
    db, key = _open(args, with_key=True)
    try:
        with db.transaction() as tx:
            accounts.set_password(tx, args.name, password, _by(), ADDRESS, key=key)
    finally:
        db.close()
    print(f"the password of {args.name} is changed; its sessions have ended")
    return 0


def users_switch(args) -> int:
    from edge.console import accounts

    db, key = _open(args, with_key=True)
    try:
        with db.transaction() as tx:
            (accounts.enable if args.enabled else accounts.disable)(tx, args.name, _by(), ADDRESS, key=key)
    finally:
        db.close()
    print(f"{args.name} is {'enabled' if args.enabled else 'disabled; its sessions have ended'}")
    return 0


def users_list(args) -> int:
    from edge.console import accounts

    db, _ = _open(args, with_key=False)
    try:
        found = accounts.users(db)
    finally:
        db.close()
    if not found:
        print("no users yet: traceon-edge users add NAME --role admin --db … --audit-key …")
        return 0
    width = max(len(u.name) for u in found)
    for u in found:
        state = "disabled" if u.disabled else "enabled"
        print(f"{u.name:<{width}}  {u.role:<7}  {state:<8}  sites: {_sites_shown(u.sites)}")
    return 0


def _sites_shown(sites) -> str:
    return "all" if sites is None else ",".join(sorted(sites))


def audit_keygen(args) -> int:
    from edge.console.audit import AuditKey

    AuditKey.generate(args.file)
    print(f"wrote a new audit key to {args.file} (mode 0600): keep a copy apart from the database")
    return 0


def audit_verify(args) -> int:
    from edge.console import audit
    from edge.core.errors import EX_FAILED

    head = _head(args.head) if args.head else None
    db, key = _open(args, with_key=True)
    try:
        problems = audit.verify(db, key, head)
        last = audit.head(db)
    finally:
        db.close()
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in the audit log", file=sys.stderr)
        return EX_FAILED
    shown = f"{last[0]} rows, head seq={last[0]} mac={last[1]}" if last else "empty"
    print(f"the audit log verifies: {shown}")
    return 0


def _head(text: str) -> tuple[int, str]:
    from edge.core.errors import AuditError

    seq, _, mac = text.replace("seq=", "").replace("mac=", "").replace(" ", ":").partition(":")
    if not seq.isdigit() or not mac or any(c not in "0123456789abcdefABCDEF" for c in mac):
        raise AuditError(f"{text!r:.60} is not a head: write SEQ:MAC as the journal shows it (e.g. 42:9f3a…)")
    return int(seq), mac


def audit_list(args) -> int:
    from edge.console import audit
    from edge.core.spans import parse_span, when

    since = None if args.since is None else int((time.time() - parse_span(args.since).total_seconds()) * 1000)
    db, _ = _open(args, with_key=False)
    try:
        rows = audit.entries(db, since_ms=since, user=args.user, action=args.action, limit=args.limit)
    finally:
        db.close()
    for e in rows:
        detail = " ".join(f"{k}={v}" for k, v in sorted(e.detail.items()))
        line = f"{e.seq:>6}  {when(e.at_ms)}  {e.user}  {e.action}  {e.address}  {detail}".rstrip()
        print("".join(c if c.isprintable() else "?" for c in line))  # no terminal escape from a stored value
    if not rows:
        print("no audit rows match")
    return 0
