"""The content key: canonical JSON, which fields move it, the tag and `explain`."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace

import pytest

from prebuild.context.inputs import InputFile
from prebuild.key import material as keys
from prebuild.key.material import BaseInput, KeyMaterial

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
BASE_DIGEST = "linux/amd64=sha256:" + "c" * 64


def material(**changes: object) -> KeyMaterial:
    base = KeyMaterial(
        dockerfile="ci/app/Dockerfile",
        dockerfile_digest=DIGEST_A,
        target="final",
        platforms=("linux/amd64", "linux/arm64"),
        build_args={"VARIANT": "release", "CC": "gcc"},
        labels={"org.example.team": "ci"},
        context_mode="sources",
        inputs=(
            InputFile("ci/app/run.sh", True, DIGEST_A),
            InputFile("ci/app/conf.txt", False, DIGEST_B),
        ),
        bases=(
            BaseInput(ref="debian:bookworm", digest=BASE_DIGEST),
            BaseInput(ref="base", sibling="base", sibling_key="1" * 64),
        ),
        extra_inputs=(InputFile("ci/versions.txt", False, DIGEST_B),),
    )
    return replace(base, **changes)


def test_canonical_json_is_compact_sorted_and_versioned() -> None:
    raw = material().canonical()
    doc = json.loads(raw)
    assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert doc == {
        "version": keys.KEY_VERSION,
        "dockerfile": {"path": "ci/app/Dockerfile", "digest": DIGEST_A},
        "target": "final",
        "platforms": ["linux/amd64", "linux/arm64"],
        "build_args": {"CC": "gcc", "VARIANT": "release"},
        "labels": {"org.example.team": "ci"},
        "context_mode": "sources",
        "inputs": [["ci/app/conf.txt", False, DIGEST_B], ["ci/app/run.sh", True, DIGEST_A]],
        "extra_inputs": [["ci/versions.txt", False, DIGEST_B]],
        "bases": [
            {"ref": "base", "sibling": "base", "key": "1" * 64},
            {"ref": "debian:bookworm", "digest": BASE_DIGEST},
        ],
    }
    assert keys.compute(material()) == hashlib.sha256(raw).hexdigest()


def test_same_material_same_key_whatever_the_order() -> None:
    m = material()
    shuffled = material(
        platforms=tuple(reversed(m.platforms)),
        build_args=dict(reversed(list(m.build_args.items()))),
        labels={"b": "2", "a": "1"},
        inputs=tuple(reversed(m.inputs)),
        bases=tuple(reversed(m.bases)),
    )
    ordered = material(labels={"a": "1", "b": "2"})
    assert keys.compute(shuffled) == keys.compute(ordered)
    assert keys.compute(material()) == keys.compute(material())
    assert re.fullmatch(r"[0-9a-f]{64}", keys.compute(m))


def test_notes_and_provisional_flag_do_not_change_the_key() -> None:
    """Offline keys differ through their bases (keyed by reference), not through the flag."""
    m = material()
    assert keys.compute(replace(m, notes=("whole context hashed: x",))) == keys.compute(m)
    assert keys.compute(replace(m, provisional=True)) == keys.compute(m)


CHANGES: dict[str, dict[str, object]] = {
    "dockerfile digest": {"dockerfile_digest": DIGEST_B},
    "dockerfile path": {"dockerfile": "ci/app/Dockerfile.alt"},
    "target": {"target": "test"},
    "no target": {"target": None},
    "platforms": {"platforms": ("linux/amd64",)},
    "build arg value": {"build_args": {"VARIANT": "debug", "CC": "gcc"}},
    "other build arg value": {"build_args": {"VARIANT": "release", "CC": "clang"}},
    "build arg added": {"build_args": {"VARIANT": "release", "CC": "gcc", "X": ""}},
    "build arg removed": {"build_args": {"VARIANT": "release"}},
    "label value": {"labels": {"org.example.team": "ops"}},
    "label added": {"labels": {"org.example.team": "ci", "x": "1"}},
    "context mode": {"context_mode": "whole-context"},
    "input path": {
        "inputs": (
            InputFile("ci/app/run2.sh", True, DIGEST_A),
            InputFile("ci/app/conf.txt", False, DIGEST_B),
        )
    },
    "input executable bit": {
        "inputs": (
            InputFile("ci/app/run.sh", False, DIGEST_A),
            InputFile("ci/app/conf.txt", False, DIGEST_B),
        )
    },
    "input digest": {
        "inputs": (
            InputFile("ci/app/run.sh", True, DIGEST_A),
            InputFile("ci/app/conf.txt", False, DIGEST_A),
        )
    },
    "input removed": {"inputs": (InputFile("ci/app/run.sh", True, DIGEST_A),)},
    "extra input digest": {"extra_inputs": (InputFile("ci/versions.txt", False, DIGEST_A),)},
    "base digest": {
        "bases": (
            BaseInput(ref="debian:bookworm", digest="linux/amd64=sha256:" + "d" * 64),
            BaseInput(ref="base", sibling="base", sibling_key="1" * 64),
        )
    },
    "base unresolved": {
        "bases": (
            BaseInput(ref="debian:bookworm"),
            BaseInput(ref="base", sibling="base", sibling_key="1" * 64),
        )
    },
    "base ref": {
        "bases": (
            BaseInput(ref="debian:trixie", digest=BASE_DIGEST),
            BaseInput(ref="base", sibling="base", sibling_key="1" * 64),
        )
    },
    "sibling key": {
        "bases": (
            BaseInput(ref="debian:bookworm", digest=BASE_DIGEST),
            BaseInput(ref="base", sibling="base", sibling_key="2" * 64),
        )
    },
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_field_changes_the_key(change: str) -> None:
    assert keys.compute(material(**CHANGES[change])) != keys.compute(material())


def test_all_changes_give_distinct_keys() -> None:
    found = {keys.compute(material(**c)) for c in CHANGES.values()}
    assert len(found | {keys.compute(material())}) == len(CHANGES) + 1


def test_tag_is_24_hex_prefix_of_the_key() -> None:
    key = keys.compute(material())
    tag = keys.tag_for(key)
    assert len(tag) == keys.TAG_LENGTH == 24
    assert re.fullmatch(r"[0-9a-f]{24}", tag) and key.startswith(tag)


def test_explain_lists_every_input() -> None:
    m = material(notes=("whole context hashed: ONBUILD at line 3",))
    assert keys.explain(m, "k" * 64) == [
        f"key        {'k' * 64}",
        f"dockerfile ci/app/Dockerfile  {DIGEST_A}",
        "target     final",
        "platforms  linux/amd64, linux/arm64",
        "build-arg  CC=gcc",
        "build-arg  VARIANT=release",
        "label      org.example.team=ci",
        f"base       base  -> image 'base' key {'1' * 64}",
        f"base       debian:bookworm  {BASE_DIGEST}",
        "context    sources: 2 file(s)",
        f"  input    ci/app/run.sh  x  {DIGEST_A}",
        f"  input    ci/app/conf.txt  -  {DIGEST_B}",
        f"  extra    ci/versions.txt  -  {DIGEST_B}",
        "note       whole context hashed: ONBUILD at line 3",
    ]


def test_explain_marks_provisional_keys_and_unresolved_bases() -> None:
    m = material(
        target=None,
        provisional=True,
        bases=(BaseInput(ref="debian:bookworm"),),
        build_args={},
        labels={},
        inputs=(),
        extra_inputs=(),
    )
    assert keys.explain(m, "k") == [
        "key        k  (provisional: bases not resolved)",
        f"dockerfile ci/app/Dockerfile  {DIGEST_A}",
        "target     (last stage)",
        "platforms  linux/amd64, linux/arm64",
        "base       debian:bookworm  (unresolved: keyed by reference)",
        "context    sources: 0 file(s)",
    ]
