#!/usr/bin/env bash
# GitLab Runner `pre_build_script` hook (runs after the checkout, before the job script).
# In the runner's config.toml:
#
#   [[runners]]
#     environment = ["PREBUILD_IMAGES=ci-image=ci/app"]
#     pre_build_script = "bash infra/hooks/gitlab-pre-build.sh"
#
# Writes the variables to prebuild.env (for `source prebuild.env` in the job script) and never
# fails the job. Merge-request pipelines are read-only anyway: pull never pushes.
# prebuild comes from PATH or $PREBUILD; install it pinned to a tag or commit (there is no
# PyPI release named prebuild): python3 -m venv /opt/prebuild &&
#   /opt/prebuild/bin/pip install "git+https://github.com/OWNER/prebuild@v0.1.0"
set -uo pipefail
PREBUILD="${PREBUILD:-prebuild}"
out="${PREBUILD_ENV_FILE:-prebuild.env}"
: > "$out"
for item in ${PREBUILD_IMAGES:-}; do
  $PREBUILD pull "${item%%=*}" --tag-as "${item#*=}" --format shell \
    --fallback "${PREBUILD_PULL_FALLBACK:-build}" >> "$out" \
    || echo "prebuild: pre-pull of ${item%%=*} failed; the job builds it itself" >&2
done
exit 0
