"""TorchScript -> Torch-TensorRT (torch-trt-{script,trace}-{fp32,fp16}) with torch_tensorrt."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from model_navigator.converters.tensorrt import max_profiled_batch, profile_shapes
from model_navigator.core.config import ExportConfig
from model_navigator.core.enums import TensorRTPrecision, TensorRTPrecisionMode
from model_navigator.core.samples import load_sample_dir
from model_navigator.core.status import NavigatorStatus
from model_navigator.paths.base import PathSpec


def enabled_precisions(precision: TensorRTPrecision, mode: TensorRTPrecisionMode) -> List[str]:
    """'single': only the target precision; 'hierarchy': the target and every wider one."""
    if mode == TensorRTPrecisionMode.SINGLE or precision == TensorRTPrecision.FP32:
        return [precision.value]
    return [TensorRTPrecision.FP32.value, precision.value]


def convert_torchscript_to_torch_trt(workspace: Any, status: NavigatorStatus, config: ExportConfig, spec: PathSpec,
                                     parent_path: Path, out_path: Path) -> Dict[str, Any]:
    import torch
    import torch_tensorrt

    samples = load_sample_dir(workspace.input_dir("conversion"))
    shapes = profile_shapes({m.name: [s[m.name].shape for s in samples] for m in status.inputs}, config.batch_dim,
                            max_profiled_batch(config, int(status.dataloader.get("batch_size", 1))),
                            config.trt_dynamic_axes)
    dtypes = {"fp32": torch.float32, "fp16": torch.float16}
    precisions = enabled_precisions(spec.precision, config.precision_mode)
    inputs = [
        torch_tensorrt.Input(min_shape=low, opt_shape=opt, max_shape=high,
                             dtype=getattr(torch, m.dtype) if hasattr(torch, m.dtype) else torch.float32)
        for m in status.inputs for (low, opt, high) in [shapes[m.name]]
    ]
    module = torch.jit.load(str(parent_path), map_location="cuda").eval()
    compiled = torch_tensorrt.compile(
        module, ir="ts", inputs=inputs, enabled_precisions={dtypes[p] for p in precisions},
        workspace_size=config.max_workspace_size or 0,
    )
    torch.jit.save(compiled, str(out_path))
    return {"enabled_precisions": precisions, "precision_mode": config.precision_mode.value,
            "profile_shapes": {k: [list(s) for s in v] for k, v in shapes.items()}}
