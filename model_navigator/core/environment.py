"""Environment and git information recorded in status.yaml."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional

from model_navigator.core.formats import declared_packages

# The packages status.yaml reports, in this order, then any other a format or runtime declares
# (core/formats.py `packages`).
_REPORTED = (
    "model-navigator",
    "numpy",
    "torch",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "polygraphy",
    "tensorflow",
    "tensorflow-cpu",
    "tf2onnx",
    "jax",
    "jaxlib",
    "flax",
    "jax2onnx",
    "tensorrt",
    "torch-tensorrt",
    "openvino",
)
PACKAGES = _REPORTED + tuple(name for name in declared_packages() if name not in _REPORTED)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_present() -> bool:
    """A CUDA GPU is visible (nvidia-smi present and lists one), without importing a framework."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return shutil.which("nvidia-smi") is not None and Path("/dev/nvidiactl").exists()


def gpu_name() -> Optional[str]:
    if not gpu_present():
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment_info() -> Dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu_name(),
        "packages": versions,
    }


def git_info(cwd: Optional[Path] = None) -> Optional[Dict[str, Any]]:
    """Commit, branch and dirty flag of the repository the user runs in, or None outside git."""
    if shutil.which("git") is None:
        return None
    try:

        def git(*args: str) -> str:
            return subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()

        return {
            "commit": git("rev-parse", "HEAD"),
            "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.SubprocessError):
        return None
