"""Shared fixtures: a fresh workdir path and tiny model/dataloader factories (see tests/models.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
for _p in (str(REPO_ROOT), str(TESTS_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import helpers  # noqa: E402  (tests/helpers.py, importable once TESTS_DIR is on sys.path)
import models  # noqa: E402  (tests/models.py, importable once TESTS_DIR is on sys.path)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where an export writes its workspace; it does not exist yet."""
    return tmp_path / "navigator_workdir"


@pytest.fixture
def seeded():
    """Fix torch's global RNG for the test (the factories seed it too)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(models.SEED)
    return models.SEED


@pytest.fixture
def linear_model(seeded):
    return models.linear_model()


@pytest.fixture
def linear_dataloader():
    return models.linear_dataloader()


@pytest.fixture
def cnn_model(seeded):
    return models.cnn_model()


@pytest.fixture
def cnn_dataloader():
    return models.cnn_dataloader()


@pytest.fixture
def token_model(seeded):
    return models.token_model()


@pytest.fixture
def token_dataloader():
    return models.token_dataloader()


@pytest.fixture
def script_failing_model(seeded):
    return models.script_failing_model()


@pytest.fixture
def batch_unrolled_model(seeded):
    return models.batch_unrolled_model()


@pytest.fixture
def raising_model(seeded):
    return models.raising_model()


@pytest.fixture
def light_profiler():
    """A cheap ProfilerConfig for tests where profiling is not the point (helpers.light_profiler, which
    module-scoped fixtures and helpers call directly)."""
    return helpers.light_profiler()
