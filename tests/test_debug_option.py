"""`debug=True` of nav.torch.export / nav.load / nav.profile: model_navigator's logs down to DEBUG on
the terminal (stderr) too, for that call only."""

from __future__ import annotations

import logging
import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import model_navigator as nav  # noqa: E402

LOG_LINE = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR) model_navigator[.\w]*: ", re.M)
LOGGER = logging.getLogger("model_navigator")


class _LogsInForward(torch.nn.Module):
    """Logs a DEBUG record under model_navigator's logger each time it runs."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(5, 3)

    def forward(self, x):
        logging.getLogger("model_navigator.user_model").debug("forward ran on %s", tuple(x.shape))
        return self.linear(x)


def _export(workdir, debug):
    return nav.torch.export(
        _LogsInForward(),
        [torch.randn(2, 5) for _ in range(2)],
        workdir=workdir,
        target_formats=("onnx",),
        runtimes=("CPUExecutionProvider",),
        run_profiling=False,
        verbose=False,
        debug=debug,
    )


def test_export_debug_prints_debug_logs_on_stderr(tmp_path, capfd):
    handlers, level = list(LOGGER.handlers), LOGGER.level
    _export(tmp_path / "quiet", debug=False)
    quiet = capfd.readouterr()
    assert not LOG_LINE.search(quiet.err) and quiet.out == ""
    assert "forward ran on" in (tmp_path / "quiet" / "navigator.log").read_text()  # the log file has it all

    package = _export(tmp_path / "loud", debug=True)
    loud = capfd.readouterr()
    assert package.get_formats_status() == {"onnx": True}
    assert re.search(r"DEBUG model_navigator\.user_model: forward ran on \(", loud.err), loud.err
    assert re.search(r"INFO model_navigator: onnx correctness: CPUExecutionProvider", loud.err)
    assert loud.out == ""  # stdout stays the user's
    assert LOGGER.handlers == handlers and LOGGER.level == level  # for that call only


def test_load_and_profile_debug(tmp_path, capfd):
    package = _export(tmp_path / "w", debug=False)
    package.save(tmp_path / "m.nav")
    capfd.readouterr()
    nav.load(tmp_path / "m.nav", workdir=tmp_path / "quiet", verbose=False)
    assert not LOG_LINE.search(capfd.readouterr().err)
    loaded = nav.load(tmp_path / "m.nav", workdir=tmp_path / "loud", verbose=False, debug=True)
    err = capfd.readouterr().err
    assert re.search(r"INFO model_navigator: onnx correctness: CPUExecutionProvider", err), err
    nav.profile(
        loaded,
        nav.ProfilerConfig(batch_sizes=(1,), measurement_request_count=5, max_trials=3, warmup_requests=1),
        verbose=False,
        debug=True,
    )
    err = capfd.readouterr().err
    assert re.search(r"INFO model_navigator: onnx .*profil", err, re.I), err
