"""Benchmark result files and tables.

Every benchmark writes one JSON file, ``<results_dir>/<benchmark>.json``::

    {"schema": "edge-sed-bench/1", "benchmark": "latency", "created_utc": "...",
     "machine": {...machine_info()...}, "settings": {...}, "rows": [{...}, ...],
     "goals": [{"goal": ..., "target": ..., "measured": ..., "met": true}, ...]}

Rows are flat dicts (column -> number, string or null). Ratios between rows
are computed by :func:`add_ratios` from rows of the same run, never across files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from edge_sed.bench.machine import machine_info
from edge_sed.errors import ConfigError

__all__ = [
    "RESULTS_SCHEMA",
    "DEFAULT_RESULTS_DIR",
    "Column",
    "Goal",
    "BenchResult",
    "ProgressCallback",
    "add_ratios",
    "write_results",
    "read_results",
    "format_table",
    "parse_pair",
]

RESULTS_SCHEMA = "edge-sed-bench/1"
#: ``progress(done, total, description)``: how long benchmarks report progress (the CLI draws a bar).
ProgressCallback = Callable[[int, int, str], None]
DEFAULT_RESULTS_DIR = Path("benchmarks") / "results"
_REQUIRED_KEYS = ("schema", "benchmark", "created_utc", "machine", "settings", "rows", "goals")


@dataclass(frozen=True, slots=True)
class Goal:
    """A target from the issue and what this run measured against it."""

    goal: str
    target: float
    measured: float | None
    higher_is_better: bool = True

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured >= self.target if self.higher_is_better else self.measured <= self.target

    def to_dict(self) -> dict[str, Any]:
        return {"goal": self.goal, "target": self.target, "measured": self.measured, "met": self.met}


@dataclass(frozen=True, slots=True)
class BenchResult:
    """Rows of one run, the goals they were checked against, and the file written."""

    path: Path
    rows: list[dict[str, Any]]
    goals: list[Goal]


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: the row key, its header and how a value is shown."""

    key: str
    header: str
    fmt: str = "{}"
    scale: float = 1.0  # shown value = value * scale (e.g. 1e-9 for G)

    def render(self, value: Any) -> str:
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            return ""
        return self.fmt.format(value * self.scale if self.scale != 1.0 else value)


def add_ratios(
    rows: Sequence[dict[str, Any]],
    *,
    value: str,
    ratio: str,
    baseline_of: Callable[[dict[str, Any]], Mapping[str, Any] | None],
    inverse: bool = False,
) -> list[dict[str, Any]]:
    """Add ``row[ratio] = baseline[value] / row[value]`` (or the inverse) to each row.

    Parameters
    ----------
    rows : sequence of dict
        Rows of one run.
    value : str
        The key compared (e.g. ``median_ms``).
    ratio : str
        The key written (e.g. ``speedup``).
    baseline_of : callable
        Row -> the row of the same run it is compared with, or None (ratio left None).
    inverse : bool
        Write ``row / baseline`` instead (a share rather than a speed-up).
    """
    out = []
    for row in rows:
        base = baseline_of(row)
        result = None
        if base is not None and row.get(value) and base.get(value):
            result = row[value] / base[value] if inverse else base[value] / row[value]
        out.append({**row, ratio: result})
    return out


def write_results(
    benchmark: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    settings: Mapping[str, Any],
    goals: Iterable[Goal] = (),
    results_dir: str | Path = DEFAULT_RESULTS_DIR,
) -> Path:
    """Write ``<results_dir>/<benchmark>.json`` with this machine's description; return its path."""
    if not benchmark.replace("_", "").isalnum():
        raise ConfigError(f"benchmark name must be letters, digits and '_', got {benchmark!r}")
    document = {
        "schema": RESULTS_SCHEMA,
        "benchmark": benchmark,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": dict(settings),
        "rows": [dict(row) for row in rows],
        "goals": [goal.to_dict() for goal in goals],
    }
    path = Path(results_dir) / f"{benchmark}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, allow_nan=False, default=_json_default) + "\n")
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to a results file")


def read_results(path: str | Path) -> dict[str, Any]:
    """Read a results file and check that it has the schema's keys."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read benchmark results {str(path)!r}: {exc}") from None
    missing = [key for key in _REQUIRED_KEYS if key not in document]
    if missing or document.get("schema") != RESULTS_SCHEMA:
        raise ConfigError(
            f"{str(path)!r} is not an edge-sed results file ({RESULTS_SCHEMA}); missing: {', '.join(missing) or 'schema'}"
        )
    return document


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as a Markdown pipe table (prints well in a terminal and in the README)."""
    header = [column.header for column in columns]
    body = [[column.render(row.get(column.key)) for column in columns] for row in rows]
    widths = [max(len(cell) for cell in col) for col in zip(header, *body)]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(header, widths)) + " |",
        "|" + "|".join("-" * (width + 2) for width in widths) + "|",
    ]
    lines += ["| " + " | ".join(cell.rjust(width) for cell, width in zip(cells, widths)) + " |" for cells in body]
    return "\n".join(lines)


def parse_pair(text: str, option: str, example: str = "student=runs/student.pth") -> tuple[str, str]:
    """``"NAME=PATH"`` -> ``("NAME", "PATH")``; :class:`ConfigError` naming *option* (and *example*) otherwise."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ConfigError(f"invalid {option} {text!r}; expected NAME=PATH, e.g. {option} {example}")
    return name.strip(), value.strip()
