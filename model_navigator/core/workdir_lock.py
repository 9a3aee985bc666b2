"""One process owns a workdir at a time: an export, a load into it, a profile or re-check of it.

The lock is the file `.<workdir name>.lock` beside the workdir's real folder (symlinks resolved, so
every spelling of one folder shares it), held with
flock(2) for as long as the operation runs. Beside, not inside: `override_workdir=True` deletes the
workdir, and a lock inside it would be deleted with it by the very export it should stop. flock
is released by the kernel when its holder dies (kill -9 included), so a lock left by a dead
process is free: the next operation takes it over and says whose it was. The file holds the
holder's pid, host, start time and operation, for the error a second process gets; it is removed
when the holder finishes. The lock is re-entrant within one thread (nav.load re-checks the
workdir it unpacked under the same lock) and refused to other threads of the same process.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import re
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Dict, Iterator, List, Optional, Union

from model_navigator.core.errors import UserInputError
from model_navigator.core.logging import LOGGER

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock file still names the holder
    fcntl = None  # type: ignore[assignment]


class LockUnavailable(UserInputError):
    """The lock file cannot be created (a read-only folder): writers stop; readers go on unlocked."""


@dataclass
class LockHolder:
    """Who holds (or held) a workdir lock, as written in the lock file."""

    pid: int
    host: str
    started_at: str
    operation: str

    def describe(self) -> str:
        return f"process {self.pid} on host {self.host} ({self.operation}, started {self.started_at})"

    @classmethod
    def parse(cls, text: str) -> Optional["LockHolder"]:
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                host=str(data["host"]),
                started_at=str(data["started_at"]),
                operation=str(data["operation"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


@dataclass
class _Held:
    thread: int
    depth: int
    fd: int


_HELD: Dict[str, _Held] = {}
_REGISTRY = threading.Lock()


def real_workdir(workdir: Union[str, Path]) -> Path:
    """`workdir` with every symlink resolved (of the folder and its parents, existing or not) and, on
    Linux, a bind mount mapped back to the folder it shows, so that two spellings of one folder share
    one lock."""
    real = os.path.realpath(Path(workdir).absolute())
    try:
        return Path(_unbind(real))
    except (OSError, ValueError, IndexError):
        return Path(real)


def _unbind(path: str) -> str:
    """`path` through the mount of its filesystem that shows that filesystem's root, when `path` lies
    under a bind mount (mountinfo's root field is not '/'); else `path` unchanged."""
    if not sys.platform.startswith("linux"):
        return path
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        mounts = [_mount_fields(line) for line in f if line.strip()]
    inside = [m for m in mounts if path == m[2] or path.startswith(m[2].rstrip("/") + "/")]
    if not inside:
        return path
    device, root, point = max(inside, key=lambda m: len(m[2]))
    if root == "/":
        return path
    within = (root.rstrip("/") + path[len(point.rstrip("/")) :]) or "/"
    whole = [m for m in mounts if m[0] == device and m[1] == "/"]
    if not whole:
        return path
    return os.path.normpath(whole[0][2].rstrip("/") + within)


def _mount_fields(line: str) -> tuple:
    """(device, root, mount point) of one /proc/self/mountinfo line (octal escapes decoded)."""
    fields = line.split()
    return fields[2], _unescape(fields[3]), _unescape(fields[4])


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def lock_path(workdir: Union[str, Path]) -> Path:
    """Where the lock of `workdir` lives: `.<name>.lock` beside its real folder."""
    root = real_workdir(workdir)
    return root.parent / f".{root.name}.lock"


def takeover_message(workdir: Union[str, Path], previous: LockHolder) -> str:
    """What to say (log and print) when a lock left by a dead process was taken over."""
    return (
        f"Took over the lock of workdir {str(Path(workdir).absolute())!r} left by {previous.describe()}, "
        f"which is no longer running (killed or crashed)."
    )


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: List[bytes] = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks).decode("utf-8", "replace")
        chunks.append(chunk)


def _open_locked(path: Path, root: Path, operation: str) -> int:
    """Open and flock the lock file (retrying when it was replaced meanwhile); raise when it is held."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as e:
            raise LockUnavailable(
                f"Cannot use `workdir` {str(root)!r}: its lock file {str(path)!r} cannot be created "
                f"({e.strerror or e}); the folder {str(path.parent)!r} must exist and be writable."
            ) from e
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockHolder.parse(_read(fd))
            os.close(fd)
            who = holder.describe() if holder else "another process"
            raise UserInputError(
                f"`workdir` {str(root)!r} is in use by {who}; one export, load or profile owns a workdir at "
                f"a time: wait for it to finish or choose another `workdir` (lock: {str(path)!r})."
            ) from None
        except OSError as e:  # a filesystem without locks: go on, unprotected, and say so
            LOGGER.warning("workdir lock %s not supported here (%s): concurrent use is not detected", path, e)
            return fd
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed it between our open and flock: take the new file


@contextlib.contextmanager
def workdir_lock(workdir: Union[str, Path], operation: str) -> Iterator[Optional[LockHolder]]:
    """Hold the lock of `workdir` for the block (its parent folder is created if needed); yields the
    holder of a lock left by a process that died (taken over: say so with takeover_message), else None. A second
    process, or another thread, gets a UserInputError naming the holder."""
    root = Path(workdir).absolute()
    path = lock_path(root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserInputError(f"Cannot create the folder of `workdir` {str(root)!r}: {e.strerror or e}.") from e
    key = _file_key(path)
    me = threading.get_ident()
    with _REGISTRY:
        held = _HELD.get(key)
        if held is not None:
            if held.thread != me:
                raise UserInputError(
                    f"`workdir` {str(root)!r} is in use by another thread of this process; one export, load or "
                    f"profile owns a workdir at a time."
                )
            held.depth += 1
    if held is not None:
        try:
            yield None
        finally:
            with _REGISTRY:
                held.depth -= 1
        return
    fd = _open_locked(path, root, operation)
    try:
        previous = LockHolder.parse(_read(fd))
        _write_holder(fd, path, operation)
    except BaseException:
        _release(path, fd)
        raise
    with _REGISTRY:
        _HELD[key] = _Held(thread=me, depth=1, fd=fd)
    try:
        yield previous
    finally:
        with _REGISTRY:
            del _HELD[key]
        _release(path, fd)


def _file_key(path: Path) -> str:
    """The in-process key of a lock file: its folder's device and inode (one key for a folder reached
    through a bind mount or a symlink), else its path when the folder does not exist yet."""
    try:
        st = os.stat(path.parent)
        return f"{st.st_dev}:{st.st_ino}/{path.name}"
    except OSError:
        return str(path)


def _write_holder(fd: int, path: Path, operation: str) -> None:
    """Write who holds the lock into it; on a full disk the lock (an empty file needs no space) still
    holds, only the name of its holder is missing from a second process's error."""
    me_holder = LockHolder(
        pid=os.getpid(),
        host=socket.gethostname(),
        operation=operation,
        started_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        os.write(fd, json.dumps(me_holder.__dict__).encode())
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        os.ftruncate(fd, 0)
        LOGGER.debug("lock %s holds no holder record: %s", path, e.strerror or e)


def _release(path: Path, fd: int) -> None:
    """Remove the lock file while still holding it (a waiter re-opens and finds a new file), then close it."""
    try:
        os.unlink(path)
    except OSError:
        pass
    os.close(fd)


def source_lock(source: Any, operation: str) -> ContextManager[Optional[LockHolder]]:
    """The lock of the workspace a reader (report, triton) works from: a workspace folder, or a
    PackageDescriptor's workdir; no lock for a .nav file or a status in memory."""
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        return _reader_lock(Path(source), operation)
    workdir = getattr(source, "workdir", None)
    if isinstance(workdir, Path) and workdir.is_dir():
        return _reader_lock(workdir, operation)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _reader_lock(workdir: Path, operation: str) -> Iterator[Optional[LockHolder]]:
    """workdir_lock for a reader: refused while another process holds it; where no lock file can be
    made (a read-only folder, which no one can be writing to through it) it reads unlocked."""
    try:
        lock = workdir_lock(workdir, operation)
        previous = lock.__enter__()
    except LockUnavailable as e:
        LOGGER.debug("reading %s without its lock: %s", workdir, e)
        yield None
        return
    try:
        yield previous
    except BaseException:
        if not lock.__exit__(*sys.exc_info()):
            raise
    else:
        lock.__exit__(None, None, None)
