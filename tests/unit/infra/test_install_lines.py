"""The CI recipes install prebuild the way a user can: from its repository, pinned.

No release named prebuild exists on PyPI, so a bare `pip install prebuild` would fail (or one
day install someone else's package). Every recipe that installs prebuild must use the
documented form; tests/integration/test_install.py shows that form installs a working CLI.
"""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

RECIPES = [
    *sorted((REPO_ROOT / "infra" / "schedules").iterdir()),
    *sorted((REPO_ROOT / "infra" / "hooks").iterdir()),
    REPO_ROOT / "README.md",
]
DOCUMENTED = re.compile(r"git\+https://github\.com/OWNER/prebuild@(?P<pin>[\w.\-]+)")
BARE = re.compile(r"(?:pip|pipx|uv pip|uv tool) install +(?:-\S+ +)*[\"']?prebuild\b(?![\w@+/-])")


def test_no_recipe_installs_a_package_named_prebuild_from_an_index() -> None:
    for path in RECIPES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("#") or "`pip install prebuild`" in line:
                continue  # the comments and docs that warn against it
            assert not BARE.search(line), f"{path.name}:{number}: {line.strip()}"


def test_recipes_that_install_use_the_pinned_repository_form() -> None:
    installing = [p for p in RECIPES if "pip install" in p.read_text()]
    assert {p.name for p in installing} >= {"github-actions.yml", "gitlab-ci.yml", "README.md"}
    for path in installing:
        pins = [m["pin"] for m in DOCUMENTED.finditer(path.read_text())]
        assert pins, f"{path.name} installs prebuild without the pinned repository form"
        assert all(pin not in ("main", "master", "HEAD") for pin in pins), path.name
