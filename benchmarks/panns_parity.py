"""Parity with the official PANNs code: its models' checkpoints through `edge-sed tag --json`.

For MobileNetV1, MobileNetV2 and Cnn14_16k: build the official model from
qiuqiangkong/audioset_tagging_cnn (``pytorch/models.py``, needs torchlibrosa),
give it real BatchNorm statistics (train-mode passes over real clips) and random
BN affine parameters, save ``{'model': state_dict, 'iteration': 0}``, then compare
the official eval-mode ``clipwise_output`` (audio loaded as PANNs' inference.py
does: ``librosa.load(path, sr=..., mono=True)``) with ``edge-sed tag --json`` on
the same files (a subprocess: the real CLI). Prints a table and writes
``benchmarks/results/panns_parity.json``.

Skips (exit 0, one line) when the official code or torchlibrosa is not there::

    git clone https://github.com/qiuqiangkong/audioset_tagging_cnn /tmp/panns
    pip install --target /tmp/tlib --no-deps torchlibrosa==0.1.0
    PYTHONPATH=/tmp/tlib python benchmarks/panns_parity.py --panns /tmp/panns
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
#: Official class -> its constructor arguments (PANNs' configurations).
CONFIGS = {
    "MobileNetV1": dict(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000, classes_num=527),
    "MobileNetV2": dict(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000, classes_num=527),
    "Cnn14_16k": dict(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=527),
}
TOLERANCE = 1e-4


def _clips(workdir: Path) -> list[Path]:
    clips = sorted((ROOT / "tests" / "data").glob("*.flac"))
    for folder in ("backgrounds", "esc50-subset", "librosa-examples"):
        clips += sorted((SHARED_DATA / folder / "audio").glob("*.flac"))[:1]
    # one 44.1 kHz stereo file: the resampling and down-mixing path
    import soxr

    samples, rate = sf.read(clips[1], dtype="float32")
    stereo = workdir / "stereo_44k.wav"
    sf.write(stereo, soxr.resample(np.stack([samples, 0.3 * samples[::-1]], axis=1), rate, 44100), 44100)
    return clips + [stereo]


def _official_checkpoint(models, name: str, clips: list[Path], path: Path, librosa, torch):
    config = CONFIGS[name]
    torch.manual_seed(0)
    model = getattr(models, name)(**config)
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = None  # cumulative averages over the passes below
    batch = [librosa.load(str(clip), sr=config["sample_rate"], mono=True)[0][: 5 * config["sample_rate"]] for clip in clips[:8]]
    length = min(len(x) for x in batch)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.from_numpy(np.stack([x[:length] for x in batch])))
        generator = torch.Generator().manual_seed(1)
        for layer in model.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.weight.copy_(torch.rand(layer.num_features, generator=generator) + 0.5)
                layer.bias.copy_(torch.randn(layer.num_features, generator=generator) * 0.2)
    model.eval()
    torch.save({"model": model.state_dict(), "iteration": 0}, path)
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panns", type=Path, default=Path("/tmp/panns"), help="checkout of audioset_tagging_cnn")
    args = parser.parse_args()
    if not (args.panns / "pytorch" / "models.py").is_file():
        print(f"skipped: no official PANNs code at {args.panns} (see this script's docstring)")
        return 0
    try:
        importlib.import_module("torchlibrosa")
    except ImportError:
        print("skipped: torchlibrosa is not importable (pip install --target DIR torchlibrosa; PYTHONPATH=DIR)")
        return 0
    import librosa
    import torch

    sys.path.insert(0, str(args.panns / "pytorch"))
    models = importlib.import_module("models")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        clips = _clips(workdir)
        for name, config in CONFIGS.items():
            checkpoint = workdir / f"{name}_mAP=0.000.pth"
            official = _official_checkpoint(models, name, clips, checkpoint, librosa, torch)
            worst, spread = 0.0, []
            for clip in clips:
                waveform, _ = librosa.load(str(clip), sr=config["sample_rate"], mono=True)
                with torch.no_grad():
                    expected = official(torch.from_numpy(waveform)[None])["clipwise_output"][0].numpy()
                result = subprocess.run(
                    [sys.executable, "-m", "edge_sed", "tag", str(clip), "--checkpoint", str(checkpoint), "--json"],
                    cwd=ROOT, capture_output=True, text=True, check=True,
                )
                got = np.asarray(json.loads(result.stdout)["scores"])
                worst = max(worst, float(np.abs(got - expected).max()))
                spread.append(float(expected.std()))
            rows.append({"model": name, "clips": len(clips), "max_abs_diff": worst,
                         "mean_score_std": float(np.mean(spread)), "within_1e-4": worst < TOLERANCE})
    print(f"{'official model':<14} {'clips':>5} {'max |diff|':>11} {'score std':>10}")
    for row in rows:
        print(f"{row['model']:<14} {row['clips']:>5} {row['max_abs_diff']:>11.2e} {row['mean_score_std']:>10.3f}")
    out = ROOT / "benchmarks" / "results" / "panns_parity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"tolerance": TOLERANCE, "rows": rows}, indent=1) + "\n")
    return 0 if all(row["within_1e-4"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
