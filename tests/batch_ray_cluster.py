"""A two-node Ray cluster on this machine, inside a loopback-only network namespace (tests and bench/batch.py).

`run_in_namespace(argv)` runs a command as PID 1 of fresh network, PID and mount namespaces
(`unshare -n -p -f --mount-proc`, root only) with only `lo`, up: nothing can leave the machine, no
address but 127.0.0.1 exists, and every process started in there dies with it. Inside,
`Cluster` starts a head node (custom resource kind_a) and a second node (kind_b) with `ray start`,
token authentication on (a token of its own in a temporary folder), and stops them all at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

PORT = 6379
RAY = str(Path(sys.executable).with_name("ray"))


def namespace_unavailable() -> Optional[str]:
    """Why the loopback-only namespace cannot be made here (None when it can)."""
    if os.geteuid() != 0:
        return "the Ray cluster tests need root for a loopback-only network namespace (unshare -n)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (needed for the loopback-only network namespace)"
    probe = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -n -p -f --mount-proc failed: {probe.stderr.strip()}"
    return None


def run_in_namespace(
    argv: Sequence[str],
    timeout: float,
    env: Optional[Dict[str, str]] = None,
) -> subprocess.CompletedProcess:
    """Run `argv` in new network/PID/mount namespaces with only loopback, brought up first."""
    command = [
        "unshare",
        "-n",
        "-p",
        "-f",
        "--mount-proc",
        "--",
        "sh",
        "-c",
        'ip link set lo up && exec "$@"',
        "sh",
        *argv,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def _processes() -> List[Dict[str, str]]:
    """Every process visible here (inside the PID namespace: only ours), but this one."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmdline:
            out.append({"pid": entry.name, "cmd": cmdline[:200]})
    return out


class Cluster:
    """Head (kind_a) and second node (kind_b) on 127.0.0.1, token auth on; use inside run_in_namespace."""

    def __init__(self, root: Path, cpus_per_node: int = 2):
        self.root = root
        self.cpus = cpus_per_node
        self.address = f"127.0.0.1:{PORT}"
        token = root / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        (root / "home").mkdir(exist_ok=True)
        # The driver (this process) and every node use the token of this cluster, not ~/.ray/auth_token.
        os.environ.update(
            {
                "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN_PATH": str(token),
                "HOME": str(root / "home"),
                "RAY_USAGE_STATS_ENABLED": "0",
            }
        )

    def _ray(self, *args: str) -> None:
        subprocess.run([RAY, *args], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus), "--disable-usage-stats"]
        self._ray(
            "start",
            "--head",
            "--port",
            str(PORT),
            "--temp-dir",
            str(self.root / "ray"),
            "--include-dashboard=false",
            "--resources",
            json.dumps({"kind_a": 1}),
            *common,
        )
        self._ray("start", "--address", self.address, "--resources", json.dumps({"kind_b": 1}), *common)

    def raylet_pid(self, kind: str) -> int:
        """The raylet of the node with custom resource `kind`."""
        for p in _processes():
            if "/raylet " in p["cmd"] + " " and f"static_resource_list={kind}," in p["cmd"]:
                return int(p["pid"])
        for entry in Path("/proc").iterdir():  # the command line is cut at 200 characters above
            if entry.name.isdigit():
                try:
                    cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if "raylet/raylet" in cmd and f"static_resource_list={kind}," in cmd:
                    return int(entry.name)
        raise RuntimeError(f"no raylet with resource {kind}")

    def kill_raylet(self, kind: str) -> int:
        pid = self.raylet_pid(kind)
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> List[Dict[str, str]]:
        """Stop every Ray process; what is still running afterwards (expected: nothing)."""
        subprocess.run([RAY, "stop", "--force"], capture_output=True, text=True, timeout=120)
        deadline = time.monotonic() + 10
        left = _processes()
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = [p for p in _processes() if "<defunct>" not in p["cmd"]]
        return left


def interfaces() -> List[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return [line.split(":")[1].strip() for line in out.splitlines() if ":" in line]
