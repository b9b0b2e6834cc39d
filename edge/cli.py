"""`traceon-edge`: the command line.

Each role registers its own commands (edge/<role>/commands.py: a parser and a handler each). This module
only builds the root parser, dispatches once, and turns an error raised on purpose into its message and
its exit code.
"""

from __future__ import annotations

import argparse
import sys

from edge import __version__
from edge.console import commands as console_commands
from edge.core.errors import EX_INTERRUPTED, TraceonError
from edge.field import commands as field_commands
from edge.tracer import commands as tracer_commands
from edge.unit import commands as unit_commands

ROLES = (unit_commands, field_commands, tracer_commands, console_commands)  # the order `--help` lists their commands in


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="traceon-edge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"traceon-edge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for role in ROLES:
        role.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except TraceonError as e:
        print(f"traceon-edge: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return EX_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
