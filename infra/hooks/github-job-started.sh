#!/usr/bin/env bash
# GitHub Actions self-hosted runner hook: set ACTIONS_RUNNER_HOOK_JOB_STARTED to this file in
# the runner's .env. It runs before the job's steps, so it fetches the job's commit into the
# workspace itself (shallow, anonymous: for private repositories set PREBUILD_GIT_AUTH_HEADER
# in the runner's environment, e.g. "Authorization: basic <base64 x-access-token:TOKEN>").
#
# Images come from PREBUILD_IMAGES ("NAME[=LOCALNAME] ..."), set in the runner's .env.
# Results go to $GITHUB_ENV / $GITHUB_STEP_SUMMARY. Never fails the job.
# prebuild comes from PATH or $PREBUILD; install it pinned to a tag or commit (there is no
# PyPI release named prebuild): python3 -m venv /opt/prebuild &&
#   /opt/prebuild/bin/pip install "git+https://github.com/OWNER/prebuild@v0.1.0"
set -uo pipefail
PREBUILD="${PREBUILD:-prebuild}"
workspace="${GITHUB_WORKSPACE:?GITHUB_WORKSPACE is set by the runner}"
if [ -z "${PREBUILD_IMAGES:-}" ]; then
  echo "prebuild: PREBUILD_IMAGES is empty; nothing to pre-pull" >&2
  exit 0
fi
if [ "$(git -C "$workspace" rev-parse HEAD 2>/dev/null)" != "${GITHUB_SHA:-}" ]; then
  url="${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-}"
  mkdir -p "$workspace"
  git -C "$workspace" init -q 2>/dev/null
  auth=()
  [ -n "${PREBUILD_GIT_AUTH_HEADER:-}" ] && auth=(-c "http.extraHeader=$PREBUILD_GIT_AUTH_HEADER")
  if ! git -C "$workspace" "${auth[@]}" fetch -q --depth=1 "$url" "${GITHUB_SHA:?}" \
      || ! git -C "$workspace" checkout -q --force FETCH_HEAD; then
    echo "prebuild: could not fetch $GITHUB_SHA; skipping the pre-pull" >&2
    exit 0
  fi
fi
cd "$workspace" || exit 0
for item in $PREBUILD_IMAGES; do
  $PREBUILD pull "${item%%=*}" --tag-as "${item#*=}" --format github \
    --fallback "${PREBUILD_PULL_FALLBACK:-build}" \
    || echo "prebuild: pre-pull of ${item%%=*} failed; the job builds it itself" >&2
done
exit 0
