"""The .nav package: a checked zip of a navigator workspace, written atomically and read defensively.

Layout: every regular file of the workspace under its relative POSIX name, `status.yaml` at the
root, plus `manifest.json` (the size and sha256 of every other entry, the workspace's
`format_version` and whether the npz samples were saved).

Reading never trusts the archive: `validate_archive` is the one validation every reader runs
(nav.load, `inspect`, `report`, `triton`, through read_package_status and extract_archive): it
refuses anything odd, npz files that need pickle included, before a byte is written, and
`extract_archive` re-checks sizes and checksums while it writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
import time
import unicodedata
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional, Set, Tuple, Union

import numpy as np
import yaml

from model_navigator.core.errors import PackageError, UserInputError
from model_navigator.core.status import STATUS_FILE, NavigatorStatus
from model_navigator.core.workspace import INPUT_DIR, OUTPUT_DIR

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1

DEFAULT_MAX_UNPACKED_BYTES = 64 * 2**30
DEFAULT_MAX_RATIO = 200.0
# Entries at most this large are never treated as zip bombs, whatever their ratio.
BOMB_MIN_SIZE = 2**20
# The writer stores (does not deflate) an entry that deflates better than this, so a package it
# writes always passes the reader's ratio check, with a margin for a stricter `max_ratio`.
WRITE_MAX_RATIO = 100.0
# status.yaml and manifest.json are read into memory: cap them.
MAX_METADATA_BYTES = 64 * 2**20
MAX_ENTRIES = 500_000
CHUNK = 2**20
NPZ_SPOOL_BYTES = 64 * 2**20  # an npz entry is checked from memory up to this size, from a temp file beyond

# Model files are dense binary weights: deflate saves ~7 % at ~25x the time, so store them.
STORED_SUFFIXES = frozenset(
    {
        ".onnx",
        ".pt",
        ".pt2",
        ".pth",
        ".ts",
        ".plan",
        ".engine",
        ".trt",
        ".pb",
        ".h5",
        ".keras",
        ".tflite",
        ".bin",
        ".data",
        ".safetensors",
        ".zip",
        ".gz",
        ".xz",
        ".bz2",
        ".zst",
    }
)

_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_DRIVE = re.compile(r"^[A-Za-z]:")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ZIP_LOCAL_HEADER_SIZE = 30
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


def write_archive(workdir: Path, path: Path, override: bool = False, save_data: bool = True) -> None:
    """Zip the workspace `workdir` into the .nav package `path`, atomically and verified."""
    workdir = Path(workdir)
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not override:
            raise UserInputError(
                f"`path` {str(path)!r} already exists and was left untouched; pass override=True to "
                f"replace it, or choose another path."
            )
        if path.is_dir() and not path.is_symlink():
            raise UserInputError(f"`path` {str(path)!r} is a folder; a .nav package is a file, choose another path.")
    status_file = workdir / STATUS_FILE
    if not workdir.is_dir() or status_file.is_symlink() or not status_file.is_file():
        raise PackageError(f"No {STATUS_FILE} in {str(workdir)!r}: not a model-navigator workspace, nothing saved.")
    status = _parse_status(status_file.read_bytes(), str(status_file))
    format_version = status["format_version"]

    files = _collect_files(workdir, save_data=save_data, exclude=path)
    problems = _name_conflicts([name for name, _ in files])
    for name, _ in files:
        problem = _name_problem(name)
        if problem:
            problems.append((name, problem))
    if problems:
        name, problem = problems[0]
        raise PackageError(f"Cannot package {str(workdir / name)!r}: {problem}.")

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp: Optional[Path] = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(tmp_name)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # an ordinary file, not mkstemp's private 0600
        too_compressible = _write_zip(tmp, files, format_version, save_data, force_stored=set())
        if too_compressible:
            # Rare (e.g. large all-zero tensors): store those entries so the package never looks
            # like a zip bomb to validate_archive.
            _write_zip(tmp, files, format_version, save_data, force_stored=too_compressible)
        with zipfile.ZipFile(tmp) as zf:
            # Integrity, not policy: the size cap is the reader's business, not the writer's.
            _validate(zf, str(tmp), max_unpacked_bytes=2**63, max_ratio=DEFAULT_MAX_RATIO)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _collect_files(workdir: Path, save_data: bool, exclude: Path) -> List[Tuple[str, Path]]:
    """Regular files of the workspace as (archive name, path), sorted; links and specials skipped."""
    try:
        excluded = os.stat(exclude)
        excluded_id: Optional[Tuple[int, int]] = (excluded.st_dev, excluded.st_ino)
    except OSError:
        excluded_id = None
    root = str(workdir)
    files: List[Tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir == ".":
            if not save_data:
                dirnames[:] = [d for d in dirnames if d not in (INPUT_DIR, OUTPUT_DIR)]
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for filename in sorted(filenames):
            full = os.path.join(dirpath, filename)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):  # symlinks, fifos, sockets, devices
                continue
            if excluded_id == (st.st_dev, st.st_ino):  # the package itself, saved inside the workspace
                continue
            name = filename if rel_dir == "." else f"{Path(rel_dir).as_posix()}/{filename}"
            if name == MANIFEST_FILE:  # a manifest left from an earlier package: it is rebuilt
                continue
            files.append((name, Path(full)))
    files.sort(key=lambda item: (item[0] != STATUS_FILE, item[0]))
    return files


def _write_zip(
    tmp: Path, files: List[Tuple[str, Path]], format_version: int, save_data: bool, force_stored: Set[str]
) -> Set[str]:
    """Write the zip and its manifest to `tmp`, fsync it; return deflated names that compressed too well."""
    entries: List[Dict[str, Any]] = []
    too_compressible: Set[str] = set()
    with open(tmp, "wb") as raw:
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for name, src in files:
                try:
                    fd = os.open(src, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
                except FileNotFoundError:  # removed while saving: nothing to package
                    continue
                with os.fdopen(fd, "rb") as f:
                    st = os.fstat(f.fileno())
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    stored = name in force_stored or _is_stored(name)
                    info = zipfile.ZipInfo(name, date_time=_zip_time(st.st_mtime))
                    info.external_attr = (stat.S_IFREG | (st.st_mode & 0o777)) << 16
                    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                    info.file_size = st.st_size
                    digest = hashlib.sha256()
                    size = 0
                    with zf.open(info, "w", force_zip64=st.st_size > 2**30) as out:
                        while True:
                            chunk = f.read(CHUNK)
                            if not chunk:
                                break
                            digest.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                if not stored and size > BOMB_MIN_SIZE and size / max(info.compress_size, 1) > WRITE_MAX_RATIO:
                    too_compressible.add(name)
                entries.append({"name": name, "size": size, "sha256": digest.hexdigest()})
            manifest = {
                "manifest_version": MANIFEST_VERSION,
                "format_version": format_version,
                "save_data": bool(save_data),
                "entries": entries,
            }
            info = zipfile.ZipInfo(MANIFEST_FILE, date_time=_zip_time(time.time()))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8"))
        raw.flush()
        os.fsync(raw.fileno())
    return too_compressible


def _is_stored(name: str) -> bool:
    """Whether an entry is an already dense model/binary file that deflate would only slow down."""
    base = name.rsplit("/", 1)[-1].lower()
    return Path(base).suffix in STORED_SUFFIXES or ".data-" in base  # TF variables.data-00000-of-00001


def _zip_time(timestamp: float) -> Tuple[int, int, int, int, int, int]:
    """A zip date_time for `timestamp`, clamped into the 1980-2107 range zip can hold."""
    t = time.localtime(timestamp)[:6]
    if t[0] < 1980:
        return (1980, 1, 1, 0, 0, 0)
    if t[0] > 2107:
        return (2107, 12, 31, 23, 59, 58)
    return t  # type: ignore[return-value]


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------
# Reading and validation
# ------------------------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict:
    """Read and check the manifest of the package `path` (entries are not verified: see validate_archive)."""
    with _open_zip(Path(path)) as zf:
        where = str(path)
        infos = [i for i in zf.infolist() if i.filename == MANIFEST_FILE]
        if len(infos) != 1:
            raise PackageError(
                f"{where}: entry {MANIFEST_FILE!r} is "
                f"{'missing' if not infos else 'duplicated'}: not a .nav package."
            )
        return _parse_manifest(_read_small(zf, infos[0], where), where)


def validate_archive(
    path: Path, max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES, max_ratio: float = DEFAULT_MAX_RATIO
) -> dict:
    """Check the package `path` completely without writing anything; return its manifest."""
    path = Path(path)
    with _open_zip(path) as zf:
        return _validate(zf, str(path), max_unpacked_bytes, max_ratio)


def read_package_status(path: Path) -> NavigatorStatus:
    """The NavigatorStatus of the package `path`, read from the zip after validate_archive (nothing is
    extracted); used by `model-navigator inspect` and `report`."""
    path = Path(path)
    validate_archive(path)  # names, sizes, checksums and status.yaml itself, before it is used
    where = str(path)
    with _open_zip(path) as zf:
        infos = [i for i in zf.infolist() if i.filename == STATUS_FILE]
        if len(infos) != 1:
            raise PackageError(f"{where}: entry {STATUS_FILE!r} is missing or duplicated: not a .nav package.")
        data = _parse_status(_read_small(zf, infos[0], where), f"{where}: entry {STATUS_FILE!r}")
    return NavigatorStatus.from_dict(data)


def _open_zip(path: Path) -> zipfile.ZipFile:
    """Open a zip for reading, turning every way it can be broken into a PackageError."""
    if not path.is_file():
        raise PackageError(f"{str(path)!r} does not exist or is not a file: no .nav package to read.")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        if _starts_as_zip(path):
            raise PackageError(
                f"{str(path)!r} is truncated: it starts as a zip archive but the directory at its end is missing "
                f"(the file was cut short, e.g. an interrupted download or copy; {e})."
            ) from e
        raise PackageError(f"{str(path)!r} is not a .nav package: not a zip file ({e}).") from e
    except (OSError, EOFError, ValueError, NotImplementedError, zipfile.LargeZipFile) as e:
        raise PackageError(f"{str(path)!r} cannot be read as a zip archive: {e}") from e
    first = min((info.header_offset for info in zf.infolist()), default=0)
    if first > 0:
        # zipfile found the end record of a zip stored inside this one (a TorchScript model.pt, an
        # npz): the package's own directory, at the very end, was cut off.
        zf.close()
        raise PackageError(
            f"{str(path)!r} is truncated: the zip directory at its end is missing and the one found belongs to "
            f"an archive stored inside it (at byte {first}); the file was cut short, e.g. an interrupted "
            f"download or copy."
        )
    return zf


def _starts_as_zip(path: Path) -> bool:
    """Whether the file begins with a zip local-file header (a zip whose end is missing)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _validate(zf: zipfile.ZipFile, where: str, max_unpacked_bytes: int, max_ratio: float) -> Dict[str, Any]:
    """All checks of validate_archive on an open zip; returns the manifest."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise PackageError(f"{where}: {len(infos)} entries, more than the {MAX_ENTRIES} a package may hold.")

    # 1. Names and entry types, before anything is read.
    files: Dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        for candidate in {name, info.orig_filename}:
            problem = _name_problem(candidate)
            if problem:
                raise PackageError(f"{where}: entry {candidate!r} refused: {problem}.")
        problem = _type_problem(info)
        if problem:
            raise PackageError(f"{where}: entry {name!r} refused: {problem}.")
        if not info.is_dir():
            files[name] = info
    conflicts = _name_conflicts([i.filename for i in infos])
    if conflicts:
        name, problem = conflicts[0]
        raise PackageError(f"{where}: entry {name!r} refused: {problem}.")
    _check_overlaps(zf, infos, where)

    # 2. Zip bomb limits, from the declared sizes (extraction enforces them while it writes).
    total = sum(i.file_size for i in infos)
    if total > max_unpacked_bytes:
        raise PackageError(
            f"{where}: entries unpack to {total} bytes, more than max_unpacked_bytes={max_unpacked_bytes} "
            f"(possible zip bomb); raise the limit if the package is trusted."
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > BOMB_MIN_SIZE and ratio > max_ratio:
            raise PackageError(
                f"{where}: entry {info.filename!r} refused: compression ratio {ratio:.0f} exceeds "
                f"max_ratio={max_ratio:g} ({info.compress_size} -> {info.file_size} bytes; possible zip bomb)."
            )

    # 3. Metadata: manifest and status.yaml, read with safe parsers only.
    for required in (STATUS_FILE, MANIFEST_FILE):
        if required not in files:
            raise PackageError(f"{where}: entry {required!r} is missing at the archive root: not a .nav package.")
    manifest = _parse_manifest(_read_small(zf, files[MANIFEST_FILE], where), where)
    status = _parse_status(_read_small(zf, files[STATUS_FILE], where), f"{where}: entry {STATUS_FILE!r}")
    if status["format_version"] != manifest["format_version"]:
        raise PackageError(
            f"{where}: entry {MANIFEST_FILE!r} says format_version {manifest['format_version']} but "
            f"{STATUS_FILE} has {status['format_version']}: the package was altered."
        )

    # 4. The manifest must describe exactly the entries present.
    listed = {entry["name"]: entry for entry in manifest["entries"]}
    for name in files:
        if name != MANIFEST_FILE and name not in listed:
            raise PackageError(f"{where}: entry {name!r} refused: not listed in {MANIFEST_FILE} (added after saving).")
    for name, entry in listed.items():
        if name not in files:
            raise PackageError(f"{where}: entry {name!r} is listed in {MANIFEST_FILE} but missing from the archive.")
        if files[name].file_size != entry["size"]:
            raise PackageError(
                f"{where}: entry {name!r} refused: size {files[name].file_size} does not match the "
                f"{entry['size']} bytes in {MANIFEST_FILE} (tampered or corrupt)."
            )

    # 5. Contents: one streaming pass checks each CRC-32 (what testzip does) and each sha256, and
    #    loads every npz without pickle (from a spooled copy: the entry is read once).
    for name, entry in listed.items():
        is_npz = name.lower().endswith(".npz")
        with tempfile.SpooledTemporaryFile(max_size=NPZ_SPOOL_BYTES) if is_npz else contextlib.nullcontext() as copy:
            size, digest = _hash_entry(zf, files[name], where, copy)
            if size != entry["size"]:
                raise PackageError(
                    f"{where}: entry {name!r} refused: holds {size} bytes, {MANIFEST_FILE} says {entry['size']}."
                )
            if digest != entry["sha256"]:
                raise PackageError(
                    f"{where}: entry {name!r} refused: sha256 checksum does not match {MANIFEST_FILE} "
                    f"(tampered or corrupt)."
                )
            if is_npz:
                copy.seek(0)
                check_npz_safe(copy, where=f"{where}: entry {name!r}")
    return manifest


def _name_problem(name: str) -> Optional[str]:
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


def _type_problem(info: zipfile.ZipInfo) -> Optional[str]:
    """Why an entry's kind is refused: links, devices, fifos, encrypted or exotic entries."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "symbolic link entries are not allowed"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return f"special file (mode {oct(mode)}) is not a regular file"
    if info.is_dir():
        if kind == stat.S_IFREG:
            return "folder name on a regular-file entry"
        if info.file_size:
            return "folder entry with content"
    elif kind == stat.S_IFDIR:
        return "folder mode on a file entry"
    if info.flag_bits & 0x1:
        return "encrypted entry"
    if info.compress_type not in _SUPPORTED_COMPRESSION:
        return f"unsupported compression method {info.compress_type}"
    return None


def _name_conflicts(names: List[str]) -> List[Tuple[str, str]]:
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


def _check_overlaps(zf: zipfile.ZipFile, infos: List[zipfile.ZipInfo], where: str) -> None:
    """Refuse entries whose data overlap (the overlapping-entries zip bomb) or run past the file."""
    archive_size = zf.fp.seek(0, os.SEEK_END) if zf.fp is not None else None
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for current, following in zip(ordered, ordered[1:] + [None]):
        end = current.header_offset + _ZIP_LOCAL_HEADER_SIZE + current.compress_size
        limit = following.header_offset if following is not None else archive_size
        if limit is not None and end > limit:
            raise PackageError(
                f"{where}: entry {current.filename!r} refused: its data overlap "
                f"{'entry ' + repr(following.filename) if following is not None else 'the end of the file'} "
                f"(malformed archive or zip bomb)."
            )


def _read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """Read a metadata entry fully, refusing one larger than MAX_METADATA_BYTES."""
    if info.file_size > MAX_METADATA_BYTES:
        raise PackageError(f"{where}: entry {info.filename!r} refused: {info.file_size} bytes, too large for metadata.")
    try:
        with zf.open(info) as f:
            return f.read(MAX_METADATA_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as e:
        raise PackageError(f"{where}: entry {info.filename!r} cannot be read: {e}") from e


def _hash_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, copy: Optional[BinaryIO] = None
                ) -> Tuple[int, str]:
    """Stream one entry: (bytes produced, sha256 hex), writing them to `copy` too when given;
    CRC-32 is checked by zipfile at the end."""
    digest = hashlib.sha256()
    size = 0
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > info.file_size:
                    raise PackageError(f"{where}: entry {info.filename!r} refused: unpacks beyond its declared size.")
                digest.update(chunk)
                if copy is not None:
                    copy.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as e:
        raise PackageError(f"{where}: entry {info.filename!r} is corrupt: {e}") from e
    return size, digest.hexdigest()


class _NoAliasSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that also refuses anchors/aliases (a 'billion laughs' defence)."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"YAML alias *{event.anchor} is not allowed in a package", event.start_mark
            )
        return super().compose_node(parent, index)


def _parse_status(data: bytes, where: str) -> Dict[str, Any]:
    """Parse status.yaml bytes as plain, safe YAML and check them with NavigatorStatus.from_dict."""
    try:
        text = data.decode("utf-8")
        loaded = yaml.load(text, Loader=_NoAliasSafeLoader)  # safe_load semantics, aliases refused
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PackageError(f"{where} is not safe, plain YAML and was not loaded: {first}") from e
    try:
        NavigatorStatus.from_dict(loaded)
    except PackageError as e:
        raise PackageError(f"{where}: {e}") from e
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise PackageError(f"{where} is malformed: {e}") from e
    return loaded


def _parse_manifest(data: bytes, where: str) -> Dict[str, Any]:
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


def _is_int(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


# ------------------------------------------------------------------------------------------------
# Extraction
# ------------------------------------------------------------------------------------------------


def extract_archive(path: Path, target: Path) -> None:
    """Validate the package `path`, then extract it into the new or empty folder `target`."""
    path = Path(path)
    target = Path(target)
    if target.exists():
        if not target.is_dir():
            raise UserInputError(f"`target` {str(target)!r} exists and is not a folder.")
        if any(target.iterdir()):
            raise UserInputError(
                f"`target` {str(target)!r} is not empty; extract a package into a new or empty folder."
            )
    with _open_zip(path) as zf:
        where = str(path)
        manifest = _validate(zf, where, DEFAULT_MAX_UNPACKED_BYTES, DEFAULT_MAX_RATIO)
        expected = {entry["name"]: entry for entry in manifest["entries"]}
        created_target = not target.exists()
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        written: List[Path] = []  # files and folders this call made, in creation order
        try:
            for info in zf.infolist():
                if info.filename == MANIFEST_FILE:
                    continue  # archive metadata, not part of the workspace
                parts = info.filename.rstrip("/").split("/")
                dest = root.joinpath(*parts)
                if not dest.resolve().is_relative_to(root) or dest.resolve() == root:
                    raise PackageError(f"{where}: entry {info.filename!r} refused: resolves outside {str(target)!r}.")
                folders = parts if info.is_dir() else parts[:-1]
                _make_folders(root, folders, written, where, info.filename)
                if info.is_dir():
                    continue
                # npz files were loaded without pickle by _validate; _extract_entry checks these are
                # the very bytes (sha256)
                _extract_entry(zf, info, dest, expected[info.filename], written, where)
        except BaseException:
            _remove_written(written, root if created_target else None)
            raise


def _make_folders(root: Path, parts: List[str], written: List[Path], where: str, name: str) -> None:
    """Create the folders `parts` under root one by one, refusing to pass through anything but folders."""
    current = root
    for part in parts:
        current = current / part
        try:
            os.mkdir(current)
            written.append(current)
        except FileExistsError:
            st = os.lstat(current)
            if not stat.S_ISDIR(st.st_mode):
                raise PackageError(f"{where}: entry {name!r} refused: {current.name!r} is not a folder.") from None


def _extract_entry(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, entry: Dict[str, Any], written: List[Path], where: str
) -> None:
    """Stream one file entry to `dest`, enforcing the declared size and the manifest sha256."""
    mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY, mode)
    except FileExistsError:
        raise PackageError(f"{where}: entry {info.filename!r} refused: would overwrite an extracted file.") from None
    written.append(dest)
    limit = min(info.file_size, entry["size"])
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, zf.open(info) as src:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise PackageError(
                        f"{where}: entry {info.filename!r} refused: unpacks beyond its declared {limit} bytes "
                        f"(zip bomb or altered archive)."
                    )
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as e:
        raise PackageError(f"{where}: entry {info.filename!r} is corrupt: {e}") from e
    if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
        raise PackageError(
            f"{where}: entry {info.filename!r} refused: extracted bytes do not match the size/sha256 in "
            f"{MANIFEST_FILE} (the archive changed while it was read)."
        )


def _remove_written(written: List[Path], created_target: Optional[Path]) -> None:
    """Undo a failed extraction: remove what this call wrote, newest first, and the target it created."""
    for item in reversed(written):
        try:
            if item.is_dir() and not item.is_symlink():
                item.rmdir()
            else:
                item.unlink()
        except OSError:
            pass
    if created_target is not None:
        try:
            created_target.rmdir()
        except OSError:
            pass


def check_npz_safe(
    path: Union[Path, str, BinaryIO], *, where: Optional[str] = None,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES, max_ratio: float = DEFAULT_MAX_RATIO
) -> None:
    """Load every array of the npz `path` (a file, or a seekable binary file object such as an
    entry copied out of a package) without pickle; refuse object arrays, bombs and broken files."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
    where = where or str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise PackageError(f"{where} is not a valid .npz file (not a zip archive): {e}") from e
    if sum(i.file_size for i in infos) > max_unpacked_bytes:
        raise PackageError(f"{where} refused: its arrays unpack beyond max_unpacked_bytes={max_unpacked_bytes}.")
    for info in infos:
        if info.file_size > BOMB_MIN_SIZE and info.file_size / max(info.compress_size, 1) > max_ratio:
            raise PackageError(f"{where} refused: array {info.filename!r} exceeds max_ratio={max_ratio:g} (zip bomb).")
    key = None
    if not isinstance(path, Path):
        path.seek(0)
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise PackageError(f"{where} is not an .npz archive of arrays.")
            for key in data.files:
                array = data[key]
                if array.dtype.hasobject:
                    raise PackageError(f"{where} refused: array {key!r} has object dtype (Python objects).")
                del array
    except PackageError:
        raise
    except ValueError as e:
        what = f"array {key!r}" if key is not None else "the file"
        raise PackageError(
            f"{where} refused: {what} cannot be loaded without pickle (object arrays / pickled data are "
            f"not allowed in packages): {e}"
        ) from e
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise PackageError(f"{where} is not a valid .npz file: {e}") from e
