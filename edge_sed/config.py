"""Frozen configuration objects shared by the run time, training and export.

One source of truth: at run time the model bundle's metadata fills these, a
config file may override it, and command-line flags override both
(**bundle metadata < config file < CLI flags**, see :func:`resolve`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from edge_sed.errors import ConfigError

__all__ = [
    "FrontendConfig",
    "PANNS_32K",
    "PANNS_16K",
    "StreamConfig",
    "ClassRule",
    "TrackerConfig",
    "MAX_RULE_S",
    "MAX_WINDOW_S",
    "from_mapping",
    "table",
    "load_toml",
    "resolve",
]

T = TypeVar("T")

#: The longest median filter, minimum duration or gap a :class:`ClassRule` takes, in seconds.
MAX_RULE_S = 600.0
#: The longest analysis window, in seconds (PANNs' clips are 10 s).
MAX_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class FrontendConfig:
    """The log-mel front end: periodic Hann, centred reflect-padded STFT, power,
    Slaney mel filters, ``10*log10(max(x, amin))`` with ref 1.0 and no top_db.

    ``n_fft`` is also the window length (as in PANNs' ``window_size``).
    """

    sample_rate: int = 32000
    n_fft: int = 1024
    hop_length: int = 320
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0
    amin: float = 1e-10

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be positive, got {self.sample_rate!r}")
        if self.n_fft <= 0 or self.n_fft % 2:
            raise ConfigError(f"n_fft must be a positive even number, got {self.n_fft!r}")
        if not 0 < self.hop_length <= self.n_fft:
            raise ConfigError(f"hop_length must be in 1..n_fft={self.n_fft}, got {self.hop_length!r}")
        if self.n_mels <= 0:
            raise ConfigError(f"n_mels must be positive, got {self.n_mels!r}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ConfigError(
                f"need 0 <= fmin < fmax <= sample_rate/2 = {self.sample_rate / 2:g}, "
                f"got fmin={self.fmin!r}, fmax={self.fmax!r}"
            )
        if not 0 < self.amin < 1:
            raise ConfigError(f"amin must be between 0 and 1 (e.g. 1e-10), got {self.amin!r}")

    @property
    def n_freqs(self) -> int:
        """Number of STFT bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def frame_rate(self) -> float:
        """Log-mel frames per second."""
        return self.sample_rate / self.hop_length

    def n_frames(self, n_samples: int) -> int:
        """Frames the centred STFT gives for *n_samples* samples."""
        return 1 + n_samples // self.hop_length


#: PANNs' 32 kHz models (Cnn14, Cnn10, Cnn6, MobileNetV1/V2, ...).
PANNS_32K = FrontendConfig()
#: PANNs' Cnn14_16k.
PANNS_16K = FrontendConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=50.0, fmax=8000.0)


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Sliding-window tagging: a window of ``window_s`` seconds every ``hop_s`` seconds."""

    window_s: float = 1.0
    hop_s: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.window_s <= MAX_WINDOW_S:
            raise ConfigError(f"window_s must be between 0 and {MAX_WINDOW_S:g} s, got {self.window_s!r}")
        if not 0.1 - 1e-9 <= self.hop_s <= self.window_s:
            raise ConfigError(
                f"hop_s must be between 0.1 s and the window ({self.window_s:g} s), got {self.hop_s!r}"
            )


@dataclass(frozen=True, slots=True)
class ClassRule:
    """How one class's score timeline becomes events."""

    on_threshold: float = 0.5
    off_threshold: float = 0.3
    median_s: float = 0.5
    min_duration_s: float = 0.25
    max_gap_s: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.off_threshold <= self.on_threshold <= 1.0:
            raise ConfigError(
                "need 0 <= off_threshold <= on_threshold <= 1, "
                f"got on={self.on_threshold!r}, off={self.off_threshold!r}"
            )
        for name in ("median_s", "min_duration_s", "max_gap_s"):
            if not 0 <= getattr(self, name) <= MAX_RULE_S:
                raise ConfigError(f"{name} must be between 0 and {MAX_RULE_S:g} s, got {getattr(self, name)!r}")


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """A default :class:`ClassRule` plus per-class overrides (label -> rule)."""

    default: ClassRule = ClassRule()
    per_class: tuple[tuple[str, ClassRule], ...] = field(default_factory=tuple)

    def rule(self, label: str) -> ClassRule:
        """The rule for *label* (its override, else the default)."""
        for name, rule in self.per_class:
            if name == label:
                return rule
        return self.default

    def to_dict(self) -> dict[str, Any]:
        return {
            "default": dataclasses.asdict(self.default),
            "per_class": {name: dataclasses.asdict(rule) for name, rule in self.per_class},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackerConfig:
        data = table(data, "tracker")
        default = from_mapping(ClassRule, data.get("default", {}), where="tracker.default")
        per_class = tuple(
            (name, from_mapping(ClassRule, {**dataclasses.asdict(default), **table(rule, f"tracker.per_class.{name}")},
                                where=f"tracker.per_class.{name}"))
            for name, rule in table(data.get("per_class", {}), "tracker.per_class").items()
        )
        return cls(default=default, per_class=per_class)


def table(value: Any, where: str) -> Mapping[str, Any]:
    """*value* if it is a table (a mapping), else :class:`ConfigError` naming section *where*."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{where}] must be a table of key = value settings, got {value!r}")
    return value


#: What a field of each annotated type takes (bool is an int to Python, but not a number here).
_FIELD_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "float": ("a finite number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "tuple[str, ...]": ("a list of strings", lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)),
}


def from_mapping(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build dataclass *cls* from table *data*, refusing keys it has no field for
    and values of the wrong type (each named with its section, *where*). Values
    the dataclass itself refuses (out of range) are named with *where* when given."""
    section, where = where, where or cls.__name__
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key, value in table(data, where).items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown key {key!r} in [{where}]{hint}; valid keys: {', '.join(fields)}")
        kind, valid = _FIELD_CHECKS.get(fields[key], ("", lambda v: True))
        if not valid(value):
            raise ConfigError(f"{key} in [{where}] must be {kind}, got {value!r}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"invalid [{where}]: {exc}") from None
    except ConfigError as exc:
        if not section:
            raise
        raise ConfigError(f"[{section}] {exc}") from None


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file, with one clear error for a missing or broken file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {str(path)!r} is a directory; give a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not text (TOML is UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


def resolve(base: T, *layers: Mapping[str, Any] | None, where: str = "") -> T:
    """Apply override *layers* to *base*, in order; later layers win.

    The precedence is stated here once: bundle metadata (``base``) < config
    file < CLI flags. ``None`` values in a layer mean "not given". *where*
    names the layers' section in errors (default: the class name).
    """
    result = base
    for layer in layers:
        if not layer:
            continue
        given = {key: value for key, value in table(layer, where or type(base).__name__).items() if value is not None}
        if given:
            merged = {**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)}, **given}  # type: ignore[arg-type]
            result = from_mapping(type(result), merged, where=where)
    return result
