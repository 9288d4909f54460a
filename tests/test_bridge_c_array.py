"""``edge-sed bridge c-array``: the model's bytes and settings as C++, compiled with g++ and read back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import need_program
from typer.testing import CliRunner

from edge_sed.bundle import read_bundle
from edge_sed.cli import app
from edge_sed.frontend import mel_filterbank
from firmware_bridge.c_array import C_FILES, MODEL_ALIGNMENT

CXX_FLAGS = ("-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic")

DUMP_MODEL = r"""
#include <cstdint>
#include <cstdio>
#include "model_data.h"
int main() {
    if (reinterpret_cast<std::uintptr_t>(g_model_data) % ALIGNMENT != 0) return 3;
    return std::fwrite(g_model_data, 1, g_model_data_len, stdout) == g_model_data_len ? 0 : 2;
}
"""

DUMP_SETTINGS = r"""
#include <cstdio>
#include "model_settings.h"
using namespace edge_sed;
int main() {
    std::printf("{\"sample_rate\": %d, \"n_fft\": %d, \"hop_length\": %d, \"n_mels\": %d, \"fmax\": %.9g, ",
                kSampleRate, kNFft, kHopLength, kNMels, kFMax);
    std::printf("\"window_samples\": %d, \"window_frames\": %d, \"hop_samples\": %d, \"labels\": [",
                kWindowSamples, kWindowFrames, kHopSamples);
    for (int c = 0; c < kNumClasses; ++c) std::printf("%s\"%s\"", c ? ", " : "", kLabels[c]);
    std::printf("], \"on\": [");
    for (int c = 0; c < kNumClasses; ++c) std::printf("%s%.9g", c ? ", " : "", kOnThresholds[c]);
    std::printf("], \"mel\": [");
    for (int f = 0; f < kNFreqs; ++f) {
        for (int m = 0; m < kNMels; ++m) {
            int i = f - kMelFirstBin[m];
            float w = (i >= 0 && i < kMelBinCount[m]) ? kMelWeights[kMelWeightOffset[m] + i] : 0.0f;
            std::printf("%s%.9g", (f || m) ? ", " : "", w);
        }
    }
    std::printf("]}\n");
    return 0;
}
"""


def _compile_and_run(out_dir: Path, main: str, *sources: str) -> bytes:
    (out_dir / "main.cc").write_text(main)
    binary = out_dir / "main"
    subprocess.run(["g++", *CXX_FLAGS, f"-DALIGNMENT={MODEL_ALIGNMENT}", f"-I{out_dir}", "-o", str(binary),
                    str(out_dir / "main.cc"), *(str(out_dir / s) for s in sources)], check=True, capture_output=True)
    return subprocess.run([str(binary)], check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def tflite_model(test_bundle, tmp_path_factory) -> Path:
    """A real TFLite model of the test bundle's window shape and labels (its weights do not matter
    here), converted by litert-torch, with the test bundle's metadata as its sidecar."""
    torch = pytest.importorskip("torch", reason="the TFLite fixture is converted from torch (the [train] extra)")
    litert_torch = pytest.importorskip("litert_torch", reason="TFLite export needs litert-torch: pip install 'edge-sed[tflite-export]'")
    from edge_sed.bundle import sidecar_path

    bundle = read_bundle(test_bundle)
    shape = (1, bundle.window_frames, bundle.frontend.n_mels)
    tagger = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(shape[1] * shape[2], len(bundle.labels)), torch.nn.Sigmoid())
    path = tmp_path_factory.mktemp("tflite") / "test-tagger.tflite"
    litert_torch.convert(tagger.eval(), (torch.zeros(shape),)).export(str(path))
    sidecar_path(path).write_text(bundle.to_json(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def generated(tflite_model, tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("c_array") / "tflm"
    result = CliRunner().invoke(app, ["bridge", "c-array", str(tflite_model), "-o", str(out_dir)])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"wrote {out_dir / 'model_data.h'}, ")
    return out_dir


def test_cli_writes_the_three_files(generated):
    assert sorted(path.name for path in generated.iterdir()) == sorted(C_FILES)


def test_model_array_compiled_with_gpp_gives_back_the_model_bytes(generated, tflite_model):
    need_program("g++")
    assert _compile_and_run(generated, DUMP_MODEL, "model_data.cc") == tflite_model.read_bytes()


def test_model_settings_compiled_with_gpp_match_the_bundle_and_the_mel_filter_bank(generated, tflite_model):
    need_program("g++")
    settings = json.loads(_compile_and_run(generated, DUMP_SETTINGS))
    bundle = read_bundle(tflite_model)
    fe = bundle.frontend
    assert (settings["sample_rate"], settings["n_fft"], settings["hop_length"], settings["n_mels"]) == (
        fe.sample_rate, fe.n_fft, fe.hop_length, fe.n_mels)
    assert settings["fmax"] == fe.fmax
    assert (settings["window_samples"], settings["window_frames"], settings["hop_samples"]) == (
        bundle.window_samples, bundle.window_frames, round(bundle.stream.hop_s * fe.sample_rate))
    assert tuple(settings["labels"]) == bundle.labels
    assert settings["on"] == [np.float32(bundle.tracker.rule(label).on_threshold) for label in bundle.labels]
    mel = np.array(settings["mel"], dtype=np.float32).reshape(fe.n_freqs, fe.n_mels)
    np.testing.assert_array_equal(mel, mel_filterbank(fe))


def test_missing_model_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["bridge", "c-array", str(tmp_path / "absent.tflite"), "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: model file {str(tmp_path / 'absent.tflite')!r} does not exist"


def test_export_c_array_writes_the_same_files_as_bridge_c_array(generated, tflite_model, tmp_path):
    out_dir = tmp_path / "via-export"
    result = CliRunner().invoke(app, ["export", str(tflite_model), "--c-array", "-o", str(out_dir)])
    assert result.exit_code == 0, result.output
    for name in C_FILES:
        assert (out_dir / name).read_text() == (generated / name).read_text()


def test_export_c_array_refuses_a_checkpoint(tmp_path):
    checkpoint = tmp_path / "student.pth"
    checkpoint.write_bytes(b"not used")
    result = CliRunner().invoke(app, ["export", str(checkpoint), "--c-array", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: --c-array takes a TFLite model (.tflite, for TFLite Micro), got {str(checkpoint)!r}; "
        "make one with 'edge-sed quantize ... --tflite'"
    )


def test_a_model_that_is_not_tflite_is_refused_and_nothing_is_written(test_bundle, tmp_path):
    """An ONNX bundle (or any other bytes) in g_model_data would fail only on the microcontroller."""
    from edge_sed.bundle import sidecar_path

    fake = tmp_path / "notes.tflite"
    fake.write_text("not a model\n")
    sidecar_path(fake).write_text(read_bundle(test_bundle).to_json(), encoding="utf-8")
    for model in (test_bundle, fake):
        result = CliRunner().invoke(app, ["bridge", "c-array", str(model), "-o", str(tmp_path / "out")])
        assert result.exit_code == 1
        assert result.stderr.strip() == (f"error: {str(model)!r} is not a TFLite model (its bytes 4-8 are not TFL3); "
                                         "TFLite Micro runs int8 .tflite files: make one with 'edge-sed quantize --tflite'")
    assert not (tmp_path / "out").exists()


def test_a_failed_write_leaves_the_previous_files(generated, tflite_model, tmp_path):
    """A folder where model_settings.h goes: the error names it, and the other two files keep their old text."""
    import shutil

    out_dir = tmp_path / "tflm"
    shutil.copytree(generated, out_dir)
    (out_dir / "model_data.cc").write_text("// the previous model\n")
    (out_dir / "model_settings.h").unlink()
    (out_dir / "model_settings.h").mkdir()
    result = CliRunner().invoke(app, ["bridge", "c-array", str(tflite_model), "-o", str(out_dir)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: Is a directory: {str(out_dir / 'model_settings.h')!r}"
    assert (out_dir / "model_data.cc").read_text() == "// the previous model\n"
    assert not list(out_dir.glob(".*.part"))
