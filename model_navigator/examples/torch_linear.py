"""The reference's PyTorch example, as written, run in an empty folder (default ./nav_example).

python -m model_navigator.examples.torch_linear [--outdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def run_reference_example() -> None:
    """The reference's PyTorch example, unchanged."""
    import torch

    import model_navigator as nav

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


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outdir", default="nav_example", help="empty folder to run in (created)")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    if outdir.exists() and any(outdir.iterdir()):
        print(f"error: {outdir} is not empty; remove it or pass --outdir NEW_FOLDER", file=sys.stderr)
        return 2
    outdir.mkdir(parents=True, exist_ok=True)
    os.chdir(outdir)
    start = time.perf_counter()
    run_reference_example()
    print(f"\nDone in {time.perf_counter() - start:.1f} s. Workspace: {outdir}/navigator_workdir, "
          f"package: {outdir}/example_pyt.nav, loaded into {outdir}/example_pyt_workdir")
    return 0


if __name__ == "__main__":
    sys.exit(main())
