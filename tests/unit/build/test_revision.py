from __future__ import annotations

import subprocess

from prebuild.build import revision as git


def test_source_url_drops_embedded_credentials(tmp_path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "remote",
            "add",
            "origin",
            "https://x-token:s3cr3t@example.com/o/r.git",
        ],
        check=True,
    )
    assert git.source_url(tmp_path) == "https://example.com/o/r.git"


def test_no_repository_gives_none(tmp_path) -> None:
    assert git.revision(tmp_path) is None and git.source_url(tmp_path) is None
