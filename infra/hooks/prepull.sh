#!/usr/bin/env bash
# Generic runner hook: make the prebuilt images available before the job's own scripts run.
#
#   infra/hooks/prepull.sh NAME[=LOCALNAME]...      (or PREBUILD_IMAGES="NAME[=LOCALNAME] ...")
#
# Prints `export ...` lines (PREBUILD_*_IMAGE, DOCKER_BUILD_CACHE_ARG, ...) on stdout, so a job
# can `eval "$(infra/hooks/prepull.sh ci-image)"`. Read-only: never pushes, never writes cache.
# Never fails the job: if even the fallback build fails, the job's own build still runs.
# prebuild comes from PATH or $PREBUILD; install it pinned to a tag or commit (there is no
# PyPI release named prebuild): python3 -m venv /opt/prebuild &&
#   /opt/prebuild/bin/pip install "git+https://github.com/OWNER/prebuild@v0.1.0"
set -uo pipefail
PREBUILD="${PREBUILD:-prebuild}"
status=0
for spec in "${@:-${PREBUILD_IMAGES:-}}"; do
  for item in $spec; do
    name="${item%%=*}"
    local_name="${item#*=}"
    $PREBUILD pull "$name" --tag-as "$local_name" --format shell \
      --fallback "${PREBUILD_PULL_FALLBACK:-build}" || status=$?
  done
done
if [ "$status" -ne 0 ]; then
  echo "prebuild: pre-pull did not produce every image (exit $status); the job builds it itself" >&2
fi
exit 0
