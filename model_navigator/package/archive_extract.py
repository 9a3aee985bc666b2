"""Extracting a .nav package into a new or empty folder: the archive's structure, metadata and npz
entries are validated first; every other entry is streamed once, its size and sha256 (and a
deflated one's CRC-32) enforced while it is written (the checks validate_archive makes, in the same
pass); no entry lands
outside the folder or passes through anything but a folder, no file is overwritten, and a failed
extraction removes what it wrote."""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Any, Collection, Dict, List, Optional

from model_navigator.core.errors import PackageError, UserInputError
from model_navigator.core.workspace import LOG_FILE, PACKAGE_LOG_FILE
from model_navigator.package.archive_format import (
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_UNPACKED_BYTES,
    MANIFEST_FILE,
    O_BINARY,
    O_NOFOLLOW,
)
from model_navigator.package.archive_stream import Buffers, ChunkHasher, copied_chunks, hashing_pool, new_buffers
from model_navigator.package.archive_validate import open_zip, validate_zip


def extract_archive(path: Path, target: Path, skip: Collection[str] = ()) -> None:
    """Validate the package `path`, then extract it into the new or empty folder `target`; the
    entries named in `skip` are not extracted (files of that name the caller wrote may be there)."""
    path = Path(path)
    target = Path(target)
    if target.exists():
        if not target.is_dir():
            raise UserInputError(f"`target` {str(target)!r} exists and is not a folder.")
        if any(p.name not in skip for p in target.iterdir()):
            raise UserInputError(
                f"`target` {str(target)!r} is not empty; extract a package into a new or empty folder."
            )
    with open_zip(path) as zf:
        where = str(path)
        manifest = validate_zip(zf, where, DEFAULT_MAX_UNPACKED_BYTES, DEFAULT_MAX_RATIO, read_data=False)
        expected = {entry["name"]: entry for entry in manifest["entries"]}
        # target and the folders above it that this call makes, deepest first: removed on failure
        created = [folder for folder in [target, *target.absolute().parents] if not folder.exists()]
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        written: List[Path] = []  # files and folders this call made, in creation order
        try:
            buffers = new_buffers()
            with hashing_pool() as pool:
                for info in zf.infolist():
                    if info.filename == MANIFEST_FILE or info.filename in skip:
                        continue  # archive metadata, not part of the workspace; or written by the caller
                    parts = info.filename.rstrip("/").split("/")
                    if parts == [LOG_FILE]:  # a package of an earlier version: its log is the package's log
                        parts = [PACKAGE_LOG_FILE]
                    dest = root.joinpath(*parts)
                    if not dest.resolve().is_relative_to(root) or dest.resolve() == root:
                        raise PackageError(
                            f"{where}: entry {info.filename!r} refused: resolves outside {str(target)!r}."
                        )
                    _make_folders(root, parts if info.is_dir() else parts[:-1], written, where, info.filename)
                    if not info.is_dir():
                        # npz files were loaded without pickle by validate_zip; _extract_entry checks
                        # these are the very bytes (sha256)
                        _extract_entry(zf, info, dest, expected[info.filename], written, where, pool, buffers)
        except BaseException:
            _remove_written(written, created)
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
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    dest: Path,
    entry: Dict[str, Any],
    written: List[Path],
    where: str,
    pool: Any = None,
    buffers: Optional[Buffers] = None,
) -> None:
    """Stream one file entry to `dest` (a stored one copied in the kernel, as `cp` does), enforcing the
    declared size and the manifest sha256 of the bytes written (hashed on `pool`'s thread; it makes a
    stored entry's CRC-32 pass redundant: a deflated one's is checked by zipfile)."""
    mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
    try:
        fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_BINARY, mode)
    except FileExistsError:
        raise PackageError(f"{where}: entry {info.filename!r} refused: would overwrite an extracted file.") from None
    written.append(dest)
    limit = min(info.file_size, entry["size"])
    hasher = ChunkHasher(pool)
    size = 0
    try:
        for chunk in copied_chunks(
            zf, info, fd, check_crc=False, buffers=buffers
        ):  # each chunk is in the file (read back) when it comes
            size += len(chunk)
            if size > limit:
                raise PackageError(
                    f"{where}: entry {info.filename!r} refused: unpacks beyond its declared {limit} bytes "
                    f"(zip bomb or altered archive)."
                )
            hasher.update(chunk)
        digest = hasher.hexdigest()
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as e:
        raise PackageError(f"{where}: entry {info.filename!r} is corrupt: {e}") from e
    finally:
        os.close(fd)
    if size != entry["size"] or digest != entry["sha256"]:
        raise PackageError(
            f"{where}: entry {info.filename!r} refused: extracted bytes do not match the size/sha256 in "
            f"{MANIFEST_FILE} (tampered or corrupt)."
        )


def _remove_written(written: List[Path], created: List[Path]) -> None:
    """Undo a failed extraction: remove what this call wrote, newest first, then the folders it created
    for the target (deepest first)."""
    for item in [*reversed(written), *created]:
        try:
            if item.is_dir() and not item.is_symlink():
                item.rmdir()
            else:
                item.unlink()
        except OSError:
            pass
