"""Runner for the source model of a JAX export: the user's predict function called with its params,
as export() called it (only in the process that holds the function). The exported SavedModels
run on TensorFlow's runner (runners/tensorflow.py), the ONNX made from them on ONNX Runtime."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.tensor import TensorMetadata
from model_navigator.frameworks.jax_utils import (
    JaxModel,
    call_predict,
    flatten_outputs,
    import_jax,
    jax_device,
)
from model_navigator.runners.base import NavigatorRunner, RunnerArgs, SourceRunner


class JaxSourceRunner(SourceRunner):
    """predict(*inputs, params) (dict samples: keyword inputs) on the runner's device; inputs become
    jax arrays there, outputs come back as numpy arrays named like the export's outputs."""

    def __init__(
        self,
        model: JaxModel,
        input_metadata: Sequence[TensorMetadata],
        output_metadata: Sequence[TensorMetadata],
        device: str = "cpu",
        keyword: bool = False,
        name: Optional[str] = None,
        kw_names: Optional[Sequence[str]] = None,
    ):
        super().__init__(input_metadata, output_metadata, device, name or "jax-source")
        self.model = model
        self.keyword = keyword
        self.kw_names = tuple(kw_names) if kw_names else None  # the function's names of renamed dict inputs
        self._device: Any = None

    def _load(self) -> None:
        self._jax = import_jax()
        self._device = jax_device(self.device)

    def call(self, feed_dict: Dict[str, np.ndarray]) -> Any:
        jax = self._jax
        inputs = [jax.device_put(np.asarray(feed_dict[n]), self._device) for n in self.input_names]
        return call_predict(self.model, inputs, self.kw_names or self.input_names, self.keyword)

    def flatten(self, output: Any) -> Tuple[List[np.ndarray], List[str]]:
        leaves, names = flatten_outputs(output)
        # np.asarray waits for JAX's asynchronous dispatch, so latency covers the computation.
        return [np.asarray(leaf) for leaf in leaves], names

    def _unload(self) -> None:
        self._device = None


def jax_source_runner(model: JaxModel, a: RunnerArgs) -> NavigatorRunner:
    """The factory named by the JAX source format's declaration (core/formats.py)."""
    return JaxSourceRunner(
        model, a.inputs, a.outputs, device=a.device, keyword=a.keyword, name=a.name, kw_names=a.kw_names
    )
