"""Image sources: ways to declare images besides native `[[image]]` tables.

Each source kind is a pydantic model (validated as part of the config, so its errors are
located like any other key) with one method, `images(*, repo_root, config_file, defaults)`,
that turns it into ImageSpecs starting from the project-wide `defaults` ImageSpec.
"""

from __future__ import annotations

import importlib

from pydantic import BaseModel

# kind -> (module, class) of the built-in source models, imported on first use so the config
# loader works (reporting an unknown kind) while a source module is missing or being written.
_BUILTIN_KINDS: dict[str, tuple[str, str]] = {
    "envfiles": ("prebuild.sources.envfiles.importer", "EnvFilesSource"),
}

SOURCE_KINDS: dict[str, type[BaseModel]] = {}


def source_kinds() -> dict[str, type[BaseModel]]:
    """SOURCE_KINDS with every importable built-in kind loaded (a missing module is skipped)."""
    for kind, (module_name, class_name) in _BUILTIN_KINDS.items():
        if kind in SOURCE_KINDS:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        model = getattr(module, class_name, None)
        if model is not None:
            SOURCE_KINDS[kind] = model
    return SOURCE_KINDS
