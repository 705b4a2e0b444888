from __future__ import annotations

from prebuild.engine.progress import parse

PLAIN = """\
#0 building with "default" instance using docker driver

#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 123B done
#1 DONE 0.0s

#4 [1/4] FROM 127.0.0.1:35000/seed/busybox:stable@sha256:b4ab
#4 DONE 0.1s

#5 [2/4] COPY a.txt /a.txt
#5 CACHED

#6 [3/4] RUN echo hello > /b
#6 0.215 hello
#6 DONE 1.1s

#7 [build 4/4] RUN false
#7 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1
"""


def test_counts_cached_and_executed_build_steps_but_not_from_or_internal() -> None:
    progress = parse(PLAIN.splitlines())
    assert [s.command for s in progress.build_steps] == ["COPY", "RUN", "RUN"]
    assert (progress.cached, progress.total) == (1, 3)
    assert progress.step("COPY a.txt").cached
    assert progress.step("echo hello").done and not progress.step("echo hello").cached


def test_records_the_error_of_a_failed_step() -> None:
    step = parse(PLAIN.splitlines()).step("RUN false")
    assert step.error is not None and "exit code: 1" in step.error
    assert not step.cached


def test_a_step_whose_layers_were_only_fetched_counts_as_cached() -> None:
    lines = """\
#10 [4/4] RUN echo built > /app/stamp
#10 sha256:98e1e17ee7b5e05d8888050cd2ac5a5fbd4d6148db8efc21d430a759b468a98d 135B / 135B 0.0s done
#10 DONE 0.0s
#11 [5/5] RUN echo again
#11 sha256:98e1e17ee7b5e05d8888050cd2ac5a5fbd4d6148db8efc21d430a759b468a98d 135B / 135B 0.0s done
#11 0.104 again
#11 DONE 0.2s
""".splitlines()
    progress = parse(lines)
    assert progress.step("stamp").cached
    assert not progress.step("echo again").cached  # it printed: it ran
