"""What serving needs from this machine: PyTriton (imported lazily, with the install hint when it is
missing), the libpython that Triton's Python-backend stub must load, ports, and a list of Triton
processes (to prove none outlives its owner).

The libpython trap: PyTriton's `triton_python_backend_stub` for Python 3.X links `libpython3.X.so.1.0`
by name (no RPATH to it), so the dynamic loader takes the first one it finds, normally the system's
(/lib/x86_64-linux-gnu, e.g. Debian's 3.11.2). Run from another build of 3.X (pyenv's 3.11.7 here),
the stub mixes that interpreter's standard library with the system's libpython and fails at model
load ("'_thread.RLock' object has no attribute '_recursion_count'"). PyTriton starts tritonserver
with os.environ plus its own library folder appended to LD_LIBRARY_PATH, and the stub inherits it:
putting this interpreter's LIBDIR (sysconfig) first makes the stub load the libpython of the very
interpreter that runs model-navigator.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sysconfig
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from model_navigator.core.errors import UserInputError

INSTALL_HINT = "pip install 'model-navigator[serve]'"
TRITON_PROCESS_NAMES = ("tritonserver", "triton_python_backend_stub")


def import_pytriton() -> Any:
    """The pytriton package, or a UserInputError with the install line when it is missing."""
    try:
        import pytriton
        import pytriton.triton  # noqa: F401  (the server half; the client half comes with it)
    except ImportError as e:
        raise UserInputError(f"Serving needs PyTriton, which is not installed here ({e}); {INSTALL_HINT}") from None
    return pytriton


def libpython_dir() -> Optional[str]:
    """The folder holding this interpreter's shared libpython, when it has one (None for a static build)."""
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    if libdir and soname and (Path(libdir) / soname).exists() and str(soname).endswith((".so", ".so.1.0")):
        return str(libdir)
    return None


def stub_library_path(current: Optional[str] = None) -> Optional[str]:
    """LD_LIBRARY_PATH with this interpreter's libpython folder first (see the module doc)."""
    first = libpython_dir()
    if first is None:
        return current
    rest = [p for p in (current or "").split(os.pathsep) if p and p != first]
    return os.pathsep.join([first] + rest)


@contextlib.contextmanager
def python_backend_environment() -> Iterator[None]:
    """While PyTriton starts tritonserver (which starts the stubs), LD_LIBRARY_PATH has this
    interpreter's libpython first; restored afterwards (this process's own loader never reads it again)."""
    before = os.environ.get("LD_LIBRARY_PATH")
    wanted = stub_library_path(before)
    if wanted is not None:
        os.environ["LD_LIBRARY_PATH"] = wanted
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        else:
            os.environ["LD_LIBRARY_PATH"] = before


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free on `host` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_port(host: str, port: int, what: str) -> int:
    """`port` if it can be bound on `host`, else a UserInputError naming it."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise UserInputError(f"`{what}` must be a port number 1..65535, got {port!r}.")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise UserInputError(
                f"{what} {port} on {host} is not free ({e.strerror}); choose another port "
                f"or leave it out to take a free one."
            ) from None
    return port


def choose_ports(
    host: str, http_port: Optional[int], grpc_port: Optional[int], metrics_port: Optional[int]
) -> Dict[str, int]:
    """The HTTP, gRPC and metrics ports: the user's (checked free) or free ones, all different."""
    chosen: Dict[str, int] = {}
    for name, port in (("http_port", http_port), ("grpc_port", grpc_port), ("metrics_port", metrics_port)):
        if port is not None:
            if port in chosen.values():
                raise UserInputError(f"`{name}` {port} is given twice; the HTTP, gRPC and metrics ports must differ.")
            chosen[name] = check_port(host, port, name)
    for name in ("http_port", "grpc_port", "metrics_port"):
        while name not in chosen:
            port = free_port(host)
            if port not in chosen.values():
                chosen[name] = port
    return chosen


def _processes() -> Iterator[Tuple[int, str, str, int]]:
    """(pid, name, state, parent pid) of every process now, from /proc (no dependency); names are
    cut to 15 characters there."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        yield int(entry.name), stat[stat.index("(") + 1 : stat.rindex(")")], fields[0], int(fields[1])


def triton_processes() -> List[Dict[str, Any]]:
    """Running tritonserver and Python-backend stub processes of this machine: pid, parent pid, name."""
    return [
        {"pid": pid, "ppid": ppid, "name": name}
        for pid, name, state, ppid in _processes()
        # a zombie holds nothing (its parent has not reaped it yet); /proc cuts names to 15 characters
        if state != "Z" and any(name.startswith(n[:15]) for n in TRITON_PROCESS_NAMES)
    ]


def descendants(pid: int) -> List[int]:
    """Every process below `pid` now (children, grandchildren ...), from /proc."""
    children: Dict[int, List[int]] = {}
    for child, _, _, ppid in _processes():
        children.setdefault(ppid, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2 :].split()[0] != "Z"


def reap(pids: List[int], grace_s: float) -> List[int]:
    """Wait up to `grace_s` for `pids` to exit, then SIGKILL the ones left; returns those killed."""
    import signal
    import time

    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    killed = []
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
    return killed
