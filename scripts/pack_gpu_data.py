"""Pack the GPU job's inputs into git-ignored folders that travel with a device call (<= 64 MiB).

- ``gpu_data/esc50/``: all 2000 ESC-50 clips from ``../shared/data/esc50-subset``
  as 16 kHz Opus (compression level 0.85: about 24 kB a clip; log-mel within about 1 dB) with the same ``metadata.csv`` columns
  (``filename`` pointing at the ``.ogg``) and the dataset's license files;
- ``gpu_data/backgrounds/``: the background recordings, also as Opus;
- ``.whl/`` (``--wheels``): soundfile, soxr and cffi wheels for the device's
  Python 3.12, which lacks them (the device has no network).

Opus is lossy: the GPU job trains and validates on the decoded Opus audio,
which the results must state.

    python scripts/pack_gpu_data.py --wheels
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LIMIT_BYTES = 60 * 2**20  # leave room under the 64 MiB a call may carry
WHEELS = ("soundfile==0.13.1", "soxr==1.0.0", "cffi==2.0.0", "pycparser==2.23")


def _encode(source: Path, target: Path, compression: float) -> None:
    samples, rate = sf.read(source, dtype="float32")
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, samples, rate, format="OGG", subtype="OPUS", compression_level=compression)


def _pack_esc50(out: Path, compression: float) -> None:
    source = SHARED / "esc50-subset"
    with (source / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        target = Path(row["filename"]).with_suffix(".ogg")
        _encode(source / row["filename"], out / "esc50" / target, compression)
        row["filename"] = str(target)
    with (out / "esc50" / "metadata.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for name in ("SOURCES.md", "LICENSE_ESC50.txt", "LICENSE_ESC10_README.txt"):
        shutil.copy(source / name, out / "esc50" / name)


def _pack_backgrounds(out: Path, compression: float) -> None:
    for path in sorted((SHARED / "backgrounds" / "audio").glob("*.flac")):
        _encode(path, out / "backgrounds" / path.with_suffix(".ogg").name, compression)
    shutil.copy(SHARED / "backgrounds" / "SOURCES.md", out / "backgrounds" / "SOURCES.md")


def _download_wheels(folder: Path) -> None:
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 27, 28)] + ["--platform=manylinux2014_x86_64"]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
         "--implementation", "cp", *platforms, "-d", str(folder), *WHEELS],
        check=True,
    )  # fmt: skip


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "gpu_data")
    parser.add_argument("--compression", type=float, default=0.85, help="Opus compression level, 0 (best) .. 1")
    parser.add_argument("--wheels", action="store_true", help="also download the device's missing wheels to .whl/")
    args = parser.parse_args()
    _pack_esc50(args.out, args.compression)
    _pack_backgrounds(args.out, args.compression)
    total = _size(args.out)
    if args.wheels:
        _download_wheels(ROOT / ".whl")
        total += _size(ROOT / ".whl")
    print(f"{args.out}: {_size(args.out) / 2**20:.1f} MiB; with wheels {total / 2**20:.1f} MiB")
    if total > LIMIT_BYTES:
        raise SystemExit(f"packed inputs are {total / 2**20:.1f} MiB, over {LIMIT_BYTES / 2**20:.0f} MiB; raise --compression")


if __name__ == "__main__":
    main()
