"""Export producers that need the user's torch.nn.Module: TorchScript, torch.export (.pt2), ONNX."""

from __future__ import annotations

import contextlib
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from model_navigator.core.diskspace import ensure_space, written_atomically, written_in_staging
from model_navigator.core.enums import JitType
from model_navigator.frameworks.torch_utils import to_torch_inputs
from model_navigator.paths.base import ExportContext, Hint, PathSpec, ProduceRequest, match_hint

# Exports trace a batch of this size (batch 1 would let tracers specialise the batch axis to a constant);
# a check failing at batch 1 tries it (steps/correctness.export_batch_of) and says BATCH_HINT.
EXPORT_BATCH_SIZE = 2
BATCH_HINT = "mark the batch axis dynamic or avoid shape-dependent Python code in forward()"

# Known exporter limits and what works instead (paths.base.match_hint).
_HINTS: Tuple[Hint, ...] = (
    (
        ("Failed to get source", "could not get source", "Can't get source", "requires source access"),
        "torchscript-script",
        "torch.jit.script cannot read this model's source (a library model built at run time); tracing works: "
        "jit_options=('trace',)",
    ),
)
_TORCHSCRIPT_ONNX_HINTS: Tuple[Hint, ...] = (  # the TorchScript-based ONNX exporter's (onnx_dynamo=False)
    (
        ("UnsupportedOperatorError", "to ONNX opset version"),
        "onnx",
        "the TorchScript-based ONNX exporter lacks this operator; onnx_dynamo=True (the torch.export-based exporter) "
        "often has it",
    ),
)


@dataclass
class TorchExportContext(ExportContext):
    """What every torch export needs: the model, one example batch and the tensor names/axes."""

    model: Any
    example: Dict[str, np.ndarray]
    input_names: Tuple[str, ...]
    output_names: Tuple[str, ...]
    keyword: bool
    dynamic_axes: Dict[str, List[int]] = field(default_factory=dict)
    opset: int = 17
    onnx_dynamo: bool = False
    device: str = "cpu"
    kw_names: Optional[Tuple[str, ...]] = None  # the forward's names of the inputs (keyword samples)

    def example_args(self):
        return to_torch_inputs(self.example, self.input_names, self.device, self.keyword, self.kw_names)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """The model on the target device (export() put it there; a model from `convert --model` is moved)."""
        if self.device != "cpu":
            self.model.to(self.device)
        yield

    def write_reproduce(self, workspace: Any, spec: PathSpec) -> None:
        write_export_reproduce(workspace, spec)

    def failure_hint(self, spec: PathSpec, reason: str) -> Optional[str]:
        return match_hint(_HINTS + (() if self.onnx_dynamo else _TORCHSCRIPT_ONNX_HINTS), spec, reason)

    def forks(self) -> bool:
        """On the CPU, with no CUDA context in this process (one does not survive a fork)."""
        import torch

        return self.device == "cpu" and not torch.cuda.is_initialized()

    def after_fork(self) -> None:
        """One intra-op thread: GNU OpenMP's thread pool does not survive a fork (a parallel region in the
        child would wait forever for the parent's threads), as torch's DataLoader workers do."""
        import torch

        torch.set_num_threads(1)


def export_torchscript(request: ProduceRequest) -> Dict[str, Any]:
    """torch.jit.script or torch.jit.trace, then save."""
    ctx, spec, out_path = request.context, request.spec, request.out_path
    import torch

    if spec.jit_type == JitType.SCRIPT:
        module = torch.jit.script(ctx.model)
    else:
        args, kwargs = ctx.example_args()
        with torch.inference_mode(False), torch.no_grad():
            if kwargs:
                module = torch.jit.trace(ctx.model, example_kwarg_inputs=kwargs, strict=False, check_trace=False)
            else:
                module = torch.jit.trace(ctx.model, args, strict=False, check_trace=False)
    # Through a Python file object: a short write (full disk) is an OSError there, where
    # torch.jit.save(module, path) aborts the process from C++.
    with written_atomically(out_path) as tmp, open(tmp, "wb") as f:
        torch.jit.save(module, f)
    return {}


def _dynamic_shapes(ctx: TorchExportContext) -> Optional[Any]:
    import torch

    # Dim.DYNAMIC (torch >= 2.6): relations between axes are inferred as with Dim.AUTO, but an axis the
    # code specialises to a constant fails the export with torch's message instead of passing silently.
    dynamic = getattr(torch.export.Dim, "DYNAMIC", None) or torch.export.Dim.AUTO
    specs = [{axis: dynamic for axis in ctx.dynamic_axes.get(n, [])} or None for n in ctx.input_names]
    if all(s is None for s in specs):
        return None
    if ctx.keyword:
        return dict(zip(ctx.kw_names or ctx.input_names, specs, strict=True))
    return tuple(specs)


def _plain(value: Any) -> bool:
    """Is `value` a tensor, None, or a plain tuple/list/dict of such (what any process can unflatten)?"""
    import torch

    if value is None or isinstance(value, torch.Tensor):  # traced, it is a FakeTensor / FunctionalTensor
        return True
    if type(value) in (tuple, list):
        return all(_plain(v) for v in value)
    if type(value) is dict:
        return all(_plain(v) for v in value.values())
    return False


def flat_outputs(model: Any) -> Any:
    """A module with model.forward's signature whose outputs are the model's, except that outputs in
    a container of the model's own (a transformers ModelOutput, a dataclass) come as a flat tuple
    of tensors, in the order (and so under the names) the export records. A .pt2 keeps the output
    type in the program's pytree spec, and a ModelOutput cannot be loaded in a process that has not
    imported its class ("... in pytree is not registered")."""
    import torch

    from model_navigator.frameworks.torch_utils import flatten_outputs

    class FlatOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            out = self.model(*args, **kwargs)
            return out if _plain(out) else tuple(flatten_outputs(out)[0])

    try:  # torch.export binds the example inputs and dynamic_shapes to forward's parameters
        parameters = list(inspect.signature(model.forward).parameters.values())
        self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        FlatOutputs.forward.__signature__ = inspect.Signature([self_parameter, *parameters])  # type: ignore
    except (TypeError, ValueError):  # no signature to copy: positional inputs bind all the same
        pass
    return FlatOutputs().eval()


def export_exportedprogram(request: ProduceRequest) -> Dict[str, Any]:
    """torch.export.export of the model with flat outputs (see flat_outputs), the dynamic axes marked
    Dim.DYNAMIC, saved as .pt2."""
    ctx, out_path = request.context, request.out_path
    import torch

    args, kwargs = ctx.example_args()
    program = torch.export.export(flat_outputs(ctx.model), args, kwargs or None, dynamic_shapes=_dynamic_shapes(ctx))
    # torch.export.save aborts the process from C++ on a short write (to a path or a file object):
    # check the space against every tensor the program holds (weights and baked-in constants).
    ensure_space(out_path.parent, program_tensor_bytes(program), "the artifact")
    with written_atomically(out_path) as tmp:
        torch.export.save(program, str(tmp))
    return {}


def program_tensor_bytes(program: Any) -> int:
    """Bytes of the tensors an ExportedProgram holds: its state_dict and its constants (tensors the
    graph baked in, such as a module's plain tensor attributes or globals), each storage once."""
    import torch

    from model_navigator.core.diskspace import distinct_tensor_bytes

    tensors = list(program.state_dict.values()) + list(program.constants.values())
    return distinct_tensor_bytes(t for t in tensors if isinstance(t, torch.Tensor))


def keyword_adapter(model: Any, names: Tuple[str, ...]) -> Any:
    """A module whose forward(*tensors) calls model(**dict(zip(names, tensors))).

    The TorchScript-based ONNX exporter binds `kwargs=` to the forward's parameters by position and
    fills the rest with their defaults; a forward wrapped by a decorator that injects keywords (as
    transformers 5 does with `use_cache`) or that takes keyword-only / **kwargs parameters then
    fails ("got multiple values for argument"). Passing the tensors positionally to this adapter
    and on to the model by keyword is what the user's own call does."""
    import torch

    class KeywordAdapter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(**dict(zip(names, tensors, strict=True)))

    return KeywordAdapter().eval()


def export_onnx(request: ProduceRequest) -> Dict[str, Any]:
    """torch.onnx.export: the TorchScript-based exporter by default, the torch.export-based one with onnx_dynamo."""
    ctx, out_path = request.context, request.out_path
    import torch

    args, kwargs = ctx.example_args()
    names = list(ctx.input_names) + list(ctx.output_names)
    with written_in_staging(out_path) as staged, warnings.catch_warnings():  # never half a model.onnx
        warnings.simplefilter("ignore", DeprecationWarning)
        if ctx.onnx_dynamo:
            torch.onnx.export(
                ctx.model,
                args,
                str(staged),
                kwargs=kwargs or None,
                input_names=list(ctx.input_names),
                output_names=list(ctx.output_names),
                opset_version=ctx.opset,
                dynamo=True,
                dynamic_shapes=_dynamic_shapes(ctx),
                external_data=False,
            )
        else:
            dynamic_axes = {
                n: {a: f"{n}_dim{a}" for a in ctx.dynamic_axes[n]} for n in names if ctx.dynamic_axes.get(n)
            }
            model = ctx.model
            if kwargs:  # keyword samples: the exporter sees positional inputs only (see keyword_adapter)
                model, args = keyword_adapter(ctx.model, tuple(kwargs)), tuple(kwargs.values())
            torch.onnx.export(
                model,
                args,
                str(staged),
                input_names=list(ctx.input_names),
                output_names=list(ctx.output_names),
                opset_version=ctx.opset,
                dynamo=False,
                dynamic_axes=dynamic_axes or None,
            )
    return {"opset": ctx.opset, "exporter": "dynamo" if ctx.onnx_dynamo else "torchscript"}


def export_example(conversion_samples: List[Dict[str, np.ndarray]], batch_dim: Optional[int]) -> Dict[str, np.ndarray]:
    """The sample exports trace with: the largest conversion sample, as a batch of EXPORT_BATCH_SIZE
    when batched."""
    from model_navigator.core.samples import build_batch

    largest = max(conversion_samples, key=lambda s: sum(a.size for a in s.values()))
    return build_batch(largest, EXPORT_BATCH_SIZE, batch_dim) if batch_dim is not None else largest


def context_from_status(model: Any, workspace: Any, status: Any) -> TorchExportContext:
    """The export context from status.yaml and the saved conversion samples (reproduce_export.py,
    `convert --model`: there is no export in memory)."""
    from model_navigator.core.samples import load_sample_dir

    return make_context(
        model, status.config, status.inputs, status.outputs, load_sample_dir(workspace.input_dir("conversion"))
    )


def make_context(
    model: Any,
    config: Any,
    inputs: Sequence[Any],
    outputs: Sequence[Any],
    conversion_samples: List[Dict[str, np.ndarray]],
) -> TorchExportContext:
    """The export context of `model` under `config`, tensors named by `inputs`/`outputs` (TensorMetadata)."""
    return TorchExportContext(
        model=model,
        example=export_example(conversion_samples, config.batch_dim),
        input_names=tuple(m.name for m in inputs),
        output_names=tuple(m.name for m in outputs),
        keyword=bool(config.forward_kw_names),
        kw_names=tuple(config.forward_kw_names or ()) or None,
        dynamic_axes={k: list(v) for k, v in config.dynamic_axes.items()},
        opset=config.opset,
        onnx_dynamo=config.onnx_dynamo,
        device=config.target_device,
    )


_EXPORT_TEMPLATE = '''#!/usr/bin/env python3
"""Reproduce the export of path `{path}`.

Export needs your model object: implement get_model() below, then run from the workspace root:
    bash {path}/reproduce_export.sh
"""
import sys

from model_navigator.exporters.torch import reproduce_export_main


def get_model():
    raise NotImplementedError("Please implement get_model() to return your torch.nn.Module to reproduce the export.")


if __name__ == "__main__":
    sys.exit(reproduce_export_main(get_model, sys.argv[1:]))
'''


def write_export_reproduce(workspace: Any, spec: PathSpec) -> None:
    """Write <path>/reproduce_export.py (needs only get_model()) and its .sh."""
    from model_navigator.exporters import reproduce

    reproduce.write_export_reproduce(workspace, spec, _EXPORT_TEMPLATE)


def reproduce_export_main(get_model: Any, argv: List[str]) -> int:
    """Entry of reproduce_export.py: export the path again from get_model() with the recorded settings."""
    from model_navigator.core.enums import Framework
    from model_navigator.exporters.reproduce import run_reproduce_export

    return run_reproduce_export(
        Framework.TORCH, lambda workspace, status: context_from_status(get_model(), workspace, status), argv
    )
