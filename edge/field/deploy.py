"""`traceon-edge deploy`: push a configuration to units over the system's `ssh`.

The config is checked here first (structure only: its key and TLS files live on the unit), then each unit
runs `traceon-edge install-config` with the file on stdin, which validates, swaps, reloads, waits for
the new fingerprint in its health and rolls back by itself (see install_config). `ssh` runs with
BatchMode, so ~/.ssh/config, keys, agents and known_hosts apply and nothing ever prompts for a password.

With `--key-file` a key or key chain file goes along, after the config on the same stdin: each unit puts it
where the config's facehash.key_file says, checks it before the config, puts both back together on any
failure, and confirms only when its health reports the new key's id (a revocation is one such push).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from edge.core import files, keychain
from edge.core.errors import DeployError
from edge.field import pushed_key
from edge.field.install_config import DEFAULT_RELOAD, DEFAULT_UNIT_USER
from edge.unit import config

DEFAULT_LIVE = Path("/etc/traceon-edge/config.yaml")
DEFAULT_REMOTE = "sudo -n /opt/traceon-edge/venv/bin/traceon-edge"
HOSTS_BYTES = 1024 * 1024  # a line per unit: a thousand units take about 50 kB
GOOD = ("applied", "unchanged", "dry-run")
# ssh's words for "never connected": nothing was sent
UNREACHABLE = (
    "Connection refused",
    "Could not resolve",
    "timed out",
    "No route",
    "Permission denied",
    "verification failed",
)


@dataclass(frozen=True)
class Target:
    host: str
    port: int | None
    config: Path

    @property
    def name(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Options:
    live: Path = DEFAULT_LIVE
    remote_command: str = DEFAULT_REMOTE
    reload_command: str = DEFAULT_RELOAD
    timeout: float = 60.0
    dry_run: bool = False
    ssh_config: Path | None = None
    unit_user: str = DEFAULT_UNIT_USER
    key_file: Path | None = None


@dataclass
class Outcome:
    target: Target
    result: str  # applied, unchanged, dry-run, unconfirmed, refused, rolled-back, failed, unreachable
    message: str = ""
    fingerprint: str | None = None
    running: str | None = None
    diff: str = ""
    key_id: str | None = None  # with --key-file: the key id the unit reports at the end


def parse_host(text: str) -> tuple[str, int | None]:
    """`host`, `host:2222`, `user@host:2222`, `[::1]:2222`."""
    host, port = text, None
    if text.startswith("[") and "]" in text:
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or None
    elif text.count(":") == 1:
        host, port = text.split(":")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise DeployError(f"{text!r}: the port after ':' must be a number from 1 to 65535")
    if not host:
        raise DeployError(f"{text!r} names no host")
    if host.startswith("-") or not all(c.isprintable() and not c.isspace() for c in host):
        raise DeployError(f"{text!r} is not a host name (it would reach ssh as an option or a command)")
    return host, int(port) if port else None


def read_hosts_file(path: Path, default_config: Path | None) -> list[Target]:
    """One unit per line, `HOST[:PORT] [CONFIG]`; `#` starts a comment. CONFIG is relative to the file."""
    try:
        lines = files.read_regular(path, HOSTS_BYTES, "a hosts file").decode(errors="replace").splitlines()
    except OSError as e:
        raise DeployError(f"cannot read hosts file {path}: {e.strerror}") from None
    except ValueError as e:
        raise DeployError(f"hosts file {path} is {e}") from None
    targets = []
    for number, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 1 and default_config is None):
            raise DeployError(f"{path} line {number}: expected `HOST[:PORT] CONFIG`, got {line.strip()!r}")
        cfg = path.parent / words[1] if len(words) == 2 else default_config
        targets.append(Target(*parse_host(words[0]), cfg))
    if not targets:
        raise DeployError(f"{path} lists no hosts")
    return targets


def check_locally(targets: list[Target]) -> dict[Path, bytes]:
    """Every config file read and validated, and no two units given one identity (they would evict each other)."""
    contents, identities = {}, {}
    for target in targets:
        if target.config not in contents:
            contents[target.config] = config.read_bytes(target.config)  # a FIFO or /dev/zero is refused at once
        cfg = config.parse(contents[target.config].decode(errors="replace"), str(target.config), check_files=False)
        unit = f"{cfg.unit.site}/{cfg.unit.checkpoint}/{cfg.unit.device}"
        if unit in identities and identities[unit] != target.name:
            raise DeployError(
                f"{identities[unit]} and {target.name} would both report as unit {unit}: give each unit its own "
                "config (hosts file lines `HOST CONFIG`)"
            )
        identities[unit] = target.name
    return contents


def read_key(path: Path) -> bytes:
    """The key or chain file to push, checked here as a secret and as a key (keychain.load) before any unit."""
    keychain.load(path)  # KeyFileError says what is wrong, for a person
    return path.read_bytes()


def _ssh(target: Target, options: Options, remote: list[str]) -> list[str]:
    command = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=10"]
    if options.ssh_config:
        command += ["-F", str(options.ssh_config)]
    if target.port:
        command += ["-p", str(target.port)]
    return [*command, "--", target.host, shlex.join(remote)]  # after --, nothing is an option


def deploy_one(target: Target, content: bytes, options: Options, out=sys.stdout, key: bytes | None = None) -> Outcome:
    remote = [*shlex.split(options.remote_command), "install-config", "--live", str(options.live)]
    remote += ["--sha256", hashlib.sha256(content).hexdigest(), "--size", str(len(content))]
    if key is not None:
        remote += ["--key-sha256", hashlib.sha256(key).hexdigest(), "--key-size", str(len(key))]
    remote += ["--reload", options.reload_command, "--timeout", str(options.timeout), "--as-user", options.unit_user]
    remote += ["--dry-run"] if options.dry_run else []
    try:
        ssh = subprocess.Popen(
            _ssh(target, options, remote), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError:
        raise DeployError("no `ssh` program on this computer: install openssh-client") from None

    def send() -> None:
        try:
            ssh.stdin.write(content + (key or b""))
            ssh.stdin.close()
        except OSError:
            pass  # the connection went; ssh's exit status and stderr say why

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    final, swapped = None, False
    for line in ssh.stdout:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "result" in message:
            final = message
        elif message.get("step") == "swapped":
            swapped = True
            print(f"{target.name}: new config {message['fingerprint']} is live, waiting for the daemon", file=out)
        elif message.get("step") == "rollback":
            print(f"{target.name}: rolling back: {message['message']}", file=out)
    stderr = ssh.stderr.read().decode(errors="replace").strip()
    code = ssh.wait()
    sender.join(timeout=5)
    if final is not None:
        return Outcome(
            target,
            final["result"],
            final.get("message", ""),
            final.get("fingerprint"),
            final.get("running"),
            final.get("diff", ""),
            final.get("key_id"),
        )
    said = stderr.splitlines()[-1] if stderr else "it gave no reason"
    if code == 255 and any(s in stderr for s in UNREACHABLE):
        return Outcome(target, "unreachable", said if said.startswith("ssh:") else f"ssh: {said}")
    if code == 255:
        return _after_lost_connection(target, options, content, said, swapped, key)
    if code == 127:
        said = f"{options.remote_command.split()[-1]} not found on the unit (--remote-command)"
    return Outcome(target, "failed", f"the unit gave no answer (exit {code}): {said}; nothing changed")


def _after_lost_connection(
    target: Target, options: Options, content: bytes, said: str, swapped: bool, key: bytes | None
) -> Outcome:
    """Reconnect and ask what the unit runs now; its side finishes a cut-off transaction before answering."""
    when = "after the swap" if swapped else "before the unit answered"
    remote = [*shlex.split(options.remote_command), "install-config", "--live", str(options.live), "--query"]
    try:
        asked = subprocess.run(
            _ssh(target, options, remote), capture_output=True, text=True, timeout=options.timeout * 3
        )
        answer = json.loads(asked.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        why = f"the connection was lost {when} (ssh: {said}) and the unit could not be asked what it runs now"
        return Outcome(target, "failed", why + ": check it with `traceon-edge status` on the unit")
    new, running, held = config.fingerprint_of(content), answer.get("running"), answer.get("key_id")
    key_in_place = key is None or held in pushed_key.accepted_ids(key.decode())
    if running == new and key_in_place and not options.dry_run:
        confirmed = f"confirmed after reconnecting (connection lost {when})"
        return Outcome(target, "applied", confirmed, new, running, key_id=held if key else None)
    why = f"the connection was lost {when} (ssh: {said}); the unit still runs config {running}"
    why += f" with key id {held}" if key is not None else ""
    return Outcome(target, "failed", why, new, running, key_id=held if key else None)


def summary(outcomes: list[Outcome], keys: bool = False) -> str:
    """A line per unit; with `keys` (a key was pushed), the key id each unit reports at the end."""
    width = max(len(o.target.name) for o in outcomes) + 2
    lines = [f"{'unit':<{width}}{'result':<13}{'config':<23}" + ("key id         " if keys else "") + "message"]
    for o in outcomes:
        live = o.result in GOOD or o.result == "unconfirmed"  # unconfirmed: the new file is in place
        shown = o.fingerprint if live else (f"{o.running} kept" if o.running else "-")
        key = ""
        if keys:
            key = "-" if o.key_id is None else o.key_id + ("" if live else " kept")
            key = f"{key:<15}"
        lines.append(f"{o.target.name:<{width}}{o.result:<13}{shown or '-':<23}{key}{o.message}")
    good = sum(o.result in GOOD for o in outcomes)
    lines.append(f"{good} of {len(outcomes)} unit(s) OK")
    return "\n".join(lines)


def run(targets: list[Target], options: Options, out=sys.stdout) -> int:
    contents = check_locally(targets)
    key = read_key(options.key_file) if options.key_file else None
    outcomes = []
    for target in targets:
        also = f" and {options.key_file}" if key is not None else ""
        print(f"{target.name}: sending {target.config}{also}", file=out, flush=True)
        outcome = deploy_one(target, contents[target.config], options, out, key)
        if outcome.diff and options.dry_run:
            print(outcome.diff, file=out)
        elif options.dry_run and outcome.result == "dry-run":
            print(f"{target.name}: no difference", file=out)
        outcomes.append(outcome)
    print(summary(outcomes, key is not None), file=out, flush=True)
    return 0 if all(o.result in GOOD for o in outcomes) else 1
