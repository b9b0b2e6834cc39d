"""`traceon-edge users` and `traceon-edge audit`: accounts and the audit log, on the server."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    pass
