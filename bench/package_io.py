"""Save and load time and package size for the CNN workspace (1x3x64x64 convnet, 20 samples).

python bench/package_io.py     -> bench/results/package_io.json
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    import torch

    import model_navigator as nav

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 10),
    ).eval()
    dataloader = [torch.randn(2, 3, 64, 64) for _ in range(10)]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        desc = nav.torch.export(model, dataloader, workdir=tmp / "w", verbose=False, run_profiling=False)
        workspace_bytes = sum(p.stat().st_size for p in (tmp / "w").rglob("*") if p.is_file())
        saves, loads, loads_retest = [], [], []
        for i in range(3):
            package = tmp / f"cnn{i}.nav"
            start = time.perf_counter()
            nav.save(desc, package)
            saves.append(time.perf_counter() - start)
            start = time.perf_counter()
            nav.load(package, workdir=tmp / f"l{i}", retest_conversions=False, verbose=False)
            loads.append(time.perf_counter() - start)
            start = time.perf_counter()
            nav.load(package, workdir=tmp / f"r{i}", retest_conversions=True, verbose=False)
            loads_retest.append(time.perf_counter() - start)
        results = {
            "workspace_bytes": workspace_bytes,
            "package_bytes": package.stat().st_size,
            "save_s": statistics.median(saves),
            "load_s": statistics.median(loads),
            "load_with_retest_s": statistics.median(loads_retest),
        }
    print(json.dumps(results, indent=2))
    (Path(__file__).parent / "results" / "package_io.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
