"""The MACs-vs-mAP plot is a real PNG with the measured and the reference series."""

from __future__ import annotations

import matplotlib.image

from edge_sed.bench.plot import plot_macs_map
from edge_sed.bench.reference import PANNS_AUDIOSET

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plot_is_a_valid_png(tmp_path):
    rows = [
        {"model": "student", "precision": "onnx-int8", "panns_multiply_adds": 1.2e9, "mAP": 0.61},
        {"model": "student", "precision": "torch-fp32", "panns_multiply_adds": 1.2e9, "mAP": 0.63},
        {"model": "cnn14", "precision": "", "panns_multiply_adds": 4.2e10, "mAP": None},  # untrained: not drawn
    ]
    path = plot_macs_map(rows, tmp_path / "plots" / "macs_map.png", dataset="ESC-50 fold 5")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width, channels = matplotlib.image.imread(path).shape
    assert (width, height) == (1200, 600) and channels in (3, 4)


def test_reference_points_are_table_xii():
    published = {p.model: (p.audioset_map, round(p.multiply_adds / 1e9, 2)) for p in PANNS_AUDIOSET}
    assert published == {
        "Cnn14": (0.431, 42.22), "Cnn14_16k": (0.438, 40.64), "Cnn10": (0.380, 28.17),
        "Cnn6": (0.343, 21.99), "MobileNetV1": (0.389, 3.61), "MobileNetV2": (0.383, 2.81),
    }
