from __future__ import annotations

import pytest

from prebuild.errors import UsageError
from prebuild.trust import require_trusted, untrusted_reason


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"GITHUB_EVENT_NAME": "pull_request"}, "GitHub Actions event 'pull_request'"),
        (
            {"GITHUB_EVENT_NAME": "pull_request_target"},
            "GitHub Actions event 'pull_request_target'",
        ),
        ({"CI_PIPELINE_SOURCE": "merge_request_event"}, "GitLab merge request pipeline"),
        ({"CI_MERGE_REQUEST_IID": "7"}, "GitLab merge request pipeline"),
        ({"PREBUILD_UNTRUSTED": "1"}, "PREBUILD_UNTRUSTED is set"),
    ],
)
def test_pull_request_contexts_are_untrusted(env: dict[str, str], why: str) -> None:
    assert untrusted_reason(env) == why
    with pytest.raises(UsageError, match="refusing to push") as error:
        require_trusted(allow_untrusted=False, env=env)
    assert error.value.exit_code == 2
    require_trusted(allow_untrusted=True, env=env)  # the explicit override


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"GITHUB_EVENT_NAME": "schedule"},
        {"GITHUB_EVENT_NAME": "push"},
        {"CI_PIPELINE_SOURCE": "schedule"},
    ],
)
def test_scheduled_and_push_runs_are_trusted(env: dict[str, str]) -> None:
    assert untrusted_reason(env) is None
    require_trusted(allow_untrusted=False, env=env)
