"""TorchScript -> Torch-TensorRT (torch-trt-{script,trace}-{fp32,fp16}) with torch_tensorrt."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from model_navigator.converters.tensorrt import conversion_profile_shapes
from model_navigator.core.enums import TensorRTPrecision, TensorRTPrecisionMode
from model_navigator.paths.base import PathSpec, ProduceRequest


def enabled_precisions(precision: TensorRTPrecision, mode: TensorRTPrecisionMode) -> List[str]:
    """'single': only the target precision; 'hierarchy': the target and every wider one."""
    if mode == TensorRTPrecisionMode.SINGLE or precision == TensorRTPrecision.FP32:
        return [precision.value]
    return [TensorRTPrecision.FP32.value, precision.value]


def frontend_unavailable(spec: PathSpec) -> Optional[str]:
    """These paths compile TorchScript (ir="ts"): a torch_tensorrt build without that frontend
    (runtime-only and Windows builds; the frontend is deprecated upstream) cannot run them."""
    from torch_tensorrt._features import ENABLED_FEATURES

    if getattr(ENABLED_FEATURES, "torchscript_frontend", False):
        return None
    import torch_tensorrt

    return f"this torch_tensorrt {torch_tensorrt.__version__} build has no TorchScript frontend (ir='ts')"


def gpu_index(target_device: str) -> int:
    """'cuda:1' -> 1; plain 'cuda' -> the current CUDA device, as torch reads it."""
    import torch

    index = torch.device(target_device).index
    return torch.cuda.current_device() if index is None else index


def forward_input_order(module: Any, input_names: Sequence[str], keyword: bool) -> List[str]:
    """The order in which the compiled module's forward takes the inputs. Torch-TensorRT renames
    forward's arguments (input_0, ...), so they are passed positionally: keyword inputs go in the
    TorchScript forward's own argument order (a dict from a tokenizer rarely has it), and must be
    its leading arguments (a gap would shift every later input into the wrong argument)."""
    if not keyword:
        return list(input_names)
    params = [a.name for a in module.forward.schema.arguments[1:]]
    unknown = [n for n in input_names if n not in params]
    if unknown:
        raise ValueError(f"inputs {unknown} are not arguments of the TorchScript forward {params}")
    order = params[: len(input_names)]
    if set(order) != set(input_names):
        skipped = [p for p in order if p not in input_names]
        raise ValueError(
            f"Torch-TensorRT calls forward positionally, but the inputs {list(input_names)} skip its arguments "
            f"{skipped} (forward takes {params}); give the dataloader those arguments too"
        )
    return order


def convert_torchscript_to_torch_trt(request: ProduceRequest) -> Dict[str, Any]:
    """Compile the TorchScript parent for the target GPU with one input range per input; the result
    is a TorchScript module again, whose forward takes the inputs positionally in `input_order`."""
    workspace, status, config = request.workspace, request.status, request.config
    spec, parent_path, out_path = request.spec, request.parent_path, request.out_path
    if spec.precision is None:
        raise ValueError(f"{spec.key}: a Torch-TensorRT conversion needs a precision")
    import torch
    import torch_tensorrt

    shapes = conversion_profile_shapes(workspace, status, config)
    dtypes = {"fp32": torch.float32, "fp16": torch.float16}
    precisions = enabled_precisions(spec.precision, config.precision_mode)
    module = torch.jit.load(str(parent_path), map_location=config.target_device).eval()
    by_name = {m.name: m for m in status.inputs}
    order = forward_input_order(module, list(by_name), bool(config.forward_kw_names))
    inputs = []
    for m in (by_name[name] for name in order):
        dtype = getattr(torch, m.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"input {m.name!r} has dtype {m.dtype!r}, which torch_tensorrt.Input cannot take")
        low, opt, high = shapes[m.name]
        inputs.append(torch_tensorrt.Input(min_shape=low, opt_shape=opt, max_shape=high, dtype=dtype))
    # TensorRT has no 64-bit types: without this, int64 ids / float64 inputs stop the partitioner.
    truncate = any(m.dtype in ("int64", "float64") for m in status.inputs)
    workspace_size = int(config.max_workspace_size or 0)  # 0: TensorRT's default
    compiled = torch_tensorrt.compile(
        module,
        ir="ts",
        inputs=inputs,
        enabled_precisions={dtypes[p] for p in precisions},
        workspace_size=workspace_size,
        truncate_long_and_double=truncate,
        device=torch_tensorrt.Device(gpu_id=gpu_index(config.target_device)),
    )
    torch.jit.save(compiled, str(out_path))
    return {
        "enabled_precisions": precisions,
        "precision_mode": config.precision_mode.value,
        "truncate_long_and_double": truncate,
        "max_workspace_size": workspace_size,
        "input_order": order,
        "profile_shapes": {k: [list(s) for s in v] for k, v in shapes.items()},
    }
