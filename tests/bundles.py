"""A real, tiny model bundle for pipeline tests (and the stream benchmark).

A logistic-regression tagger fitted in numpy on log-mel statistics (mean and
max over the frames of a 1 s window) of windows cut from the real fixture clips
in tests/data, written as an ONNX graph (``logmel`` (batch, frames, n_mels) ->
ReduceMean/ReduceMax over frames -> Concat -> Gemm -> Sigmoid -> ``scores``)
with the :class:`~edge_sed.bundle.ModelBundle` JSON in its metadata. It runs
through ``OnnxBackend`` like any shipped model and builds in well under a second.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import soundfile as sf

from edge_sed.bundle import METADATA_KEY, ModelBundle, read_bundle
from edge_sed.config import PANNS_16K, ClassRule, StreamConfig, TrackerConfig
from edge_sed.frontend import LogMel

DATA = Path(__file__).parent / "data"
#: The fixture clips the tagger learns, by label.
LABELS = ("church_bells", "clapping", "crying_baby", "dog", "door_wood_knock", "glass_breaking", "rain", "siren")
FRONTEND = dataclasses.replace(PANNS_16K, fmax=7500.0)
STREAM = StreamConfig(window_s=1.0, hop_s=0.25)
TRACKER = TrackerConfig(default=ClassRule(on_threshold=0.5, off_threshold=0.3, median_s=0.5, min_duration_s=0.25, max_gap_s=0.5))
#: Windows quieter than this (dB below the clip's loudest window) are not positives.
POSITIVE_RANGE_DB = 15.0
STREAM_HOP_FRAMES = round(STREAM.hop_s * FRONTEND.frame_rate)
_BACKGROUND = "background_lincity_ResidentialHigh1.flac"
_OPSET = 17


def clip(label: str) -> np.ndarray:
    """The fixture clip of *label* (or ``"background"``), float32 mono at 16 kHz."""
    name = _BACKGROUND if label == "background" else next(DATA.glob(f"esc50_{label}_*.flac")).name
    samples, rate = sf.read(DATA / name, dtype="float32")
    assert rate == FRONTEND.sample_rate
    return samples


def _features(logmel: LogMel, samples: np.ndarray) -> np.ndarray:
    """Mean and max over the frames of each 1 s window (hop 0.25 s), shape (windows, 2 * n_mels)."""
    frames, hop = FRONTEND.n_frames(FRONTEND.sample_rate), STREAM_HOP_FRAMES
    mels = np.lib.stride_tricks.sliding_window_view(logmel(samples), frames, axis=0)[::hop]
    return np.concatenate([mels.mean(axis=2), mels.max(axis=2)], axis=1)


def _window_rms_db(samples: np.ndarray) -> np.ndarray:
    hop = STREAM_HOP_FRAMES * FRONTEND.hop_length
    windows = np.lib.stride_tricks.sliding_window_view(samples, FRONTEND.sample_rate)[::hop]
    return 10 * np.log10(np.mean(windows**2, axis=1) + 1e-12)


def _training_set(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    logmel = LogMel(FRONTEND)
    background = np.tile(clip("background"), 3)
    xs, ys = [], []
    for gain in (0.0, 0.3, 1.0):  # silence, quiet and full background as negatives
        x = _features(logmel, background * gain + rng.normal(0, 1e-4, background.size).astype(np.float32))
        xs.append(x)
        ys.append(np.zeros((len(x), len(LABELS))))
    for k, label in enumerate(LABELS):
        pad = np.zeros(FRONTEND.sample_rate, dtype=np.float32)  # windows that straddle the clip's edges
        samples = np.concatenate([pad, clip(label), pad])
        loud = _window_rms_db(samples)
        for gain in (0.0, 0.3):
            x = _features(logmel, samples + gain * background[: samples.size])
            n = min(len(x), len(loud))
            target = np.zeros((n, len(LABELS)))
            target[:, k] = loud[:n] > loud.max() - POSITIVE_RANGE_DB
            xs.append(x[:n])
            ys.append(target)
    return np.concatenate(xs), np.concatenate(ys)


def _fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 600, lr: float = 0.5, l2: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest logistic regression by gradient descent on standardised features,
    folded back into weights on the raw features."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    w = np.zeros((x.shape[1], y.shape[1]))
    b = np.zeros(y.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        w -= lr * (z.T @ (p - y) / len(z) + l2 * w)
        b -= lr * (p - y).mean(axis=0)
    return (w / std[:, None]).astype(np.float32), (b - (mean / std) @ w).astype(np.float32)


def bundle_metadata() -> ModelBundle:
    """The test bundle's metadata."""
    return ModelBundle(
        name="test-logreg-16k", labels=LABELS, frontend=FRONTEND, stream=STREAM, tracker=TRACKER,
        architecture="logistic regression on log-mel mean+max", provenance={"data": "tests/data fixture clips"},
    )


def build_bundle(path: str | Path, seed: int = 0) -> Path:
    """Fit the tagger and write it as an ONNX model bundle at *path*."""
    from onnx import helper

    weights, bias = _fit_logistic(*_training_set(np.random.default_rng(seed)))
    bundle = bundle_metadata()
    nodes = [
        helper.make_node("ReduceMean", ["logmel"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("ReduceMax", ["logmel"], ["max"], axes=[1], keepdims=0),
        helper.make_node("Concat", ["mean", "max"], ["stats"], axis=1),
        helper.make_node("Gemm", ["stats", "W", "B"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scores"]),
    ]
    return _save_onnx(path, bundle, nodes, ["batch", bundle.window_frames, FRONTEND.n_mels], {"W": weights, "B": bias})


#: The fixture classes' AudioSet display names, in LABELS' order.
AUDIOSET_NAMES = ("Church bell", "Clapping", "Baby cry, infant cry", "Dog", "Knock", "Shatter", "Rain", "Siren")


def build_audioset_bundle(path: str | Path) -> Path:
    """The fixture tagger relabelled with AudioSet display names (same graph, same weights)."""
    import onnx

    path = build_bundle(path)
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = dataclasses.replace(read_bundle(path), labels=AUDIOSET_NAMES).to_json()
    onnx.save(model, str(path))
    return path


#: The loudness model's score is 0.5 at this mean square (about -25 dBFS) ...
LOUD_MEAN_SQUARE = 0.003
#: ... and moves by this much per unit of natural log of the mean square.
LOUD_SLOPE = 4.0


def loudness_score(window: np.ndarray) -> float:
    """What the waveform bundle computes for one window, in numpy."""
    mean_square = float(np.mean(window.astype(np.float64) ** 2)) + 1e-10
    return float(1 / (1 + np.exp(-LOUD_SLOPE * (np.log(mean_square) - np.log(LOUD_MEAN_SQUARE)))))


def build_loudness_bundle(path: str | Path) -> Path:
    """A waveform-input bundle (front end in the graph): one class, ``loud``, from the
    window's mean square. Checks that waveform windows line up with the frame clock."""
    from onnx import helper

    bundle = dataclasses.replace(bundle_metadata(), name="test-loudness-16k", labels=("loud",), input="waveform")
    nodes = [
        helper.make_node("Mul", ["waveform", "waveform"], ["squares"]),
        helper.make_node("ReduceMean", ["squares"], ["mean_square"], axes=[1], keepdims=1),
        helper.make_node("Add", ["mean_square", "eps"], ["floored"]),
        helper.make_node("Log", ["floored"], ["log_ms"]),
        helper.make_node("Sub", ["log_ms", "log_ref"], ["centred"]),
        helper.make_node("Mul", ["centred", "slope"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scores"]),
    ]
    constants = {"eps": np.float32(1e-10), "log_ref": np.float32(np.log(LOUD_MEAN_SQUARE)), "slope": np.float32(LOUD_SLOPE)}
    return _save_onnx(path, bundle, nodes, ["batch", bundle.window_samples], constants)


def _save_onnx(path: str | Path, bundle: ModelBundle, nodes: list, input_shape: list, constants: dict) -> Path:
    """Write *nodes* as an ONNX graph from input ``bundle.input`` to ``scores``, with the bundle's metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, bundle.name,
        [helper.make_tensor_value_info(bundle.input, TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", len(bundle.labels)])],
        initializer=[numpy_helper.from_array(np.asarray(value), name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: bundle.to_json()})
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


#: Gain of each fixture clip placed into a scene (keeps the mix below full scale).
SCENE_CLIP_GAIN = 0.6
#: Gain of the background under a scene.
SCENE_BACKGROUND_GAIN = 0.3
#: Fade in and out of each placed clip.
SCENE_FADE_S = 0.05


def write_scene(path: str | Path, placements: list[tuple[str, float, float]], total_s: float) -> Path:
    """A test recording: fixture clips placed into quiet background at known times.

    Parameters
    ----------
    placements : list of (label, onset_s, duration_s)
        Each clip's first *duration_s* seconds go in at *onset_s*.
    total_s : float
        Length of the recording; written as 16 kHz mono 16-bit WAV (or FLAC by suffix).
    """
    rate = FRONTEND.sample_rate
    n = round(total_s * rate)
    background = clip("background")
    scene = np.tile(background, n // background.size + 1)[:n] * SCENE_BACKGROUND_GAIN
    for label, onset_s, duration_s in placements:
        start, samples = round(onset_s * rate), clip(label)[: round(duration_s * rate)].copy()
        fade = np.sin(np.linspace(0, np.pi / 2, round(SCENE_FADE_S * rate))) ** 2  # no clicks at the cuts
        samples[: fade.size] *= fade
        samples[-fade.size :] *= fade[::-1]
        scene[start : start + samples.size] += SCENE_CLIP_GAIN * samples
    sf.write(str(path), scene, rate, subtype="PCM_16")
    return Path(path)
