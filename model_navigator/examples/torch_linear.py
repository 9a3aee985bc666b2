"""The reference's PyTorch example, as written, run in its own folder (default ./nav_example).

python -m model_navigator.examples.torch_linear [--outdir DIR]

The folder is created empty and marked as the example's (MARKER); a later run replaces the
example's own outputs in a marked folder and refuses any other non-empty folder. torch's seed is
fixed, so `get_model()` returns the very model the example exported:

    model-navigator convert --config nav_example/navigator_workdir/onnx/config.yaml \
        --model model_navigator.examples.torch_linear:get_model
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, List, Optional

MARKER = ".model-navigator-example"  # in the example's folder: made by this script, safe to re-run in
OUTPUTS = ("navigator_workdir", "example_pyt.nav", "example_pyt_workdir")  # what one run writes there
SEED = 0


def get_model() -> Any:
    """The example's torch.nn.Linear(5, 7) with the weights the example exports (seeded): for
    `model-navigator convert --model model_navigator.examples.torch_linear:get_model`."""
    import torch

    torch.manual_seed(SEED)
    return torch.nn.Linear(5, 7).eval()


def run_reference_example() -> None:
    """The reference's PyTorch example, unchanged (torch seeded first, as get_model() is)."""
    import torch

    import model_navigator as nav

    torch.manual_seed(SEED)

    device = "cuda" if torch.cuda.is_available() else "cpu"

    dataloader = [torch.full((3, 5), 1.0, device=device) for _ in range(10)]

    model = torch.nn.Linear(5, 7).to(device).eval()

    package_desc = nav.torch.export(
        model=model,
        model_name="example_model",
        dataloader=dataloader,
        opset=13,
        input_names=("input",),
        dynamic_axes={"input": {0: "batch"}},
    )

    onnx_status = package_desc.get_status(format=nav.Format.ONNX)
    if onnx_status:
        onnx_runner = package_desc.get_runner(format=nav.Format.ONNX, runtime=nav.RuntimeProvider.CPU)  # noqa: F841

    # Additional model verification ...
    model_is_valid = True  # code for model verification
    if model_is_valid:
        package_desc.set_verified(format=nav.Format.ONNX, runtime=nav.RuntimeProvider.CPU)

    package_desc.save("example_pyt.nav")

    loaded_package_desc = nav.load("example_pyt.nav")  # noqa: F841


def prepare_outdir(outdir: Path) -> Optional[str]:
    """Make `outdir` ready for a run: created and marked when new; the example's own outputs of an
    earlier run removed when it carries the marker. Returns why it cannot be used, or None."""
    if outdir.exists() and not outdir.is_dir():
        return f"{outdir} exists and is not a folder; pass --outdir NEW_FOLDER"
    if outdir.is_dir() and any(outdir.iterdir()):
        if not (outdir / MARKER).is_file():
            return (
                f"{outdir} is not empty and was not made by this example (no {MARKER} in it); remove it or "
                f"pass --outdir NEW_FOLDER"
            )
        removed: List[str] = []
        for name in OUTPUTS:
            target = outdir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            else:
                continue
            removed.append(name)
        if removed:
            print(f"replacing the example's earlier outputs in {outdir}: {', '.join(removed)}", file=sys.stderr)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / MARKER).write_text(
        "made by python -m model_navigator.examples.torch_linear; a re-run replaces " + ", ".join(OUTPUTS) + " here\n"
    )
    return None


def main(argv: Optional[List[str]] = None) -> int:
    """Run the example in --outdir; 2 when that folder is not ours to use."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--outdir",
        default="nav_example",
        help="folder to run in: created, or an earlier run's (its outputs are replaced)",
    )
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    problem = prepare_outdir(outdir)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    os.chdir(outdir)
    start = time.perf_counter()
    run_reference_example()
    print(
        f"\nDone in {time.perf_counter() - start:.1f} s. Workspace: {outdir}/navigator_workdir, "
        f"package: {outdir}/example_pyt.nav, loaded into {outdir}/example_pyt_workdir"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
