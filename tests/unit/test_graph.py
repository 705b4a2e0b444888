from __future__ import annotations

import pytest

from prebuild.errors import ConfigError
from prebuild.graph import closure, order, waves


def test_waves_put_every_image_after_its_bases() -> None:
    deps = {"app": ["base"], "base": [], "tool": ["base", "app"], "solo": []}
    assert waves(deps) == [["base", "solo"], ["app"], ["tool"]]
    assert order(deps) == ["base", "solo", "app", "tool"]


def test_dependencies_outside_the_set_do_not_block() -> None:
    assert waves({"app": ["base"]}) == [["app"]]


def test_cycle_is_named() -> None:
    with pytest.raises(ConfigError, match="a -> b -> a"):
        waves({"a": ["b"], "b": ["a"], "c": []})


def test_closure() -> None:
    deps = {"app": ["base"], "base": [], "tool": ["app"], "solo": []}
    assert closure(["tool"], deps) == {"tool", "app", "base"}
