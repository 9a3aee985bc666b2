"""Conversion step: make a path's artifact from its parent path's artifact (no user model needed)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from model_navigator.core.serialization import to_plain
from model_navigator.core.enums import StepStatus
from model_navigator.core.status import ConversionResult, NavigatorStatus
from model_navigator.core.workspace import Workspace
from model_navigator.paths.base import ProduceRequest, produce
from model_navigator.paths.registry import find_spec
from model_navigator.steps.base import base_parser


def build_parser() -> argparse.ArgumentParser:
    return base_parser(__doc__)


def run(args: argparse.Namespace, base_dir: Path) -> ConversionResult:
    start = time.perf_counter()
    workspace = Workspace(base_dir / args.workdir)
    status = NavigatorStatus.load(workspace.root)
    spec = find_spec(status.config.framework, args.path)
    parent = status.paths.get(spec.parent or "")
    if parent is None or parent.model_path is None:
        raise FileNotFoundError(f"parent path {spec.parent!r} has no artifact to convert from")
    out_dir = workspace.path_dir(spec.key)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / spec.artifact
    parent_path = workspace.root / parent.model_path
    reported = produce(ProduceRequest(spec, out_path, workspace, status, parent_path=parent_path))
    return ConversionResult(
        status=StepStatus.OK,
        model_path=workspace.relative(out_path),
        reported=to_plain(reported),
        duration_s=time.perf_counter() - start,
    )
