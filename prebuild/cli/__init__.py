"""Command-line entry point: a click group whose commands are thin wrappers over the core."""

from __future__ import annotations

import sys

import click

from prebuild import __version__
from prebuild.errors import PrebuildError

CONFIG_OPTION_HELP = (
    "Config file (default: ./prebuild.toml or [tool.prebuild] in pyproject.toml). "
    "Env: PREBUILD_CONFIG."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prebuild")
def cli() -> None:
    """Prebuild CI container images once, keyed by their content, and serve them to CI runners."""


def _register() -> None:
    from prebuild.cli import commands

    for command in commands.ALL:
        cli.add_command(command)


def main() -> None:
    """Run the CLI; user-facing errors print one located message and exit with their code."""
    _register()
    try:
        cli.main(standalone_mode=False)
    except PrebuildError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(2 if isinstance(error, click.UsageError) else error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
