"""`traceon-edge console`, `users` and `audit`: the operators' commands on the tracer's server.

Registering them imports only the parsers' needs (every `traceon-edge` process builds this parser); the web
stack, argon2 and the store load only when one of these commands runs.
"""

from __future__ import annotations

import argparse

from edge.console import account_commands, web_commands


def register(commands: argparse._SubParsersAction) -> None:
    web_commands.register(commands)
    account_commands.register(commands)
