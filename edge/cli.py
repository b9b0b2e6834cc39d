"""`traceon-edge`: the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge import __version__
from edge.core import broker
from edge.core.errors import TraceonError
from edge.core.facehash import load_key, write_key_file
from edge.field import deploy as deploy_defaults
from edge.unit.config import EX_CONFIG, ConfigError

UNIT_MODULES = {"cv2", "dlib", "ai_edge_litert", "tflite_runtime", "PIL", "gpiozero"}  # the `[unit]` extra


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _vision_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--working-width", type=_positive, default=640, help="detect on a copy this wide (px)")
    parser.add_argument("--upsample", type=int, choices=range(0, 4), default=0, help="HOG upsampling steps")
    parser.add_argument("--threads", type=_positive, default=1, help="interpreter threads per process")
    parser.add_argument("--detector", choices=["hog", "yunet", "hog+yunet"], default="hog+yunet",
                        help="face detector (default: HOG, then YuNet for what HOG missed)")  # fmt: skip


def _positive_number(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="traceon-edge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"traceon-edge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    embed = commands.add_parser(
        "embed",
        help="print faces and embeddings of image/video files as JSON lines (developers only)",
        description="One JSON line per face found in each image or video frame. A developer's tool: "
        "the daemon itself never writes embeddings anywhere.",
    )
    embed.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders (recursive)")
    embed.add_argument("--every", type=_positive, default=1, metavar="N", help="video: every Nth frame")
    embed.add_argument("--jobs", type=_positive, default=1, metavar="N", help="worker processes")
    embed.add_argument("--key-file", type=Path, metavar="KEY", help="add each face's FaceHash under this key")
    embed.add_argument(
        "--one-person",
        action="store_true",
        help="with --key-file: the photos show one person; print one FaceHash of their mean (a stronger trace query)",
    )
    embed.add_argument(
        "--raw-embeddings", action="store_true", help="with --key-file, print the embeddings too (otherwise left out)"
    )
    _vision_options(embed)

    keygen = commands.add_parser(
        "keygen",
        help="write a new random FaceHash key (mode 0600; never overwrites)",
        description="Write a new random FaceHash key. Every unit of a deployment needs the same key to link "
        "sightings; a new key makes all earlier FaceHashes unlinkable to new ones (revocation).",
    )
    keygen.add_argument("path", type=Path, metavar="PATH")

    run = commands.add_parser("run", help="run the checkpoint daemon", description="Run the checkpoint daemon.")
    run.add_argument("--config", type=Path, required=True, metavar="FILE", help="YAML configuration")
    run.add_argument("--print-events", action="store_true", help="print each event as JSON once the broker has it")

    check = commands.add_parser(
        "check-config",
        help="validate a configuration file without starting anything",
        description="Validate a "
        "configuration file (including its key and TLS files) without starting anything. Exit 78 if invalid.",
    )
    check.add_argument("config", type=Path, metavar="FILE", help="the config file, or - for standard input")
    check.add_argument("--relative-to", type=Path, metavar="DIR", help="with -: the folder relative paths start in")

    status = commands.add_parser(
        "status",
        help="what this unit is doing: ids, config, outbox, camera and broker",
        description="Report the "
        "unit's version, model and key ids, config fingerprint, outbox depth, last event, camera and broker state.",
    )
    status.add_argument("--config", type=Path, default=Path("/etc/traceon-edge/config.yaml"), metavar="FILE")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    deploy = commands.add_parser(
        "deploy",
        help="push a config to units over ssh: validate, swap, reload, confirm, roll back on failure",
        description="Push CONFIG to each unit over the system's ssh (your ~/.ssh/config, keys and known_hosts; "
        "never a password prompt). Each unit validates it with its own version, swaps it in atomically "
        "(keeping the previous file), reloads the daemon and waits until its health reports the new config's "
        "fingerprint; if any of that fails it puts the previous config back. Exit 0 only if every unit is OK.",
    )
    deploy.add_argument("targets", nargs="*", metavar="HOST[:PORT] ... CONFIG", help="units, then the config file")
    deploy.add_argument("--hosts-file", type=Path, metavar="FILE", help="lines of `HOST[:PORT] [CONFIG]`")
    deploy.add_argument("--dry-run", action="store_true", help="show each unit's diff and validation, change nothing")
    deploy.add_argument("--ssh-config", type=Path, metavar="FILE", help="an ssh_config file instead of ~/.ssh/config")
    deploy.add_argument("--timeout", type=float, default=60.0, metavar="S", help="wait this long for the new health")
    deploy.add_argument("--live", type=Path, default=deploy_defaults.DEFAULT_LIVE, help="the config's path on the unit")
    deploy.add_argument(
        "--remote-command", default=deploy_defaults.DEFAULT_REMOTE, metavar="CMD", help="traceon-edge on the unit"
    )
    deploy.add_argument("--reload", default=deploy_defaults.DEFAULT_RELOAD, metavar="CMD", help="run on the unit")
    deploy.add_argument(
        "--unit-user",
        default=deploy_defaults.DEFAULT_UNIT_USER,
        metavar="NAME",
        help="the daemon's user on the unit: the new config is checked with its rights, not root's",
    )

    watch = commands.add_parser(
        "watch",
        help="a live view of the units on a broker: state, health and events as they arrive",
        description="Live view of the units: redrawn once a second on a terminal, one line per change when "
        "piped. Ctrl-C to leave.",
    )
    broker.add_options(watch)
    watch.add_argument("--site", metavar="S", help="only this site's units")

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
    install.add_argument("--reload", default=deploy_defaults.DEFAULT_RELOAD, metavar="CMD")
    install.add_argument("--timeout", type=float, default=60.0)
    install.add_argument("--dry-run", action="store_true")
    install.add_argument("--as-user", default=deploy_defaults.DEFAULT_UNIT_USER, metavar="NAME")

    collect = commands.add_parser(
        "collect",
        help="store the units' events, losing none (contact tracers)",
        description="Subscribe to the units' events and store them once per event id. The collector keeps a "
        "persistent session at the broker under a fixed client id, so events published while it is down wait "
        "there, and acknowledges each event only after it is stored. Every message that is not a valid event "
        "is refused with one counted line.",
    )
    broker.add_options(collect)
    collect.add_argument("--db", required=True, metavar="URL", help="a SQLite file, sqlite:///path or postgresql://…")
    collect.add_argument("--share", metavar="GROUP", help="join an MQTT 5 shared subscription group")
    collect.add_argument(
        "--client-id", metavar="ID", help="this collector's fixed identity (default traceon-collect-<host>[-<GROUP>])"
    )
    collect.add_argument("--session-expiry", default="7d", metavar="SPAN", help="how long the broker keeps events "
                         "for this collector while it is away (default 7d)")  # fmt: skip
    collect.add_argument("--retention", default="21d", metavar="SPAN", help="delete events older than this "
                         "(default 21d: a tracing window of 14 days plus a week to act on it)")  # fmt: skip

    trace = commands.add_parser(
        "trace",
        help="every sighting of one person and who was there at the time",
        description="Sightings of a person (rows within the Hamming distance that keeps the expected false "
        "sightings over the rows searched within --max-false), ranked by distance, and each other person seen "
        "at the same checkpoint within the stride, one line per contact per visit.",
    )
    trace.add_argument("facehash", nargs="+", metavar="FACEHASH", help="one, or several of the same person")
    trace.add_argument("--db", required=True, metavar="URL", help="as for collect")
    trace.add_argument("--stride", default="30m", help="co-presence window before and after (e.g. 30m)")
    trace.add_argument("--since", default="14d", help="how far back to look (e.g. 14d)")
    trace.add_argument(
        "--max-false", type=_positive_number, default=1.0, metavar="N",
        help="expected false sightings over the rows searched (default 1)",
    )  # fmt: skip
    trace.add_argument("--far", type=_positive_number, metavar="RATE", help="false-accept rate per row instead")
    trace.add_argument(
        "--query-photos", type=int, choices=range(1, 5), default=1, metavar="N",
        help="the FaceHash was made from N photos (embed --one-person); 1 to 4",
    )  # fmt: skip
    trace.add_argument("--format", choices=("table", "csv", "json", "html"), default="table")
    trace.add_argument("--output", metavar="FILE", help="write the report here (e.g. trace.html)")

    upgrade = commands.add_parser(
        "upgrade-db",
        help="bring a sightings database written by an older traceon-edge to this version's format",
        description="Upgrade a sightings database in place, in one transaction. Old events are checked as new "
        "ones are; those that fail are skipped and counted.",
    )
    upgrade.add_argument("--db", required=True, metavar="URL")
    return parser


def _deploy(args) -> int:
    from edge.field import deploy
    from edge.unit import config

    if args.hosts_file:
        if len(args.targets) > 1:
            raise deploy.DeployError("with --hosts-file, give at most one CONFIG (the default for its lines)")
        targets = deploy.read_hosts_file(args.hosts_file, Path(args.targets[0]) if args.targets else None)
    elif len(args.targets) < 2:
        raise deploy.DeployError("give one or more units and then the config file: deploy HOST[:PORT] ... CONFIG")
    else:
        config_file = Path(args.targets[-1])
        targets = [deploy.Target(*deploy.parse_host(h), config_file) for h in args.targets[:-1]]
    options = deploy.Options(
        args.live, args.remote_command, args.reload, args.timeout, args.dry_run, args.ssh_config, args.unit_user
    )
    try:
        return deploy.run(targets, options)
    except config.ConfigError as e:
        print(f"traceon-edge: not deployed anywhere: {e}", file=sys.stderr)
        return config.EX_CONFIG


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "embed":
            from edge.unit import embed_files
            from edge.unit.vision import VisionSettings

            settings = VisionSettings(args.working_width, args.upsample, args.threads, args.detector)
            key = load_key(args.key_file) if args.key_file else None
            if args.one_person:
                if key is None:
                    raise ConfigError("--one-person makes a FaceHash: give the deployment's key with --key-file")
                return embed_files.one_person(args.paths, settings, key)
            return embed_files.run(
                args.paths, settings, args.every, args.jobs, key=key, raw_embeddings=args.raw_embeddings
            )
        if args.command in ("collect", "trace", "upgrade-db"):
            from edge.tracer import commands

            return {"collect": commands.collect, "trace": commands.trace, "upgrade-db": commands.upgrade_db}[
                args.command
            ](args)
        if args.command == "deploy":
            return _deploy(args)
        if args.command == "watch":
            from edge.field import watch

            return watch.watch(broker.settings(args), args.site)
        if args.command == "install-config":
            from edge.field import install_config

            return install_config.main(args)
        if args.command == "status":
            import json

            from edge.field import status
            from edge.unit import config

            try:
                report = status.collect(args.config)
            except config.ConfigError as e:
                print(f"traceon-edge: {e}", file=sys.stderr)
                return config.EX_CONFIG
            print(json.dumps(report, indent=2) if args.json else status.render(report))
            return 0
        if args.command in ("run", "check-config"):
            from edge.unit import config

            path = args.config
            if args.command == "check-config" and str(path) == "-":  # install-config, as the service user
                content = sys.stdin.buffer.read(config.MAX_BYTES + 1)
                try:
                    config.parse(content.decode(errors="replace"), "the new config", base=args.relative_to)
                except config.ConfigError as e:
                    print(f"traceon-edge: {e}", file=sys.stderr)
                    return config.EX_CONFIG
                print(f"the new config: valid (fingerprint {config.fingerprint_of(content)})")
                return 0
            try:
                config.load(path)
            except config.ConfigError as e:
                print(f"traceon-edge: {e}", file=sys.stderr)
                return config.EX_CONFIG
            if args.command == "check-config":
                print(f"{path}: valid (fingerprint {config.fingerprint(path)})")
                return 0
            from edge.unit import daemon

            return daemon.run(path, print_events=args.print_events)
        if args.command == "keygen":
            key = write_key_file(args.path)
            print(f"wrote a new FaceHash key to {args.path} (mode 0600, key id {key.id})")
            return 0
    except ModuleNotFoundError as e:
        if e.name not in UNIT_MODULES:
            raise
        print(
            f"traceon-edge: `{args.command}` runs on a unit and needs its vision parts ({e.name} is missing); "
            "install them with: pip install 'traceon-edge[unit]'",
            file=sys.stderr,
        )
        return 1
    except ConfigError as e:
        print(f"traceon-edge: {e}", file=sys.stderr)
        return EX_CONFIG
    except TraceonError as e:
        print(f"traceon-edge: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
