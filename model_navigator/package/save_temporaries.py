"""The temporary files of nav.save: named for the process writing them, so that the next save of the
same package removes those a killed save left behind (only when that process is gone), and a full
destination is reported with the path and the space the package needs."""

from __future__ import annotations

import errno
import os
import re
import socket
from pathlib import Path
from typing import List

from model_navigator.core.diskspace import MB, free_bytes, path_bytes
from model_navigator.core.errors import UserInputError
from model_navigator.core.logging import LOGGER

NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def temporary_prefix(package: Path) -> str:
    """The name prefix of the temporary file a save of `package` writes beside it (this host, this process)."""
    return f".{package.name}.{_host_tag()}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(package: Path) -> List[Path]:
    """Remove the temporary files of earlier saves of `package` whose process (on this host) is gone;
    a live save's file, and files of other hosts (a shared folder), are left alone."""
    pattern = re.compile(re.escape(f".{package.name}.{_host_tag()}.") + r"(\d+)\.[^/]*\.tmp$")
    removed: List[Path] = []
    try:
        entries = list(package.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        try:
            if entry.is_file() and not entry.is_symlink():
                entry.unlink()
                removed.append(entry)
        except OSError as e:
            LOGGER.debug("could not remove stale temporary file %s: %s", entry, e)
    for entry in removed:
        LOGGER.info("removed %s, left by a save that was killed", entry)
    return removed


def no_space_error(error: OSError, package: Path, workdir: Path) -> UserInputError:
    """The error for a save that ran out of space: the package's path, what is free and about what it needs."""
    try:
        free = f"{_size(free_bytes(package.parent))} free"
    except OSError:
        free = "free space unknown"
    return UserInputError(
        f"Cannot save the package {str(package)!r}: not enough free space in {str(package.parent)!r} ({free}; the "
        f"package needs up to {_size(path_bytes(workdir))}, the size of the workspace's files; "
        f"{error.strerror or error}). Nothing "
        f"was written: free some space or choose another path."
    )


def _size(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB // 10 else f"{size / 1024:.1f} KB"
