"""Build the runner for a path and runtime from status.yaml: the one place runners are chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from model_navigator.core.enums import SOURCE_FORMATS, Format, RuntimeProvider
from model_navigator.core.errors import UserInputError
from model_navigator.core.status import NavigatorStatus, PathStatus
from model_navigator.runners.base import NavigatorRunner


def runtime_device(runtime: RuntimeProvider) -> str:
    from model_navigator.core.enums import CPU_RUNTIMES

    return "cpu" if runtime in CPU_RUNTIMES else "cuda"


def make_runner(
    workdir: Path,
    status: NavigatorStatus,
    path: PathStatus,
    runtime: RuntimeProvider,
    source_model: Optional[Any] = None,
) -> NavigatorRunner:
    """A new, inactive runner for `path` on `runtime` (use it as a context manager)."""
    inputs, outputs = status.inputs, status.outputs
    keyword = bool(status.config.forward_kw_names)
    kw_names = tuple(status.config.forward_kw_names or ()) or None  # forward's names, in input order
    device = runtime_device(runtime)
    target = status.config.target_device
    if device == "cuda" and target.startswith("cuda"):
        device = target  # 'cuda:1' stays device 1, where the source model and the exports live
    name = f"{path.key}:{runtime.value}"
    if path.format in SOURCE_FORMATS:
        if source_model is None:
            raise UserInputError(
                f"The source {path.format.value} model is not part of a workspace or package; its runner exists "
                f"only in the process that called export()."
            )
        if path.format == Format.TORCH and runtime == RuntimeProvider.TORCH_COMPILE:
            from model_navigator.runners.torch import TorchCompileRunner

            device = target  # compiles for the model's device
            return TorchCompileRunner(source_model, inputs, outputs, device=device, keyword=keyword, name=name,
            kw_names=kw_names)
        if path.format == Format.TORCH:
            from model_navigator.runners.torch import TorchSourceRunner

            return TorchSourceRunner(source_model, inputs, outputs, device=device, keyword=keyword, name=name,
            kw_names=kw_names)
        if path.format == Format.TENSORFLOW:
            from model_navigator.runners.tensorflow import TensorFlowSourceRunner

            return TensorFlowSourceRunner(source_model, inputs, outputs, device=device, keyword=keyword, name=name)
        if path.format == Format.JAX:
            from model_navigator.runners.jax import JaxSourceRunner

            return JaxSourceRunner(source_model, inputs, outputs, device=device, keyword=keyword, name=name)
        if path.format == Format.ONNX_SOURCE:  # the user's .onnx file on ONNX Runtime
            from model_navigator.runners.onnx import OnnxSourceRunner

            provider = RuntimeProvider.CPU if device == "cpu" else RuntimeProvider.CUDA
            return OnnxSourceRunner(Path(source_model), inputs, outputs, provider=provider, name=name, device=device)
        raise UserInputError(f"No source runner for {path.format.value} yet.")
    if path.model_path is None:
        raise UserInputError(f"Path {path.key!r} has no model ({path.status.value}): {path.reason or 'not exported'}.")
    model_path = Path(workdir) / path.model_path
    if path.format == Format.ONNX and runtime == RuntimeProvider.OPENVINO:
        from model_navigator.runners.openvino import OpenVINORunner

        return OpenVINORunner(model_path, inputs, outputs, name=name)
    if path.format == Format.ONNX:
        from model_navigator.runners.onnx import OnnxRuntimeRunner

        return OnnxRuntimeRunner(model_path, inputs, outputs, provider=runtime, name=name, device=device)
    if path.format == Format.TORCHSCRIPT:
        from model_navigator.runners.torch import TorchScriptRunner

        return TorchScriptRunner(model_path, inputs, outputs, device=device, keyword=keyword, name=name,
            kw_names=kw_names)
    if path.format == Format.TORCH_EXPORTEDPROGRAM:
        from model_navigator.runners.torch import TorchExportedProgramRunner

        return TorchExportedProgramRunner(model_path, inputs, outputs, device=device, keyword=keyword, name=name,
            kw_names=kw_names)
    if path.format == Format.TORCH_TRT:
        from model_navigator.runners.torch import TorchTensorRTRunner

        # Torch-TensorRT renames forward's arguments (input_0, ...): call it positionally, in the
        # order the conversion compiled it for.
        order = path.flags.get("input_order") or [m.name for m in inputs]
        by_name = {m.name: m for m in inputs}
        return TorchTensorRTRunner(model_path, [by_name[n] for n in order], outputs, device=device, keyword=False,
                                   name=name)
    if path.format in (Format.TF_SAVEDMODEL, Format.TF_TRT):  # a TF-TRT artifact is a SavedModel too
        from model_navigator.runners.tensorflow import TensorFlowSavedModelRunner

        return TensorFlowSavedModelRunner(model_path, inputs, outputs, device=device, name=name)
    if path.format == Format.TENSORRT:
        from model_navigator.runners.tensorrt import TensorRTRunner

        return TensorRTRunner(model_path, inputs, outputs, name=name)
    raise UserInputError(f"No runner for format {path.format.value!r}.")
