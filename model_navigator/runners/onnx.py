"""ONNX Runtime runner (CPU, CUDA and TensorRT execution providers)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.enums import RuntimeProvider
from model_navigator.core.tensor import TensorMetadata
from model_navigator.runners.base import NavigatorRunner, RunnerArgs, SourceRunner


def available_providers() -> Sequence[str]:
    import onnxruntime

    return onnxruntime.get_available_providers()


class OnnxRuntimeRunner(NavigatorRunner):
    """Runs an .onnx file with one ONNX Runtime execution provider; a GPU provider that does not
    load is an error, never a silent CPU run. `device` 'cuda:N' picks the GPU (device_id)."""

    def __init__(
        self,
        model_path: Path,
        input_metadata: Sequence[TensorMetadata],
        output_metadata: Sequence[TensorMetadata],
        provider: RuntimeProvider = RuntimeProvider.CPU,
        name: Optional[str] = None,
        device: str = "cuda",
    ):
        device = "cpu" if provider == RuntimeProvider.CPU else device
        super().__init__(input_metadata, output_metadata, device, name or f"onnxrt-{provider.value}")
        self.model_path = Path(model_path)
        self.provider = provider
        self._session: Any = None

    def _load(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Nodes a GPU provider cannot take go to the next one: TensorRT -> CUDA -> CPU.
        providers = [self.provider.value]
        if self.provider == RuntimeProvider.TRT:
            providers.append(RuntimeProvider.CUDA.value)
        provider_options: List[Dict[str, Any]] = [{}]
        if self.provider != RuntimeProvider.CPU:
            gpu = {"device_id": int(self.device.split(":", 1)[1]) if ":" in self.device else 0}
            provider_options = [gpu] * len(providers) + [{}]
            providers.append(RuntimeProvider.CPU.value)
        self._session = onnxruntime.InferenceSession(
            str(self.model_path), sess_options=options, providers=providers, provider_options=provider_options
        )
        if self.provider.value not in self._session.get_providers():
            # ONNX Runtime drops a provider it cannot load (missing CUDA/cuDNN/TensorRT libraries)
            # and runs on the CPU: refuse, so no result claims a provider that did not run.
            self._session = None
            raise RuntimeError(
                f"ONNX Runtime did not load {self.provider.value} (available: "
                f"{', '.join(available_providers())}); it would have run on the CPU. Install "
                f"onnxruntime-gpu with the CUDA, cuDNN"
                f"{' and TensorRT' if self.provider == RuntimeProvider.TRT else ''} libraries it was built for."
            )
        # Nor may a provider that fails during run() be retried on the CPU behind our back.
        self._session.disable_fallback()
        self._session_inputs = [i.name for i in self._session.get_inputs()]
        self._session_outputs = [o.name for o in self._session.get_outputs()]
        self._run_options = onnxruntime.RunOptions()
        self._run_options.log_severity_level = 3  # errors reach us as exceptions, not stderr lines

    def _infer(self, feed_dict: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        feed = {name: feed_dict[name] for name in self._session_inputs}
        values = self._session.run(self._session_outputs, feed, self._run_options)
        return OrderedDict(zip(self._session_outputs, values, strict=True))

    def _unload(self) -> None:
        self._session = None


class OnnxSourceRunner(OnnxRuntimeRunner, SourceRunner):
    """The user's .onnx file given to nav.onnx.export, on ONNX Runtime: the reference every other
    path is compared with (its outputs keep the graph's names)."""

    def call(self, feed_dict: Dict[str, np.ndarray]) -> Any:
        return OnnxRuntimeRunner._infer(self, feed_dict)

    def flatten(self, output: Any) -> Tuple[List[np.ndarray], List[str]]:
        return list(output.values()), list(output)

    _infer = OnnxRuntimeRunner._infer


# Factories, loader and availability check named by the ONNX formats' declarations (core/formats.py)
def onnxruntime_runner(model_path: Path, a: RunnerArgs) -> NavigatorRunner:
    return OnnxRuntimeRunner(model_path, a.inputs, a.outputs, provider=a.runtime, name=a.name, device=a.device)


def onnx_source_runner(model: Any, a: RunnerArgs) -> NavigatorRunner:
    """The user's .onnx file (nav.onnx.export's model) on ONNX Runtime, on the runner's device."""
    provider = RuntimeProvider.CPU if a.device == "cpu" else RuntimeProvider.CUDA
    return OnnxSourceRunner(Path(model), a.inputs, a.outputs, provider=provider, name=a.name, device=a.device)


def load_onnx(model_path: Path) -> Any:
    import onnx

    return onnx.load(str(model_path))


def provider_unavailable(runtime: RuntimeProvider) -> Optional[str]:
    """Why ONNX Runtime cannot run `runtime` (a GPU provider) here: the CPU-only `onnxruntime` wheel
    would otherwise run on the CPU under the GPU provider's name; None when it can."""
    try:
        providers = available_providers()
    except ImportError as e:
        return f"onnxruntime does not import ({e}); pip install onnxruntime-gpu"
    if runtime.value in providers:
        return None
    return (
        f"this ONNX Runtime has no {runtime.value} (it has {', '.join(providers)}); "
        f"pip install onnxruntime-gpu in place of onnxruntime"
    )
