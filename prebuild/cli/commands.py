"""The list of CLI commands; each lives in its own module."""

from __future__ import annotations

import click

from prebuild.cli.validate import validate

ALL: list[click.Command] = []
ALL.append(validate)
