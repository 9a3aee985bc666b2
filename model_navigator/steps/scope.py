"""What a run covers: which declared paths the user asked for, and on which runtimes each is
checked and profiled here (installed, on the target device, named in `runtimes=`)."""

from __future__ import annotations

from typing import List, Optional

from model_navigator.core.config import ExportConfig
from model_navigator.core.enums import Format, RuntimeProvider
from model_navigator.core.logging import LOGGER
from model_navigator.core.status import CorrectnessResult
from model_navigator.paths.base import PathSpec


def requested(spec: PathSpec, config: ExportConfig) -> bool:
    """Did the user ask for this path (its format, jit type, precision, and selectors such as JAX's
    enable_xla / jit_compile when the config lists the values wanted)?"""
    if spec.format not in config.target_formats:
        return False
    if spec.jit_type is not None and spec.jit_type not in config.jit_options:
        return False
    if spec.precision is not None and spec.precision not in config.target_precisions:
        return False
    for name, value in spec.selectors:
        wanted = getattr(config, name, None)
        if isinstance(wanted, (tuple, list)) and value not in wanted:
            return False
    return True


def runtime_available(runtime: RuntimeProvider) -> bool:
    """Is the Python module this runtime needs installed (OpenVINO: `openvino`)?"""
    import importlib.util

    from model_navigator.core.formats import RUNTIME_MODULES

    module = RUNTIME_MODULES.get(runtime)
    return module is None or importlib.util.find_spec(module[0]) is not None


def runtime_unavailable_reason(fmt: Format, runtime: RuntimeProvider) -> Optional[str]:
    """Why `runtime`, one the path should run on, cannot run `fmt` here, or None; recorded as that
    runtime's skip (runtime_available, by contrast, silently leaves out optional runtimes such as
    OpenVINO). The format declares the check (core/formats.py `availability`); today: ONNX on an
    ONNX Runtime without the CUDA / TensorRT execution provider (the CPU-only `onnxruntime` wheel),
    which would otherwise run on the CPU under the GPU provider's name."""
    from model_navigator.core.formats import format_spec, load_function

    check = format_spec(fmt).availability_check(runtime)
    return load_function(check)(runtime) if check else None


def selected_runtimes(spec: PathSpec, config: ExportConfig) -> List[RuntimeProvider]:
    """The path's runtimes on the target device that are installed here, restricted to
    `config.runtimes` when it names any default runtime (opt-in runtimes such as TorchCompile add
    to the defaults rather than restrict them)."""
    from model_navigator.core.formats import OPT_IN_RUNTIMES

    runtimes = spec.runtimes_for(config.target_device)
    chosen = [r for r in (config.runtimes or ()) if r not in OPT_IN_RUNTIMES]
    if chosen:
        runtimes = tuple(r for r in runtimes if r in chosen)
    return [r for r in runtimes if runtime_available(r)]


def source_runtimes(config: ExportConfig, source_format: Format) -> List[RuntimeProvider]:
    """Opt-in runtimes of the source model named in `runtimes=` (torch.compile for a torch model)."""
    from model_navigator.core.formats import OPT_IN_RUNTIMES

    from model_navigator.core.formats import format_spec

    wanted = [r for r in (config.runtimes or ()) if r in OPT_IN_RUNTIMES]
    declared = [r for r in wanted if format_spec(source_format).names_runtime(r)]
    if len(declared) < len(wanted):
        LOGGER.warning(
            "runtimes %s do not run %s models; ignored",
            [r.value for r in wanted if r not in declared],
            source_format.value,
        )
    return declared


def correctness_summary(result: CorrectnessResult) -> str:
    errs = "; ".join(
        f"{n}: abs {e.max_abs_error:.2e} rel {e.max_rel_error:.2e}"
        + (f" rel L2 {e.rel_l2:.2%} cos {e.cosine:.5f}" if e.rel_l2 is not None else "")
        for n, e in result.per_output.items()
    )
    return f"max error {errs}" if errs else "ok"
