#!/usr/bin/env python3
"""Export a small CNN (1x3x64x64 images), write its report and screenshot it in headless Chromium.

    python scripts/report_screenshot.py [--output docs/report_cnn.png] [--keep DIR]

This is how docs/report_cnn.png is made. Needs the torch and report extras and a `chromium`
binary (Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def cnn():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 10),
    ).eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(REPO_ROOT / "docs" / "report_cnn.png"))
    parser.add_argument("--keep", default=None, help="write the workspace and the report here (default: a temp dir)")
    args = parser.parse_args()

    import torch

    import model_navigator as nav
    from model_navigator.report import write_report
    from model_navigator.report.browser import screenshot

    generator = torch.Generator().manual_seed(0)
    dataloader = [torch.rand(4, 3, 64, 64, generator=generator) for _ in range(3)]
    profiler = nav.ProfilerConfig(batch_sizes=(1, 4, 16), measurement_request_count=30, max_trials=6, warmup_requests=5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        package = nav.torch.export(
            cnn(),
            dataloader,
            model_name="cnn",
            workdir=root / "cnn_workdir",
            override_workdir=True,
            profiler_config=profiler,
            disable_git_info=True,
            isolation=False,
        )  # no worker starting up beside the source model's profile
        files = write_report(package, root / "cnn_report")
        png = screenshot(files.html, args.output, width=1400, height=2000)
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
