"""Streaming a zip entry's bytes in two reused buffers: a stored entry is read straight from the
archive file (no decompressor, no allocation per chunk: disk speed for weights), any other through
zipfile, which checks its CRC-32. A stored entry's CRC-32 is checked at the end unless the caller
checks the bytes' sha256 against the manifest (check_crc=False): the stronger check of the same bytes
makes the CRC pass redundant, and it costs as much CPU as the copy. ChunkHasher takes the sha256 of
the chunks on a helper thread while the caller writes them (hashlib releases the GIL): hashing
overlaps I/O."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import struct
import zipfile
import zlib
from typing import Iterator, Optional, Tuple, Union

from model_navigator.package.archive_format import CHUNK

# A zip entry's local file header (zipfile's private structFileHeader / stringFileHeader, which typeshed omits):
# 30 bytes; fields 10 and 11 are the lengths of the file name and the extra field that follow it.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_HEADER_MAGIC = b"PK\003\004"

Chunk = Union[bytes, memoryview]
Buffers = Tuple[memoryview, memoryview]


# Chunks smaller than this are hashed on the caller's thread (a hand-over costs more).
THREAD_MIN = 256 * 2**10


class ChunkHasher:
    """The sha256 of a stream of chunks, each hashed on `pool`'s thread while the caller goes on
    (writes it). update() first waits for the previous chunk: a chunk from entry_chunks' two
    alternating buffers is never overwritten while it is hashed."""

    def __init__(self, pool: Optional[concurrent.futures.Executor]) -> None:
        self._digest = hashlib.sha256()
        self._pool = pool
        self._pending: Optional[concurrent.futures.Future] = None

    def update(self, chunk: Chunk) -> None:
        self._wait()
        if self._pool is None or len(chunk) < THREAD_MIN:
            self._digest.update(chunk)
        else:
            self._pending = self._pool.submit(self._digest.update, chunk)

    def hexdigest(self) -> str:
        self._wait()
        return self._digest.hexdigest()

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()


def hashing_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The one helper thread of an archive operation (use it as a context manager)."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nav-sha256")


def new_buffers(size: int = CHUNK) -> Buffers:
    """Two chunk buffers taking turns (a ChunkHasher may still read the previous one), for entries of
    up to `size` bytes at a time; allocate them once per archive operation and pass them to every
    entry (a fresh 4 MiB buffer costs its page faults)."""
    n = min(CHUNK, max(size, 1))
    return memoryview(bytearray(n)), memoryview(bytearray(n))


def entry_chunks(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, check_crc: bool = True, buffers: Optional[Buffers] = None
) -> Iterator[Chunk]:
    """The entry's bytes in chunks; a yielded memoryview is reused two chunks later: use it (and
    let a ChunkHasher finish with it) before asking for the one after next. `check_crc=False` only
    where the caller checks every byte's sha256 against the manifest.

    Raises zipfile.BadZipFile (bad header, CRC-32 mismatch), EOFError (data cut short), zlib.error."""
    if not _direct(zf, info):
        yield from _zipfile_chunks(zf, info)
        return
    fd, offset = _stored_start(zf, info)
    views = buffers or new_buffers(info.file_size)
    crc = 0
    for position, n in _spans(info.file_size):
        view = views[(position // CHUNK) % 2][:n]
        if os.preadv(fd, [view], offset + position) != n:
            raise EOFError(f"the archive ends before the end of entry {info.filename!r}")
        if check_crc:
            crc = zlib.crc32(view, crc)
        yield view
    if check_crc and crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")


def copied_chunks(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, out_fd: int, check_crc: bool = True, buffers: Optional[Buffers] = None
) -> Iterator[Chunk]:
    """The entry's bytes, each chunk already written to `out_fd` (a new file opened for reading and
    writing) when it is yielded, as entry_chunks yields them. A stored entry is copied in the kernel
    (copy_file_range, as `cp` does) and each chunk read back from `out_fd`: what is hashed (and
    CRC-checked with check_crc) is what the file holds."""
    if not _direct(zf, info) or not hasattr(os, "copy_file_range"):
        position = 0
        for chunk in entry_chunks(zf, info, check_crc, buffers):
            _write_at(out_fd, chunk, position)
            position += len(chunk)
            yield chunk
        return
    fd, offset = _stored_start(zf, info)
    views = buffers or new_buffers(info.file_size)
    crc = 0
    in_kernel = True
    for position, n in _spans(info.file_size):
        view = views[(position // CHUNK) % 2][:n]
        if in_kernel:
            try:
                copied = _copy_range(fd, out_fd, n, offset + position, position)
            except OSError:  # not between these files (another filesystem, an old kernel): copy by hand
                in_kernel = False
        if not in_kernel:
            copied = os.preadv(fd, [view], offset + position)
            _write_at(out_fd, view[:copied], position)
        if copied != n or os.preadv(out_fd, [view], position) != n:
            raise EOFError(f"the archive ends before the end of entry {info.filename!r}")
        if check_crc:
            crc = zlib.crc32(view, crc)
        yield view
    if check_crc and crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")


def _direct(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether the entry is read straight from the archive file (stored, on a platform with preadv)."""
    return info.compress_type == zipfile.ZIP_STORED and zf.fp is not None and hasattr(os, "preadv")


def _zipfile_chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[Chunk]:
    with zf.open(info) as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                return
            yield chunk


def _stored_start(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Tuple[int, int]:
    """(archive fd, offset of the data) of a stored entry, after zipfile's own header checks."""
    if info.compress_size != info.file_size:
        raise zipfile.BadZipFile(
            f"stored entry {info.filename!r} declares {info.compress_size} bytes stored but {info.file_size} unpacked"
        )
    with zf.open(info):  # zipfile's own header checks: magic number, name, flags
        pass
    assert zf.fp is not None
    fd = zf.fp.fileno()
    return fd, _data_offset(fd, info)


def _spans(size: int) -> Iterator[Tuple[int, int]]:
    """(position, length) of each chunk of `size` bytes."""
    for position in range(0, size, CHUNK):
        yield position, min(CHUNK, size - position)


def _copy_range(src: int, dst: int, n: int, src_offset: int, dst_offset: int) -> int:
    """copy_file_range until n bytes are copied or the source ends; the bytes copied."""
    done = 0
    while done < n:
        step = os.copy_file_range(src, dst, n - done, src_offset + done, dst_offset + done)
        if step == 0:
            break
        done += step
    return done


def _write_at(fd: int, data: Chunk, position: int) -> None:
    """Write all of `data` at `position` (pwrite; seek and write where there is none: Windows)."""
    view = memoryview(data)
    if not hasattr(os, "pwrite"):
        os.lseek(fd, position, os.SEEK_SET)
    while len(view):
        written = os.pwrite(fd, view, position) if hasattr(os, "pwrite") else os.write(fd, view)
        view = view[written:]
        position += written


def _data_offset(fd: int, info: zipfile.ZipInfo) -> int:
    """Where the entry's data start: after its local header, file name and extra field."""
    header = os.pread(fd, _LOCAL_HEADER.size, info.header_offset)
    if len(header) != _LOCAL_HEADER.size:
        raise zipfile.BadZipFile("Truncated file header")
    fields = _LOCAL_HEADER.unpack(header)
    if fields[0] != _LOCAL_HEADER_MAGIC:
        raise zipfile.BadZipFile("Bad magic number for file header")
    return info.header_offset + _LOCAL_HEADER.size + fields[10] + fields[11]
