"""Every CLI command, loaded (for tests and docs); the CLI itself loads them lazily."""

from __future__ import annotations

import click

from prebuild.cli import COMMANDS, LazyGroup, cli

ALL: list[click.Command] = [
    command
    for name in COMMANDS
    if (command := LazyGroup.get_command(cli, click.Context(cli), name)) is not None
]
