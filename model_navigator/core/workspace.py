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
LOG_FILE = "navigator.log"
PATH_LOG_FILE = "format.log"
PATH_CONFIG_FILE = "config.yaml"


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
            shutil.rmtree(root)
        root.mkdir(parents=True)
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
