"""What the `model-navigator` commands share: exit codes, reading a package or workspace, and
printing a status (table or JSON) with its verdict."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2


# ------------------------------------------------------------------------------------------------
# Reading packages and workspaces
# ------------------------------------------------------------------------------------------------


def is_package_file(path: Path) -> bool:
    """A file (not a folder) is read as a .nav package, whatever its suffix; validation decides."""
    return path.is_file()


def check_target(target: str) -> Path:
    from model_navigator.core.errors import UserInputError

    path = Path(target)
    if not path.exists():
        raise UserInputError(f"{target!r} does not exist; give a .nav package or a workspace folder.")
    if path.is_dir():
        from model_navigator.core.status import STATUS_FILE

        if not (path / STATUS_FILE).is_file():
            raise UserInputError(f"{target!r} is a folder without {STATUS_FILE}: not a model-navigator workspace.")
    return path


def read_status(path: Path) -> Any:
    from model_navigator.core.status import NavigatorStatus
    from model_navigator.package.archive_validate import read_package_status

    if is_package_file(path):
        return read_package_status(path)
    return NavigatorStatus.load(path)


# ------------------------------------------------------------------------------------------------
# Verdict and output
# ------------------------------------------------------------------------------------------------


def one_line(text: Any, limit: int = 300) -> str:
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def stdout_console() -> Any:
    from rich.console import Console

    width = None
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        width = 160  # piped or captured: do not cut path names to 80 columns
    return Console(highlight=False, width=width, soft_wrap=False)


def report(status: Any, as_json: bool, keys: Optional[List[str]] = None, best: Any = None) -> int:
    """Print the table (or JSON) of `status` to stdout; return 0 when all ok, else 1. `best`: a
    Selection (marked in the table), or a string saying why none qualified."""
    from model_navigator.package.table import find_failures, print_status_table, status_rows

    failures = find_failures(status, keys)
    if as_json:
        rows = status_rows(status)
        if keys is not None:
            rows = [r for r in rows if r["path"] in keys]
        payload = {
            "model_name": status.model_name,
            "framework": status.framework,
            "navigator_version": status.navigator_version,
            "format_version": status.format_version,
            "ok": not failures,
            "failures": failures,
            "rows": rows,
        }
        if best is not None:
            payload["best"] = best if isinstance(best, str) else best.to_dict()
        print(json.dumps(payload, indent=2, default=str))
    else:
        console = stdout_console()
        print_status_table(status, console=console, best=None if isinstance(best, str) else best)
        if isinstance(best, str):
            console.print(f"[yellow]No best runtime[/]: {best}", markup=True, highlight=False)
        if failures:
            print(f"{len(failures)} failure(s): " + "; ".join(failures), file=sys.stderr)
    return EXIT_FAILURES if failures else EXIT_OK
