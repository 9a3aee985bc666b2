"""The package's layers point one way: read every module of model_navigator/ with `ast` (nothing is
imported) and check who imports whom, lazy imports inside functions included.

    core          imports nothing else of model_navigator
    frameworks    core only (the torch / TensorFlow / JAX helpers the exporters and runners share)
    runners       never exporters, converters or steps (nor anything above them)
    converters    never steps (the batch sizes they build engines for live in core.batching)
    report        never cli (find_failures lives in package.table)
    steps         never api, cli, package, report, triton, serving or contrib (export_run and
                  recheck return the status; api and package wrap it in a PackageDescriptor)
    package       never api or cli (the validators of core types it uses live in core)
    cli           the top: nothing but cli itself and __main__ imports it

and no two modules import each other, directly or through others, whether at module level or
inside functions: an import circle ties modules that must then change together.

and `import model_navigator` imports no framework: no module imports one at module level (the
frameworks are imported inside the functions that need them). tests/test_validation.py checks
the same at run time in a fresh interpreter.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "model_navigator"

ONLY = {  # layer -> the only layers it may import
    "core": {"core"},
    "frameworks": {"core", "frameworks"},
}
ABOVE_RUNNERS = {"exporters", "converters", "steps", "api", "cli", "package", "report", "triton", "contrib"}
NEVER = {  # layer -> layers it must not import
    "runners": ABOVE_RUNNERS,
    "converters": ABOVE_RUNNERS - {"exporters", "converters"},
    "paths": {"steps", "api", "cli", "package", "report", "triton", "contrib"},
    "report": {"cli", "api"},
    # packages are saved, loaded and inspected without the export front-end (validators live in core)
    "package": {"api", "cli"},
    # the pipeline and its steps return statuses; the PackageDescriptor over them is the caller's
    "steps": {"api", "cli", "package", "report", "triton", "serving", "contrib"},
}
FRAMEWORKS = {
    "torch",
    "tensorflow",
    "keras",
    "jax",
    "jaxlib",
    "flax",
    "onnx",
    "onnxruntime",
    "tensorrt",
    "torch_tensorrt",
    "openvino",
    "tf2onnx",
    "jax2onnx",
    "transformers",
    "matplotlib",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


MODULES = _modules()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[Tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import statement of `tree`."""

    def walk(node: ast.AST, top: bool) -> Iterator[Tuple[str, int, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, child.lineno, top
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    package = module.split(".")[: len(module.split(".")) - child.level + (1 if is_package else 0)]
                    base = ".".join(package + ([base] if base else []))
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    yield (sub if sub in MODULES else base), child.lineno, top
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from walk(child, inner)

    yield from walk(tree, True)


def _all_imports() -> Dict[str, List[Tuple[str, int, bool]]]:
    result = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        result[module] = list(_imports(tree, module, path.name == "__init__.py"))
    return result


IMPORTS = _all_imports()


def _violations(rule) -> List[str]:
    found = []
    for module, imports in IMPORTS.items():
        for name, line, _ in imports:
            if name.split(".")[0] == "model_navigator" and "." in name and rule(_layer(module), _layer(name)):
                found.append(f"{MODULES[module].relative_to(PACKAGE_DIR.parent)}:{line} imports {name}")
    return sorted(set(found))


def test_the_walk_sees_the_package():
    assert {"core", "frameworks", "runners", "converters", "exporters", "steps", "report", "cli", "package"} <= {
        _layer(m) for m in MODULES
    }
    assert ("model_navigator.frameworks.torch_utils", True) in {
        (name, top) for name, _, top in IMPORTS["model_navigator.runners.torch"]
    }


@pytest.mark.parametrize("layer", sorted(ONLY))
def test_low_layers_import_only_below(layer):
    allowed = ONLY[layer]
    assert _violations(lambda src, dst: src == layer and dst not in allowed) == []


@pytest.mark.parametrize("layer", sorted(NEVER))
def test_layers_do_not_import_above(layer):
    forbidden = NEVER[layer]
    assert _violations(lambda src, dst: src == layer and dst in forbidden) == []


def test_nothing_below_the_cli_imports_it():
    assert _violations(lambda src, dst: dst == "cli" and src not in ("cli", "__main__")) == []


def test_no_module_imports_a_framework_at_module_level():
    found = [
        f"{MODULES[module].relative_to(PACKAGE_DIR.parent)}:{line} imports {name}"
        for module, imports in IMPORTS.items()
        for name, line, top in imports
        if top and name.split(".")[0] in FRAMEWORKS
    ]
    assert found == []


def test_import_model_navigator_reaches_no_framework():
    """The module-level import closure of `model_navigator` (parent packages included)."""
    seen: Set[str] = set()
    todo = ["model_navigator"]
    reached: Set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name, _, top in IMPORTS.get(module, []):
            if not top:
                continue
            reached.add(name.split(".")[0])
            parts = name.split(".")
            todo.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES)
    assert "model_navigator.core.config" in seen
    assert reached & FRAMEWORKS == set()


def test_the_descriptor_does_not_import_the_module_that_builds_it():
    """package.nav (save, load, profile) builds PackageDescriptors; the descriptor never imports it back."""
    tree = ast.parse(MODULES["model_navigator.package.descriptor"].read_text())
    imported = {name for name, _, _ in _imports(tree, "model_navigator.package.descriptor", False)}
    assert "model_navigator.package.nav" not in imported


def _import_circles() -> List[List[str]]:
    """The strongly connected components (Tarjan) of the graph of imports between model_navigator's
    modules, lazy ones included; each component of more than one module is an import circle."""
    graph = {m: sorted({n for n, _, _ in imports if n in MODULES and n != m}) for m, imports in IMPORTS.items()}
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    circles: List[List[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = [stack.pop()]
            while component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                circles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return circles


def test_no_import_circles():
    assert _import_circles() == []
