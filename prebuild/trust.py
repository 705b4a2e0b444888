"""Is this run allowed to write to the registry? Pull-request pipelines are not.

Untrusted code (a fork's pull request) must never push images or cache that trusted runs
later consume. Detection is by the CI's own variables; `PREBUILD_UNTRUSTED=1` forces it on
anywhere, and the explicit `--allow-untrusted` flag is the only way past it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from prebuild.errors import UsageError

UNTRUSTED_GITHUB_EVENTS = {"pull_request", "pull_request_target", "pull_request_review"}


def untrusted_reason(env: Mapping[str, str] | None = None) -> str | None:
    """Why this environment looks untrusted, or None."""
    env = os.environ if env is None else env
    if env.get("PREBUILD_UNTRUSTED", "").lower() in ("1", "true", "yes"):
        return "PREBUILD_UNTRUSTED is set"
    event = env.get("GITHUB_EVENT_NAME", "")
    if event in UNTRUSTED_GITHUB_EVENTS:
        return f"GitHub Actions event '{event}'"
    if env.get("CI_PIPELINE_SOURCE") == "merge_request_event" or env.get("CI_MERGE_REQUEST_IID"):
        return "GitLab merge request pipeline"
    if env.get("BUILDKITE_PULL_REQUEST", "false") not in ("", "false"):
        return "Buildkite pull request build"
    return None


def require_trusted(
    *,
    allow_untrusted: bool,
    env: Mapping[str, str] | None = None,
    action: str = "push images or export cache",
) -> None:
    reason = untrusted_reason(env)
    if reason and not allow_untrusted:
        raise UsageError(
            f"refusing to {action} from an untrusted run ({reason})",
            hint="runners should use `prebuild pull` (read-only); pass --allow-untrusted only "
            "if this pipeline cannot run code from outside contributors",
        )
