"""`traceon-edge install-config`: the unit's half of `deploy`, run over SSH with the new file on stdin.

With `--key-size` the config is followed on stdin by the key or key chain file it names (facehash.key_file):
that file is put in place and checked as the daemon reads it before the config is checked, and is put back
with the config (edge.field.pushed_key); the health must then report one of the pushed key's ids.

One transaction per call, finished on the unit even if the SSH connection drops half-way (SIGHUP and
broken pipes are ignored): take exactly the announced bytes and checksum (a cut copy changes nothing),
validate with this unit's own version, keep the live file as `<live>.previous`, swap atomically, reload,
and wait until the daemon's health reports the new fingerprint — otherwise put the previous file back,
reload again and confirm it. A daemon that runs but cannot write its health file cannot confirm anything:
then the new file stays, and the outcome says it is unconfirmed and why. Progress and the outcome are
JSON lines on stdout for `deploy` to read.

It runs as root (sudo), but a pushed config names files and a broker: checking it, and reading the
health it reports, is done with the daemon's own user's rights (`--as-user`), so that a config cannot
make root open a file the daemon could not, or send such a file's content to a broker of its choosing.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import json
import os
import pwd
import signal
import subprocess
import sys
import syslog
import time
from pathlib import Path

from edge import __version__
from edge.core import keychain
from edge.core.errors import KeyFileError
from edge.field import pushed_key
from edge.unit import config

DEFAULT_RELOAD = "systemctl reload traceon-edge.service"
DEFAULT_UNIT_USER = "traceon"  # the daemon's user (systemd/traceon-edge.service, tools/install-pi.sh)


def as_user(name: str):
    """A preexec function that becomes `name` (None when this process is not root: it already runs as a user)."""
    if os.geteuid() != 0 or name == "root":
        return None
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        raise config.ConfigError(
            f"the daemon's user {name!r} does not exist on this unit (tools/install-pi.sh creates it); a config is "
            "checked with that user's rights, never root's: give the right one with deploy --unit-user"
        ) from None

    def become() -> None:
        os.setgroups(os.getgrouplist(name, account.pw_gid))
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)

    return become


def as_the_daemon(command: list[str], user: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """`traceon-edge COMMAND` run with the daemon user's rights."""
    cli = [sys.executable, "-m", "edge.cli", *command]
    try:
        return subprocess.run(cli, input=stdin, capture_output=True, preexec_fn=as_user(user), timeout=120, cwd="/")
    except OSError as e:  # raised here when the child cannot become the user or run Python as it
        raise config.ConfigError(
            f"cannot run traceon-edge as the daemon's user {user!r} ({sys.executable}: {e.strerror}); install it "
            "where that user can run it (tools/install-pi.sh does)"
        ) from None


def check_new(content: bytes, base: Path, user: str) -> str | None:
    """None if the new config is valid on this unit for the daemon's user; else the problems."""
    if as_user(user) is None:
        try:
            config.parse(content.decode(errors="replace"), "the new config", base=base)
        except config.ConfigError as e:
            return str(e)
        return None
    done = as_the_daemon(["check-config", "-", "--relative-to", str(base)], user, content)
    if done.returncode == 0:
        return None
    return done.stderr.decode(errors="replace").strip().removeprefix("traceon-edge: ") or f"exit {done.returncode}"


class Reporter:
    """JSON lines to `deploy`; silent once the connection is gone, so the transaction still completes."""

    def __init__(self, out):
        self.out = out

    def __call__(self, **message) -> None:
        if "result" in message or message.get("step") == "rollback":
            syslog.syslog(syslog.LOG_NOTICE, f"config deploy: {message}")
        with contextlib.suppress(OSError, ValueError):
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()


def write_atomic(path: Path, content: bytes, like: Path | None = None) -> None:
    """Temp file beside `path`, fsync, rename, fsync the folder: after a power cut, old or new, never half."""
    temp = path.with_name(f".{path.name}.incoming-{os.getpid()}")
    try:
        with open(temp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        if like is not None and like.exists():  # the live file's owner and mode (root:traceon 0640 on a unit)
            st = like.stat()
            os.chmod(temp, st.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):
                os.chown(temp, st.st_uid, st.st_gid)
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def read_exactly(stream, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(min(65536, size - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def unit_status(live: Path, user: str) -> dict:
    """What `traceon-edge status --json` says of the live config, with the daemon user's rights."""
    if as_user(user) is None:
        from edge.field.status import daemon_health

        try:
            return daemon_health(config.load(live))
        except config.ConfigError as e:
            return {"error": f"the live config cannot be read: {e}"}
    try:
        done = as_the_daemon(["status", "--config", str(live), "--json"], user)
    except config.ConfigError as e:
        return {"error": str(e)}
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"error": done.stderr.decode(errors="replace").strip() or f"status ended with {done.returncode}"}


def wait_for_fingerprint(
    live: Path, expected: str, timeout: float, user: str = DEFAULT_UNIT_USER, key_ids: set[str] | None = None
) -> str | None:
    """None once the daemon's health reports `expected` (and, with `key_ids`, one of those key ids); else what it
    last reported, for the message."""
    deadline, seen = time.monotonic() + timeout, "no health report came"
    while True:
        report = unit_status(live, user)
        if "error" in report:
            seen = report["error"]
        health = report.get("health") or {}
        fresh = "health_file" not in report  # else its report is old: it cannot have seen the reload
        key_ok = key_ids is None or health.get("key_id") in key_ids
        if health.get("config") == expected and report.get("daemon") == "running" and fresh and key_ok:
            return None
        if health.get("config"):
            seen = f"it last reported config {health['config']} ({report.get('daemon')})"
            if not key_ok:
                seen += f" with key id {health.get('key_id')}, not the pushed key's"
        elif "why" in report:
            seen = report["why"]
        if time.monotonic() >= deadline:
            also = " and the pushed key's id" if key_ids is not None else ""
            return f"the daemon did not report config {expected}{also} within {timeout:g} s: {seen}"
        time.sleep(0.5)


def reported_key_id(live: Path, user: str) -> str | None:
    return (unit_status(live, user).get("health") or {}).get("key_id")


def key_file_of(content: bytes, base: Path) -> Path:
    """Where the pushed config keeps its key (its structure only; ConfigError if it has none)."""
    parsed = config.parse(content.decode(errors="replace"), "the new config", base=base, check_files=False)
    return parsed.facehash.key_file


def reload(command: str) -> str | None:
    """None if the reload command succeeded, else why not."""
    try:
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return f"`{command}` did not finish within 60 s"
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return f"`{command}` failed (exit {done.returncode})" + (f": {said[-1]}" if said else "")
    return None


def install(
    live: Path,
    sha256: str,
    size: int,
    reload_command: str = DEFAULT_RELOAD,
    timeout: float = 60.0,
    dry_run: bool = False,
    stdin=None,
    out=None,
    user: str = DEFAULT_UNIT_USER,
    key_sha256: str | None = None,
    key_size: int | None = None,
) -> int:
    """The config (`size` bytes) and then, with `key_size`, the key or chain file it names, from stdin."""
    report = Reporter(out or sys.stdout)
    software = f"traceon-edge {__version__}"
    stream = stdin or sys.stdin.buffer
    # One deploy at a time per unit, held from the first byte: a `--query` after a lost connection
    # then answers only once this transaction has finished.
    with open(live.parent / ".deploy.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        content = read_exactly(stream, size)
        if len(content) != size or hashlib.sha256(content).hexdigest() != sha256:
            got = f"{len(content)} of {size} bytes"
            report(result="failed", software=software, message=f"the copy arrived cut short or damaged ({got})")
            return 1
        key = read_exactly(stream, key_size) if key_size is not None else None
        if key is not None and (len(key) != key_size or hashlib.sha256(key).hexdigest() != key_sha256):
            got = f"{len(key)} of {key_size} bytes"
            report(result="failed", software=software, message=f"the key file arrived cut short or damaged ({got})")
            return 1
        live = live.resolve() if live.exists() else live
        new = config.fingerprint_of(content)
        old_content = live.read_bytes() if live.exists() else b""
        old = config.fingerprint_of(old_content) if old_content else None
        key_ids, swap, problems = None, None, None
        try:  # this unit's version, files and daemon user; relative paths as if it were already live
            if key is not None:
                key_ids = accepted_ids(key)
                key_path = key_file_of(content, live.resolve().parent)
                if not dry_run:  # the key goes in first, so that the config naming it is checked with it
                    swap = pushed_key.replace(key_path, key, user)
                    problems = pushed_key.check(key_path, as_user(user))
            problems = problems or check_new(content, live.resolve().parent, user)
        except (config.ConfigError, KeyFileError) as e:
            problems = str(e)
        if problems:
            if swap is not None:
                swap.undo()
                problems += "\nthe key file is back as it was"
            said_key = {} if key is None else {"key_id": reported_key_id(live, user)}
            report(result="refused", software=software, fingerprint=new, running=old, message=problems, **said_key)
            return 1
        diff = "".join(
            difflib.unified_diff(
                old_content.decode(errors="replace").splitlines(keepends=True),
                content.decode(errors="replace").splitlines(keepends=True),
                f"{live} (live)",
                f"{live} (new)",
            )
        )
        if dry_run:
            report(result="dry-run", software=software, fingerprint=new, running=old, diff=diff)
            return 0
        if new == old and swap is None:
            report(result="unchanged", software=software, fingerprint=new, running=old, message="already live")
            return 0
        if old_content and new != old:
            write_atomic(live.with_name(live.name + ".previous"), old_content, like=live)
        write_atomic(live, content, like=live)
        report(step="swapped", fingerprint=new, previous=old)
        refused = reload(reload_command)
        why = refused or wait_for_fingerprint(live, new, timeout, user, key_ids)
        said_key = {} if key is None else {"key_id": reported_key_id(live, user) if why is None else None}
        if why is None:
            if swap is not None:
                swap.keep()
            report(result="applied", software=software, fingerprint=new, previous=old, diff=diff, **said_key)
            return 0
        blind = None if refused else unit_status(live, user).get("health_file")
        if blind:  # rolling back would undo a config that may well be running: keep it, and say why unconfirmed
            if swap is not None:
                swap.keep()
            message = (
                f"kept, but not confirmed: the daemon runs and cannot write its health file ({blind}), so it "
                "cannot say which config it runs; fix that, then check with `traceon-edge status`"
            )
            report(result="unconfirmed", software=software, fingerprint=new, previous=old, message=message, diff=diff)
            return 1
        report(step="rollback", message=why)
        if swap is not None:
            swap.undo()
        if not old_content:
            live.unlink()
            report(result="rolled-back", software=software, fingerprint=new, running=None, message=why)
            return 1
        write_atomic(live, old_content, like=live)
        # Wait even if the reload command failed: a daemon restarted by systemd comes back on its own.
        reloaded = reload(reload_command)
        again = wait_for_fingerprint(live, old, timeout, user)
        if again is not None:
            why += f"; the previous config is back in place but the daemon has not confirmed it ({reloaded or again})"
        running = old if again is None else None
        if key is not None:
            said_key = {"key_id": reported_key_id(live, user) if again is None else None}
        report(result="rolled-back", software=software, fingerprint=new, running=running, message=why, **said_key)
        return 1


def accepted_ids(key: bytes) -> set[str]:
    try:
        return pushed_key.accepted_ids(key.decode())
    except UnicodeDecodeError:
        raise KeyFileError("the pushed key file is neither a traceon-edge key nor a key chain (not text)") from None
    except KeyFileError as e:
        raise KeyFileError(f"the pushed key file: {e}") from None


def query(live: Path, out=None) -> int:
    """The live config's fingerprint (and the id of the key its file holds) once no deploy is under way: what
    `deploy` asks after losing a connection."""
    report = Reporter(out or sys.stdout)
    with open(live.parent / ".deploy.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a transaction cut off from its caller finishes first
        fingerprint = config.fingerprint(live) if live.exists() else None
        key_id = held_key_id(live) if live.exists() else None
    report(result="query", software=f"traceon-edge {__version__}", running=fingerprint, key_id=key_id)
    return 0


def held_key_id(live: Path) -> str | None:
    """The key id of the epoch the live config's key file holds (None if it cannot be read)."""
    try:
        path = key_file_of(live.read_bytes(), live.resolve().parent)
        return keychain.parse(path.read_text(), path).key.id
    except (OSError, UnicodeDecodeError, config.ConfigError, KeyFileError):
        return None


def main(args) -> int:
    if args.query:
        return query(args.live)
    if args.sha256 is None or args.size is None:
        raise config.ConfigError("install-config needs --sha256 and --size (or --query)")
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH connection must not stop a half-done swap
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    if (args.key_sha256 is None) != (args.key_size is None):
        raise config.ConfigError("install-config needs both --key-sha256 and --key-size, or neither")
    return install(
        args.live,
        args.sha256,
        args.size,
        args.reload,
        args.timeout,
        args.dry_run,
        user=args.as_user,
        key_sha256=args.key_sha256,
        key_size=args.key_size,
    )
