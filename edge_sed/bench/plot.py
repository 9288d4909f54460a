"""The multiply-adds vs mAP scatter plot (matplotlib, the ``[bench]`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from edge_sed.bench.reference import PANNS_AUDIOSET
from edge_sed.errors import require

__all__ = ["plot_macs_map"]

_MARKERS = {"torch-fp32": "o", "onnx-fp32": "s", "onnx-int8": "D", "tflite-int8": "^"}


def plot_macs_map(rows: Sequence[Mapping[str, Any]], path: str | Path, *, dataset: str) -> Path:
    """Scatter multiply-adds (PANNs convention, per 10 s clip) against mAP.

    Parameters
    ----------
    rows : sequence of dict
        ``bench macs-map`` rows; those with an ``mAP`` are drawn, one marker per precision.
    path : path
        The PNG to write.
    dataset : str
        What the edge-sed points were evaluated on (legend and title).

    PANNs' published AudioSet points are drawn as a labelled reference series.
    """
    matplotlib = require("matplotlib", what="the MACs-vs-mAP plot", extra="bench")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    figure, axes = plt.subplots(figsize=(10.0, 5.0), dpi=120)
    axes.scatter(
        [p.multiply_adds for p in PANNS_AUDIOSET],
        [p.audioset_map for p in PANNS_AUDIOSET],
        marker="x", color="grey", label="PANNs, AudioSet eval (Table XII)",
    )
    for index, point in enumerate(PANNS_AUDIOSET):  # labels alternately below and above: Cnn14 / Cnn14_16k are close
        axes.annotate(point.model, (point.multiply_adds, point.audioset_map), textcoords="offset points",
                      xytext=(4, -10 if index % 2 == 0 else 4), fontsize=7, color="grey")
    measured = [row for row in rows if row.get("mAP") is not None and row.get("panns_multiply_adds")]
    for precision in dict.fromkeys(row["precision"] for row in measured):
        chosen = [row for row in measured if row["precision"] == precision]
        axes.scatter([row["panns_multiply_adds"] for row in chosen], [row["mAP"] for row in chosen],
                     marker=_MARKERS.get(precision, "o"), label=f"edge-sed {precision}, {dataset}", alpha=0.8)
    for row in {row["model"]: row for row in reversed(measured)}.values():  # one label per model
        axes.annotate(row["model"], (row["panns_multiply_adds"], row["mAP"]), textcoords="offset points",
                      xytext=(6, 4), fontsize=7)
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 1e9:g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("multiply-adds per 10 s clip, billions (PANNs' counter: about 2 x MACs)")
    axes.set_ylabel("mAP")
    axes.set_title(f"Multiply-adds vs mAP: edge-sed on {dataset}, PANNs on AudioSet")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    plt.close(figure)
    return path
