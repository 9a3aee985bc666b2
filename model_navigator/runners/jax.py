"""Runner for the source model of a JAX export: the user's predict function called with its params,
as export() called it (only in the process that holds the function). The exported SavedModels
run on TensorFlow's runner (runners/tensorflow.py), the ONNX made from them on ONNX Runtime."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, Optional, Sequence

import numpy as np

from model_navigator.core.tensor import TensorMetadata
from model_navigator.frameworks.jax_utils import (
    JaxModel,
    call_predict,
    flatten_outputs,
    import_jax,
    jax_device,
)
from model_navigator.runners.base import NavigatorRunner


class JaxSourceRunner(NavigatorRunner):
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
    ):
        super().__init__(input_metadata, output_metadata, device, name or "jax-source")
        self.model = model
        self.keyword = keyword
        self._device: Any = None

    def _load(self) -> None:
        self._jax = import_jax()
        self._device = jax_device(self.device)

    def _infer(self, feed_dict: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        jax = self._jax
        inputs = [jax.device_put(np.asarray(feed_dict[n]), self._device) for n in self.input_names]
        out = call_predict(self.model, inputs, self.input_names, self.keyword)
        leaves, _ = flatten_outputs(out)
        # np.asarray waits for JAX's asynchronous dispatch, so latency covers the computation.
        return self._name_outputs([np.asarray(leaf) for leaf in leaves])

    def _unload(self) -> None:
        self._device = None
