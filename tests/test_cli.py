"""Tests of the `model-navigator` command line, run as a real subprocess (`python -m model_navigator`)
on workspaces and packages built by real exports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import model_navigator as nav  # noqa: E402
import helpers  # noqa: E402  (tests/helpers.py)

EXPORTED_PATHS = ("torchscript-script", "torchscript-trace", "onnx")


def run_cli(*args: str, cwd: Path = None) -> subprocess.CompletedProcess:
    env = helpers.repo_env()
    env.pop("COLUMNS", None)
    return subprocess.run(
        [sys.executable, "-m", "model_navigator", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def assert_one_line_error(result: subprocess.CompletedProcess) -> str:
    """The error is a single `error: ...` line on stderr, with no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert result.stdout == "", result.stdout
    return errors[0]


def load_status(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "status.yaml").read_text())


def profiled_batch_sizes(path_status: dict) -> List[int]:
    perf = path_status["runtimes"]["CPUExecutionProvider"]["performance"]
    assert perf["status"] == "ok", perf
    return sorted(r["batch_size"] for r in perf["results"])


class _ScriptFails(torch.nn.Module):
    """torch.jit.script refuses import statements; tracing records the (correct) computation."""

    def forward(self, x):
        import math

        return x * math.pi


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A workspace with torchscript (script and trace) and onnx, all ok, and its .nav package."""
    root = tmp_path_factory.mktemp("cli")
    workdir = root / "linear_workdir"
    package = nav.torch.export(
        torch.nn.Linear(5, 7),
        [torch.randn(2, 5) for _ in range(4)],
        workdir=workdir,
        target_formats=("onnx", "torchscript"),
        verbose=False,
        isolation=False,
        profiler_config=helpers.light_profiler(),
    )
    nav_file = root / "linear.nav"
    nav.save(package, nav_file)
    return workdir, nav_file


@pytest.fixture(scope="module")
def failing_workdir(tmp_path_factory):
    """A workspace whose torchscript-script path failed (and torchscript-trace passed)."""
    workdir = tmp_path_factory.mktemp("cli_failed") / "workdir"
    nav.torch.export(
        _ScriptFails(),
        [torch.randn(2, 5) for _ in range(4)],
        workdir=workdir,
        target_formats=("torchscript",),
        jit_options=("script", "trace"),
        verbose=False,
        isolation=False,
        profiler_config=helpers.light_profiler(),
    )
    status = load_status(workdir)
    assert status["paths"]["torchscript-script"]["status"] == "failed"
    assert status["paths"]["torchscript-trace"]["status"] == "ok"
    return workdir


@pytest.fixture
def workdir_copy(exported, tmp_path):
    copy = tmp_path / "copy_workdir"
    shutil.copytree(exported[0], copy)
    return copy


# ------------------------------------------------------------------------------------------------
# --help and usage
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["inspect"], ["profile"], ["convert"]])
def test_help_of_each_command(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: model-navigator")
    words = {
        "inspect": ["PACKAGE_OR_WORKDIR", "--json"],
        "profile": ["--batch-sizes", "--measurement-mode", "--max-trials", "--workdir"],
        "convert": ["--config", "--model", "--correctness-only"],
    }
    for word in words.get(command[0] if command else "", ["inspect"]):
        assert word in result.stdout


def test_bad_usage_exits_2():
    assert run_cli().returncode == 2
    assert run_cli("frobnicate").returncode == 2
    result = run_cli("convert")  # --config is required
    assert result.returncode == 2 and "--config" in result.stderr


# ------------------------------------------------------------------------------------------------
# inspect
# ------------------------------------------------------------------------------------------------


def test_inspect_workdir(exported):
    result = run_cli("inspect", str(exported[0]))
    assert result.returncode == 0, result.stderr
    for key in ("torch", *EXPORTED_PATHS):
        assert key in result.stdout
    assert "Linear" in result.stdout


def test_inspect_package_reads_without_extracting(exported):
    workdir, nav_file = exported
    before = sorted(p.name for p in nav_file.parent.iterdir())
    result = run_cli("inspect", str(nav_file))
    assert result.returncode == 0, result.stderr
    for key in EXPORTED_PATHS:
        assert key in result.stdout
    assert sorted(p.name for p in nav_file.parent.iterdir()) == before


def test_inspect_json(exported):
    for target in exported:
        result = run_cli("inspect", str(target), "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["model_name"] == "Linear" and data["framework"] == "torch"
        assert data["ok"] is True and data["failures"] == []
        rows = {(row["path"], row["runtime"]): row for row in data["rows"]}
        assert {(key, "CPUExecutionProvider") for key in EXPORTED_PATHS} <= set(rows)
        for (key, runtime), row in rows.items():
            if key in EXPORTED_PATHS:
                assert row["status"] == "ok" and row["correctness"] == "ok", (key, runtime)
        assert rows[("torch", "CPUExecutionProvider")]["correctness"] == "reference"
        # the winner (min latency by default) is named with its figures
        assert data["best"]["strategy"] == "min-latency" and data["best"]["path"] in EXPORTED_PATHS
        assert data["best"]["p50_ms"] > 0


def test_inspect_missing_path_exits_2(tmp_path):
    result = run_cli("inspect", str(tmp_path / "nothing.nav"))
    assert result.returncode == 2
    assert "does not exist" in assert_one_line_error(result)


def test_inspect_not_a_package_exits_2(tmp_path):
    result = run_cli("inspect", str(tmp_path))  # a folder without status.yaml
    assert result.returncode == 2
    assert "not a model-navigator workspace" in assert_one_line_error(result)
    junk = tmp_path / "junk.nav"
    junk.write_bytes(b"not a zip at all")
    result = run_cli("inspect", str(junk))
    assert result.returncode == 2
    assert "not a .nav package" in assert_one_line_error(result)


def test_debug_prints_traceback(tmp_path):
    result = run_cli("--debug", "inspect", str(tmp_path / "nothing.nav"))
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "error: " in result.stderr
    result = run_cli("inspect", "--debug", str(tmp_path / "nothing.nav"))
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_inspect_failed_path_exits_1(failing_workdir):
    result = run_cli("inspect", str(failing_workdir))
    assert result.returncode == 1, result.stderr
    assert "torchscript-script" in result.stdout and "failed" in result.stdout
    assert "torchscript-script: failed" in result.stderr
    data = json.loads(run_cli("inspect", str(failing_workdir), "--json").stdout)
    assert data["ok"] is False
    assert any(f.startswith("torchscript-script: failed") for f in data["failures"])


# ------------------------------------------------------------------------------------------------
# profile
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_profile_package_into_new_workdir(exported, tmp_path):
    _, nav_file = exported
    target = tmp_path / "profiled"
    result = run_cli(
        "profile",
        str(nav_file),
        "--batch-sizes",
        "1",
        "2",
        "--measurement-request-count",
        "10",
        "--max-trials",
        "4",
        "--warmup-requests",
        "2",
        "--workdir",
        str(target),
    )
    assert result.returncode == 0, result.stderr
    for key in EXPORTED_PATHS:
        assert key in result.stdout
    status = load_status(target)
    assert status["config"]["profiler_config"]["batch_sizes"] == [1, 2]
    for key in EXPORTED_PATHS:
        assert profiled_batch_sizes(status["paths"][key]) == [1, 2]
    assert not (nav_file.parent / "linear_workdir_profiled").exists()
    # An existing workdir is refused untouched, and replaced with --override-workdir.
    result = run_cli("profile", str(nav_file), "--workdir", str(target))
    assert result.returncode == 2
    assert "--override-workdir" in assert_one_line_error(result)
    result = run_cli(
        "profile",
        str(nav_file),
        "--batch-sizes",
        "3",
        "--measurement-request-count",
        "10",
        "--max-trials",
        "4",
        "--warmup-requests",
        "2",
        "--workdir",
        str(target),
        "--override-workdir",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    rows = {row["path"]: row for row in json.loads(result.stdout)["rows"]}
    assert [p["batch_size"] for p in rows["onnx"]["performance"]] == [3]


@pytest.mark.slow
def test_profile_workdir_in_place(workdir_copy):
    result = run_cli(
        "profile",
        str(workdir_copy),
        "--batch-sizes",
        "3",
        "--measurement-mode",
        "time_windows",
        "--measurement-interval",
        "20",
        "--max-trials",
        "3",
        "--warmup-requests",
        "2",
    )
    assert result.returncode == 0, result.stderr
    status = load_status(workdir_copy)
    assert status["config"]["profiler_config"]["measurement_mode"] == "time_windows"
    for key in EXPORTED_PATHS:
        assert profiled_batch_sizes(status["paths"][key]) == [3]


def test_profile_bad_options_exit_2(exported, tmp_path):
    workdir, nav_file = exported
    result = run_cli("profile", str(workdir), "--max-trials", "2")  # ProfilerConfig refuses it
    assert result.returncode == 2
    assert "max_trials" in assert_one_line_error(result)
    result = run_cli("profile", str(workdir), "--workdir", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "--workdir" in assert_one_line_error(result)
    result = run_cli("profile", str(nav_file), "--batch-sizes", "0")  # argparse refuses it
    assert result.returncode == 2 and "--batch-sizes" in result.stderr
    assert not (tmp_path / "x").exists()


def test_profile_options_follow_profiler_config_fields():
    """One option per ProfilerConfig field; given ones reach the config, the others keep its defaults."""
    import dataclasses

    from model_navigator.cli.main import build_parser
    from model_navigator.cli.profile_options import profiler_config_from_args

    parser = build_parser()
    profile = parser._subparsers._group_actions[0].choices["profile"]
    options = {s for action in profile._actions for s in action.option_strings}
    for field in dataclasses.fields(nav.ProfilerConfig):
        assert "--" + field.name.replace("_", "-") in options
    args = parser.parse_args(
        [
            "profile",
            "x",
            "--batch-sizes",
            "4",
            "1",
            "--measurement-mode",
            "time_windows",
            "--measurement-interval",
            "250",
            "--warmup-requests",
            "0",
            "--throughput-cutoff-threshold",
            "0.1",
        ]
    )
    assert profiler_config_from_args(args) == nav.ProfilerConfig(
        batch_sizes=(1, 4),
        measurement_mode=nav.MeasurementMode.TIME_WINDOWS,
        measurement_interval=250.0,
        warmup_requests=0,
        throughput_cutoff_threshold=0.1,
    )
    assert profiler_config_from_args(parser.parse_args(["profile", "x"])) == nav.ProfilerConfig()
    with pytest.raises(SystemExit):
        parser.parse_args(["profile", "x", "--max-trials", "0"])  # refused by argparse, as before


# ------------------------------------------------------------------------------------------------
# convert
# ------------------------------------------------------------------------------------------------


def test_convert_export_path_needs_the_model(exported):
    config = exported[0] / "onnx" / "config.yaml"
    before = (exported[0] / "status.yaml").read_bytes()
    result = run_cli("convert", "--config", str(config))
    assert result.returncode == 2
    line = assert_one_line_error(result)
    assert "onnx/reproduce_export.sh" in line and "get_model()" in line and "--model MODULE:FUNCTION" in line
    assert (exported[0] / "status.yaml").read_bytes() == before


USER_MODELS = """
import torch


def get_model():
    torch.manual_seed(7)
    return torch.nn.Linear(5, 7)


def other_weights():
    torch.manual_seed(8)
    return torch.nn.Linear(5, 7)


def not_a_model():
    return 42


def broken():
    raise RuntimeError("weights file missing")
"""


@pytest.fixture(scope="module")
def user_model_dir(tmp_path_factory):
    """A folder holding the user's tiny_models.py (get_model() and friends) and a workspace exported
    from tiny_models.get_model() with atol=1e-4: onnx and torchscript-trace, not profiled."""
    import importlib.util

    root = tmp_path_factory.mktemp("user_model")
    (root / "tiny_models.py").write_text(USER_MODELS)
    spec = importlib.util.spec_from_file_location("tiny_models_for_export", root / "tiny_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    nav.torch.export(
        module.get_model(),
        [torch.randn(2, 5) for _ in range(4)],
        workdir=root / "navigator_workdir",
        target_formats=("onnx", "torchscript"),
        jit_options=("trace",),
        run_profiling=False,
        atol=1e-4,
        verbose=False,
        isolation=False,
    )
    return root


@pytest.fixture
def user_model_copy(user_model_dir, tmp_path):
    shutil.copytree(user_model_dir, tmp_path, dirs_exist_ok=True)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("key", ["onnx", "torchscript-trace"])
def test_convert_export_path_with_the_users_model(user_model_copy, key):
    """--model MODULE:FUNCTION re-exports the path from the user's model (found from the current
    folder), then checks it against the saved outputs."""
    workdir = user_model_copy / "navigator_workdir"
    artifact = workdir / key / load_status(workdir)["paths"][key]["model_path"].split("/", 1)[1]
    artifact.unlink()  # the export must write it again
    script = workdir / key / "reproduce_export.py"
    edited = script.read_text() + "\n# the user's get_model() lives here\n"
    script.write_text(edited)
    result = run_cli(
        "convert",
        "--config",
        f"navigator_workdir/{key}/config.yaml",
        "--model",
        "tiny_models:get_model",
        cwd=user_model_copy,
    )
    assert result.returncode == 0, result.stderr
    assert artifact.is_file()
    assert script.read_text() == edited  # the re-export keeps the script the user completed
    assert f"{key}" in result.stderr and "export" in result.stderr
    path = load_status(workdir)["paths"][key]
    assert path["status"] == "ok"
    assert path["runtimes"]["CPUExecutionProvider"]["correctness"]["status"] == "ok"


@pytest.mark.slow
def test_convert_export_path_with_other_weights_fails_correctness(user_model_copy):
    """The re-export is checked with the recorded atol: a model with other weights fails."""
    result = run_cli(
        "convert",
        "--config",
        "navigator_workdir/onnx/config.yaml",
        "--model",
        "tiny_models:other_weights",
        cwd=user_model_copy,
    )
    assert result.returncode == 1, result.stderr
    assert "onnx on CPUExecutionProvider: correctness failed" in result.stderr
    path = load_status(user_model_copy / "navigator_workdir")["paths"]["onnx"]
    assert path["runtimes"]["CPUExecutionProvider"]["correctness"]["status"] == "failed"


@pytest.mark.parametrize(
    "model, code, message",
    [
        pytest.param("tiny_models", 2, "is not MODULE:FUNCTION", marks=pytest.mark.slow),
        pytest.param("no_such_module:get_model", 2, "cannot import 'no_such_module'", marks=pytest.mark.slow),
        pytest.param("tiny_models:missing", 2, "tiny_models has no function 'missing'", marks=pytest.mark.slow),
        pytest.param("tiny_models:not_a_model", 2, "returned a int, not a torch.nn.Module", marks=pytest.mark.slow),
        pytest.param(
            "tiny_models:broken", 1, "calling it failed: RuntimeError: weights file missing", marks=pytest.mark.slow
        ),
    ],
)
def test_convert_bad_model_is_refused_before_anything_is_written(user_model_copy, model, code, message):
    status_file = user_model_copy / "navigator_workdir" / "status.yaml"
    before = status_file.read_bytes()
    result = run_cli("convert", "--config", "navigator_workdir/onnx/config.yaml", "--model", model, cwd=user_model_copy)
    assert result.returncode == code
    assert message in assert_one_line_error(result)
    assert status_file.read_bytes() == before


def test_convert_model_with_correctness_only_is_refused(user_model_copy):
    result = run_cli(
        "convert",
        "--config",
        "navigator_workdir/onnx/config.yaml",
        "--model",
        "tiny_models:get_model",
        "--correctness-only",
        cwd=user_model_copy,
    )
    assert result.returncode == 2
    assert "--model applies to re-running an export path" in assert_one_line_error(result)


def test_convert_correctness_only(workdir_copy):
    status_file = workdir_copy / "status.yaml"
    data = load_status(workdir_copy)
    data["paths"]["onnx"]["runtimes"]["CPUExecutionProvider"]["correctness"]["duration_s"] = 12345.0  # a mark
    status_file.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_cli("convert", "--config", str(workdir_copy / "onnx" / "config.yaml"), "--correctness-only")
    assert result.returncode == 0, result.stderr
    assert "onnx" in result.stdout and "correctness" in result.stderr
    after = load_status(workdir_copy)["paths"]
    correctness = after["onnx"]["runtimes"]["CPUExecutionProvider"]["correctness"]
    assert correctness["status"] == "ok" and 0 <= correctness["duration_s"] < 12345.0  # it ran again
    assert after["onnx"]["runtimes"]["CPUExecutionProvider"]["performance"]["status"] == "ok"  # kept


@pytest.mark.slow
def test_convert_correctness_only_on_failed_path(failing_workdir):
    result = run_cli(
        "convert",
        "--config",
        str(failing_workdir / "torchscript-trace" / "config.yaml"),
        "--correctness-only",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert [row["path"] for row in json.loads(result.stdout)["rows"]] == ["torchscript-trace"]
    result = run_cli(
        "convert", "--config", str(failing_workdir / "torchscript-script" / "config.yaml"), "--correctness-only"
    )
    assert result.returncode == 2
    assert "no artifact" in assert_one_line_error(result)


def test_convert_conversion_path_not_available_here(workdir_copy):
    """A conversion path's config.yaml (as the pipeline writes it) re-runs the conversion; TensorRT
    is not installed here, so the path is recorded as skipped and the command reports failure."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed: the conversion would run")
    config = yaml.safe_load((workdir_copy / "onnx" / "config.yaml").read_text())
    config.update(path="trt-fp32", format="trt", precision="fp32", parent="onnx", artifact="model.plan")
    (workdir_copy / "trt-fp32").mkdir()
    (workdir_copy / "trt-fp32" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_cli("convert", "--config", str(workdir_copy / "trt-fp32" / "config.yaml"))
    assert result.returncode == 1, result.stderr
    assert "skipped" in result.stderr and "tensorrt" in result.stderr
    assert load_status(workdir_copy)["paths"]["trt-fp32"]["status"] == "skipped"


def test_convert_bad_config_exits_2(exported, tmp_path):
    result = run_cli("convert", "--config", str(tmp_path / "missing" / "config.yaml"))
    assert result.returncode == 2
    assert "does not exist" in assert_one_line_error(result)
    bogus = tmp_path / "path" / "config.yaml"
    bogus.parent.mkdir()
    bogus.write_text("just: text\n")
    result = run_cli("convert", "--config", str(bogus))
    assert result.returncode == 2
    assert "not a path config.yaml" in assert_one_line_error(result)


def test_readme_command_table_lists_every_option_of_every_command():
    """The README's command table is the parsers' own synopsis (python -m model_navigator.cli.synopsis): an
    option added to, renamed in or removed from a command shows here."""
    from model_navigator.cli.synopsis import command_synopses

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table = [row[3:].split("` | ", 1)[0].replace("\\|", "|") for row in rows]  # a table cell escapes |
    assert table == list(command_synopses().values())


def test_synopsis_names_every_option_a_parser_has():
    """The synopsis itself misses nothing: every option string's long form of every subcommand is in it."""
    import argparse

    from model_navigator.cli.main import build_parser
    from model_navigator.cli.synopsis import COMMON_OPTIONS, command_synopses

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    synopses = command_synopses()
    assert set(synopses) == set(sub.choices)  # every command, export and batch included
    for name, parser in sub.choices.items():
        words = synopses[name].replace("[", " ").replace("]", " ").split()
        for action in parser._actions:
            if action.option_strings and not set(action.option_strings) & set(COMMON_OPTIONS):
                assert max(action.option_strings, key=len) in words, (name, action.option_strings)
