"""Command-line entry point: a click group whose commands are thin wrappers over the core.

Commands are imported only when invoked: the runner hook (`prebuild pull`) sits on every CI
job's critical path, so it must not pay for importing the build, gc or S3 machinery.
"""

from __future__ import annotations

import importlib
import sys

import click

from prebuild import __version__, deadline
from prebuild.errors import PrebuildError

CONFIG_OPTION_HELP = (
    "Config file (default: ./prebuild.toml or [tool.prebuild] in pyproject.toml). "
    "Env: PREBUILD_CONFIG."
)

COMMANDS = {
    "validate": "prebuild.cli.validate:validate",
    "plan": "prebuild.cli.plan:plan",
    "explain": "prebuild.cli.explain:explain",
    "build": "prebuild.cli.build:build",
    "pull": "prebuild.cli.pull:pull",
    "merge": "prebuild.cli.merge:merge",
    "gc": "prebuild.cli.gc:gc",
    "report": "prebuild.cli.report:report",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prebuild")
def cli() -> None:
    """Prebuild CI container images once, keyed by their content, and serve them to CI runners."""


def main() -> None:
    """Run the CLI; user-facing errors print one located message and exit with their code."""
    from prebuild.cli import signals

    try:
        with deadline.command_started(), signals.installed():
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
