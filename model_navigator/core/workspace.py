"""Workspace layout: where samples, logs, status and each path's files live."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Union

from model_navigator.core.errors import UserInputError

DEFAULT_WORKDIR = "navigator_workdir"
SAMPLE_SETS = ("conversion", "correctness", "profiling")
INPUT_DIR = "model_input"
OUTPUT_DIR = "model_output"
LOG_FILE = "navigator.log"  # the log of what ran in this workdir
# In a .nav package, the workspace's navigator.log is kept under this name (and a loaded workdir has
# it under this name too): a workdir's navigator.log is the log of what ran *there*, as in the reference.
PACKAGE_LOG_FILE = "export.log"
PATH_LOG_FILE = "format.log"
PATH_CONFIG_FILE = "config.yaml"


def remove_workdir(root: Path) -> None:
    """Delete an existing workdir for override_workdir; a read-only or busy one is a UserInputError."""
    try:
        shutil.rmtree(root)
    except OSError as e:
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        raise UserInputError(
            f"`workdir` {str(root)!r} cannot be replaced: {e.strerror or e}{where}; it may be "
            f"read-only or in use: choose another `workdir`."
        ) from e


class Workspace:
    """The navigator_workdir folder and the names of everything inside it."""

    def __init__(self, root: Union[str, Path]):
        self.root = Path(root).absolute()

    @classmethod
    def create(cls, workdir: Optional[Union[str, Path]], override: bool) -> "Workspace":
        """Make a fresh workspace; refuse an existing folder unless `override` (then empty it)."""
        root = Path(workdir) if workdir is not None else Path.cwd() / DEFAULT_WORKDIR
        if root.exists():
            if not override:
                raise UserInputError(
                    f"`workdir` {str(root)!r} already exists and was left untouched; pass "
                    f"override_workdir=True to replace it, or choose another `workdir`."
                )
            if not root.is_dir():
                raise UserInputError(f"`workdir` {str(root)!r} exists and is not a folder.")
            remove_workdir(root)
        try:
            root.mkdir(parents=True)
        except OSError as e:
            raise UserInputError(
                f"`workdir` {str(root)!r} cannot be created: {e.strerror or e}; choose a writable `workdir`."
            ) from e
        return cls(root)

    def input_dir(self, sample_set: str) -> Path:
        return self.root / INPUT_DIR / sample_set

    def output_dir(self, sample_set: str) -> Path:
        return self.root / OUTPUT_DIR / sample_set

    def path_dir(self, key: str) -> Path:
        return self.root / key

    @property
    def log_file(self) -> Path:
        return self.root / LOG_FILE

    def relative(self, path: Union[str, Path]) -> str:
        return Path(path).absolute().relative_to(self.root).as_posix()
