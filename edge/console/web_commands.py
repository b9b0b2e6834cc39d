"""`traceon-edge console`: serve the web app."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    pass
