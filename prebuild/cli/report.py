"""`prebuild report --html FILE`: the last nightly and the trends of the kept history."""

from __future__ import annotations

from pathlib import Path

import click

from prebuild.cli.options import config_option
from prebuild.config.load import load_project
from prebuild.errors import PrebuildError


@click.command("report")
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Write the self-contained HTML page here.",
)
@config_option
def report(html_file: Path, config: Path | None) -> None:
    """Render the report history (where the config keeps it) as one HTML page."""
    from prebuild.report import history
    from prebuild.report.html import render

    project = load_project(config)
    store = history.open_store(project)
    docs = history.load_all(store)
    if not docs:
        raise PrebuildError(
            f"no reports in the history at {store.where}",
            hint="`prebuild build` records one per run of the whole image set",
        )
    html_file.write_text(render(docs, where=store.where))
    click.echo(f"{html_file}: last run {docs[-1].get('started')}, {len(docs)} runs")
