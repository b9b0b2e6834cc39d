"""The unit's commands: `run` the daemon, `check-config`, `keygen`, and the developer's `embed`.

Registering them imports nothing heavy: a tracer's host without the unit's vision parts still lists
them, and says what to install if one is run there.
"""

from __future__ import annotations

import argparse
import functools
import sys
import typing
from pathlib import Path

from edge.core.errors import EX_FAILED, ConfigError
from edge.core.options import positive_int
from edge.unit.config import MAX_BYTES, FaceHashConfig, VisionConfig, fingerprint, fingerprint_of, load, parse

VISION = VisionConfig.model_fields  # the unit's own defaults, so `embed` sees faces as a unit does
SCHEME = FaceHashConfig.model_fields["scheme"]  # and hashes them as a unit does


def needs_vision(handler):
    """A unit command run where the `[unit]` extra is missing: say what to install, not a traceback."""

    @functools.wraps(handler)
    def run(args) -> int:
        try:
            return handler(args)
        except ModuleNotFoundError as e:
            if (e.name or "").partition(".")[0] == "edge":
                raise
            print(
                f"traceon-edge: `{args.command}` runs on a unit and needs its vision parts ({e.name} is missing); "
                "install them with: pip install 'traceon-edge[unit]'",
                file=sys.stderr,
            )
            return EX_FAILED

    return run


def register(commands: argparse._SubParsersAction) -> None:
    embed = commands.add_parser(
        "embed",
        help="print faces and embeddings of image/video files as JSON lines (developers only)",
        description="One JSON line per face found in each image or video frame. A developer's tool: "
        "the daemon itself never writes embeddings anywhere.",
    )
    embed.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders (recursive)")
    embed.add_argument("--every", type=positive_int, default=1, metavar="N", help="video: every Nth frame")
    embed.add_argument("--jobs", type=positive_int, default=1, metavar="N", help="worker processes")
    embed.add_argument("--key-file", type=Path, metavar="KEY", help="add each face's FaceHash under this key")
    embed.add_argument(
        "--key-chain",
        type=Path,
        metavar="FILE",
        help="with --one-person: the tracer's key chain; print the person's FaceHash for every epoch of --since",
    )
    embed.add_argument(
        "--since",
        default="14d",
        metavar="SPAN",
        help="with --key-chain: the trace's window, back from now (default 14d)",
    )
    embed.add_argument(
        "--one-person",
        action="store_true",
        help="with --key-file: the photos show one person; print one FaceHash of their mean (a stronger trace query)",
    )
    embed.add_argument(
        "--scheme",
        choices=typing.get_args(SCHEME.annotation),
        default=SCHEME.default,
        help="with --key-file: the FaceHash scheme, as the units publish it (facehash.scheme; default fh2)",
    )
    embed.add_argument(
        "--raw-embeddings", action="store_true", help="with --key-file, print the embeddings too (otherwise left out)"
    )
    _vision_options(embed)
    embed.set_defaults(handler=needs_vision(_embed))

    keygen = commands.add_parser(
        "keygen",
        help="write a new random FaceHash key or key chain (mode 0600; never overwrites)",
        description="Write a new random FaceHash key. Every unit of a deployment needs the same key to link "
        "sightings; a new key makes all earlier FaceHashes unlinkable to new ones (revocation). With --epoch, "
        "a key chain: its key moves forward by itself each epoch (UTC days or weeks) and the old one is "
        "overwritten, so a stolen unit cannot test the past.",
    )
    keygen.add_argument("path", type=Path, metavar="PATH")
    keygen.add_argument(
        "--epoch",
        choices=["1d", "7d"],
        help="write a key chain whose key moves forward every day (1d) or every week from Monday (7d), UTC",
    )
    keygen.set_defaults(handler=_keygen)

    run = commands.add_parser("run", help="run the checkpoint daemon", description="Run the checkpoint daemon.")
    run.add_argument("--config", type=Path, required=True, metavar="FILE", help="YAML configuration")
    run.add_argument("--print-events", action="store_true", help="print each event as JSON once the broker has it")
    run.set_defaults(handler=needs_vision(_run))

    check = commands.add_parser(
        "check-config",
        help="validate a configuration file without starting anything",
        description="Validate a "
        "configuration file (including its key and TLS files) without starting anything. Exit 78 if invalid.",
    )
    check.add_argument("config", type=Path, metavar="FILE", help="the config file, or - for standard input")
    check.add_argument("--relative-to", type=Path, metavar="DIR", help="with -: the folder relative paths start in")
    check.set_defaults(handler=_check_config)


def _vision_options(parser: argparse.ArgumentParser) -> None:
    width = VISION["working_width"].default
    parser.add_argument("--working-width", type=positive_int, default=width, help="detect on a copy this wide (px)")
    parser.add_argument(
        "--upsample", type=int, choices=range(0, 4), default=VISION["upsample"].default, help="HOG upsampling steps"
    )
    # one thread per process: `--jobs` runs several processes (the unit's own default is vision.threads)
    parser.add_argument("--threads", type=positive_int, default=1, help="interpreter threads per process")
    parser.add_argument(
        "--detector",
        choices=["hog", "yunet", "hog+yunet"],
        default=VISION["detector"].default.kind,
        help="face detector (default: HOG, then YuNet for what HOG missed)",
    )


def _embed(args) -> int:
    from edge.core.facehash import load_key
    from edge.unit import embed_files
    from edge.unit.vision import VisionSettings

    settings = VisionSettings(args.working_width, args.upsample, args.threads, args.detector)
    if args.key_chain is not None:
        return _embed_epochs(args, settings)
    key = load_key(args.key_file) if args.key_file else None
    if args.one_person:
        if key is None:
            raise ConfigError("--one-person makes a FaceHash: give the deployment's key with --key-file")
        return embed_files.one_person(args.paths, settings, key, scheme=args.scheme)
    raw = args.raw_embeddings
    return embed_files.run(args.paths, settings, args.every, args.jobs, key=key, raw_embeddings=raw, scheme=args.scheme)


def _embed_epochs(args, settings) -> int:
    """`embed --key-chain C --one-person PHOTO…`: the person's FaceHash for every epoch the chain can still make."""
    from edge.core import keychain
    from edge.core.errors import SpanError
    from edge.core.spans import parse_span
    from edge.unit import embed_files

    if args.key_file is not None:
        raise ConfigError("--key-file and --key-chain: give one of them")
    if not args.one_person:
        raise ConfigError("--key-chain goes with --one-person: it makes one person's FaceHash for each epoch")
    try:
        since = parse_span(args.since)
    except SpanError as e:
        raise ConfigError(f"--since: {e}") from None
    chain = keychain.load(args.key_chain)
    return embed_files.one_person_epochs(
        args.paths, settings, chain, args.since, since.total_seconds(), scheme=args.scheme
    )


def _keygen(args) -> int:
    import time

    from edge.core import keychain
    from edge.core.facehash import write_key_file

    if args.epoch is None:
        key = write_key_file(args.path)
        print(f"wrote a new FaceHash key to {args.path} (mode 0600, key id {key.id})")
        return 0
    chain = keychain.write_new(args.path, args.epoch, time.time())
    print(
        f"wrote a new FaceHash key chain to {args.path} (mode 0600, epochs of {args.epoch}): it holds the key of "
        f"{chain.name()}, key id {chain.key.id}.\n"
        "Copy this very file now, before its epoch ends, to every unit and to the tracer (each keeps its own copy): "
        "once a copy has moved forward the earlier keys cannot be made from it, and a chain made again is another "
        "chain that links nothing to this one."
    )
    return 0


def _check_config(args) -> int:
    path = args.config
    if str(path) == "-":  # install-config, as the service user
        content = sys.stdin.buffer.read(MAX_BYTES + 1)
        parse(content.decode(errors="replace"), "the new config", base=args.relative_to)
        print(f"the new config: valid (fingerprint {fingerprint_of(content)})")
        return 0
    load(path)
    print(f"{path}: valid (fingerprint {fingerprint(path)})")
    return 0


def _run(args) -> int:
    load(args.config)  # a bad config is said before the models load
    from edge.unit import daemon

    return daemon.run(args.config, print_events=args.print_events)
