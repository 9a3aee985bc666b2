"""The HTML/Markdown report (`model_navigator.report`, `model-navigator report`): built from real
exports, rendered in a real headless Chromium, run through a real subprocess for the CLI."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")

import helpers  # noqa: E402
import models  # noqa: E402

import model_navigator as nav  # noqa: E402
from model_navigator.core.enums import StepStatus  # noqa: E402
from model_navigator.core.status import NavigatorStatus  # noqa: E402
from model_navigator.report import build_report_data, write_report  # noqa: E402
from model_navigator.report.browser import dump_dom, find_chromium, screenshot  # noqa: E402

ARTIFACTS = ("torchscript-script", "torchscript-trace", "onnx")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "model_navigator", *args],
        capture_output=True,
        text=True,
        env=helpers.repo_env(),
        timeout=120,
    )


def png_size(data: bytes):
    import matplotlib.image

    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    return image.shape[1], image.shape[0], image


@pytest.fixture(scope="module")
def cnn_export(tmp_path_factory):
    """A profiled CNN workspace (batch sizes 1 and 4, all paths ok) and its .nav package."""
    root = tmp_path_factory.mktemp("report")
    workdir = root / "cnn_workdir"
    package = nav.torch.export(
        models.cnn_model(),
        models.cnn_dataloader(),
        model_name="cnn",
        workdir=workdir,
        target_formats=("torchscript", "onnx"),
        verbose=False,
        isolation=False,
        runtimes=("CPUExecutionProvider",),
        profiler_config=helpers.light_profiler(batch_sizes=(1, 4)),
    )
    assert all(package.get_formats_status()[k] for k in ARTIFACTS), package.get_formats_status()
    nav_file = root / "cnn.nav"
    nav.save(package, nav_file)
    return workdir, nav_file


@pytest.fixture(scope="module")
def report_dir(cnn_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn_report")
    files = write_report(cnn_export[0], out)
    assert files.failures == [] and not files.plots_missing
    return out


class _ScriptFails(torch.nn.Module):
    """torch.jit.script refuses import statements; tracing records the (correct) computation."""

    def forward(self, x):
        import math

        return x * math.pi


@pytest.fixture(scope="module")
def failing_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("report_failed") / "workdir"
    nav.torch.export(
        _ScriptFails(),
        [torch.randn(2, 5) for _ in range(3)],
        workdir=workdir,
        target_formats=("torchscript",),
        jit_options=("script", "trace"),
        verbose=False,
        isolation=False,
        run_profiling=False,
    )
    return workdir


# ------------------------------------------------------------------------------------------------
# Content
# ------------------------------------------------------------------------------------------------


def test_report_files_and_embedded_plots(report_dir):
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    images = re.findall(r'<img id="plot-(\w+)" alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [name for name, _ in images] == ["latency", "throughput"]
    for name, encoded in images:
        data = base64.b64decode(encoded)
        assert data.startswith(PNG_MAGIC)
        assert data == (report_dir / f"{name}.png").read_bytes()  # the Markdown twin shows the same plots
        width, height, _ = png_size(data)
        assert width >= 600 and height >= 350
    for section in ("deploy", "status", "performance", "correctness", "model", "environment"):
        assert f'<section id="{section}">' in page


def test_report_is_self_contained(report_dir):
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    for url in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page):
        assert url.startswith("data:image/png;base64,"), url
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "http://" not in page and "https://" not in page
    assert "@import" not in page and "url(" not in page


def test_report_tables_match_status(cnn_export, report_dir):
    status = NavigatorStatus.load(cnn_export[0])
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    for key in ARTIFACTS:
        assert f'<td class="key">{key}</td>' in page
        assert f"| {key} |" in markdown
        result = status.paths[key].runtimes[nav.RuntimeProvider.CPU]
        error = result.correctness.per_output["output__0"]
        # correctness per output, as status.yaml has it
        assert f"{error.max_abs_error:.2e}" in page and f"{error.max_rel_error:.2e}" in page
        assert f"{error.max_abs_error:.2e}" in markdown
        for r in result.performance.results:  # every measurement, in the table of all measurements
            assert f"{r.throughput:,.0f}" in page and f"{r.throughput:,.0f}" in markdown
    for key, path in status.paths.items():  # skipped paths: listed with their reason, not in the tables
        if path.status == StepStatus.SKIPPED:
            assert f'<td class="key">{key}</td>' not in page and key in page and path.reason in page
    assert "![p50 latency against batch size](latency.png)" in markdown
    assert "![Throughput against batch size](throughput.png)" in markdown
    assert "output\\_\\_0" in markdown  # Markdown punctuation in names is escaped


def test_recommendation_is_fastest_correct_path(cnn_export):
    data = build_report_data(cnn_export[0])
    candidates = [s for s in data.series if not s.is_source]
    assert {s.path for s in candidates} == set(ARTIFACTS)
    fastest = min(candidates, key=lambda s: s.at(1).p50_ms)
    assert data.latency_pick.series is fastest and data.latency_pick.result.batch_size == 1
    best = max(candidates, key=lambda s: max(p.throughput for p in s.points))
    assert data.throughput_pick.series is best
    source = next(s for s in data.series if s.is_source)
    assert data.latency_pick.speedup == pytest.approx(source.at(1).p50_ms / fastest.at(1).p50_ms)
    page = (Path(write_report(data.status, cnn_export[0].parent / "r").html)).read_text(encoding="utf-8")
    assert f"{fastest.path} on CPU: {data.latency_pick.result.p50_ms:.3f} ms p50 at batch size 1" in page


def test_recommendation_agrees_with_selection_and_prefers_verified(cnn_export, tmp_path):
    from model_navigator.selection import select_runtime

    status = NavigatorStatus.load(cnn_export[0])
    data = build_report_data(status)
    chosen = select_runtime(status, "min-latency")  # what `model-navigator inspect` stars
    assert (data.latency_pick.series.path, data.latency_pick.series.runtime) == (chosen.path, chosen.runtime.value)
    assert data.throughput_pick.series.path == select_runtime(status, "max-throughput").path
    assert len(data.rejected) == len(chosen.rejected) and any("source model" in r for r in data.rejected)
    slowest = max((s for s in data.series if not s.is_source), key=lambda s: s.at(1).p50_ms)
    status.paths[slowest.path].runtimes[nav.RuntimeProvider(slowest.runtime)].verified = True
    data = build_report_data(status)
    assert data.latency_pick.series is not None and data.latency_pick.series.path == slowest.path
    assert data.verified == [(slowest.path, slowest.runtime)]
    page = write_report(status, tmp_path).html.read_text(encoding="utf-8")
    assert f"Verified by you: {slowest.path} on CPU." in page
    assert "Why not the others" in page and "not verified" in page


def test_failed_correctness_is_never_recommended(cnn_export, tmp_path):
    status = NavigatorStatus.load(cnn_export[0])
    data = build_report_data(status)
    pick = data.latency_pick.series.path
    correctness = status.paths[pick].runtimes[nav.RuntimeProvider.CPU].correctness
    correctness.status = StepStatus.FAILED
    correctness.reason = "max abs error 1.0 exceeds atol"
    data = build_report_data(status)
    assert data.latency_pick.series.path != pick and data.throughput_pick.series.path != pick
    assert any(f.startswith(f"{pick} on CPUExecutionProvider: correctness failed") for f in data.failures)
    files = write_report(status, tmp_path)
    page = files.html.read_text(encoding="utf-8")
    assert "correctness failed" in page and "exceeds atol" in page and "failure(s)" in page


def test_no_markup_leaks_into_the_pages(report_dir):
    """The report's own code names are code (HTML <code>, Markdown code spans), never literal backticks."""
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "`" not in page
    assert "Chosen as <code>model-navigator inspect</code> chooses" in page
    assert "\\`" not in markdown  # an escaped backtick would show literally
    assert "Chosen as `model-navigator inspect` chooses (`model_navigator.selection`)" in markdown


def test_recommended_row_is_starred_as_inspect_stars_it(cnn_export, report_dir):
    from model_navigator.selection import select_runtime

    chosen = select_runtime(NavigatorStatus.load(cnn_export[0]))  # inspect's default: min latency
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    starred = re.findall(r'<td class="key">([^<]+) <span class="star"[^>]*>★</span></td><td>(\w+)</td>', page)
    assert starred == [(chosen.path, "CPU")]
    assert "the row <code>model-navigator inspect</code> stars" in page
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert [line for line in markdown.splitlines() if " ★ |" in line] == [
        line for line in markdown.splitlines() if line.startswith(f"| {chosen.path} ★ | CPU |")
    ]
    assert len([line for line in markdown.splitlines() if " ★ |" in line]) == 1


def test_throughput_is_defined_beside_the_figure(cnn_export, report_dir):
    data = build_report_data(cnn_export[0])
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    for text in (page, markdown):
        assert text.count("Throughput /s (batch size / mean latency)") == 2  # the status table and all measurements
    pick = data.throughput_pick.result
    assert f"{pick.throughput:,.0f} samples/s (batch size / mean latency) at batch size {pick.batch_size}" in page
    for s in data.series:  # and that is what the figure is
        for p in s.points:
            assert p.throughput == pytest.approx(p.batch_size / (p.mean_ms / 1000.0))


def test_heavy_tailed_measurements_are_flagged(cnn_export, tmp_path):
    from model_navigator.core.status import ProfilingResult
    from model_navigator.report.data import skew_flags

    def result(p50, p99, mean):
        return ProfilingResult(
            batch_size=1,
            p50_ms=p50,
            p90_ms=p50,
            p95_ms=p50,
            p99_ms=p99,
            mean_ms=mean,
            std_ms=0,
            throughput=1000.0 / mean,
            windows=3,
            stable=True,
        )

    assert skew_flags(result(1.0, 3.0, 1.5)) == []  # at the thresholds: not flagged
    assert skew_flags(result(1.0, 3.1, 1.0)) == ["p99 3.100 ms is 3.1x p50 1.000 ms (heavy tail)"]
    assert skew_flags(result(1.0, 2.0, 2.0)) == [
        "mean 2.000 ms is 2.0x p50, so throughput (batch / mean) is 500/s where batch / p50 would give 1,000/s"
    ]
    assert skew_flags(result(1.0, 1.0, 0.5))  # a mean far below p50 is as suspect

    status = NavigatorStatus.load(cnn_export[0])
    for path in status.paths.values():  # calm figures first (this machine's may have tails of their own)
        for runtime_result in path.runtimes.values():
            for r in runtime_result.performance.results if runtime_result.performance else []:
                r.p99_ms, r.mean_ms, r.throughput = r.p50_ms * 1.2, r.p50_ms, r.batch_size / (r.p50_ms / 1000.0)
    calm = write_report(status, tmp_path / "calm").html.read_text(encoding="utf-8")
    assert "Read with care" not in calm and '<span class="skew">' not in calm
    measured = status.paths["onnx"].runtimes[nav.RuntimeProvider.CPU].performance.results[0]
    measured.p99_ms, measured.mean_ms = measured.p50_ms * 12, measured.p50_ms * 4  # a heavy tail, as on a busy machine
    measured.throughput = measured.batch_size / (measured.mean_ms / 1000.0)
    files = write_report(status, tmp_path)
    page = files.html.read_text(encoding="utf-8")
    markdown = files.markdown.read_text(encoding="utf-8")
    assert "Read with care</b>: 1 measurement(s)" in page and "**Read with care**: 1 measurement(s)" in markdown
    item = f"onnx on CPU, batch size {measured.batch_size}: p99 {measured.p99_ms:.3f} ms is 12.0x p50"
    assert item in page and item in markdown
    assert "mean" in page.split(item)[1].split("</li>")[0]  # the mean is flagged too, on the same line
    status_table = page.split('<section id="status">')[1].split("</table>")[0]
    rows = re.findall(r'<td class="key">([^<]+)(?: <span[^>]*>★</span>)?</td><td>CPU</td>(.*?)</tr>', status_table)
    assert [key for key, cells in rows if '<span class="skew">!</span>' in cells] == ["onnx"]


def test_status_text_is_escaped(cnn_export, tmp_path):
    status = NavigatorStatus.load(cnn_export[0])
    status.model_name = '<script>alert("x")</script> & *bold* | pipe'
    status.paths["onnx"].runtimes[nav.RuntimeProvider.CPU].correctness.reason = "<img src=x onerror=alert(1)>"
    status.environment["cpu"] = "<b>cpu</b>"
    files = write_report(status, tmp_path)
    page = files.html.read_text(encoding="utf-8")
    assert "<script>" not in page and "<b>cpu</b>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; *bold* | pipe" in page
    assert "&lt;b&gt;cpu&lt;/b&gt;" in page
    markdown = files.markdown.read_text(encoding="utf-8")
    assert "<script>" not in markdown
    assert '# &lt;script&gt;alert("x")&lt;/script&gt; &amp; \\*bold\\* \\| pipe' in markdown


def test_skipped_paths_are_listed_with_reason(cnn_export, tmp_path):
    status = NavigatorStatus.load(cnn_export[0])
    status.paths["torchscript-script"].status = StepStatus.SKIPPED
    status.paths["torchscript-script"].reason = "needs a GPU"
    status.paths["torchscript-script"].runtimes = {}
    files = write_report(status, tmp_path)
    page = files.html.read_text(encoding="utf-8")
    assert '<span class="skipped">Skipped</span> torchscript-script: needs a GPU' in page
    assert '<td class="key">torchscript-script</td>' not in page
    assert "Skipped torchscript-script: needs a GPU" in files.markdown.read_text(encoding="utf-8")
    assert build_report_data(status).failures == []  # skipped is not a failure


def test_report_from_package_and_descriptor(cnn_export, report_dir, tmp_path):
    workdir, nav_file = cnn_export
    before = sorted(p.name for p in nav_file.parent.iterdir())
    from_package = write_report(nav_file, tmp_path / "from_nav")
    assert sorted(p.name for p in nav_file.parent.iterdir()) == before  # read without unpacking
    from_descriptor = write_report(nav.PackageDescriptor.from_workdir(workdir), tmp_path / "from_descriptor")
    expected = (report_dir / "report.md").read_text(encoding="utf-8")
    assert from_package.markdown.read_text(encoding="utf-8") == expected
    assert from_descriptor.markdown.read_text(encoding="utf-8") == expected


def test_report_without_profiling_has_no_plots(failing_workdir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "latency.png").write_bytes(b"stale plot of another report")
    (out / "notes.txt").write_text("mine")
    files = write_report(failing_workdir, out)
    assert files.images == {} and not (out / "latency.png").exists()
    assert (out / "notes.txt").read_text() == "mine"  # nothing but the report's own files is touched
    page = files.html.read_text(encoding="utf-8")
    assert "data:image/png" not in page and "Nothing was profiled" in page
    assert "torchscript-script: failed" in page  # the failure, with the framework's reason
    assert "Nothing to deploy yet" in page


def test_report_without_matplotlib_warns_and_has_no_plots(cnn_export, tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from model_navigator.report import write_report\n"
        f"files = write_report({str(cnn_export[0])!r}, {str(tmp_path)!r})\n"
        "print(files.plots_missing, sorted(files.images))\n"
    )
    env = helpers.repo_env()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True []"
    assert "matplotlib is not installed" in result.stderr and "model-navigator[report]" in result.stderr
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Plots need matplotlib" in page and "data:image/png" not in page
    assert "onnx" in page  # the tables are all there


@pytest.mark.slow
def test_plots_leave_pyplot_backend_alone(cnn_export, tmp_path):
    code = (
        "import matplotlib; matplotlib.use('svg')\n"
        "from model_navigator.report import write_report\n"
        f"write_report({str(cnn_export[0])!r}, {str(tmp_path)!r})\n"
        "import sys; print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n"
    )
    env = helpers.repo_env()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["svg", "False"]


# ------------------------------------------------------------------------------------------------
# In a real browser
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    browser = find_chromium()
    if browser is None:
        pytest.skip(
            "no chromium binary on PATH (Debian: apt-get install chromium; scripts/test.sh installs it as "
            "root): the report cannot be rendered in a browser here"
        )
    return browser


@pytest.mark.slow
def test_report_renders_plots_in_headless_chromium(chromium, report_dir, tmp_path):
    dom = dump_dom(report_dir / "report.html", browser=chromium)
    assert "<h1>cnn</h1>" in dom
    images = re.findall(r'<img id="plot-(\w+)"[^>]*src="data:image/png;base64,', dom)
    assert images == ["latency", "throughput"]

    png = screenshot(report_dir / "report.html", tmp_path / "shot.png", width=1400, height=2000, browser=chromium)
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 50_000
    width, height, pixels = png_size(data)
    assert (width, height) == (1400, 2000)
    rgb = pixels[..., :3]
    not_white = (rgb < 0.9).any(axis=-1)
    assert not_white.mean() > 0.03  # text, tables and plots, not a blank page
    # the plots' coloured lines are on the page (tab10 blue/orange/green/red are saturated colours)
    saturated = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.4
    assert saturated.sum() > 2000


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_report_workdir_and_package(cnn_export, tmp_path):
    workdir, nav_file = cnn_export
    for target, out in ((workdir, tmp_path / "a"), (nav_file, tmp_path / "b" / "nested")):
        result = run_cli("report", str(target), "-o", str(out))
        assert result.returncode == 0, result.stderr
        written = result.stdout.split()
        assert written == [str(out / n) for n in ("report.html", "report.md", "latency.png", "throughput.png")]
        for name in written:
            assert Path(name).is_file()
        assert 'src="data:image/png;base64,' in (out / "report.html").read_text(encoding="utf-8")


def test_cli_report_failures_exit_1(failing_workdir, tmp_path):
    result = run_cli("report", str(failing_workdir), "--output", str(tmp_path / "r"))
    assert result.returncode == 1, result.stderr
    assert (tmp_path / "r" / "report.html").is_file()  # written all the same
    assert "torchscript-script: failed" in result.stderr


@pytest.mark.slow
def test_cli_report_bad_usage_exits_2(cnn_export, tmp_path):
    workdir, nav_file = cnn_export
    result = run_cli("report", str(workdir))  # -o is required
    assert result.returncode == 2 and "-o/--output" in result.stderr
    result = run_cli("report", str(tmp_path / "missing.nav"), "-o", str(tmp_path / "r"))
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = run_cli("report", str(workdir), "-o", str(a_file))
    assert result.returncode == 2 and "not a folder" in result.stderr
    broken = tmp_path / "broken.nav"
    broken.write_bytes(nav_file.read_bytes()[:-200])
    result = run_cli("report", str(broken), "-o", str(tmp_path / "r"))
    assert result.returncode == 2 and "error: " in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()  # validated before anything is written
    result = run_cli("report", "--help")
    assert result.returncode == 0 and "-o DIR" in result.stdout


def test_cli_report_refuses_unsafe_status(cnn_export, tmp_path):
    workdir = tmp_path / "w"
    shutil.copytree(cnn_export[0], workdir)
    (workdir / "status.yaml").write_text("!!python/object/apply:os.system ['echo pwned']\n")
    result = run_cli("report", str(workdir), "-o", str(tmp_path / "r"))
    assert result.returncode == 2 and "pwned" not in result.stdout
    assert yaml.safe_load((cnn_export[0] / "status.yaml").read_text())["model_name"] == "cnn"
