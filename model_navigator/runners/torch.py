"""Runners for the torch formats: the source nn.Module, TorchScript and ExportedProgram (.pt2)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.tensor import TensorMetadata, flatten_outputs
from model_navigator.frameworks.torch_utils import outputs_to_numpy, to_torch_inputs
from model_navigator.runners.base import NavigatorRunner, RunnerArgs, SourceRunner


class _TorchRunner(NavigatorRunner):
    def __init__(
        self,
        input_metadata: Sequence[TensorMetadata],
        output_metadata: Sequence[TensorMetadata],
        device: str = "cpu",
        keyword: bool = False,
        name: Optional[str] = None,
        kw_names: Optional[Sequence[str]] = None,
    ):
        super().__init__(input_metadata, output_metadata, device, name)
        self.keyword = keyword
        self.kw_names = tuple(kw_names) if kw_names else None  # the forward's names of the inputs
        self._module: Any = None

    def _infer(self, feed_dict: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        import torch

        args, kwargs = to_torch_inputs(feed_dict, self.input_names, self.device, self.keyword, self.kw_names)
        with torch.inference_mode():
            out = self._module(*args, **kwargs)
        return self._name_outputs(outputs_to_numpy(out))

    def _unload(self) -> None:
        self._module = None


class TorchSourceRunner(_TorchRunner, SourceRunner):
    """The user's own nn.Module in eval mode (only in the process that holds the model)."""

    def __init__(self, model: Any, *args: Any, **kwargs: Any):
        kwargs.setdefault("name", "torch-source")
        super().__init__(*args, **kwargs)
        self.model = model

    def _load(self) -> None:
        self._module = self.model.eval()

    def call(self, feed_dict: Dict[str, np.ndarray]) -> Any:
        import torch

        args, kwargs = to_torch_inputs(feed_dict, self.input_names, self.device, self.keyword, self.kw_names)
        with torch.inference_mode():
            return self._module(*args, **kwargs)

    def flatten(self, output: Any) -> Tuple[List[np.ndarray], List[str]]:
        tensors, names = flatten_outputs(output)
        return [t.detach().cpu().numpy() for t in tensors], names

    _infer = SourceRunner._infer


class TorchScriptRunner(_TorchRunner):
    def __init__(self, model_path: Path, *args: Any, **kwargs: Any):
        kwargs.setdefault("name", "torchscript")
        super().__init__(*args, **kwargs)
        self.model_path = Path(model_path)

    def _load(self) -> None:
        import torch

        self._module = torch.jit.load(str(self.model_path), map_location=self.device).eval()


class TorchTensorRTRunner(TorchScriptRunner):
    """A Torch-TensorRT TorchScript module: its engines are custom ops (tensorrt::execute_engine)
    that exist only once torch_tensorrt is imported, so import it before loading."""

    def _load(self) -> None:
        import torch_tensorrt  # noqa: F401  (registers the TensorRT runtime ops with TorchScript)

        super()._load()


class TorchExportedProgramRunner(_TorchRunner):
    def __init__(self, model_path: Path, *args: Any, **kwargs: Any):
        kwargs.setdefault("name", "torch-exportedprogram")
        super().__init__(*args, **kwargs)
        self.model_path = Path(model_path)

    def _load(self) -> None:
        import torch

        program = torch.export.load(str(self.model_path))
        self._module = program.module().to(self.device)


class TorchCompileRunner(_TorchRunner):
    """The user's nn.Module compiled with torch.compile (inductor by default), in the user's process.

    Compilation is lazy: the first inference of each new input shape compiles (tens of seconds on
    a CPU, which needs a C++ compiler); a failure to compile surfaces as that inference's error.
    Runners of the same model share torch's compiled code, so re-activating does not recompile.
    """

    def __init__(self, model: Any, *args: Any, backend: str = "inductor", mode: Optional[str] = None, **kwargs: Any):
        kwargs.setdefault("name", "torch-compile")
        super().__init__(*args, **kwargs)
        self.model = model
        self.backend = backend
        self.mode = mode

    def _load(self) -> None:
        import torch

        self._error: Optional[BaseException] = None
        self._module = torch.compile(self.model.eval(), backend=self.backend, mode=self.mode)

    def _infer(self, feed_dict: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        # After a failed compilation torch may run later calls eagerly: that is not this runtime, so
        # the first error sticks and every later inference raises it too.
        if self._error is not None:
            raise RuntimeError(
                f"torch.compile failed earlier: {type(self._error).__name__}: {self._error}"
            ) from self._error
        try:
            return super()._infer(feed_dict)
        except Exception as e:
            self._error = e
            raise


# Factories and loaders named by the torch formats' declarations (core/formats.py) --------------
def torch_source_runner(model: Any, a: RunnerArgs) -> NavigatorRunner:
    return TorchSourceRunner(
        model, a.inputs, a.outputs, device=a.device, keyword=a.keyword, name=a.name, kw_names=a.kw_names
    )


def torch_compile_runner(model: Any, a: RunnerArgs) -> NavigatorRunner:
    # compiles for the model's device
    return TorchCompileRunner(
        model, a.inputs, a.outputs, device=a.target, keyword=a.keyword, name=a.name, kw_names=a.kw_names
    )


def torchscript_runner(model_path: Path, a: RunnerArgs) -> NavigatorRunner:
    return TorchScriptRunner(
        model_path, a.inputs, a.outputs, device=a.device, keyword=a.keyword, name=a.name, kw_names=a.kw_names
    )


def exportedprogram_runner(model_path: Path, a: RunnerArgs) -> NavigatorRunner:
    return TorchExportedProgramRunner(
        model_path, a.inputs, a.outputs, device=a.device, keyword=a.keyword, name=a.name, kw_names=a.kw_names
    )


def torch_trt_runner(model_path: Path, a: RunnerArgs) -> NavigatorRunner:
    # Torch-TensorRT renames forward's arguments (input_0, ...): call it positionally, in the
    # order the conversion compiled it for.
    order = a.reported.get("input_order") or [m.name for m in a.inputs]
    by_name = {m.name: m for m in a.inputs}
    return TorchTensorRTRunner(
        model_path, [by_name[n] for n in order], a.outputs, device=a.device, keyword=False, name=a.name
    )


def load_torchscript(model_path: Path) -> Any:
    import torch

    return torch.jit.load(str(model_path), map_location="cpu")


def load_exportedprogram(model_path: Path) -> Any:
    import torch

    return torch.export.load(str(model_path))
