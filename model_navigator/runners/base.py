"""The runner protocol: Polygraphy's BaseRunner (activate / infer(dict of numpy) -> dict of numpy /
deactivate, context manager), so Polygraphy's comparator and users' own tests accept our runners."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from polygraphy.backend.base import BaseRunner
from polygraphy.common import TensorMetadata as PolygraphyTensorMetadata
from polygraphy.datatype import DataType

from model_navigator.core.enums import RuntimeProvider
from model_navigator.core.tensor import TensorMetadata


class NavigatorRunner(BaseRunner):
    """Base of every model-navigator runner: subclasses implement `_load`, `_infer` and `_unload`."""

    def __init__(
        self,
        input_metadata: Sequence[TensorMetadata],
        output_metadata: Sequence[TensorMetadata],
        device: str = "cpu",
        name: Optional[str] = None,
    ):
        super().__init__(name=name, prefix="nav-runner")
        self.input_metadata: List[TensorMetadata] = list(input_metadata)
        self.output_metadata: List[TensorMetadata] = list(output_metadata)
        self.input_names: List[str] = [m.name for m in self.input_metadata]
        self.output_names: List[str] = [m.name for m in self.output_metadata]
        self.device = device

    # Polygraphy hooks ------------------------------------------------------------------------
    def activate_impl(self) -> None:
        self._load()

    def deactivate_impl(self) -> None:
        self._unload()

    def get_input_metadata(self, use_numpy_dtypes: bool = False) -> PolygraphyTensorMetadata:
        """Input metadata with Polygraphy DataTypes (Polygraphy's own future default)."""
        return super().get_input_metadata(use_numpy_dtypes=use_numpy_dtypes)

    def get_input_metadata_impl(self) -> PolygraphyTensorMetadata:
        meta = PolygraphyTensorMetadata()
        for m in self.input_metadata:
            meta.add(m.name, DataType.from_dtype(np.dtype(m.dtype)), [None if d < 0 else d for d in m.shape])
        return meta

    def infer_impl(self, feed_dict: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        start = time.perf_counter()
        outputs = self._infer(feed_dict)
        self.inference_time = time.perf_counter() - start
        return outputs

    # For subclasses --------------------------------------------------------------------------
    def _load(self) -> None:
        raise NotImplementedError

    def _infer(self, feed_dict: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        raise NotImplementedError

    def _unload(self) -> None:
        pass

    def _name_outputs(self, values: Sequence[Any]) -> "OrderedDict[str, np.ndarray]":
        """Pair flat output values with the output names, checking the count matches."""
        if len(values) != len(self.output_names):
            raise RuntimeError(
                f"{self.name}: model returned {len(values)} outputs, expected {len(self.output_names)} "
                f"({', '.join(self.output_names)})."
            )
        return OrderedDict(zip(self.output_names, values, strict=True))


class SourceRunner(NavigatorRunner):
    """A runner of the user's own model. `call` runs it on one feed and returns what the framework
    returns; `flatten` turns that into numpy arrays with default names (dict keys, output__N). The
    export's reference outputs come from these two (before output names are known); inference is
    both, named by the runner's output metadata."""

    def call(self, feed_dict: Dict[str, np.ndarray]) -> Any:
        raise NotImplementedError

    def flatten(self, output: Any) -> Tuple[List[np.ndarray], List[str]]:
        raise NotImplementedError

    def _infer(self, feed_dict: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        return self._name_outputs(self.flatten(self.call(feed_dict))[0])


@dataclass(frozen=True)
class RunnerArgs:
    """What a runner factory (a format's declared `runners`, core/formats.py) is given beside the
    model: the tensors, the device it runs on (target: the export's target_device), whether inputs
    go by keyword (kw_names: the forward's names, in input order), the runner's name, the runtime
    and what the path's producer reported (Torch-TensorRT's input order)."""

    inputs: Sequence[TensorMetadata]
    outputs: Sequence[TensorMetadata]
    device: str
    target: str
    keyword: bool
    kw_names: Optional[Tuple[str, ...]]
    name: str
    runtime: RuntimeProvider
    reported: Dict[str, Any] = field(default_factory=dict)
