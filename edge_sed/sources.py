"""Where audio comes from: a microphone, an audio file, or raw PCM on stdin.

Every source is an iterable of float32 mono blocks, shape (n,), at the model's
``sample_rate``: it down-mixes, checks and resamples (soxr) what it reads.
Expected trouble is counted in ``source.counters`` (``overruns``,
``clipped_blocks``, ``nonfinite_blocks``); a live source replaces a block with
NaN/Inf samples by silence, a file with NaN/Inf samples is an error.

- :class:`MicSource`: sounddevice/PortAudio, at the model's rate where the
  device takes it; the callback only copies into a
  :class:`~edge_sed.ringbuffer.RingBuffer`.
- :class:`FileSource`: soundfile (WAV, FLAC, OGG), as fast as possible or paced
  in real time.
- :class:`StdinSource`: raw 16-bit little-endian PCM.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Protocol

import numpy as np
import soundfile as sf
import soxr

from edge_sed.audio import CLIP_LEVEL, INT16_FULL_SCALE, RESAMPLE_QUALITY, narrow_band_note, open_sound_file, to_mono
from edge_sed.errors import AudioInputError, ConfigError
from edge_sed.ringbuffer import RingBuffer

__all__ = [
    "Source",
    "MicSource",
    "FileSource",
    "StdinSource",
    "list_input_devices",
    "input_settings",
    "import_sounddevice",
    "BLOCK_FRAMES",
    "DEFAULT_WAKE_S",
    "UNPACED_BLOCK_S",
    "MAX_BLOCK_S",
    "wake_block_s",
]

log = logging.getLogger(__name__)

#: Frames read from stdin or a paced file per block (at the input's own rate).
BLOCK_FRAMES = 4096
#: Seconds read per block from a file taken as fast as possible: the hops a block completes are
#: scored in one backend call, and 4 s blocks ran ``detect`` 1.45x faster than 4096 frames
#: (shipped model, 250 ms hop, one thread).
UNPACED_BLOCK_S = 4.0
#: Seconds of audio the microphone ring buffer holds.
MIC_BUFFER_S = 4.0
#: Default seconds of microphone audio per PortAudio callback and per block the consumer takes (it
#: sleeps until a block is there); ``listen`` uses its hop, as no window is due before a hop is in.
#: Small blocks cost wake-ups: with PortAudio's default block size and a consumer polling every
#: 10 ms, listen took 5.5 % of a core, with 0.1 s blocks 2.1 % (PulseAudio).
MIC_BLOCK_S = 0.1
#: Seconds :meth:`MicSource.open` waits for the first block, beyond the block's own length.
FIRST_BLOCK_TIMEOUT_S = 10.0
#: Seconds without a sample from a running device, beyond a block's length, after which
#: :class:`MicSource` gives up: a device suspended, taken over or gone while PortAudio still
#: reports its stream active would otherwise leave ``listen`` waiting for ever, silently.
STALL_TIMEOUT_S = 5.0
#: Longest block ``listen --block`` takes per wake-up: half of what the microphone's ring holds.
MAX_BLOCK_S = MIC_BUFFER_S / 2
#: Seconds between ``listen``'s wake-ups by default, at least: its block is the fewest whole hops
#: lasting this long (two at a 250 ms hop). Waking is most of what a listener costs on a machine
#: that pays for it: 0.76-0.90 % of a core live against 1.09-1.48 % with one hop per wake-up, for
#: events reported up to one hop later (``bench stream``, README).
DEFAULT_WAKE_S = 0.5
#: Bytes per sample of raw PCM on stdin (16-bit little-endian).
PCM_SAMPLE_BYTES = 2
#: The input rates taken (Hz): below 1 kHz no sound event survives; 768 kHz is the fastest audio interfaces.
MIN_RATE, MAX_RATE = 1000, 768000


class Source(Protocol):
    """What the pipeline needs from a source."""

    name: str
    sample_rate: int
    live: bool  # NaN/Inf blocks become counted silence (else they are an error)
    paced: bool  # blocks arrive in real time (events then carry wall-clock stamps); optional, default: live
    file: str | None
    counters: Counter[str]

    def __iter__(self) -> Iterator[np.ndarray]: ...

    def close(self) -> None: ...


def wake_block_s(hop_s: float, block_s: float | None = None) -> float:
    """Seconds of audio a paced source delivers per wake-up: *block_s*, else the fewest whole
    hops lasting at least :data:`DEFAULT_WAKE_S` (the hop itself from a 500 ms hop up).

    Larger blocks wake the process less often (less CPU and power where waking
    up costs) and report events up to ``block_s - hop_s`` later; event times are
    unchanged. A block is at least the hop (smaller ones only add wake-ups) and
    at most :data:`MAX_BLOCK_S`.
    """
    if block_s is None:
        return hop_s * max(1, math.ceil(DEFAULT_WAKE_S / hop_s - 1e-9))
    if not hop_s - 1e-9 <= block_s <= MAX_BLOCK_S:
        raise ConfigError(f"--block must be between the hop ({hop_s:g} s) and {MAX_BLOCK_S:g} s, got {block_s:g}")
    return block_s


class _Conditioner:
    """Raw frames (n, channels) at *in_rate* -> checked mono float32 at *out_rate*.

    Input slower than the model's rate is taken, with a warning: resampling up adds
    no sound above ``in_rate / 2``, and a model trained on full-band audio may
    read the empty band as a cue (the shipped default model takes sound band-limited
    at 4 kHz for speech).
    """

    def __init__(self, name: str, in_rate: int, out_rate: int, *, live: bool, counters: Counter[str]) -> None:
        self.name, self.live, self.counters = name, live, counters
        if in_rate < out_rate:
            log.warning("%s is sampled at %d Hz, below the model's %d Hz: %s", name, in_rate, out_rate,
                        narrow_band_note(in_rate, out_rate))
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(
            in_rate, out_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
        )

    def __call__(self, frames: np.ndarray, last: bool = False) -> np.ndarray:
        mono = to_mono(frames)
        if not np.isfinite(mono).all():
            if not self.live:
                raise AudioInputError(
                    f"{self.name!r} contains NaN/Inf samples; re-export it as finite PCM or float audio"
                )
            self.counters["nonfinite_blocks"] += 1
            mono = np.zeros_like(mono)
        if mono.size and np.abs(frames).max() >= CLIP_LEVEL:
            self.counters["clipped_blocks"] += 1
            mono = np.clip(mono, -1.0, 1.0)  # float audio past full scale is cut there, as a converter would (1e30 overflowed the front end)
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono, last=last)


# --- microphone ---------------------------------------------------------------------------


def import_sounddevice() -> Any:
    """Import sounddevice, or raise one line saying how to install what is missing."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        raise AudioInputError(
            f"the PortAudio library is not installed ({exc}); install it with: apt-get install libportaudio2"
        ) from None
    except ImportError:
        raise AudioInputError("the sounddevice package is not installed; pip install sounddevice") from None
    return sounddevice


def list_input_devices() -> list[dict[str, Any]]:
    """The input devices: dicts with ``index``, ``name``, ``default_samplerate``,
    ``max_input_channels`` and ``is_default``."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        default = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise AudioInputError(f"cannot list audio devices: {exc}") from None
    return [
        {**dict(device), "is_default": device["index"] == default}
        for device in devices
        if device["max_input_channels"] > 0
    ]


def _describe(devices: list[dict[str, Any]]) -> str:
    if not devices:
        return "no input devices found (is a sound card or PulseAudio available?)"
    return "input devices: " + ", ".join(
        f"[{d['index']}] {d['name']} ({d['default_samplerate']:g} Hz)" for d in devices
    )


def _find_device(query: int | str | None, devices: list[dict[str, Any]]) -> dict[str, Any]:
    """The input device *query* names: an index, a name substring, or None (the default)."""
    if query is None or query == "":
        chosen = [d for d in devices if d["is_default"]] or devices[:1]
        if not chosen:
            raise AudioInputError(_describe(devices))
        return chosen[0]
    text = str(query).strip()
    if text.lstrip("-").isdigit():
        matches = [d for d in devices if d["index"] == int(text)]
        if not matches:
            raise AudioInputError(f"no input device with index {int(text)}; {_describe(devices)}")
        return matches[0]
    matches = [d for d in devices if text.lower() in d["name"].lower()]
    exact = [d for d in matches if d["name"].lower() == text.lower()]
    if len(exact) == 1:
        return exact[0]
    if not matches:
        raise AudioInputError(f"no input device matching {text!r}; {_describe(devices)}")
    if len(matches) > 1:
        raise AudioInputError(f"several input devices match {text!r}; pick one by index: {_describe(matches)}")
    return matches[0]


def input_settings(device: dict[str, Any], sample_rate: int, device_rate: int | None = None) -> tuple[int, int]:
    """The (rate, channels) :class:`MicSource` opens *device* with: the first the device takes of
    *sample_rate* (or *device_rate*, when given) then its default rate, each in mono then with up
    to two channels; the last of these when it takes none (opening then names the problem)."""
    sd = import_sounddevice()
    most_channels = max(1, min(int(device["max_input_channels"]), 2))
    rates = [device_rate] if device_rate else [sample_rate, int(device["default_samplerate"])]
    candidates = [(rate, channels) for rate in dict.fromkeys(rates) for channels in dict.fromkeys((1, most_channels))]
    for rate, channels in candidates:
        try:
            sd.check_input_settings(device=device["index"], samplerate=rate, channels=channels, dtype="float32")
        except (sd.PortAudioError, ValueError):
            continue
        return rate, channels
    return candidates[-1]


class MicSource:
    """Live audio from an input device through sounddevice/PortAudio.

    Parameters
    ----------
    sample_rate : int
        The model's rate. The device is opened at it, in mono, where the device
        takes that (nothing to resample or down-mix here); else at its own
        default rate, and resampled.
    device : int or str or None
        Index, name substring, or None for the default input.
    device_rate : int or None
        Open the device at this rate instead (e.g. its native 48000 Hz, to
        resample with soxr rather than in the audio host).
    block_s : float
        Seconds per PortAudio callback and per block yielded.
    buffer_s : float
        Seconds of audio the ring buffer holds; when the consumer falls further
        behind, the newest samples are dropped and counted as overruns.
    """

    live = paced = True
    file = None

    def __init__(self, sample_rate: int, device: int | str | None = None, *, device_rate: int | None = None,
                 block_s: float = MIC_BLOCK_S, buffer_s: float = MIC_BUFFER_S) -> None:
        if device_rate is not None and not MIN_RATE <= device_rate <= MAX_RATE:
            raise ConfigError(f"--device-rate must be between {MIN_RATE} and {MAX_RATE} Hz, got {device_rate!r}")
        self._sd = import_sounddevice()
        self.device = _find_device(device, list_input_devices())
        self.sample_rate = sample_rate
        self.device_rate, self.channels = input_settings(self.device, sample_rate, device_rate)
        self.name = f"[{self.device['index']}] {self.device['name']}"
        self.counters: Counter[str] = Counter()
        self.ring = RingBuffer(max(1, round(buffer_s * self.device_rate)), self.channels)
        self.block_frames = max(1, round(block_s * self.device_rate))
        self._flags = {"input_overflow": 0}
        self._conditioner = _Conditioner(self.name, self.device_rate, sample_rate, live=True, counters=self.counters)
        self._stream: Any = None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio's thread: copy and count only (no allocation, no blocking, no raising).
        if status.input_overflow:
            self._flags["input_overflow"] += 1
        self.ring.write(indata)

    def open(self) -> None:
        """Start the PortAudio input stream; return once its first block is in.

        PortAudio's start returns before the device delivers: through ALSA's pulse
        plugin the first sound comes 1-1.8 s later, and sound made in between is
        never delivered. So "listening" holds from when this returns.
        """
        try:
            self._stream = self._sd.InputStream(
                device=self.device["index"], samplerate=self.device_rate, channels=self.channels,
                dtype="float32", callback=self._callback, blocksize=self.block_frames,
                latency="high",  # the host's larger buffers: fewer wake-ups; detection needs no low latency
            )
            self._stream.start()
        except (self._sd.PortAudioError, ValueError) as exc:
            raise AudioInputError(f"cannot open input device {self.name} at {self.device_rate} Hz: {exc}") from None
        self._wait_for_first_block()
        log.info("listening on %s at %d Hz, %d channel(s)", self.name, self.device_rate, self.channels)

    def _wait_for_first_block(self) -> None:
        wait_s = FIRST_BLOCK_TIMEOUT_S + self.block_frames / self.device_rate
        deadline = time.monotonic() + wait_s
        try:
            while not self.ring.available:
                if not self._stream.active:
                    raise AudioInputError(f"input device {self.name} stopped before delivering audio (unplugged?)")
                if time.monotonic() > deadline:
                    raise AudioInputError(f"input device {self.name} delivered no audio within {wait_s:g} s "
                                          "of starting; is another program holding it?")
                time.sleep(0.01)
        except BaseException:  # an error or Ctrl-C while waiting: leave no stream running
            self.close()
            raise

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._stream is None:
            self.open()
        wanted = min(self.block_frames, self.ring.capacity)  # a ring smaller than a block is read when full
        stall_s = STALL_TIMEOUT_S + wanted / self.device_rate
        seen, since = self.ring.available, time.monotonic()  # frames waiting, and since when no more came
        while True:
            available = self.ring.available
            missing = wanted - available
            if missing > 0:
                if not self._stream.active:
                    raise AudioInputError(f"input device {self.name} stopped delivering audio (unplugged?)")
                if available != seen:
                    seen, since = available, time.monotonic()
                elif time.monotonic() - since > stall_s:
                    raise AudioInputError(f"input device {self.name} delivered no audio for {stall_s:g} s "
                                          "(unplugged, suspended, or taken by another program?)")
                time.sleep(missing / self.device_rate)
                continue
            frames = self.ring.read()
            seen, since = 0, time.monotonic()
            self.counters["overruns"] = self.ring.overruns + self._flags["input_overflow"]
            yield self._conditioner(frames)

    def close(self) -> None:
        """Stop and close the stream."""
        if self._stream is not None:
            self._stream.abort()
            self._stream.close()
            self._stream = None


# --- files and stdin ----------------------------------------------------------------------


class FileSource:
    """An audio file (WAV, FLAC, OGG) read block by block.

    Parameters
    ----------
    path : str or Path
    sample_rate : int
        The model's rate (the file is resampled to it).
    realtime : bool
        Pace the blocks at the file's real duration (as a microphone would).
    block_frames : int or None
        Frames read per block, at the file's own rate (default: :data:`BLOCK_FRAMES` when
        paced, else :data:`UNPACED_BLOCK_S` seconds).
    block_s : float or None
        Seconds per block instead of *block_frames* (as a microphone's blocks, see
        :func:`wake_block_s`).
    """

    live = False

    def __init__(self, path: str | Path, sample_rate: int, *, realtime: bool = False, block_frames: int | None = None,
                 block_s: float | None = None) -> None:
        self.path = Path(path)
        self._handle = open_sound_file(self.path)
        self.name = self.file = str(self.path)
        self.sample_rate = sample_rate
        self.file_rate = self._handle.samplerate
        if not MIN_RATE <= self.file_rate <= MAX_RATE:
            self._handle.close()
            raise AudioInputError(f"{self.name!r} is sampled at {self.file_rate} Hz; audio between {MIN_RATE} and {MAX_RATE} Hz is taken")
        self.paced = realtime
        if block_s is not None:
            block_frames = max(1, round(block_s * self.file_rate))
        elif block_frames is None:
            block_frames = BLOCK_FRAMES if realtime else round(UNPACED_BLOCK_S * self.file_rate)
        self.block_frames = block_frames
        self.counters: Counter[str] = Counter()
        self._conditioner = _Conditioner(self.name, self.file_rate, sample_rate, live=False, counters=self.counters)

    def __iter__(self) -> Iterator[np.ndarray]:
        start, done = time.monotonic(), 0
        while True:
            try:
                frames = self._handle.read(self.block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioInputError(f"cannot read {self.name!r} past {done / self.file_rate:.2f} s ({exc})") from None
            last = len(frames) < self.block_frames
            done += len(frames)
            if self.paced:  # released when its last sample would have arrived from a microphone
                time.sleep(max(0.0, start + done / self.file_rate - time.monotonic()))
            block = self._conditioner(frames, last=last)
            if block.size:
                yield block
            if last:
                return

    def close(self) -> None:
        self._handle.close()


class StdinSource:
    """Raw 16-bit little-endian PCM, interleaved channels, from a binary stream.

    Parameters
    ----------
    sample_rate : int
        The model's rate.
    rate : int
        The PCM's rate (resampled to *sample_rate*).
    channels : int
        Interleaved channels in the PCM (down-mixed).
    stream : binary file, optional
        Where to read (``sys.stdin.buffer`` by default).
    """

    live = paced = True
    file = None

    def __init__(self, sample_rate: int, *, rate: int, channels: int = 1, stream: BinaryIO | None = None,
                 block_frames: int = BLOCK_FRAMES) -> None:
        if not MIN_RATE <= rate <= MAX_RATE or channels <= 0:
            raise ConfigError(f"raw PCM needs --rate between {MIN_RATE} and {MAX_RATE} Hz and a positive --channels, "
                              f"got {rate!r}, {channels!r}")
        if stream is None:
            import sys

            stream = sys.stdin.buffer
        self.stream = stream
        self.name = "stdin"
        self.sample_rate, self.pcm_rate, self.channels = sample_rate, rate, channels
        self.block_bytes = block_frames * channels * PCM_SAMPLE_BYTES
        self.counters: Counter[str] = Counter()
        self._conditioner = _Conditioner(self.name, rate, sample_rate, live=True, counters=self.counters)

    def __iter__(self) -> Iterator[np.ndarray]:
        frame_bytes = self.channels * PCM_SAMPLE_BYTES
        total = 0
        while True:
            data = self.stream.read(self.block_bytes)
            total += len(data)
            if total == 0:
                raise AudioInputError("stdin ended before any audio arrived; pipe raw 16-bit little-endian PCM into it")
            whole = len(data) - len(data) % frame_bytes
            pcm = np.frombuffer(data[:whole], dtype="<i2").reshape(-1, self.channels)
            block = self._conditioner(pcm.astype(np.float32) / INT16_FULL_SCALE, last=len(data) < self.block_bytes)
            if block.size:
                yield block  # the whole frames, even before stray bytes
            if len(data) < self.block_bytes and whole != len(data):
                raise AudioInputError(
                    f"stdin ended with {len(data) - whole} stray byte(s) after {total - len(data) + whole} bytes; "
                    f"raw PCM must be 16-bit little-endian with {self.channels} channel(s) "
                    f"({frame_bytes} bytes per frame)"
                )
            if len(data) < self.block_bytes:
                return

    def close(self) -> None:
        """Nothing to release (stdin belongs to the process)."""
