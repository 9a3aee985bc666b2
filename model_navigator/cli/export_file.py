"""`model-navigator export MODEL.onnx` (or a SavedModel folder): verify and profile a model handed over
without a dataloader, on synthetic samples made from its declared input shapes and dtypes (fixed seed)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List

from model_navigator.cli.common import report


def _dim(text: str) -> Any:
    """NAME=SIZE of --dim."""
    name, sep, size = text.partition("=")
    if not sep or not name or not size.isdigit() or int(size) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME=SIZE with SIZE >= 1, got {text!r}")
    return name, int(size)


def cmd_export(args: argparse.Namespace) -> int:
    from model_navigator.api.synthetic import SyntheticSpec

    model = Path(args.model)
    spec = SyntheticSpec(
        sizes=dict(args.dim or []),
        dynamic_size=args.dynamic_size,
        batch_size=args.batch_size,
        batches=args.batches,
        seed=args.seed,
        int_range=tuple(args.int_range),
    )
    workdir = Path(args.workdir) if args.workdir else model.absolute().parent / f"{model.stem}_workdir"
    common = {
        "workdir": workdir,
        "override_workdir": args.override_workdir,
        "run_profiling": not args.no_profiling,
        "verbose": False,
    }
    package = (
        _export_savedmodel(model, spec, common)
        if (model / "saved_model.pb").is_file()
        else _export_onnx(model, spec, common)
    )
    print(f"workspace: {package.workdir}")
    return report(package.status, False)


def _export_onnx(model: Path, spec: Any, common: Dict[str, Any]) -> Any:
    import model_navigator as nav
    from model_navigator.api.synthetic import synthetic_onnx_samples
    from model_navigator.core.errors import UserInputError

    if model.suffix.lower() != ".onnx":
        raise UserInputError(
            f"{str(model)!r}: `export` without a dataloader takes an .onnx file or a SavedModel "
            f"folder, whose inputs declare their shapes and dtypes (a TorchScript file does not: "
            f"use nav.torch.export with a dataloader)."
        )
    samples, batch_dim = synthetic_onnx_samples(model, spec)
    return nav.onnx.export(model=str(model), dataloader=samples, batch_dim=batch_dim, **common)


def _export_savedmodel(model: Path, spec: Any, common: Dict[str, Any]) -> Any:
    """A SavedModel folder: its serving signature re-exported through nav.tensorflow on synthetic samples."""
    import model_navigator as nav
    from model_navigator.api.synthetic import savedmodel_inputs, synthetic_samples

    module, inputs = savedmodel_inputs(model)
    samples, batch_dim = synthetic_samples(inputs, spec)
    names = tuple(name for name, _, _ in inputs)
    return nav.tensorflow.export(
        model=module,
        dataloader=[tuple(s[n] for n in names) for s in samples],
        input_names=names,
        batch_dim=batch_dim,
        **common,
    )


def add_export_command(sub: Any, common: argparse.ArgumentParser, positive_int: Any) -> None:
    p = sub.add_parser(
        "export",
        parents=[common],
        help="check and profile an .onnx file or a SavedModel folder on synthetic samples (no dataloader needed)",
        description="Export, check and profile an .onnx file (or a SavedModel folder, through its "
        "serving_default signature) on synthetic samples made from its declared input "
        "shapes and dtypes (fixed seed). Fixed axes keep their size, a dynamic axis 0 of "
        "every input is the batch (--batch-size); every other dynamic axis needs --dim "
        "NAME=SIZE or --dynamic-size. TorchScript files declare no input shapes: they "
        "are refused (use nav.torch.export with a dataloader).",
    )
    p.add_argument("model", help="the .onnx file (or a SavedModel folder: its serving_default signature)")
    p.add_argument("--workdir", default=None, help="workspace folder (default: <model>_workdir beside the file)")
    p.add_argument("--override-workdir", action="store_true", help="replace an existing workspace folder")
    p.add_argument(
        "--dim",
        type=_dim,
        action="append",
        metavar="NAME=SIZE",
        help="size of the dynamic axes named NAME in the graph, the batch axis included "
        "(repeatable; a name no axis has is refused)",
    )
    p.add_argument(
        "--dynamic-size", type=positive_int, default=None, metavar="SIZE", help="size of every other dynamic axis"
    )
    p.add_argument("--batch-size", type=positive_int, default=2, help="batch size of the synthetic batches (2)")
    p.add_argument("--batches", type=positive_int, default=4, help="how many synthetic batches (4)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the samples (0)")
    p.add_argument(
        "--int-range",
        type=int,
        nargs=2,
        default=[0, 100],
        metavar=("LOW", "HIGH"),
        help="integer inputs are drawn from [LOW, HIGH) (0 100)",
    )
    p.add_argument("--no-profiling", action="store_true", help="check correctness only")
    p.set_defaults(func=cmd_export)


__all__: List[str] = ["add_export_command", "cmd_export"]
