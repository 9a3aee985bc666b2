"""Where stand-alone steps run: in the user's process (debugging) or in a worker process."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from model_navigator.steps.base import run_step


class InProcessExecutor:
    """Runs steps in the calling process: fastest start, no crash isolation."""

    isolated = False

    def run(self, step: str, argv: Sequence[str], root: Path, timeout_s: Optional[float] = None) -> Dict[str, Any]:
        return run_step(step, argv, base_dir=root)

    def close(self) -> None:
        pass


def make_executor(config: Any, root: Path) -> Any:
    """The executor the export config asks for (isolation on: the framework's worker process,
    shared by every export/load/profile call of this process; off: in-process)."""
    if getattr(config, "isolation", False):
        from model_navigator.steps.worker import shared_worker

        return shared_worker(str(config.framework.value))
    return InProcessExecutor()
