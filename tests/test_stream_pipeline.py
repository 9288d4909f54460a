"""The one loop on real audio and a real ONNX bundle: known onsets, block-size
invariance, hop override, counters, and the sources' conversions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from bundles import write_scene
from threadpoolctl import threadpool_info, threadpool_limits

from edge_sed.backends import OnnxBackend
from edge_sed.config import StreamConfig
from edge_sed.errors import AudioInputError
from edge_sed.events import Event, StreamStatus
from edge_sed.pipeline import FrameWindow, PipelineConfig, run
from edge_sed.sources import BLOCK_FRAMES, UNPACED_BLOCK_S, FileSource, _Conditioner

#: Scene: (label, onset_s, duration_s); onsets are where the clips go in.
PLACEMENTS = [("siren", 2.0, 4.0), ("crying_baby", 8.0, 4.0)]
SCENE_S = 14.0
SCENE_FRAMES = 1401  # 1 + 14 s * 100 frames/s
ONSET_TOLERANCE_S = 0.75
OFFSET_TOLERANCE_S = 1.0


class CollectingSinks:
    """A SinkSet that keeps what it is given (for assertions)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.statuses: list[StreamStatus] = []
        self.closed = 0
        self.failures: dict[str, int] = {}

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def update(self, status: StreamStatus) -> None:
        self.statuses.append(status)

    def close(self) -> None:
        self.closed += 1

    def finished(self) -> list[tuple[str, float, float]]:
        return [(e.label, e.onset, e.offset) for e in self.events if e.offset is not None]


@pytest.fixture(scope="module")
def backend(test_bundle: Path) -> OnnxBackend:
    return OnnxBackend(test_bundle)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("scene") / "scene.wav", PLACEMENTS, SCENE_S)


def _config(backend: OnnxBackend, **stream: float) -> PipelineConfig:
    bundle = backend.bundle
    return PipelineConfig(stream=StreamConfig(**{"window_s": bundle.stream.window_s, "hop_s": bundle.stream.hop_s, **stream}),
                          tracker=bundle.tracker)


def _detect(path: Path, backend: OnnxBackend, **kwargs) -> tuple[CollectingSinks, object]:
    sinks = CollectingSinks()
    block_frames = kwargs.pop("block_frames", 4096)
    source = FileSource(path, backend.bundle.frontend.sample_rate, block_frames=block_frames)
    summary = run([source], backend, sinks, _config(backend, **kwargs))
    return sinks, summary


def test_known_onsets_and_offsets_are_found(scene, backend) -> None:
    sinks, summary = _detect(scene, backend)
    found = sinks.finished()
    assert [label for label, _, _ in found] == ["siren", "crying_baby"]
    for (label, onset, offset), (_, true_onset, duration) in zip(found, PLACEMENTS):
        assert abs(onset - true_onset) <= ONSET_TOLERANCE_S, (label, onset)
        assert abs(offset - (true_onset + duration)) <= OFFSET_TOLERANCE_S, (label, offset)
    # each finished event was announced first as an onset, with the same onset time
    onsets = [(e.label, e.onset) for e in sinks.events if e.offset is None]
    assert onsets == [(label, onset) for label, onset, _ in found]
    assert all(e.file == str(scene) for e in sinks.events)
    # 100 frames/s: first window at frame 100, then every 25
    assert summary.windows == 1 + (SCENE_FRAMES - 101) // 25 == len(sinks.statuses)
    assert summary.events == 2 and summary.seconds == pytest.approx(SCENE_S)
    assert sinks.closed == 1 and not summary.interrupted


@pytest.mark.parametrize("block_frames", [160, 1024, 1280, 16000, 48000])
def test_same_events_whatever_the_block_size(scene, backend, block_frames: int) -> None:
    reference, _ = _detect(scene, backend, block_frames=4096)
    sinks, _ = _detect(scene, backend, block_frames=block_frames)
    assert [(e.label, e.onset, e.offset) for e in sinks.events] == [(e.label, e.onset, e.offset) for e in reference.events]
    np.testing.assert_allclose([e.confidence for e in sinks.events], [e.confidence for e in reference.events], atol=1e-5)
    np.testing.assert_allclose([s.scores for s in sinks.statuses], [s.scores for s in reference.statuses], atol=1e-5)
    assert [s.time_s for s in sinks.statuses] == [s.time_s for s in reference.statuses]


def test_status_carries_time_level_and_scores(scene, backend) -> None:
    sinks, _ = _detect(scene, backend)
    times = [s.time_s for s in sinks.statuses]
    assert times[0] == 1.0 and np.diff(times) == pytest.approx(0.25) and times[-1] == pytest.approx(SCENE_S, abs=0.25)
    siren = backend.bundle.labels.index("siren")
    loud = [s for s in sinks.statuses if 4.0 <= s.time_s <= 6.0]
    quiet = [s for s in sinks.statuses if 1.2 <= s.time_s <= 1.8]
    assert min(s.scores[siren] for s in loud) > 0.5 > max(s.scores[siren] for s in quiet)
    assert max(s.level_dbfs for s in quiet) < min(s.level_dbfs for s in loud) - 6
    assert all("siren" in s.active for s in loud[1:])
    assert all(0 < s.real_time_factor < 1 for s in sinks.statuses)


def test_hop_override_down_to_100_ms(scene, backend) -> None:
    sinks, summary = _detect(scene, backend, hop_s=0.1)
    assert summary.windows == 1 + (SCENE_FRAMES - 101) // 10
    assert [label for label, _, _ in sinks.finished()] == ["siren", "crying_baby"]


def test_duration_limit_closes_open_events_at_the_limit(scene, backend) -> None:
    sinks = CollectingSinks()
    source = FileSource(scene, 16000)
    config = PipelineConfig(stream=backend.bundle.stream, tracker=backend.bundle.tracker, duration_s=4.0)
    summary = run([source], backend, sinks, config)
    assert summary.seconds == pytest.approx(4.0)
    (label, onset, offset), = sinks.finished()
    assert label == "siren" and offset == pytest.approx(4.0)


def test_a_stream_shorter_than_one_window_is_scored_once(tmp_path, backend) -> None:
    path = write_scene(tmp_path / "short.wav", [("siren", 0.0, 0.6)], 0.6)
    sinks, summary = _detect(path, backend)
    assert summary.windows == 1 and len(sinks.statuses) == 1


def test_multichannel_ogg_and_other_rates_are_converted(scene, backend, tmp_path) -> None:
    mono, rate = sf.read(scene, dtype="float32")
    reference = _detect(scene, backend)[0].finished()
    stereo = tmp_path / "stereo.flac"
    sf.write(stereo, np.stack([mono, mono], axis=1), rate)
    assert _detect(stereo, backend)[0].finished() == reference  # down-mixed exactly
    vorbis = tmp_path / "scene.ogg"
    sf.write(vorbis, mono, rate, format="OGG", subtype="VORBIS")
    assert [e[0] for e in _detect(vorbis, backend)[0].finished()] == [e[0] for e in reference]
    resampled = tmp_path / "44k.wav"
    sf.write(resampled, soxr.resample(mono, rate, 44100), 44100, subtype="FLOAT")
    found = _detect(resampled, backend)[0].finished()
    assert [e[0] for e in found] == [e[0] for e in reference]
    assert np.abs(np.array([e[1:] for e in found]) - np.array([e[1:] for e in reference])).max() <= 0.25


def test_input_below_the_model_rate_is_taken_with_a_warning(scene, backend, tmp_path, caplog) -> None:
    mono, rate = sf.read(scene, dtype="float32")
    narrow = tmp_path / "8k.wav"
    sf.write(narrow, soxr.resample(mono, rate, 8000), 8000)
    with caplog.at_level("WARNING", logger="edge_sed.sources"):
        _detect(scene, backend)
        assert not caplog.records
        _, summary = _detect(narrow, backend)
    assert summary.windows > 0
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [f"{narrow} is sampled at 8000 Hz, below the model's 16000 Hz"]
    assert "no sound above 4 kHz" in caplog.records[0].getMessage()


def _blas_threads() -> set[int]:
    return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}


class RecordingBackend:
    """The real backend, noting each call's batch size and numpy's BLAS threads during it."""

    def __init__(self, backend: OnnxBackend) -> None:
        self.backend, self.bundle = backend, backend.bundle
        self.batches: list[int] = []
        self.blas_threads: list[set[int]] = []

    def reset(self) -> None:
        self.backend.reset()

    def score(self, windows: np.ndarray) -> np.ndarray:
        self.batches.append(len(windows))
        self.blas_threads.append(_blas_threads())
        return self.backend.score(windows)


def test_numpy_blas_runs_on_one_thread_during_a_run_and_is_restored_after(scene, backend) -> None:
    """More threads wake on 1 s blocks and spin between hops (11-14 % of a core on 2 cores)."""
    recording = RecordingBackend(backend)
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        source = FileSource(scene, backend.bundle.frontend.sample_rate, block_frames=16000)
        run([source], recording, CollectingSinks(), _config(backend))
        assert _blas_threads() == before == {2}
    assert recording.blas_threads and all(threads == {1} for threads in recording.blas_threads)


@pytest.mark.parametrize(("block_frames", "per_call"), [(4000, 1), (16000, 4), (48000, 12)])
def test_the_windows_one_block_completes_are_scored_in_one_call(scene, backend, block_frames: int, per_call: int) -> None:
    recording = RecordingBackend(backend)
    source = FileSource(scene, backend.bundle.frontend.sample_rate, block_frames=block_frames)
    summary = run([source], recording, CollectingSinks(), _config(backend))
    # a block of 0.25 s completes one 250 ms hop, 1 s four, 3 s twelve; not so the first block (the
    # first window needs 1 s), the last (shorter) and the frames the end of the stream flushes
    assert sum(recording.batches) == summary.windows == 1 + (SCENE_FRAMES - 101) // 25
    assert set(recording.batches[1:-2]) == {per_call}, recording.batches


def test_a_file_read_as_fast_as_possible_comes_in_long_blocks_a_paced_one_in_short(scene, tmp_path) -> None:
    mono, _ = sf.read(scene, dtype="float32")
    sf.write(tmp_path / "scene44k.wav", soxr.resample(mono, 16000, 44100), 44100)
    for path, rate in ((scene, 16000), (tmp_path / "scene44k.wav", 44100)):
        fast, paced = FileSource(path, 16000), FileSource(path, 16000, realtime=True)
        assert (fast.block_frames, paced.block_frames) == (round(UNPACED_BLOCK_S * rate), BLOCK_FRAMES)


def test_a_graph_with_a_fixed_batch_of_one_is_run_window_by_window(backend, test_bundle, tmp_path) -> None:
    import onnx

    model = onnx.load(str(test_bundle))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, str(tmp_path / "batch1.onnx"))
    windows = np.random.default_rng(0).normal(-40, 10, (3, 101, 64)).astype(np.float32)
    fixed = OnnxBackend(tmp_path / "batch1.onnx")
    np.testing.assert_allclose(fixed.score(windows), backend.score(windows), atol=1e-6)
    np.testing.assert_allclose(fixed.score(windows), [backend(window) for window in windows], atol=1e-6)


def test_frame_window_is_the_last_frames_in_order() -> None:
    window = FrameWindow(3, 2, floor_db=-100.0)
    assert (window.window() == -100.0).all()
    for i in range(5):
        window.extend(np.array([[i, -i]], dtype=np.float32))
    np.testing.assert_array_equal(window.window(), [[2, -2], [3, -3], [4, -4]])
    window.extend(np.array([[5, -5], [6, -6]], dtype=np.float32))
    np.testing.assert_array_equal(window.window(), [[4, -4], [5, -5], [6, -6]])
    window.extend(np.arange(10, 18, dtype=np.float32).reshape(4, 2))  # more than the window holds
    np.testing.assert_array_equal(window.window(), [[12, 13], [14, 15], [16, 17]])
    assert window.pushed == 11


def test_live_nonfinite_blocks_become_silence_and_are_counted() -> None:
    counters: Counter[str] = Counter()
    live = _Conditioner("mic", 16000, 16000, live=True, counters=counters)
    block = np.full((160, 2), 0.1, dtype=np.float32)
    block[5, 1] = np.nan
    np.testing.assert_array_equal(live(block), np.zeros(160, dtype=np.float32))
    np.testing.assert_allclose(live(np.full((160, 2), 0.1, np.float32)), 0.1)
    block[5, 1] = 1.0
    live(block)
    assert counters == Counter(nonfinite_blocks=1, clipped_blocks=1)
    with pytest.raises(AudioInputError, match=r"^'f.wav' contains NaN/Inf samples; re-export"):
        _Conditioner("f.wav", 16000, 16000, live=False, counters=Counter())(np.full((4, 1), np.inf, np.float32))


def test_waveform_input_models_get_the_same_stretch_as_the_frames(scene, tmp_path) -> None:
    from bundles import build_loudness_bundle, loudness_score

    backend = OnnxBackend(build_loudness_bundle(tmp_path / "loudness.onnx"))
    samples, _ = sf.read(scene, dtype="float32")
    for block_frames in (1280, 4096, 16000):  # 16000: four windows a block, scored together
        sinks, summary = _detect(scene, backend, block_frames=block_frames)
        assert summary.windows == 1 + (SCENE_FRAMES - 101) // 25
        for status in sinks.statuses:  # the window ends at the status time
            end = round(status.time_s * 16000)
            assert status.scores[0] == pytest.approx(loudness_score(samples[end - 16000 : end]), abs=1e-4)
        (label, onset, offset), *_ = sinks.finished()
        assert label == "loud" and abs(onset - PLACEMENTS[0][1]) <= ONSET_TOLERANCE_S
