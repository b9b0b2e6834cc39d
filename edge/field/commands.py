"""The field tools' commands: `status` and `install-config` on a unit, `deploy` and `watch` from a laptop."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.core import broker
from edge.core.errors import EX_CONFIG, ConfigError, DeployError, KeyFileError
from edge.field import deploy
from edge.field.deploy import DEFAULT_LIVE, DEFAULT_RELOAD, DEFAULT_REMOTE, DEFAULT_UNIT_USER


def register(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser(
        "status",
        help="what this unit is doing: ids, config, outbox, camera and broker",
        description="Report the "
        "unit's version, model and key ids, config fingerprint, outbox depth, last event, camera and broker state.",
    )
    status.add_argument("--config", type=Path, default=DEFAULT_LIVE, metavar="FILE")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    push = commands.add_parser(
        "deploy",
        help="push a config to units over ssh: validate, swap, reload, confirm, roll back on failure",
        description="Push CONFIG to each unit over the system's ssh (your ~/.ssh/config, keys and known_hosts; "
        "never a password prompt). Each unit validates it with its own version, swaps it in atomically "
        "(keeping the previous file), reloads the daemon and waits until its health reports the new config's "
        "fingerprint; if any of that fails it puts the previous config back. Exit 0 only if every unit is OK.",
    )
    push.add_argument("targets", nargs="*", metavar="HOST[:PORT] ... CONFIG", help="units, then the config file")
    push.add_argument("--hosts-file", type=Path, metavar="FILE", help="lines of `HOST[:PORT] [CONFIG]`")
    push.add_argument("--dry-run", action="store_true", help="show each unit's diff and validation, change nothing")
    push.add_argument("--ssh-config", type=Path, metavar="FILE", help="an ssh_config file instead of ~/.ssh/config")
    push.add_argument("--timeout", type=float, default=60.0, metavar="S", help="wait this long for the new health")
    push.add_argument("--live", type=Path, default=DEFAULT_LIVE, help="the config's path on the unit")
    push.add_argument("--remote-command", default=DEFAULT_REMOTE, metavar="CMD", help="traceon-edge on the unit")
    push.add_argument("--reload", default=DEFAULT_RELOAD, metavar="CMD", help="run on the unit")
    push.add_argument(
        "--unit-user",
        default=DEFAULT_UNIT_USER,
        metavar="NAME",
        help="the daemon's user on the unit: the new config is checked with its rights, not root's",
    )
    push.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="also push this key or key chain file (mode 0600) to where the config's facehash.key_file says: "
        "checked before the config, rolled back with it, confirmed by the key id in the unit's health",
    )
    push.set_defaults(handler=_deploy)

    watch = commands.add_parser(
        "watch",
        help="a live view of the units on a broker: state, health and events as they arrive",
        description="Live view of the units: redrawn once a second on a terminal, one line per change when "
        "piped. Ctrl-C to leave.",
    )
    broker.add_options(watch)
    watch.add_argument("--site", metavar="S", help="only this site's units")
    watch.set_defaults(handler=_watch)

    install = commands.add_parser(
        "install-config",
        help="the unit's side of `deploy` (reads the new config on stdin)",
        description="Used by `deploy` over ssh: read SIZE bytes of config on stdin, check SHA256, validate, swap "
        "atomically, reload, wait for the health fingerprint, roll back on failure. JSON lines on stdout.",
    )
    install.add_argument("--live", type=Path, required=True)
    install.add_argument("--sha256")
    install.add_argument("--size", type=int)
    install.add_argument("--query", action="store_true", help="only report the live config, after any deploy")
    install.add_argument("--reload", default=DEFAULT_RELOAD, metavar="CMD")
    install.add_argument("--timeout", type=float, default=60.0)
    install.add_argument("--dry-run", action="store_true")
    install.add_argument("--as-user", default=DEFAULT_UNIT_USER, metavar="NAME")
    install.add_argument("--key-sha256", help="a key file follows the config on stdin (deploy --key-file)")
    install.add_argument("--key-size", type=int)
    install.set_defaults(handler=_install_config)


def _status(args) -> int:
    import json

    from edge.field import status

    report = status.gather(args.config)
    print(json.dumps(report, indent=2) if args.json else status.render(report))
    return 0


def _deploy(args) -> int:
    if args.hosts_file:
        if len(args.targets) > 1:
            raise DeployError("with --hosts-file, give at most one CONFIG (the default for its lines)")
        targets = deploy.read_hosts_file(args.hosts_file, Path(args.targets[0]) if args.targets else None)
    elif len(args.targets) < 2:
        raise DeployError("give one or more units and then the config file: deploy HOST[:PORT] ... CONFIG")
    else:
        config_file = Path(args.targets[-1])
        targets = [deploy.Target(*deploy.parse_host(h), config_file) for h in args.targets[:-1]]
    options = deploy.Options(
        args.live,
        args.remote_command,
        args.reload,
        args.timeout,
        args.dry_run,
        args.ssh_config,
        args.unit_user,
        args.key_file,
    )
    try:
        return deploy.run(targets, options)
    except (ConfigError, KeyFileError) as e:
        print(f"traceon-edge: not deployed anywhere: {e}", file=sys.stderr)
        return EX_CONFIG


def _watch(args) -> int:
    from edge.field import watch

    return watch.watch(broker.from_options(args), args.site)


def _install_config(args) -> int:
    from edge.field import install_config

    return install_config.main(args)
