"""The exceptions edge-sed raises for problems a user can fix.

The CLI catches :class:`EdgeSedError` in one place and prints its message as one
line (``error: <message>``) with exit code 1. Each message names the bad value
with ``repr`` and says what would work.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "EdgeSedError",
    "AudioInputError",
    "ModelError",
    "SinkError",
    "AllSinksFailed",
    "ConfigError",
    "MissingDependencyError",
    "require",
    "require_file",
]


class EdgeSedError(Exception):
    """Base class of every error meant for the user (no traceback shown)."""

    exit_code: int = 1


class AudioInputError(EdgeSedError):
    """Device, rate, channels, corrupt, empty or non-finite audio."""


class ModelError(EdgeSedError):
    """A missing, unreadable or mismatched model, checkpoint or bundle."""


class SinkError(EdgeSedError):
    """A sink that cannot be opened, or a run whose sinks failed (one that dies mid-run is
    counted, not raised, until none is left: :class:`AllSinksFailed`)."""


class AllSinksFailed(SinkError):
    """Every sink failed to take an event: what is detected from then on could go nowhere, so the run stops."""

    def __init__(self, errors: Mapping[str, Exception]) -> None:
        self.errors = dict(errors)
        causes = "; ".join(f"{name} ({type(exc).__name__}: {exc})" for name, exc in self.errors.items())
        super().__init__(f"every sink failed, so detection stopped: {causes}")

    @property
    def reader_gone(self) -> bool:
        """Every sink failed because the reader of its pipe went away (``edge-sed detect ... | head``)."""
        return all(isinstance(exc, BrokenPipeError) for exc in self.errors.values())


class ConfigError(EdgeSedError):
    """An invalid configuration value, file or command-line option."""


class MissingDependencyError(EdgeSedError):
    """An optional runtime is not installed; the message names the extra to install."""

    def __init__(self, what: str, extra: str, module: str | None = None) -> None:
        hint = f"pip install 'edge-sed[{extra}]'"
        missing = f" ({module} is not installed)" if module else ""
        super().__init__(f"{what} needs the [{extra}] extra{missing}: {hint}")
        self.extra = extra


def require(module: str, *, what: str, extra: str):
    """Import *module* or raise :class:`MissingDependencyError` naming *extra*."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(what, extra, module) from exc


def require_file(path: Path, what: str, error: type[EdgeSedError]) -> None:
    """Raise *error* (``"<what> '<path>' does not exist"`` or ``"... is a directory"``) unless *path* can be a file."""
    if path.is_dir():
        raise error(f"{what} {str(path)!r} is a directory; give a file")
    if not path.exists():
        raise error(f"{what} {str(path)!r} does not exist")
