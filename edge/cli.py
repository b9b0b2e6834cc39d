"""`traceon-edge`: the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge import __version__
from edge.errors import TraceonError


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _vision_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--working-width", type=_positive, default=640, help="detect on a copy this wide (px)"
    )
    parser.add_argument("--upsample", type=int, choices=range(0, 4), default=0, help="HOG upsampling steps")
    parser.add_argument("--threads", type=_positive, default=1, help="interpreter threads per process")


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
    _vision_options(embed)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "embed":
            from edge.commands import embed
            from edge.vision import VisionSettings

            settings = VisionSettings(args.working_width, args.upsample, args.threads)
            return embed.run(args.paths, settings, args.every, args.jobs)
    except TraceonError as e:
        print(f"traceon-edge: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
