"""The .nav package format: entry names, size limits and the two metadata files.

A package is a zip of a navigator workspace: every regular file under its relative POSIX name,
`status.yaml` at the root, plus `manifest.json` (the size and sha256 of every other entry, the
workspace's `format_version` and whether the npz samples were saved). The writer and the reader
share the rules here: which names are safe to extract, and how the metadata is parsed (safe,
plain YAML and strict JSON only: reading a package executes nothing).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from typing import Any, Dict, List, Optional, Set, Tuple, TypeGuard

from model_navigator.core.errors import PackageError
from model_navigator.core.status import NavigatorStatus
from model_navigator.core.status_schema import parse_yaml_text

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1

DEFAULT_MAX_UNPACKED_BYTES = 64 * 2**30
DEFAULT_MAX_RATIO = 200.0
# Entries at most this large are never treated as zip bombs, whatever their ratio.
BOMB_MIN_SIZE = 2**20
# status.yaml and manifest.json are read into memory: cap them.
MAX_METADATA_BYTES = 64 * 2**20
MAX_ENTRIES = 500_000
CHUNK = 4 * 2**20  # read/write unit of the archive streams
# Opening flags: never follow a symbolic link planted where a file is read or written.
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_BINARY = getattr(os, "O_BINARY", 0)

_DRIVE = re.compile(r"^[A-Za-z]:")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def name_problem(name: str) -> Optional[str]:
    """Why an archive name is unsafe to extract (None when it is a plain relative path)."""
    if not name:
        return "empty name"
    if "\x00" in name:
        return "NUL character in name"
    if "\\" in name:
        return "backslash in name (Windows path separator)"
    if name.startswith("/"):
        return "absolute path"
    if _DRIVE.match(name):
        return "drive letter in name"
    body = name[:-1] if name.endswith("/") else name
    for part in body.split("/"):
        if part == "..":
            return "'..' component would land outside the target folder"
        if part in ("", "."):
            return "empty or '.' path component"
    return None


def name_conflicts(names: List[str]) -> List[Tuple[str, str]]:
    """Duplicates (also by case/Unicode form) and names used both as a file and as a folder."""
    problems: List[Tuple[str, str]] = []
    seen: Dict[str, str] = {}
    file_keys: Dict[str, str] = {}
    dir_keys: Set[str] = set()
    for name in names:
        key = unicodedata.normalize("NFC", name).casefold()
        if key in seen:
            same = seen[key] == name
            problems.append((name, "duplicate entry name" if same else f"same name as {seen[key]!r} up to letter case"))
            continue
        seen[key] = name
        body = key[:-1] if key.endswith("/") else key
        parts = body.split("/")
        for i in range(1, len(parts)):
            dir_keys.add("/".join(parts[:i]))
        if key.endswith("/"):
            dir_keys.add(body)
        else:
            file_keys[key] = name
    for key in sorted(set(file_keys) & dir_keys):
        problems.append((file_keys[key], "name used both as a file and as a folder"))
    return problems


def parse_status(data: bytes, where: str) -> Dict[str, Any]:
    """Parse status.yaml bytes as plain, safe YAML and check them with NavigatorStatus.from_dict."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PackageError(f"{where} is not safe, plain YAML and was not loaded: {e}") from e
    loaded = parse_yaml_text(text, where)  # safe_load semantics, aliases refused, depth-safe
    try:
        NavigatorStatus.from_dict(loaded)
    except PackageError as e:
        raise PackageError(f"{where}: {e}") from e
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise PackageError(f"{where} is malformed: {e}") from e
    return loaded


def parse_manifest(data: bytes, where: str) -> Dict[str, Any]:
    """Parse manifest.json strictly (no duplicate keys) and check its structure."""

    def no_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
        result: Dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    label = f"{where}: entry {MANIFEST_FILE!r}"
    try:
        manifest = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise PackageError(f"{label} is not valid JSON: {e}") from e
    if not isinstance(manifest, dict):
        raise PackageError(f"{label} must hold a JSON object.")
    version = manifest.get("manifest_version")
    if not _is_int(version) or version < 1:
        raise PackageError(f"{label} has no valid `manifest_version`.")
    if version > MANIFEST_VERSION:
        raise PackageError(
            f"{label} has manifest_version {version}, newer than this model-navigator understands "
            f"({MANIFEST_VERSION}); upgrade model-navigator to read it."
        )
    if not _is_int(manifest.get("format_version")):
        raise PackageError(f"{label} has no integer `format_version`.")
    if not isinstance(manifest.get("save_data"), bool):
        raise PackageError(f"{label} has no boolean `save_data`.")
    entries = manifest.get("entries")
    if not isinstance(entries, list):
        raise PackageError(f"{label} has no `entries` list.")
    names: Set[str] = set()
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not _is_int(entry.get("size"))
            or entry["size"] < 0
            or not isinstance(entry.get("sha256"), str)
            or not _SHA256.match(entry["sha256"])
        ):
            raise PackageError(f"{label} has a malformed entry {entry!r} (needs name, size, sha256).")
        if entry["name"] in names or entry["name"] == MANIFEST_FILE:
            raise PackageError(f"{label} lists entry {entry['name']!r} more than once or lists itself.")
        names.add(entry["name"])
    return manifest


def _is_int(value: Any) -> TypeGuard[int]:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)
