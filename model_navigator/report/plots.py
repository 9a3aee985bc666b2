"""Latency and throughput against batch size, one line per path and runtime, as PNG bytes.

matplotlib is drawn through its Agg canvas directly (no pyplot), so the process-wide backend and
any figures of the user's stay untouched.
"""

from __future__ import annotations

import io
from typing import Any, Dict, List, Optional

from model_navigator.report.data import ReportData, Series

PLOTS = {
    "latency": ("p50 latency against batch size", "p50 latency (ms)"),
    "throughput": ("Throughput against batch size", "throughput (samples/s)"),
}
MARKERS = "osD^vP*Xh<>"


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(series: List[Series], metric: str, title: str, ylabel: str, model: str) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig = Figure(figsize=(7.2, 5.0), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["tab10"]
    colors = [cmap(i) for i in range(cmap.N)]
    batch_sizes = sorted({b for s in series for b in s.batch_sizes})
    artifact_index = 0
    for s in series:
        values = [p.p50_ms if metric == "latency" else p.throughput for p in s.points]
        style: Dict[str, Any]
        if s.is_source:
            style = dict(color="#555555", linestyle="--", marker="o", linewidth=1.6)
        else:
            style = dict(
                color=colors[artifact_index % len(colors)],
                linestyle="-",
                marker=MARKERS[artifact_index % len(MARKERS)],
                linewidth=2.0,
            )
            artifact_index += 1
        label = s.label + ("" if s.correct else ", correctness failed")
        ax.plot(s.batch_sizes, values, label=label, markersize=6, **style)
        unstable = [(b, v) for b, v, p in zip(s.batch_sizes, values, s.points, strict=True) if not p.stable]
        if unstable:  # a white centre marks a measurement that did not stabilise
            ax.plot(
                [b for b, _ in unstable],
                [v for _, v in unstable],
                linestyle="none",
                marker=style["marker"],
                markersize=4,
                color="white",
            )
    if len(batch_sizes) > 1:
        ax.set_xscale("log", base=2)
    ax.set_xticks(batch_sizes)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("batch size")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(f"{title}: {model}", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if any(not p.stable for s in series for p in s.points):
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="white", color="#555555"))
        labels.append("unstable measurement")
    # below the axes, so it never hides a line
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncols=min(3, len(labels)), frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def render_plots(data: ReportData) -> Optional[Dict[str, bytes]]:
    """{"latency": png, "throughput": png}; {} when nothing was profiled; None without matplotlib."""
    if not data.has_performance:
        return {}
    if not matplotlib_available():
        return None
    model = data.status.model_name
    return {name: _figure(data.series, name, title, ylabel, model) for name, (title, ylabel) in PLOTS.items()}
