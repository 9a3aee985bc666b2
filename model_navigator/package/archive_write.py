"""Writing a .nav package: the workspace zipped to a temporary file beside the target (dense data
stored, the rest deflated), verified with the reader's own validation (structure, metadata, npz),
then renamed into place (an existing package is replaced only with `override`, and a failed write
leaves nothing behind)."""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import stat
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional, Set, Tuple

from model_navigator.core.errors import PackageError, UserInputError
from model_navigator.core.status import STATUS_FILE
from model_navigator.core.workspace import INPUT_DIR, LOG_FILE, OUTPUT_DIR, PACKAGE_LOG_FILE
from model_navigator.package.archive_format import (
    BOMB_MIN_SIZE,
    DEFAULT_MAX_RATIO,
    MANIFEST_FILE,
    MANIFEST_VERSION,
    O_BINARY,
    O_NOFOLLOW,
    name_conflicts,
    name_problem,
    parse_status,
)
from model_navigator.package.archive_stream import Buffers, ChunkHasher, hashing_pool, new_buffers
from model_navigator.package.archive_validate import validate_zip
from model_navigator.package.save_temporaries import temporary_prefix

# The writer stores (does not deflate) an entry that deflates better than this, so a package it
# writes always passes the reader's ratio check, with a margin for a stricter `max_ratio`.
WRITE_MAX_RATIO = 100.0

# A file larger than this is sampled; a sample that deflate shrinks by less than 20 % means dense
# data (fp32 weights deflate to ~0.9 of their size at ~40 MB/s: the time buys nothing).
SNIFF_MIN_SIZE = 2**20
SNIFF_SAMPLE = 128 * 2**10
SNIFF_MAX_RATIO = 0.8

# Model files are dense binary weights: deflate saves ~7 % at ~25x the time, so store them.
# Files of other names (ONNX external data has none) are stored when a sample of them does not
# deflate below SNIFF_MAX_RATIO of its size (see _compresses).
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
    status = parse_status(status_file.read_bytes(), str(status_file))
    format_version = status["format_version"]

    with tempfile.TemporaryDirectory(prefix="model-navigator-log-") as scratch:
        files = _package_log(_collect_files(workdir, save_data=save_data, exclude=path), Path(scratch))
        _write_checked(workdir, path, files, format_version, save_data)


def _package_log(files: List[Tuple[str, Path]], scratch: Path) -> List[Tuple[str, Path]]:
    """The workspace's navigator.log goes into the package as export.log; a workdir loaded from a
    package has both (the package's log and what ran since), which are joined in that order."""
    logs = {name: p for name, p in files if name in (LOG_FILE, PACKAGE_LOG_FILE)}
    if not logs:
        return files
    rest = [(name, p) for name, p in files if name not in logs]
    if len(logs) == 1:
        merged = next(iter(logs.values()))
    else:
        merged = scratch / PACKAGE_LOG_FILE
        with open(merged, "wb") as out:
            for name in (PACKAGE_LOG_FILE, LOG_FILE):
                out.write(logs[name].read_bytes())
    rest.append((PACKAGE_LOG_FILE, merged))
    rest.sort(key=lambda item: (item[0] != STATUS_FILE, item[0]))
    return rest


def _write_checked(
    workdir: Path, path: Path, files: List[Tuple[str, Path]], format_version: Any, save_data: bool
) -> None:
    """Write `files` to a temporary zip beside `path`, validate it, and rename it into place."""
    problems = name_conflicts([name for name, _ in files])
    for name, _ in files:
        problem = name_problem(name)
        if problem:
            problems.append((name, problem))
    if problems:
        name, problem = problems[0]
        raise PackageError(f"Cannot package {str(workdir / name)!r}: {problem}.")

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp: Optional[Path] = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent)
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
            # Integrity, not policy: the size cap is the reader's business, not the writer's. The data
            # bytes are not read back: their sha256 were taken from the very chunks written.
            validate_zip(zf, str(tmp), max_unpacked_bytes=2**63, max_ratio=DEFAULT_MAX_RATIO, read_data=False)
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
    buffers = new_buffers()  # reused: no allocation per chunk
    with open(tmp, "wb") as raw, hashing_pool() as pool, EarlyFlush(raw.fileno()) as flusher:
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for name, src in files:
                try:
                    fd = os.open(src, os.O_RDONLY | O_NOFOLLOW | O_BINARY)
                except FileNotFoundError:  # removed while saving: nothing to package
                    continue
                with os.fdopen(fd, "rb") as f:
                    st = os.fstat(f.fileno())
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    stored = name in force_stored or _is_stored(name, f, st.st_size)
                    info = zipfile.ZipInfo(name, date_time=_zip_time(st.st_mtime))
                    info.external_attr = (stat.S_IFREG | (st.st_mode & 0o777)) << 16
                    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                    info.file_size = st.st_size
                    size, digest = _copy_in(zf, info, f, buffers, pool, flusher)
                if not stored and size > BOMB_MIN_SIZE and size / max(info.compress_size, 1) > WRITE_MAX_RATIO:
                    too_compressible.add(name)
                entries.append({"name": name, "size": size, "sha256": digest})
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


class EarlyFlush:
    """Writes the archive's pages back to disk while it is still being written: every FLUSH_EVERY
    bytes an fdatasync starts on a thread of its own (one at a time). The kernel would otherwise
    start writing back only past its dirty threshold (~10 % of RAM), so the final fsync of a
    multi-GiB package waited for all of it; now disk and CPU work overlap (use as a context manager)."""

    FLUSH_EVERY = 64 * 2**20

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._since = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nav-flush")
        self._pending: Optional[concurrent.futures.Future] = None

    def wrote(self, n: int) -> None:
        """Count `n` more bytes written; start a flush when enough are and none runs. A flush that
        failed raises its OSError here (the kernel reports a writeback error once per file: the final
        fsync would not see it again)."""
        self._since += n
        if self._since >= self.FLUSH_EVERY and (self._pending is None or self._pending.done()):
            if self._pending is not None:
                self._pending.result()
            self._since = 0
            self._pending = self._pool.submit(os.fdatasync if hasattr(os, "fdatasync") else os.fsync, self._fd)

    def __enter__(self) -> "EarlyFlush":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._pool.shutdown(wait=True)  # before the file is closed
        if exc[0] is None and self._pending is not None:
            self._pending.result()


def _copy_in(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    f: io.BufferedReader,
    buffers: Buffers,
    pool: Any,
    flusher: EarlyFlush,
) -> Tuple[int, str]:
    """Stream `f` into the new entry `info`: (bytes written, their sha256), hashed on `pool`'s thread
    while the chunk is compressed/written, the two buffers taking turns."""
    hasher = ChunkHasher(pool)
    size = 0
    turn = 0
    with zf.open(info, "w", force_zip64=info.file_size > 2**30) as out:
        while True:
            buffer = buffers[turn]
            turn ^= 1
            n = f.readinto(buffer)
            if not n:
                break
            chunk = buffer[:n]
            hasher.update(chunk)
            out.write(chunk)
            size += n
            flusher.wrote(n)
    return size, hasher.hexdigest()


def _is_stored(name: str, f: BinaryIO, size: int) -> bool:
    """Whether an entry is dense data that deflate would only slow down: a model/binary file by its
    name, or any file past SNIFF_MIN_SIZE whose sampled bytes do not compress (`f` is left at 0)."""
    base = name.rsplit("/", 1)[-1].lower()
    if Path(base).suffix in STORED_SUFFIXES or ".data-" in base:  # TF variables.data-00000-of-00001
        return True
    return size > SNIFF_MIN_SIZE and not _compresses(f, size)


def _compresses(f: BinaryIO, size: int) -> bool:
    """Whether samples from the start, middle and end of `f` deflate (fast level) below
    SNIFF_MAX_RATIO of their size: ~10 ms, against ~25 ms per MiB deflating the whole file."""
    raw = compressed = 0
    for offset in (0, size // 2 - SNIFF_SAMPLE // 2, size - SNIFF_SAMPLE):
        f.seek(max(offset, 0))
        sample = f.read(SNIFF_SAMPLE)
        raw += len(sample)
        compressed += len(zlib.compress(sample, 1))
    f.seek(0)
    return compressed < SNIFF_MAX_RATIO * raw


def _zip_time(timestamp: float) -> Tuple[int, int, int, int, int, int]:
    """A zip date_time for `timestamp`, clamped into the 1980-2107 range zip can hold."""
    t = time.localtime(timestamp)[:6]
    if t[0] < 1980:
        return (1980, 1, 1, 0, 0, 0)
    if t[0] > 2107:
        return (2107, 12, 31, 23, 59, 58)
    return t


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
