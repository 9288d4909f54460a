"""The plain values that flow from the event tracker and the pipeline to the sinks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Event", "StreamStatus"]


@dataclass(frozen=True, slots=True)
class Event:
    """One sound event, or the onset of one that is still going on.

    Times are seconds from the start of the stream; ``onset_wall`` and
    ``offset_wall`` are ISO 8601 wall-clock stamps, ``None`` for audio that is
    not paced by a clock (a file read as fast as it goes). ``offset`` is ``None`` for an
    onset notification (emitted as soon as the onset is confirmed); the same
    event is emitted again, complete, when it ends.
    """

    label: str
    onset: float
    offset: float | None
    confidence: float
    onset_wall: str | None = None
    offset_wall: str | None = None
    file: str | None = None

    @property
    def kind(self) -> str:
        """``"onset"`` while the event is open, ``"event"`` once it has ended."""
        return "onset" if self.offset is None else "event"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, ``kind`` included: the same keys for every event (``file`` is null for live input)."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """A snapshot of the running pipeline, sent to sinks after every hop.

    ``scores`` has one entry per label (the last window's, float in [0, 1]);
    ``active`` lists the labels of events open now.
    """

    time_s: float
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    active: tuple[str, ...] = ()
    level_dbfs: float = -120.0
    real_time_factor: float = 0.0
    overruns: int = 0
    counters: dict[str, int] = field(default_factory=dict)
