"""Streaming a zip entry's bytes in two reused buffers: a stored entry is read straight from the
archive file (no decompressor, no allocation per chunk: disk speed for weights), any other through
zipfile; the CRC-32 is checked at the end either way. ChunkHasher takes the sha256 of the chunks
on a helper thread while the caller writes them (hashlib releases the GIL): hashing overlaps I/O."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import struct
import zipfile
import zlib
from typing import Iterator, Optional, Union

from model_navigator.package.archive_format import CHUNK

Chunk = Union[bytes, memoryview]


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


def entry_chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[Chunk]:
    """The entry's bytes in chunks; a yielded memoryview is reused two chunks later: use it (and
    let a ChunkHasher finish with it) before asking for the one after next.

    Raises zipfile.BadZipFile (bad header, CRC-32 mismatch), EOFError (data cut short), zlib.error."""
    if info.compress_type != zipfile.ZIP_STORED or zf.fp is None or not hasattr(os, "preadv"):
        with zf.open(info) as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    return
                yield chunk
    if info.compress_size != info.file_size:
        raise zipfile.BadZipFile(f"stored entry {info.filename!r} declares {info.compress_size} bytes stored "
                                 f"but {info.file_size} unpacked")
    with zf.open(info):  # zipfile's own header checks: magic number, name, flags
        pass
    fd = zf.fp.fileno()
    offset = _data_offset(fd, info)
    remaining = info.file_size
    size = min(CHUNK, max(remaining, 1))
    views = (memoryview(bytearray(size)), memoryview(bytearray(size)))
    crc = 0
    turn = 0
    while remaining:
        view = views[turn]
        turn ^= 1
        n = os.preadv(fd, [view[: min(len(view), remaining)]], offset)
        if n <= 0:
            raise EOFError(f"the archive ends {remaining} bytes before the end of entry {info.filename!r}")
        chunk = view[:n]
        crc = zlib.crc32(chunk, crc)
        yield chunk
        offset += n
        remaining -= n
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")


def _data_offset(fd: int, info: zipfile.ZipInfo) -> int:
    """Where the entry's data start: after its local header, file name and extra field."""
    header = os.pread(fd, zipfile.sizeFileHeader, info.header_offset)
    if len(header) != zipfile.sizeFileHeader:
        raise zipfile.BadZipFile("Truncated file header")
    fields = struct.unpack(zipfile.structFileHeader, header)
    if fields[0] != zipfile.stringFileHeader:
        raise zipfile.BadZipFile("Bad magic number for file header")
    return info.header_offset + zipfile.sizeFileHeader + fields[10] + fields[11]
