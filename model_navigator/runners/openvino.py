"""OpenVINO runner: the .onnx artifact compiled by OpenVINO's own runtime for the CPU.

`openvino.Core().read_model(model.onnx)` then `compile_model(model, "CPU")`; inputs are fed and
outputs read by name. Dynamic axes of the ONNX model stay dynamic, so any batch size runs.

Precision: on CPUs with native bfloat16 (AVX512-BF16, AMX) OpenVINO's default inference precision
is bf16, which would make an fp32 path a different, less precise model than the one exported. The
runner pins `INFERENCE_PRECISION_HINT` to f32 (the precision of the artifact) unless the caller
passes its own `config`; the latency hint matches the one-request-at-a-time use of a runner.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from model_navigator.core.tensor import TensorMetadata
from model_navigator.runners.base import NavigatorRunner, RunnerArgs

DEFAULT_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
TELEMETRY_ENV = "MODEL_NAVIGATOR_OPENVINO_TELEMETRY"


def import_openvino() -> Any:
    """Import openvino with its usage telemetry off, unless MODEL_NAVIGATOR_OPENVINO_TELEMETRY=1.

    `import openvino` sends a usage event through `openvino_telemetry`, which forks a process from
    a background thread. In a process that already runs threads that fork can deadlock, and the
    forked child inherits the worker's pipes, so a crashed worker is never seen to exit. Blocking
    the `openvino_telemetry` import makes OpenVINO use its built-in no-op stub (as when the package
    is not installed); nothing else changes. A process that imported openvino before is left as is.
    """
    if "openvino" not in sys.modules and os.environ.get(TELEMETRY_ENV) != "1":
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino

    return openvino


class OpenVINORunner(NavigatorRunner):
    """Runs an .onnx file with OpenVINO (`openvino.Core().compile_model(path, device)`)."""

    def __init__(
        self,
        model_path: Path,
        input_metadata: Sequence[TensorMetadata],
        output_metadata: Sequence[TensorMetadata],
        device: str = "CPU",
        config: Optional[Dict[str, Any]] = None,
        name: Optional[str] = None,
    ):
        super().__init__(input_metadata, output_metadata, "cpu", name or "openvino")
        self.model_path = Path(model_path)
        self.ov_device = device
        self.config = dict(DEFAULT_CONFIG if config is None else config)
        self._compiled: Any = None
        self.precision_warning: Optional[str] = None  # the precision asked for and not compiled
        self._request: Any = None

    def _load(self) -> None:
        openvino = import_openvino()
        core = openvino.Core()
        model = core.read_model(str(self.model_path))
        self._compiled = core.compile_model(model, self.ov_device, self.config)
        self.precision_warning = self._precision_warning()
        self._request = self._compiled.create_infer_request()
        self._inputs = [self._port_name(port, [m.name for m in self.input_metadata]) for port in self._compiled.inputs]
        self._outputs = self._match_outputs()

    def _precision_warning(self) -> Optional[str]:
        """Say so when OpenVINO compiled another precision than the hint asked for (it silently runs
        bf16 at f32 on a CPU without bf16)."""
        wanted = str(self.config.get("INFERENCE_PRECISION_HINT", "")).lower()
        try:
            value = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        except Exception:
            return None
        compiled = (value.to_string() if hasattr(value, "to_string") else str(value)).lower()  # an openvino Type
        if wanted and wanted != compiled:
            return f"OpenVINO compiled the model at {compiled} inference precision, not the {wanted} asked for"
        return None

    @staticmethod
    def _port_name(port: Any, wanted: Sequence[str]) -> str:
        """The name of a port that our metadata knows (a port may carry several tensor names)."""
        names = port.get_names()
        for name in wanted:
            if name in names:
                return name
        return port.get_any_name()

    def _match_outputs(self) -> "OrderedDict[str, Any]":
        """Output name -> compiled port, in the order of the metadata (by name, else by position)."""
        ports = list(self._compiled.outputs)
        by_name: "OrderedDict[str, Any]" = OrderedDict()
        for index, name in enumerate(self.output_names):
            port = next((p for p in ports if name in p.get_names()), None)
            if port is None and len(ports) == len(self.output_names):
                port = ports[index]
            if port is None:
                known = [sorted(p.get_names()) for p in ports]
                raise RuntimeError(f"{self.name}: the OpenVINO model has no output {name!r}; its outputs: {known}")
            by_name[name] = port
        return by_name

    def _infer(self, feed_dict: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        feed = {name: np.ascontiguousarray(feed_dict[name]) for name in self._inputs}
        # share_inputs: OpenVINO reads the arrays in place (infer is synchronous); outputs are copies.
        results = self._request.infer(feed, share_inputs=True, share_outputs=False)
        return OrderedDict((name, results[port]) for name, port in self._outputs.items())

    def _unload(self) -> None:
        self._request = None
        self._compiled = None


def openvino_runner(model_path: Path, a: RunnerArgs) -> NavigatorRunner:
    """The factory named by the ONNX format's declaration for the OpenVINO runtime (core/formats.py)."""
    hint = (a.reported or {}).get("inference_precision_hint")  # the bf16 path's (paths/cpu_precision.py)
    config = {**DEFAULT_CONFIG, "INFERENCE_PRECISION_HINT": str(hint)} if hint else None
    return OpenVINORunner(model_path, a.inputs, a.outputs, config=config, name=a.name)
