"""Streaming a zip entry's bytes in one reused buffer: a stored entry is read straight from the
archive file (no decompressor, no allocation per chunk: disk speed for weights), any other through
zipfile; the CRC-32 is checked at the end either way."""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from typing import Iterator, Union

from model_navigator.package.archive_format import CHUNK

Chunk = Union[bytes, memoryview]


def entry_chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[Chunk]:
    """The entry's bytes in chunks; a yielded memoryview is reused: use it before the next one.

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
    view = memoryview(bytearray(min(CHUNK, max(remaining, 1))))
    crc = 0
    while remaining:
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
