"""The implementations behind `traceon-edge <command>`; edge/cli.py parses arguments only."""
