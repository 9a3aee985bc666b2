"""JAX path keys of earlier versions (`tf-savedmodel-xla-nojit`, `onnx-noxla-jit`, ...) mapped to the
reference's (`tf-savedmodel-xla`, `onnx-jit`, ...), so packages written by them still load and are
looked up by today's names. Their folders keep the old names (model_path in status.yaml says where)."""

from __future__ import annotations

import re
from typing import Any, Dict

# The selectors of status.yaml format version 2, which mixed them into a path's `flags` with what its
# producer reported: JAX's, the only framework whose paths had selectors (core.status._upgrade_2_to_3).
V2_SELECTOR_KEYS = ("enable_xla", "jit_compile")

# <base>-<xla|noxla>-<jit|nojit>[-...] at the end of a key: the variant suffix of the earlier naming
_OLD_SUFFIX = re.compile(r"-(xla|noxla)-(jit|nojit)$")


def current_jax_key(key: str) -> str:
    """An earlier version's JAX key as today's: '-xla' for enable_xla, '-jit' for jit_compile."""
    match = _OLD_SUFFIX.search(key)
    if match is None:
        return key
    xla, jit = match.groups()
    return key[: match.start()] + ("-xla" if xla == "xla" else "") + ("-jit" if jit == "jit" else "")


def rename_legacy_jax_keys(data: Dict[str, Any]) -> Dict[str, Any]:
    """status.yaml data of a JAX model with the earlier version's path keys (and parents) renamed;
    other frameworks' data, and data already named so, come back unchanged."""
    paths = data.get("paths")
    if data.get("framework") != "jax" or not isinstance(paths, dict):
        return data
    renamed = {}
    for key, path in paths.items():
        new_key = current_jax_key(key) if isinstance(key, str) else key
        if isinstance(path, dict):
            path = dict(path)
            if path.get("key") == key:
                path["key"] = new_key
            if isinstance(path.get("parent"), str):
                path["parent"] = current_jax_key(path["parent"])
        renamed[new_key] = path
    data["paths"] = renamed
    return data
