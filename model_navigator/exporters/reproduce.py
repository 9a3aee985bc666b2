"""The entry of every reproduce_export.py: rebuild the export context from status.yaml and run
the path's producer again (the user supplies the model in the script)."""

from __future__ import annotations

import argparse
from typing import Any, Callable, List

from model_navigator.core.enums import Framework


def write_export_reproduce(workspace: Any, spec: Any, template: str, needs: str = "get_model()") -> None:
    """Write <path>/reproduce_export.py from the framework's template (it needs the user's `needs`)
    and its .sh, through the one reproduce-script writer."""
    from model_navigator.steps.base import write_reproduce

    write_reproduce(
        workspace.root,
        spec.key,
        "export",
        ["--workdir", ".", "--path", spec.key],
        py_text=template.format(path=spec.key),
        note=f"Implement {needs} in {spec.key}/reproduce_export.py first.",
    )


def context_from_status(framework: Framework, model: Any, workspace: Any, status: Any) -> Any:
    """The framework's export context for `model` from status.yaml and the saved samples: every
    exporters/<framework>.py that takes a model object has its context_from_status."""
    import importlib

    return importlib.import_module(f"model_navigator.exporters.{framework.value}").context_from_status(
        model, workspace, status
    )


def run_reproduce_export(framework: Framework, make_context: Callable[[Any, Any], Any], argv: List[str]) -> int:
    """Parse --workdir/--path, then call the path's producer with make_context(workspace, status)."""
    from model_navigator.core.status import NavigatorStatus
    from model_navigator.core.workspace import Workspace
    from model_navigator.paths.base import ProduceRequest, produce
    from model_navigator.paths.registry import find_spec

    parser = argparse.ArgumentParser(description=f"Reproduce a {framework.value} export of model-navigator.")
    parser.add_argument("--workdir", default=".")
    parser.add_argument("--path", required=True)
    args = parser.parse_args(argv)
    workspace = Workspace(args.workdir)
    status = NavigatorStatus.load(workspace.root)
    spec = find_spec(framework, args.path)
    out_path = workspace.path_dir(spec.key) / spec.artifact
    produce(ProduceRequest(spec, out_path, workspace, status, context=make_context(workspace, status)))
    print(f"exported {workspace.relative(out_path)}")
    return 0
