"""TensorRT runner for .plan engines (Polygraphy's TrtRunner underneath)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from model_navigator.core.tensor import TensorMetadata
from model_navigator.runners.base import NavigatorRunner, RunnerArgs


class TensorRTRunner(NavigatorRunner):
    """Runs a serialized TensorRT engine on the GPU; feeds are cast to the engine's input dtypes."""

    def __init__(
        self,
        model_path: Path,
        input_metadata: Sequence[TensorMetadata],
        output_metadata: Sequence[TensorMetadata],
        name: Optional[str] = None,
    ):
        super().__init__(input_metadata, output_metadata, "cuda", name or "tensorrt")
        self.model_path = Path(model_path)
        self._runner: Any = None
        self._dtypes: Dict[str, np.dtype] = {}

    def _load(self) -> None:
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner

        self._runner = TrtRunner(EngineFromBytes(self.model_path.read_bytes()))
        self._runner.activate()
        meta = self._runner.get_input_metadata(use_numpy_dtypes=False)
        self._dtypes = {name: np.dtype(m.dtype.numpy()) for name, m in meta.items()}

    def _infer(self, feed_dict: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        feed = {name: np.ascontiguousarray(feed_dict[name], dtype=dtype) for name, dtype in self._dtypes.items()}
        outputs = self._runner.infer(feed, check_inputs=False, copy_outputs_to_host=True)
        # Copies: Polygraphy reuses its host buffers, the next inference would overwrite these.
        return OrderedDict((name, np.array(outputs[name], copy=True)) for name in self.output_names)

    def _unload(self) -> None:
        if self._runner is not None:
            self._runner.deactivate()
        self._runner = None


def tensorrt_runner(model_path: Path, a: RunnerArgs) -> NavigatorRunner:
    """The factory named by the TensorRT format's declaration (core/formats.py)."""
    return TensorRTRunner(model_path, a.inputs, a.outputs, name=a.name)
