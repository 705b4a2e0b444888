"""`up`, `down`, `status`, `env`, `registry-gc`: the stack's commands, each idempotent."""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import socket
import sys
from contextlib import contextmanager

from devstack import (
    authregistry,
    emulation,
    engine,
    packages,
    podman,
    ports,
    procs,
    seed,
    services,
)
from devstack.layout import (
    ACCESS_KEY,
    BASE_IMAGE_REPO,
    BASE_IMAGE_TAG,
    DEMO_CACHE_BUCKET,
    PULL_PASSWORD,
    PULL_USER,
    PUSH_PASSWORD,
    PUSH_USER,
    REGION,
    ROOTLESS_USER,
    SECRET_KEY,
    Layout,
    layout,
)

SERVICES = ("moto", "registry", "s3-registry", "token", "auth-registry", "basic-registry")
COMMANDS = ("up", "down", "status", "env", "registry-gc", "restart-engine")


def say(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


@contextmanager
def locked(lay: Layout):
    """One `up`/`down` at a time (parallel test workers may all ask for the stack)."""
    lay.state.mkdir(parents=True, exist_ok=True)
    with open(lay.state / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def external_engine() -> str | None:
    return os.environ.get("PREBUILD_DOCKER_HOST") or None


def docker_host(lay: Layout) -> str:
    return external_engine() or f"unix://{lay.docker_socket}"


MAX_ENGINES = 2
ENGINE_FILE = "engines"  # in the state dir: how many engines the last `up --engines` asked for


def insecure(lay: Layout) -> list[str]:
    return [lay.registry_addr, lay.s3_registry_addr, lay.proxy_addr]


def extra_engines(lay: Layout) -> range:
    """Engines beyond the first that `up --engines N` asked for (kept until `down`)."""
    try:
        wanted = int((lay.state / ENGINE_FILE).read_text())
    except (OSError, ValueError):
        wanted = 1
    return range(2, min(wanted, MAX_ENGINES) + 1)


def up(lay: Layout, engines: int | None = None) -> None:
    packages.check_machine()
    with locked(lay):
        packages.ensure_system_packages(say)
        ports.reserve(lay.ports, say)
        packages.ensure_engine(lay.prefix, lay.debs, say)
        try:  # before dockerd: BuildKit probes its emulated platforms when it starts
            emulation.ensure(say)
        except procs.StackError as error:  # native builds still work: warn, do not fail
            say(f"warning: {error}")
        engine.write_docker_config(lay)
        podman.ensure(lay, say)
        moto_server = services.ensure_tools_venv(lay, say)
        for name, port, env_name, start in (
            (
                "moto",
                lay.s3_port,
                "PREBUILD_STACK_S3_PORT",
                lambda: services.start_s3(lay, moto_server),
            ),
            (
                "registry",
                lay.registry_port,
                "PREBUILD_STACK_REGISTRY_PORT",
                lambda: services.start_registry(lay),
            ),
            (
                "s3-registry",
                lay.s3_registry_port,
                "PREBUILD_STACK_S3_REGISTRY_PORT",
                lambda: services.start_s3_registry(lay),
            ),
            (
                "token",
                lay.token_port,
                "PREBUILD_STACK_TOKEN_PORT",
                lambda: authregistry.start_token_service(lay),
            ),
            (
                "auth-registry",
                lay.auth_registry_port,
                "PREBUILD_STACK_AUTH_REGISTRY_PORT",
                lambda: authregistry.start_auth_registry(lay),
            ),
            (
                "basic-registry",
                lay.basic_registry_port,
                "PREBUILD_STACK_BASIC_REGISTRY_PORT",
                lambda: authregistry.start_basic_registry(lay),
            ),
        ):
            if procs.read_pidfile(lay.pids / f"{name}.pid") is None:
                _require_free_port(name, port, env_name)
                say(f"starting {name}")
                start()
        if external_engine() is None and not engine.running(lay):
            for note in engine.recover(lay):
                say(note)
            say("starting dockerd")
            engine.start(lay, insecure(lay))
        if engines is not None:
            (lay.state / ENGINE_FILE).write_text(f"{engines}\n")
        for number in extra_engines(lay) if external_engine() is None else ():
            if not engine.running(lay, number):
                for note in engine.recover(lay, number):
                    say(note)
                say(f"starting dockerd {number}")
                engine.start(lay, insecure(lay), number)
        seed.ensure_base(lay.registry_addr, BASE_IMAGE_REPO, BASE_IMAGE_TAG, lay.cache, say)
        services.ensure_bucket(lay, DEMO_CACHE_BUCKET)  # moto keeps buckets in memory: every up
    say("up: " + ", ".join(f"{n}={s}" for n, s in status_items(lay)))


def _require_free_port(name: str, port: int, env_name: str) -> None:
    """A readiness probe would be fooled by whatever already answers on the port (another
    checkout's stack, say): refuse to start rather than report someone else's service as ours."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise procs.StackError(
                f"port {port} for the {name} is already in use by a process this stack did not "
                f"start (another checkout's stack? `ci/stack down` there), "
                f"or choose another port with {env_name}"
            )


def down(lay: Layout) -> None:
    with locked(lay):
        for number in range(MAX_ENGINES, 1, -1):
            if procs.stop(engine.pidfile(lay, number), timeout=30):
                say(f"stopped dockerd {number}")
            for note in engine.recover(lay, number):
                say(note)
            shutil.rmtree(lay.engine(number).run, ignore_errors=True)
        (lay.state / ENGINE_FILE).unlink(missing_ok=True)
        if external_engine() is None and procs.stop(engine.pidfile(lay), timeout=30):
            say("stopped dockerd")
        for note in engine.recover(lay):
            say(note)
        for name in reversed(SERVICES):
            if procs.stop(lay.pids / f"{name}.pid"):
                say(f"stopped {name}")
        # recover() unmounted everything below lay.run, so removing it cannot reach the host
        shutil.rmtree(lay.run, ignore_errors=True)


def restart_engine(lay: Layout) -> None:
    """Restart only dockerd: its BuildKit probes the emulated platforms once, at start, so a
    changed binfmt_misc entry shows in `docker buildx inspect` only after this."""
    with locked(lay):
        if external_engine() is not None:
            raise procs.StackError("PREBUILD_DOCKER_HOST names an external engine: not ours")
        procs.stop(engine.pidfile(lay), timeout=30)
        for note in engine.recover(lay):
            say(note)
        say("starting dockerd")
        engine.start(lay, insecure(lay))


def registry_gc(lay: Layout) -> None:
    """Reclaim the blobs of manifests `prebuild gc` deleted (the registry restarts)."""
    with locked(lay):
        if procs.read_pidfile(lay.pids / "registry.pid") is None:
            raise procs.StackError("the registry is not running: run `ci/stack up` first")
        say(f"registry garbage-collect: {services.registry_gc(lay)}")


def status_items(lay: Layout) -> list[tuple[str, str]]:
    items = []
    if external_engine():
        items.append(("dockerd", f"external ({external_engine()})"))
    else:
        pid = procs.read_pidfile(engine.pidfile(lay))
        items.append(
            (
                "dockerd",
                f"running (pid {pid})" if pid and engine.ping(lay.docker_socket) else "stopped",
            )
        )
        for number in extra_engines(lay):
            pid = procs.read_pidfile(engine.pidfile(lay, number))
            up = pid and engine.ping(lay.engine(number).socket)
            items.append((f"dockerd-{number}", f"running (pid {pid})" if up else "stopped"))
    for name in SERVICES:
        pid = procs.read_pidfile(lay.pids / f"{name}.pid")
        items.append((name, f"running (pid {pid})" if pid else "stopped"))
    return items


def emulation_line() -> str:
    return f"{'emulation':12} {emulation.summary()}"


def env_lines(lay: Layout) -> list[str]:
    values = {
        "DOCKER_HOST": docker_host(lay),
        "DOCKER_CONFIG": str(lay.docker_config),
        "PATH": f"{lay.prefix}/usr/bin:{os.environ.get('PATH', '')}",
        "PREBUILD_TEST_REGISTRY": lay.registry_addr,
        "PREBUILD_TEST_S3_REGISTRY": lay.s3_registry_addr,
        "PREBUILD_TEST_PROXY_ADDR": lay.proxy_addr,  # plain HTTP for the engine too
        "PREBUILD_TEST_S3_ENDPOINT": lay.s3_endpoint,
        "PREBUILD_TEST_BASE_IMAGE": lay.base_image,
        "PREBUILD_TEST_AUTH_REGISTRY": lay.auth_registry_addr,
        "PREBUILD_TEST_BASIC_REGISTRY": lay.basic_registry_addr,
        "PREBUILD_TEST_AUTH_PUSH_USER": PUSH_USER,
        "PREBUILD_TEST_AUTH_PUSH_PASSWORD": PUSH_PASSWORD,
        "PREBUILD_TEST_AUTH_PULL_USER": PULL_USER,
        "PREBUILD_TEST_AUTH_PULL_PASSWORD": PULL_PASSWORD,
        "CONTAINERS_CONF": str(podman.containers_conf(lay)),
        "CONTAINERS_STORAGE_CONF": str(podman.storage_conf(lay)),
        "PREBUILD_TEST_ROOTLESS_USER": ROOTLESS_USER,
        "PREBUILD_STACK_LOGS": str(lay.logs),
        "PREBUILD_STACK_DATA": str(lay.state),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }
    for number in extra_engines(lay) if external_engine() is None else ():
        values[f"PREBUILD_TEST_DOCKER_HOST_{number}"] = f"unix://{lay.engine(number).socket}"
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def _engines_option(argv: list[str]) -> int | None:
    """Take `--engines N` / `--engines=N` out of argv; 0 when N is not 1..MAX_ENGINES."""
    for i, arg in enumerate(argv):
        if arg == "--engines" or arg.startswith("--engines="):
            value = arg.partition("=")[2] if "=" in arg else (argv[i + 1 : i + 2] or [""])[0]
            del argv[i : i + (1 if "=" in arg else 2)]
            return int(value) if value.isdigit() and 1 <= int(value) <= MAX_ENGINES else 0
    return None


def main(argv: list[str]) -> int:
    engines = _engines_option(argv)
    bad_engines = engines is not None and (argv[:1] != ["up"] or engines == 0)
    if len(argv) != 1 or argv[0] not in COMMANDS or bad_engines:
        print(f"usage: ci/stack {'|'.join(COMMANDS)} (up [--engines 1|2])", file=sys.stderr)
        return 2
    lay = layout()
    try:
        if argv[0] == "up":
            up(lay, engines)
        elif argv[0] == "down":
            down(lay)
        elif argv[0] == "registry-gc":
            registry_gc(lay)
        elif argv[0] == "restart-engine":
            restart_engine(lay)
        elif argv[0] == "status":
            for name, state in status_items(lay):
                print(f"{name:12} {state}")
            print(emulation_line())
            return (
                0 if all(s.startswith(("running", "external")) for _, s in status_items(lay)) else 3
            )
        else:
            print("\n".join(env_lines(lay)))
    except procs.StackError as error:
        print(f"stack: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
