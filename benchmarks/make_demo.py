"""Rebuild the shipped demo recording ``edge_sed/assets/demo.flac`` and ``demo.tsv``.

Every source may be redistributed (see ``edge_sed/assets/DEMO_SOURCES.md``):
ESC-10 clips (CC BY 3.0), LibriSpeech and librosa example recordings (CC BY
4.0 / 3.0), a megaglest ambience (CC BY-SA 3.0). All come from the held-out
test split of :mod:`edge_sed.soundscape`, so the default model never trained
on them.

    PYTHONPATH=. python benchmarks/make_demo.py --data ../shared/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_sed.soundscape import Background, EventSource, SoundscapeConfig, compose, write_soundscape_set

ASSETS = Path(__file__).resolve().parents[1] / "edge_sed" / "assets"
DEMO_CONFIG = SoundscapeConfig(duration_s=26.0, max_event_s=4.5, background_dbfs=-38.0)
DEMO_SNR_DB = 12.0
#: (label, file under the data root, excerpt start/stop in s or None, onset in s)
DEMO_EVENTS = (
    ("dog", "esc50-subset/audio/5-203128-A-0.flac", None, 0.8),
    ("speech", "librosa-examples/audio/libri3.flac", (4.0, 8.0), 3.5),
    ("rooster", "esc50-subset/audio/5-194930-A-1.flac", None, 8.8),
    ("music", "librosa-examples/audio/vibeace.flac", (20.0, 24.0), 11.8),
    ("crying_baby", "esc50-subset/audio/5-151085-A-20.flac", None, 17.0),
    ("chainsaw", "esc50-subset/audio/5-170338-A-41.flac", None, 22.8),
)
DEMO_BACKGROUND = "backgrounds/audio/megaglest__mediterran_desertday.flac"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data root")
    parser.add_argument("--out", type=Path, default=ASSETS, help="where demo.flac and demo.tsv go")
    args = parser.parse_args()
    arrangement = []
    for label, name, excerpt, onset_s in DEMO_EVENTS:
        start_s, stop_s = excerpt or (0.0, None)
        arrangement.append((EventSource(label, (args.data / name,), "test", start_s, stop_s), onset_s, DEMO_SNR_DB))
    background = Background(args.data / DEMO_BACKGROUND, "daytime desert ambience", "test")
    demo = compose(arrangement, background, DEMO_CONFIG)
    tsv = write_soundscape_set([demo], args.out, prefix="demo")
    (args.out / "demo_000.flac").replace(args.out / "demo.flac")
    text = tsv.read_text(encoding="utf-8").replace("demo_000.flac", "demo.flac")
    (args.out / "demo.tsv").write_text(text, encoding="utf-8")
    tsv.unlink()
    print(text)


if __name__ == "__main__":
    main()
