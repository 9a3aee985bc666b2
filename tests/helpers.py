"""Setup shared by the test modules (module-scoped fixtures and helpers call these directly; the
fixtures in conftest.py wrap them): a cheap ProfilerConfig and the environment of a subprocess
that imports this checkout's model_navigator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict

REPO_ROOT = Path(__file__).resolve().parents[1]
LIGHT_PROFILER = {"measurement_request_count": 10, "max_trials": 4, "warmup_requests": 2}


def light_profiler(**overrides: Any) -> Any:
    """A cheap ProfilerConfig for tests where profiling is not the point (overrides: e.g. batch_sizes)."""
    import model_navigator as nav

    return nav.ProfilerConfig(**{**LIGHT_PROFILER, **overrides})


def repo_env(**extra: str) -> Dict[str, str]:
    """os.environ plus `extra`, with the repository first on PYTHONPATH."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env
