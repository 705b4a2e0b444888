"""The documented install line, from a clean virtualenv: `pip install "git+URL@PIN"`.

The recipes point at https://github.com/OWNER/prebuild (a placeholder owner); here the same
line form is run against a clone of this repository (`git+file://CLONE@COMMIT`), in a new
virtualenv, with pip's configured index for the dependencies. The installed CLI then plans a
small project offline.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.integration.conftest import write

LINE = re.compile(r'pip install "(?P<url>git\+https://github\.com/OWNER/prebuild@[\w.\-]+)"')


def test_the_documented_install_line_works_in_a_clean_virtualenv(tmp_path: Path) -> None:
    documented = LINE.search((REPO_ROOT / "README.md").read_text())
    assert documented, "README.md has no documented install line"
    commit = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(REPO_ROOT), str(clone)], check=True)
    url = documented["url"].replace("https://github.com/OWNER/prebuild", f"file://{clone}")
    url = url.rsplit("@", 1)[0] + f"@{commit}"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", url],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]

    project = tmp_path / "project"
    write(project / "ci" / "Dockerfile", "FROM 127.0.0.1:5000/base:1\nCOPY f /f\n")
    write(project / "ci" / "f", "x\n")
    write(
        project / "prebuild.toml",
        'registry = "127.0.0.1:5000/p"\n[[image]]\nname = "ci"\ncontext = "ci"\n',
    )
    installed = venv / "bin" / "prebuild"
    version = subprocess.run([str(installed), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "prebuild" in version.stdout
    plan = subprocess.run(
        [str(installed), "plan", "--offline", "--json"], cwd=project, capture_output=True,
        text=True,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert '"name": "ci"' in plan.stdout
