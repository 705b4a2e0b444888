"""The list of CLI commands; each lives in its own module."""

from __future__ import annotations

import click

from prebuild.cli.build import build
from prebuild.cli.explain import explain
from prebuild.cli.gc import gc
from prebuild.cli.plan import plan
from prebuild.cli.pull import pull
from prebuild.cli.validate import validate

ALL: list[click.Command] = [validate, plan, explain, build, pull, gc]
