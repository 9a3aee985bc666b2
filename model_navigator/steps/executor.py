"""Where stand-alone steps run: in the user's process (debugging) or in a worker process."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Set

from model_navigator.steps.base import StepReply, run_step


class InProcessExecutor:
    """Runs steps in the calling process: fastest start, no crash isolation."""

    def run(self, step: str, argv: Sequence[str], root: Path, timeout_s: Optional[float] = None) -> StepReply:
        return run_step(step, argv, base_dir=root)

    def close(self) -> None:
        pass


ISOLATION_MODES = ("auto", "full", "off")


def normalize_isolation(value: Any) -> str:
    """True -> 'full', False -> 'off', or one of ISOLATION_MODES."""
    from model_navigator.core.errors import UserInputError

    if value is True:
        return "full"
    if value is False:
        return "off"
    if value in ISOLATION_MODES:
        return value
    raise UserInputError(f"`isolation` must be True, False or one of {ISOLATION_MODES}, got {value!r}.")


class RoutingExecutor:
    """Sends each step to the worker or runs it here, by the runtime family of the path's format.

    isolation 'auto': steps whose runtime is the framework the user's process already runs
    (TorchScript and ExportedProgram for a torch user) run here, where that framework is loaded;
    conversions and every other runtime (ONNX Runtime, TensorRT, ...) run in a worker that imports
    only what they need. 'full': every step in a worker that loads the framework too. 'off': here.
    """

    def __init__(self, mode: str, framework: str, local_formats: Set[str]):
        self.mode = mode
        self.local = InProcessExecutor()
        self.framework = framework
        self.local_formats = local_formats
        self._worker: Any = None
        if mode != "off":
            self._worker_handle()  # start now: it imports while the exports run

    def _worker_handle(self) -> Any:
        from model_navigator.steps.worker import shared_worker

        if self._worker is None:
            self._worker = shared_worker(self.framework if self.mode == "full" else "runtimes")
        return self._worker

    def run(
        self,
        step: str,
        argv: Sequence[str],
        root: Path,
        timeout_s: Optional[float] = None,
        format: Optional[str] = None,
    ) -> StepReply:
        if self.mode == "off" or (self.mode == "auto" and step != "conversion" and format in self.local_formats):
            return self.local.run(step, argv, root, timeout_s)
        return self._worker_handle().run(step, argv, root, timeout_s)

    def wait_ready(self) -> None:
        """Wait for a starting worker, so measurements in this process are not disturbed by it."""
        if self._worker is not None:
            self._worker.wait_ready()

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.shutdown()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()


def make_executor(config: Any, root: Path) -> Any:
    """The executor for the config's isolation mode (see RoutingExecutor); the formats checked in this
    process are those whose declaration names the framework in `local_checks` (core/formats.py)."""
    from model_navigator.core.formats import formats_checked_locally

    framework = str(config.framework.value)
    mode = normalize_isolation(getattr(config, "isolation", "auto"))
    return RoutingExecutor(mode, framework, set(formats_checked_locally(framework)))
