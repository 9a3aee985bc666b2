"""Triton Inference Server model repositories from model-navigator packages.

    import model_navigator as nav
    model = nav.triton.write_model_repository(package, "model_repository")   # the best path
    model = nav.triton.write_model_repository(package, "repo", path_key="onnx", runtime="OpenVINO")

Nothing here imports a framework; copying an artifact needs none.
"""

from model_navigator.triton.batching import Batching, plan_batching
from model_navigator.triton.config import (
    TritonConfigError,
    TritonModelConfig,
    TritonTensor,
    parse_model_config,
    triton_dtype,
)
from model_navigator.triton.repository import (
    CONFIG_FILE,
    TritonModel,
    backend_for,
    model_config_for,
    write_model_repository,
)

__all__ = [
    "CONFIG_FILE",
    "Batching",
    "TritonConfigError",
    "TritonModel",
    "TritonModelConfig",
    "TritonTensor",
    "backend_for",
    "model_config_for",
    "parse_model_config",
    "plan_batching",
    "triton_dtype",
    "write_model_repository",
]
