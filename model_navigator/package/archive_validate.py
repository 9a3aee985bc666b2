"""Reading a .nav package defensively: `validate_archive` is the one validation every reader runs
(nav.load, `inspect`, `report`, `triton`, through read_package_status and extract_archive, which
checks each entry's bytes while it writes them). It
refuses anything odd -- unsafe names, links and special entries, overlapping or oversized entries
(zip bombs), unsafe metadata, checksum mismatches, npz files that need pickle -- before a byte is
written anywhere, and it executes nothing."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Tuple

from model_navigator.core.errors import PackageError
from model_navigator.core.status import STATUS_FILE, NavigatorStatus
from model_navigator.package.archive_format import (
    BOMB_MIN_SIZE,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_UNPACKED_BYTES,
    MANIFEST_FILE,
    MAX_ENTRIES,
    MAX_METADATA_BYTES,
    name_conflicts,
    name_problem,
    parse_manifest,
    parse_status,
)
from model_navigator.package.archive_stream import Buffers, ChunkHasher, entry_chunks, hashing_pool, new_buffers
from model_navigator.package.npz_check import check_npz_safe

NPZ_SPOOL_BYTES = 64 * 2**20  # an npz entry is checked from memory up to this size, from a temp file beyond

_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_ZIP_LOCAL_HEADER_SIZE = 30


def read_manifest(path: Path) -> dict:
    """Read and check the manifest of the package `path` (entries are not verified: see validate_archive)."""
    with open_zip(Path(path)) as zf:
        where = str(path)
        infos = [i for i in zf.infolist() if i.filename == MANIFEST_FILE]
        if len(infos) != 1:
            raise PackageError(
                f"{where}: entry {MANIFEST_FILE!r} is {'missing' if not infos else 'duplicated'}: not a .nav package."
            )
        return parse_manifest(_read_small(zf, infos[0], where), where)


def validate_archive(
    path: Path,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    read_data: bool = True,
) -> dict:
    """Check the package `path` completely without writing anything; return its manifest.
    `read_data=False` leaves the entries' bytes (but the npz) to a caller that checks them as it
    extracts them (extract_archive)."""
    path = Path(path)
    with open_zip(path) as zf:
        return validate_zip(zf, str(path), max_unpacked_bytes, max_ratio, read_data)


def read_package_status(path: Path) -> NavigatorStatus:
    """The NavigatorStatus of the package `path`, read from the zip after validate_archive (nothing is
    extracted); used by `model-navigator inspect` and `report`."""
    path = Path(path)
    validate_archive(path)  # names, sizes, checksums and status.yaml itself, before it is used
    where = str(path)
    with open_zip(path) as zf:
        infos = [i for i in zf.infolist() if i.filename == STATUS_FILE]
        if len(infos) != 1:
            raise PackageError(f"{where}: entry {STATUS_FILE!r} is missing or duplicated: not a .nav package.")
        data = parse_status(_read_small(zf, infos[0], where), f"{where}: entry {STATUS_FILE!r}")
    return NavigatorStatus.from_dict(data)


def open_zip(path: Path) -> zipfile.ZipFile:
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


def validate_zip(
    zf: zipfile.ZipFile, where: str, max_unpacked_bytes: int, max_ratio: float, read_data: bool = True
) -> Dict[str, Any]:
    """All checks of validate_archive on an open zip, cheapest first; returns the manifest.

    `read_data=False` reads only the metadata and the npz entries (checked as always): for a caller
    that streams every other entry itself and checks its size and sha256 in that same pass
    (extraction while it writes, the writer while it zips), so no entry is read twice."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise PackageError(f"{where}: {len(infos)} entries, more than the {MAX_ENTRIES} a package may hold.")
    files = _check_names_and_types(infos, where)  # before anything is read
    _check_overlaps(zf, infos, where)
    _check_bomb_limits(infos, where, max_unpacked_bytes, max_ratio)
    manifest = _check_metadata(zf, files, where)
    listed = _check_listing(files, manifest, where)
    _check_contents(zf, files, listed, where, read_data)
    return manifest


def _check_names_and_types(infos: List[zipfile.ZipInfo], where: str) -> Dict[str, zipfile.ZipInfo]:
    """Refuse unsafe names, refused entry kinds and conflicting names; return the file entries by name."""
    files: Dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        for candidate in {name, info.orig_filename}:
            problem = name_problem(candidate)
            if problem:
                raise PackageError(f"{where}: entry {candidate!r} refused: {problem}.")
        problem = _type_problem(info)
        if problem:
            raise PackageError(f"{where}: entry {name!r} refused: {problem}.")
        if not info.is_dir():
            files[name] = info
    conflicts = name_conflicts([i.filename for i in infos])
    if conflicts:
        name, problem = conflicts[0]
        raise PackageError(f"{where}: entry {name!r} refused: {problem}.")
    return files


def _check_bomb_limits(infos: List[zipfile.ZipInfo], where: str, max_unpacked_bytes: int, max_ratio: float) -> None:
    """Zip bomb limits, from the declared sizes (extraction enforces them while it writes)."""
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


def _check_metadata(zf: zipfile.ZipFile, files: Dict[str, zipfile.ZipInfo], where: str) -> Dict[str, Any]:
    """Read the manifest and status.yaml with safe parsers only and check they agree; return the manifest."""
    for required in (STATUS_FILE, MANIFEST_FILE):
        if required not in files:
            raise PackageError(f"{where}: entry {required!r} is missing at the archive root: not a .nav package.")
    manifest = parse_manifest(_read_small(zf, files[MANIFEST_FILE], where), where)
    status = parse_status(_read_small(zf, files[STATUS_FILE], where), f"{where}: entry {STATUS_FILE!r}")
    if status["format_version"] != manifest["format_version"]:
        raise PackageError(
            f"{where}: entry {MANIFEST_FILE!r} says format_version {manifest['format_version']} but "
            f"{STATUS_FILE} has {status['format_version']}: the package was altered."
        )
    return manifest


def _check_listing(
    files: Dict[str, zipfile.ZipInfo], manifest: Dict[str, Any], where: str
) -> Dict[str, Dict[str, Any]]:
    """The manifest must describe exactly the entries present, with their declared sizes; return its
    entries by name."""
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
    return listed


def _check_contents(
    zf: zipfile.ZipFile,
    files: Dict[str, zipfile.ZipInfo],
    listed: Dict[str, Dict[str, Any]],
    where: str,
    read_data: bool = True,
) -> None:
    """One streaming pass checks each entry's sha256 (and a deflated one's CRC-32; a stored one's is
    redundant with the sha256 of the same bytes), and loads every npz without pickle (from a spooled
    copy: the entry is read once); only the npz when not `read_data`."""
    buffers = new_buffers(max((files[name].file_size for name in listed), default=0))
    with hashing_pool() as pool:
        for name, entry in listed.items():
            is_npz = name.lower().endswith(".npz")
            if is_npz or read_data:
                _check_entry(zf, files[name], entry, where, is_npz, pool, buffers)


def _check_entry(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    entry: Dict[str, Any],
    where: str,
    is_npz: bool,
    pool: Any,
    buffers: Optional[Buffers] = None,
) -> None:
    """One entry's size and sha256 against the manifest (which makes a stored entry's CRC-32 redundant;
    zipfile checks a deflated one's), an npz loaded without pickle."""
    name = info.filename
    with tempfile.SpooledTemporaryFile(max_size=NPZ_SPOOL_BYTES) if is_npz else contextlib.nullcontext() as copy:
        size, digest = _hash_entry(zf, info, where, copy, pool, check_crc=False, buffers=buffers)
        if size != entry["size"]:
            raise PackageError(
                f"{where}: entry {name!r} refused: holds {size} bytes, {MANIFEST_FILE} says {entry['size']}."
            )
        if digest != entry["sha256"]:
            raise PackageError(
                f"{where}: entry {name!r} refused: sha256 checksum does not match {MANIFEST_FILE} "
                f"(tampered or corrupt)."
            )
        if copy is not None:  # the npz's spooled copy
            copy.seek(0)
            check_npz_safe(copy, where=f"{where}: entry {name!r}")


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


def _check_overlaps(zf: zipfile.ZipFile, infos: List[zipfile.ZipInfo], where: str) -> None:
    """Refuse entries whose data overlap (the overlapping-entries zip bomb) or run past the file."""
    archive_size = zf.fp.seek(0, os.SEEK_END) if zf.fp is not None else None
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for current, following in zip(ordered, ordered[1:] + [None], strict=True):
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


def _hash_entry(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    where: str,
    copy: Optional[IO[bytes]] = None,
    pool: Any = None,
    check_crc: bool = True,
    buffers: Optional[Buffers] = None,
) -> Tuple[int, str]:
    """Stream one entry: (bytes produced, sha256 hex), writing them to `copy` too when given;
    the CRC-32 is checked at the end (a stored entry's only with `check_crc`)."""
    hasher = ChunkHasher(pool)
    size = 0
    try:
        for chunk in entry_chunks(zf, info, check_crc, buffers):
            size += len(chunk)
            if size > info.file_size:
                raise PackageError(f"{where}: entry {info.filename!r} refused: unpacks beyond its declared size.")
            hasher.update(chunk)
            if copy is not None:
                copy.write(chunk)
        return size, hasher.hexdigest()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as e:
        raise PackageError(f"{where}: entry {info.filename!r} is corrupt: {e}") from e
