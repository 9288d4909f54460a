"""``edge-sed synth`` (soundscapes with known onsets) and ``edge-sed training-table``
(the fixed splits as clip tables for ``edge-sed train``), from the shared recordings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from edge_sed.cli._app import command, console, err_console
from edge_sed.errors import ConfigError

if TYPE_CHECKING:
    from edge_sed.soundscape import Catalog

__all__ = ["synth", "training_table"]

DEFAULT_DATA_ROOT = Path("../shared/data")


def _parse_range(text: str, option: str, example: str) -> tuple[float, float]:
    """``"0:20"`` -> (0.0, 20.0); a single number means that value exactly."""
    try:
        parts = [float(part) for part in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or not all(map(math.isfinite, parts)):
        raise ConfigError(f"{option} must be LOW:HIGH of finite numbers (e.g. {example}), got {text!r}")
    return parts[0], parts[1]


@command("synth", help="Synthesise soundscapes (FLAC + annotations.tsv) from one split of the shared data.")
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the FLAC files and annotations.tsv.")],
    split: Annotated[str, typer.Option(help="Recordings to use: train, validation or test.")] = "test",
    count: Annotated[int, typer.Option(help="Number of soundscapes.")] = 20,
    duration: Annotated[float, typer.Option(help="Length of each soundscape, seconds.")] = 20.0,
    events: Annotated[str, typer.Option(help="Events per soundscape, MIN:MAX.")] = "3:6",
    snr: Annotated[str, typer.Option(help="Event-to-background ratio range in dB, LOW:HIGH.")] = "0:20",
    overlap: Annotated[bool, typer.Option(help="Let events overlap.")] = False,
    label: Annotated[Optional[list[str]], typer.Option(help="Only these event labels (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    data: Annotated[Path, typer.Option(help="The shared data root.")] = DEFAULT_DATA_ROOT,
) -> None:
    from edge_sed.soundscape import SoundscapeConfig, synthesize_set, write_soundscape_set

    low, high = _parse_range(events, "--events", "3:6")
    if count < 1 or seed < 0:
        raise ConfigError(f"need --count >= 1 and --seed >= 0, got {count} and {seed}")
    config = SoundscapeConfig(
        duration_s=duration, min_events=int(low), max_events=int(high), snr_db=_parse_range(snr, "--snr", "0:20"), overlap=overlap
    )
    soundscapes = synthesize_set(_catalog(data), split, count, config, seed=seed, labels=label)
    tsv = write_soundscape_set(soundscapes, out_dir)
    n_events = sum(len(s.events) for s in soundscapes)
    console.print(f"{len(soundscapes)} soundscapes, {n_events} events -> {tsv}", highlight=False)
    short = sum(len(s.events) < config.min_events for s in soundscapes)
    if short:
        err_console.print(f"warning: {short} of {count} soundscapes hold fewer than {config.min_events} events: events that do "
                          f"not fit in {duration:g} s are dropped; give a longer --duration or --overlap", highlight=False, soft_wrap=True)


@command("training-table", help="Write the train/validation clips (metadata.csv), the test split (test/) and train backgrounds for 'edge-sed train'.")
def training_table(
    out_dir: Annotated[Path, typer.Argument(help="Folder for clips/, metadata.csv, test/ and backgrounds/.")],
    data: Annotated[Path, typer.Option(help="The shared data root.")] = DEFAULT_DATA_ROOT,
) -> None:
    from edge_sed.training_table import write_training_table

    console.print(f"wrote {write_training_table(_catalog(data), out_dir)}", highlight=False)


def _catalog(data: Path) -> Catalog:
    """The shared data's catalog; a missing root is named with --data (its default is relative)."""
    from edge_sed.soundscape import load_catalog

    if not data.is_dir():
        raise ConfigError(f"no shared data folder at {str(data)!r}; pass --data with the folder that holds "
                          "esc50-subset/, fsdd/, librosa-examples/ and backgrounds/")
    return load_catalog(data)
