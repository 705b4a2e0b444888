"""The runner side on the real stack: `prebuild pull`, the CI hooks, `plan --matrix`, trust.

A "nightly" `prebuild build` pushes a small image; a "runner" with a wiped engine then gets it
by its content key, falls back to a read-only build from the registry cache when the key is
absent or the registry is down, and never writes to the registry.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from prebuild.engine import progress
from prebuild.engine.platforms import host_platform
from tests.conftest import REPO_ROOT
from tests.integration.conftest import Stack, wipe_engine, write

PREBUILD = Path(sys.executable).with_name("prebuild")  # the CLI of the venv running the tests
HOOKS = REPO_ROOT / "infra" / "hooks"
NAME = "ci"
UNREACHABLE = "127.0.0.1:9"  # the discard port: nothing listens, connections are refused
SEED_BASE = "127.0.0.1:35000/seed/busybox:stable"  # what the root prebuild.toml hard-codes
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
# The steps in DOCKERFILE order; a change to app.txt leaves the first three cacheable.
DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN echo "step one: prepare" && mkdir -p /opt/ci && echo one > /opt/ci/one
COPY tools.txt /opt/ci/tools.txt
RUN echo "step two: tools" && cat /opt/ci/tools.txt > /opt/ci/two
COPY app.txt /opt/ci/app.txt
RUN echo "step three: app" && cat /opt/ci/app.txt | tee /opt/ci/three
"""
STEPS = ["RUN", "COPY", "RUN", "COPY", "RUN"]
HOOK_MISS = "the job builds it itself"  # what every hook says when the image is not there


@dataclass(frozen=True)
class Prebuilt:
    """A repository whose image the "nightly" build pushed: REGISTRY/ci:TAG exists."""

    repo: Path
    registry: str
    key: str
    ref: str

    @property
    def repository(self) -> str:
        return f"{self.registry}/{NAME}"


def cli_env(stack: Stack, **extra: str) -> dict[str, str]:
    """The stack's environment without anything a CI runner or the caller's shell may have
    set (a pull-request event, PREBUILD_REGISTRY, PREBUILD_PULL_TIMEOUT...), plus `extra`."""
    env = stack.run_env()
    leaky = ("PREBUILD_", "GITHUB_", "CI_", "GITLAB_", "BUILDKITE_")
    for name in list(env):
        if name.startswith(leaky) and name not in stack.env:
            del env[name]
    return {**env, **extra}


def run_prebuild(
    args: Sequence[str], *, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PREBUILD), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def pull_json(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    return json.loads(lines[0])


def make_repo(root: Path, *, registry: str, base: str) -> Path:
    write(
        root / "prebuild.toml",
        f'registry = "{registry}"\n\n[defaults]\nbuild_args = {{ BASE_IMAGE = "{base}" }}\n\n'
        f'[[image]]\nname = "{NAME}"\ncontext = "image"\n',
    )
    write(root / "image" / "Dockerfile", DOCKERFILE)
    write(root / "image" / "tools.txt", "tools v1\n")
    write(root / "image" / "app.txt", "app v1\n")
    write(root / "image" / "notes.md", "not matched by any COPY: not part of the key\n")
    return root


def copy_repo(prebuilt: Prebuilt, dest: Path) -> Path:
    shutil.copytree(prebuilt.repo, dest)
    return dest


def git_commit(repo: Path) -> str:
    """Make `repo` a git repository with everything committed; returns HEAD."""
    git = ["git", "-C", str(repo), "-c", "user.name=prebuild tests"]
    git += ["-c", "user.email=tests@prebuild.invalid", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fixture"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return head.stdout.strip()


def _paged(session: requests.Session, url: str, field: str) -> list[str]:
    """Every item of a paginated listing (Link: <...>; rel="next"); a 404 is empty."""
    items: list[str] = []
    next_url: str | None = url
    while next_url:
        resp = session.get(next_url, timeout=10)
        if resp.status_code == 404:
            return items
        resp.raise_for_status()
        items += resp.json().get(field) or []
        link = resp.links.get("next", {}).get("url")
        next_url = urljoin(next_url, link) if link else None
    return items


def registry_state(registry: str) -> dict[str, dict[str, str]]:
    """{repository: {tag: manifest digest}} for everything the registry holds: the catalog,
    every repository's tags (buildcache included) and what each tag points at."""
    session = requests.Session()
    base = f"http://{registry}/v2"
    state: dict[str, dict[str, str]] = {}
    for repo in _paged(session, f"{base}/_catalog?n=1000", "repositories"):
        tags: dict[str, str] = {}
        for tag in _paged(session, f"{base}/{repo}/tags/list?n=1000", "tags"):
            head = session.head(
                f"{base}/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT}, timeout=10
            )
            digest = head.headers.get("Docker-Content-Digest")
            tags[tag] = digest if head.status_code == 200 and digest else f"HTTP {head.status_code}"
        state[repo] = tags
    return state


def manifest_digest(ref: str) -> str | None:
    registry, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    head = requests.head(
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    )
    return head.headers["Docker-Content-Digest"] if head.status_code == 200 else None


def fallback_steps(stderr: str) -> list[tuple[str, bool]]:
    """(command, cached) of each build step of a build, from its plain progress, in Dockerfile
    order (BuildKit prints independent or cached steps in any order)."""
    steps = progress.parse(stderr.splitlines()).build_steps
    number = re.compile(r"\[(?:\S+ )?(\d+)/\d+\]")

    def position(step: progress.Step) -> int:
        found = number.match(step.name)
        assert found, step.name
        return int(found.group(1))

    return [(s.command, s.cached) for s in sorted(steps, key=position)]


def build_argv(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("$> docker buildx build")]


@pytest.fixture(scope="module")
def prebuilt(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Prebuilt:
    """The nightly job: `prebuild build` pushes REGISTRY/ci:TAG and its registry cache."""
    registry = f"{stack.registry}/t{uuid.uuid4().hex[:8]}"
    repo = make_repo(
        tmp_path_factory.mktemp("nightly") / "repo", registry=registry, base=stack.base_image
    )
    env = cli_env(stack)
    built = run_prebuild(["build", "--plain"], cwd=repo, env=env)
    assert built.returncode == 0, built.stderr
    planned = run_prebuild(["plan", "--json"], cwd=repo, env=env)
    (image,) = json.loads(planned.stdout)["images"]
    assert image["status"] == "present", image
    return Prebuilt(repo=repo, registry=registry, key=image["key"], ref=image["ref"])


# -- 1. the runner gets the exact prebuilt image --------------------------------------------


def test_runner_pulls_the_exact_prebuilt_image_by_key(
    stack: Stack, prebuilt: Prebuilt, clean_engine, tmp_path: Path
) -> None:
    local = "local/runner-ci"
    assert not stack.docker.image.exists(local)
    proc = run_prebuild(
        ["pull", NAME, "--tag-as", local, "--format", "json"], cwd=prebuilt.repo, env=cli_env(stack)
    )
    assert proc.returncode == 0, proc.stderr
    result = pull_json(proc)
    assert result["outcome"] == "pulled", result
    assert (result["key"], result["ref"], result["local_name"]) == (
        prebuilt.key,
        prebuilt.ref,
        local,
    )
    assert build_argv(proc.stderr) == []  # pulled, nothing built
    image = stack.docker.image.inspect(local)
    assert image.config.labels["dev.prebuild.key"] == prebuilt.key
    assert f"{prebuilt.repository}@{manifest_digest(prebuilt.ref)}" in image.repo_digests
    output = stack.docker.run(local, ["cat", "/opt/ci/three", "/opt/ci/two"], remove=True)
    assert output == "app v1\ntools v1"

    # a change no COPY can see (another checkout, an edited README) keeps the same image
    repo = copy_repo(prebuilt, tmp_path / "checkout")
    (repo / "image" / "notes.md").write_text("edited in a later commit\n")
    again = run_prebuild(
        ["pull", NAME, "--tag-as", local, "--format", "json"], cwd=repo, env=cli_env(stack)
    )
    assert again.returncode == 0, again.stderr
    assert (pull_json(again)["outcome"], pull_json(again)["key"]) == ("pulled", prebuilt.key)


# -- 2. a pull request changed an input: read-only build from the registry cache -------------


def test_changed_input_builds_from_the_registry_cache_and_writes_nothing(
    stack: Stack, prebuilt: Prebuilt, clean_engine, tmp_path: Path
) -> None:
    repo = copy_repo(prebuilt, tmp_path / "pr")
    (repo / "image" / "app.txt").write_text("app v2 from a pull request\n")
    before = registry_state(stack.registry)
    local = "local/pr-ci"
    proc = run_prebuild(
        ["pull", NAME, "--tag-as", local, "--format", "json"], cwd=repo, env=cli_env(stack)
    )
    assert proc.returncode == 0, proc.stderr
    result = pull_json(proc)
    assert result["outcome"] == "built", result
    assert result["key"] != prebuilt.key
    assert "not in registry" in str(result["reason"]), result
    assert "cache 3/5 steps" in str(result["reason"]), result
    # everything before the changed COPY came from the registry cache (the engine was empty)
    assert fallback_steps(proc.stderr) == [
        ("RUN", True),
        ("COPY", True),
        ("RUN", True),
        ("COPY", False),
        ("RUN", False),
    ]
    (argv,) = build_argv(proc.stderr)
    assert f"--cache-from type=registry,ref={prebuilt.repository}:buildcache" in argv
    assert "--cache-to" not in argv and "push=true" not in argv
    assert registry_state(stack.registry) == before
    assert manifest_digest(str(result["ref"])) is None
    output = stack.docker.run(local, ["cat", "/opt/ci/three"], remove=True)
    assert output == "app v2 from a pull request"


# -- 3. the registry is down --------------------------------------------------------------


def test_unreachable_registry_still_builds_or_fails_fast(
    stack: Stack, prebuilt: Prebuilt, clean_engine, tmp_path: Path
) -> None:
    repo = copy_repo(prebuilt, tmp_path / "offline")
    env = cli_env(stack, PREBUILD_REGISTRY=f"{UNREACHABLE}/ci")
    local = "local/offline-ci"
    args = ["pull", NAME, "--tag-as", local, "--format", "json", "--timeout", "3"]
    proc = run_prebuild(args, cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    result = pull_json(proc)
    assert result["outcome"] == "built", result
    assert result["key"] == prebuilt.key  # the key needs no registry of the image's own
    assert UNREACHABLE in str(result["reason"]), result
    assert "connection refused" in str(result["reason"]), result
    assert fallback_steps(proc.stderr) == [(step, False) for step in STEPS]
    assert stack.docker.run(local, ["cat", "/opt/ci/three"], remove=True) == "app v1"

    timeout = 3
    started = time.monotonic()
    args = ["pull", NAME, "--tag-as", "local/never", "--fallback", "fail", "--format", "json"]
    proc = run_prebuild([*args, "--timeout", str(timeout)], cwd=repo, env=env)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = pull_json(proc)
    assert result["outcome"] == "failed", result
    assert "connection refused" in str(result["reason"]), result
    assert elapsed < timeout + 30, f"took {elapsed:.1f}s with --timeout {timeout}"
    assert build_argv(proc.stderr) == []
    assert not stack.docker.image.exists("local/never")


# -- 4. output formats ----------------------------------------------------------------------


def expected_variables(prebuilt: Prebuilt, local: str, outcome: str) -> dict[str, str]:
    cache = f"--cache-from=type=registry,ref={prebuilt.repository}:buildcache"
    moving = f"--cache-from=type=registry,ref={prebuilt.repository}:latest"
    values = {"IMAGE": local, "REF": prebuilt.ref, "KEY": prebuilt.key, "OUTCOME": outcome}
    variables = {f"PREBUILD_CI_{k}": v for k, v in values.items()}
    variables.update({f"PREBUILD_{k}": v for k, v in values.items()})
    # the runner's platform first: the cache (and the key) are that platform's
    variables["DOCKER_BUILD_CACHE_ARG"] = f"--platform={host_platform()} {cache} {moving}"
    return variables


def test_github_format_appends_env_lines_and_a_summary(
    stack: Stack, prebuilt: Prebuilt, tmp_path: Path
) -> None:
    github_env, summary = tmp_path / "github_env", tmp_path / "summary.md"
    github_env.write_text("EARLIER_STEP=kept\n")
    local = "local/gh-format"
    env = cli_env(stack, GITHUB_ENV=str(github_env), GITHUB_STEP_SUMMARY=str(summary))
    proc = run_prebuild(
        ["pull", NAME, "--tag-as", local, "--format", "github"], cwd=prebuilt.repo, env=env
    )
    assert proc.returncode == 0, proc.stderr
    lines = github_env.read_text().splitlines()
    assert lines[0] == "EARLIER_STEP=kept"  # appended, never truncated
    expected = expected_variables(prebuilt, local, "pulled")
    assert sorted(lines[1:]) == sorted(f"{k}={v}" for k, v in expected.items())
    table = summary.read_text()
    assert "| image | outcome | local name | time | ref |" in table
    assert f"| `{NAME}` | pulled | `{local}` |" in table and prebuilt.ref in table
    assert f"{NAME}: pulled as {local}" in proc.stdout


def test_shell_format_evaluates_in_bash(stack: Stack, prebuilt: Prebuilt) -> None:
    local = "local/shell-format"
    script = (
        'eval "$("$0" pull ci --tag-as "$1" --format shell)" || exit 9\n'
        'printf "%s\\n" "$PREBUILD_OUTCOME" "$PREBUILD_IMAGE" "$PREBUILD_REF" "$PREBUILD_KEY"\n'
        "set -- $DOCKER_BUILD_CACHE_ARG\n"
        'printf "%s\\n" "$#" "$@"\n'
    )
    proc = subprocess.run(
        ["bash", "-c", script, str(PREBUILD), local],
        cwd=prebuilt.repo,
        env=cli_env(stack),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    expected = expected_variables(prebuilt, local, "pulled")
    cache_args = expected["DOCKER_BUILD_CACHE_ARG"].split(" ")
    assert proc.stdout.splitlines() == [
        "pulled",
        local,
        prebuilt.ref,
        prebuilt.key,
        str(len(cache_args)),
        *cache_args,
    ]
    assert stack.docker.image.exists(local)


def test_cache_args_fallback_builds_nothing_and_the_args_hit_the_cache(
    stack: Stack, prebuilt: Prebuilt, clean_engine, tmp_path: Path
) -> None:
    repo = copy_repo(prebuilt, tmp_path / "pr")
    (repo / "image" / "app.txt").write_text("app v3\n")
    local = "local/cache-args"
    args = ["pull", NAME, "--tag-as", local, "--fallback", "cache-args", "--format", "shell"]
    proc = run_prebuild(args, cwd=repo, env=cli_env(stack))
    assert proc.returncode == 0, proc.stderr
    assert build_argv(proc.stderr) == []
    assert not stack.docker.image.exists(local)
    exports = proc.stdout.splitlines()
    assert "export PREBUILD_OUTCOME=cache-args" in exports
    cache_ref = f"{prebuilt.repository}:buildcache"
    # the CI's own build line: `docker buildx build $DOCKER_BUILD_CACHE_ARG ...`
    script = (
        'eval "$1" && docker buildx build --progress=plain --load --tag "$2" '
        '--build-arg BASE_IMAGE="$3" $DOCKER_BUILD_CACHE_ARG "$4"'
    )
    built = subprocess.run(
        ["bash", "-c", script, "bash", proc.stdout, local, stack.base_image, str(repo / "image")],
        env=cli_env(stack),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    assert f"importing cache manifest from {cache_ref}" in built.stderr
    assert fallback_steps(built.stderr) == [
        ("RUN", True),
        ("COPY", True),
        ("RUN", True),
        ("COPY", False),
        ("RUN", False),
    ]


# -- 5. the runner hooks --------------------------------------------------------------------


def run_hook(
    hook: str, stack: Stack, repo: Path, tmp_path: Path, local: str, **extra: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run one hook as its CI runs it; returns the process and what it left for the job."""
    github_env, summary = tmp_path / f"{hook}.env", tmp_path / f"{hook}.summary"
    env = cli_env(stack, PREBUILD=str(PREBUILD), PREBUILD_IMAGES=f"{NAME}={local}", **extra)
    if hook == "github":
        head = git_commit(repo)
        env |= dict(GITHUB_WORKSPACE=str(repo), GITHUB_SHA=head, GITHUB_ENV=str(github_env))
        env |= dict(GITHUB_STEP_SUMMARY=str(summary))
        argv, cwd = ["bash", str(HOOKS / "github-job-started.sh")], tmp_path
    elif hook == "prepull":
        argv, cwd = ["bash", str(HOOKS / "prepull.sh"), f"{NAME}={local}"], repo
    else:  # gitlab: pre_build_script runs in the checkout
        argv, cwd = ["bash", str(HOOKS / "gitlab-pre-build.sh")], repo
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    left = {
        "github": lambda: github_env.read_text(),
        "prepull": lambda: proc.stdout,
        "gitlab": lambda: (repo / "prebuild.env").read_text(),
    }[hook]()
    return proc, left


HOOK_NAMES = ["github", "prepull", "gitlab"]


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_leaves_the_prebuilt_image_on_the_runner(
    hook: str, stack: Stack, prebuilt: Prebuilt, clean_engine, tmp_path: Path
) -> None:
    repo = copy_repo(prebuilt, tmp_path / "workspace")
    local = f"local/{hook}-hook"
    proc, left = run_hook(hook, stack, repo, tmp_path, local)
    assert proc.returncode == 0, proc.stderr
    assert stack.docker.image.exists(local), proc.stderr
    assert HOOK_MISS not in proc.stderr
    if hook == "github":
        assert {"PREBUILD_OUTCOME=pulled", f"PREBUILD_IMAGE={local}"} <= set(left.splitlines())
    else:
        exports = set(left.splitlines())
        assert {"export PREBUILD_OUTCOME=pulled", f"export PREBUILD_CI_IMAGE={local}"} <= exports


def test_github_hook_fetches_the_commit_into_an_empty_workspace(
    stack: Stack, prebuilt: Prebuilt, clean_engine, tmp_path: Path
) -> None:
    """ACTIONS_RUNNER_HOOK_JOB_STARTED runs before actions/checkout: the hook fetches the job's
    commit itself (here from a file:// "server")."""
    origin = copy_repo(prebuilt, tmp_path / "server" / "acme" / "ci")
    head = git_commit(origin)
    workspace, github_env = tmp_path / "runner" / "work", tmp_path / "github_env"
    local = "local/fresh-workspace"
    env = cli_env(
        stack,
        PREBUILD=str(PREBUILD),
        PREBUILD_IMAGES=f"{NAME}={local}",
        GITHUB_WORKSPACE=str(workspace),
        GITHUB_SHA=head,
        GITHUB_SERVER_URL=f"file://{tmp_path / 'server'}",
        GITHUB_REPOSITORY="acme/ci",
        GITHUB_ENV=str(github_env),
    )
    proc = subprocess.run(
        ["bash", str(HOOKS / "github-job-started.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (workspace / "image" / "app.txt").read_text() == "app v1\n"
    assert stack.docker.image.exists(local), proc.stderr
    assert f"PREBUILD_KEY={prebuilt.key}\n" in github_env.read_text()
    assert "PREBUILD_OUTCOME=pulled\n" in github_env.read_text()


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_never_fails_the_job(
    hook: str, stack: Stack, prebuilt: Prebuilt, clean_engine, tmp_path: Path
) -> None:
    """Registry unreachable and the Dockerfile broken: no image, but exit 0 and a reason."""
    repo = copy_repo(prebuilt, tmp_path / "workspace")
    dockerfile = repo / "image" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + 'RUN echo "broken on purpose" && exit 3\n')
    local = f"local/{hook}-broken"
    extra = {"PREBUILD_REGISTRY": f"{UNREACHABLE}/ci", "PREBUILD_PULL_TIMEOUT": "2"}
    proc, left = run_hook(hook, stack, repo, tmp_path, local, **extra)
    assert proc.returncode == 0, proc.stderr
    assert not stack.docker.image.exists(local)
    assert HOOK_MISS in proc.stderr
    assert "broken on purpose" in proc.stderr  # the failed fallback build is in the job log
    if hook == "github":
        assert "PREBUILD_OUTCOME=failed\n" in left
    else:
        assert "export PREBUILD_OUTCOME=failed\n" in left


# -- 6. the CI fan-out matrix on the repository's example set -------------------------------


def example_set(dest: Path, stack: Stack) -> Path:
    """The repository's own image set (examples/images + the root prebuild.toml), FROM the stack's
    base image instead of the default stack's."""
    shutil.copytree(REPO_ROOT / "examples" / "images", dest / "examples" / "images")
    config = (REPO_ROOT / "prebuild.toml").read_text()
    assert SEED_BASE in config
    (dest / "prebuild.toml").write_text(config.replace(SEED_BASE, stack.base_image))
    return dest


def test_plan_matrix_orders_the_example_set_and_is_empty_once_built(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    repo = example_set(tmp_path / "example", stack)
    env = cli_env(stack, PREBUILD_REGISTRY=f"{stack.registry}/{unique}")

    planned = json.loads(run_prebuild(["plan", "--json"], cwd=repo, env=env).stdout)["images"]
    depends = {image["name"]: image["depends_on"] for image in planned}
    assert {image["status"] for image in planned} == {"missing"}
    assert depends["toolchain"] == ["base"]
    proc = run_prebuild(["plan", "--matrix"], cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    include = json.loads(proc.stdout)["include"]
    names = [entry["image"] for entry in include]
    assert sorted(names) == sorted(depends)  # every image, each exactly once
    wave = {entry["image"]: entry["wave"] for entry in include}
    for name, deps in depends.items():
        assert all(wave[dep] < wave[name] for dep in deps), (name, wave)

    # one CI job per matrix entry, wave after wave: each builds only its own image, so the
    # earlier waves really did provide everything it builds FROM
    for number in sorted(set(wave.values())):
        for name in [n for n in names if wave[n] == number]:
            built = run_prebuild(["build", "--plain", name], cwd=repo, env=env)
            assert built.returncode == 0, built.stderr
            rows = [line.split("\t")[:2] for line in built.stdout.splitlines()]
            assert rows == [[name, "built"]], built.stdout

    again = run_prebuild(["plan", "--matrix"], cwd=repo, env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"include": []}


def test_pull_builds_a_changed_sibling_before_the_image_from_it(
    stack: Stack, clean_engine, tmp_path: Path, unique: str
) -> None:
    """A pull request changes `base`: `toolchain`'s key changes with it and its build is pinned
    to `REGISTRY/base:<new key>`, which nobody pushed. The runner builds base locally first."""
    repo = example_set(tmp_path / "example", stack)
    env = cli_env(stack, PREBUILD_REGISTRY=f"{stack.registry}/{unique}")
    built = run_prebuild(["build", "--plain", "toolchain"], cwd=repo, env=env)
    assert built.returncode == 0, built.stderr
    wipe_engine(stack.docker)
    write(repo / "examples" / "images" / "base" / "scripts" / "added.sh", "echo added by a PR\n")
    before = registry_state(stack.registry)
    local = "local/toolchain"
    proc = run_prebuild(
        ["pull", "toolchain", "--tag-as", local, "--format", "json"], cwd=repo, env=env
    )
    assert proc.returncode == 0, proc.stderr
    result = pull_json(proc)
    assert result["outcome"] == "built", result
    assert "built sibling base locally" in str(result["reason"]), result
    assert registry_state(stack.registry) == before
    output = stack.docker.run(
        local, ["cat", "/opt/ci/bin/added.sh", "/opt/toolchain/VERSION"], remove=True
    )
    assert output.splitlines()[0] == "echo added by a PR"


# -- 7. trust: untrusted contexts never write ----------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("GITHUB_EVENT_NAME", "pull_request", "GitHub Actions event 'pull_request'"),
        ("GITHUB_EVENT_NAME", "pull_request_target", "'pull_request_target'"),
        ("CI_PIPELINE_SOURCE", "merge_request_event", "GitLab merge request pipeline"),
        ("PREBUILD_UNTRUSTED", "1", "PREBUILD_UNTRUSTED"),
    ],
)
def test_untrusted_build_is_refused_and_pushes_nothing(
    stack: Stack, prebuilt: Prebuilt, tmp_path: Path, variable: str, value: str, named: str
) -> None:
    repo = copy_repo(prebuilt, tmp_path / "pr")
    (repo / "image" / "app.txt").write_text("app from an untrusted fork\n")
    before = registry_state(stack.registry)
    proc = run_prebuild(["build", "--plain"], cwd=repo, env=cli_env(stack, **{variable: value}))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "untrusted" in proc.stderr and named in proc.stderr, proc.stderr
    assert "--allow-untrusted" in proc.stderr  # the hint says how, on purpose
    assert build_argv(proc.stderr) == []
    assert registry_state(stack.registry) == before


def test_allow_untrusted_builds_and_pushes(
    stack: Stack, prebuilt: Prebuilt, tmp_path: Path
) -> None:
    repo = copy_repo(prebuilt, tmp_path / "pr")
    (repo / "image" / "app.txt").write_text("app from a trusted pull request pipeline\n")
    env = cli_env(stack, GITHUB_EVENT_NAME="pull_request")
    (image,) = json.loads(run_prebuild(["plan", "--json"], cwd=repo, env=env).stdout)["images"]
    assert image["status"] == "missing"
    proc = run_prebuild(["build", "--plain", "--allow-untrusted"], cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\t")[:2] == [NAME, "built"]
    assert manifest_digest(image["ref"]) is not None
