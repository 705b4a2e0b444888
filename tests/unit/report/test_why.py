"""Why an image rebuilt: each kind of material difference named once, in words."""

from __future__ import annotations

from dataclasses import replace

from prebuild.context.inputs import InputFile
from prebuild.key import material as keys
from prebuild.key.material import BaseInput
from prebuild.report import why
from tests.unit.key.test_material import BASE_DIGEST, DIGEST_A, DIGEST_B, material

MOVED = "linux/amd64=sha256:" + "d" * 64


def test_material_doc_hashes_back_to_the_key() -> None:
    m = material()
    assert why.key_of(why.material_doc(m)) == keys.compute(m)


def test_same_material_has_no_differences() -> None:
    doc = why.material_doc(material())
    assert why.differences(doc, doc) == []


def test_files_added_removed_changed_and_mode() -> None:
    old = material()
    new = replace(
        old,
        inputs=(
            InputFile("ci/app/run.sh", False, DIGEST_A),  # lost +x
            InputFile("ci/app/new.txt", False, DIGEST_A),  # added; conf.txt removed
        ),
        extra_inputs=(InputFile("ci/versions.txt", False, DIGEST_A),),  # content changed
    )
    assert why.differences(why.material_doc(old), why.material_doc(new)) == [
        "ci/app/conf.txt removed",
        "ci/app/new.txt added",
        "ci/app/run.sh mode changed (-x)",
        "ci/versions.txt changed",
    ]


def test_dockerfile_args_target_platforms() -> None:
    old = material()
    new = replace(
        old,
        dockerfile_digest=DIGEST_B,
        target=None,
        platforms=("linux/amd64",),
        build_args={"VARIANT": "debug", "NEW": "1"},
    )
    assert why.differences(why.material_doc(old), why.material_doc(new)) == [
        "ci/app/Dockerfile changed",
        "target final -> (last stage)",
        "platform linux/arm64 removed",
        "build arg CC removed (was gcc)",
        "build arg NEW=1 added",
        "build arg VARIANT: release -> debug",
    ]


def test_base_moved_names_both_digests_and_sibling_rebuilt() -> None:
    old = material()
    new = replace(
        old,
        bases=(
            BaseInput(ref="debian:bookworm", digest=MOVED),
            BaseInput(ref="base", sibling="base", sibling_key="2" * 64),
        ),
    )
    assert why.differences(why.material_doc(old), why.material_doc(new)) == [
        "base image base rebuilt",
        f"base debian:bookworm moved to sha256:{'d' * 64} (was {BASE_DIGEST.split('=')[1]})",
    ]


def test_reasons_without_differences() -> None:
    doc = why.material_doc(material())
    assert why.reasons(None, doc) == [why.FIRST_BUILD]
    assert why.reasons(doc, doc, status="stale", detail="built 200h ago") == [
        "refresh age passed (built 200h ago)"
    ]
    assert why.reasons(doc, doc, status="present") == ["--force"]
    assert why.reasons(doc, doc, status="missing") == [
        "same key as before, but its tag was not in the registry"
    ]
