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
def generated(test_bundle, tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("c_array") / "tflm"
    result = CliRunner().invoke(app, ["bridge", "c-array", str(test_bundle), "-o", str(out_dir)])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"wrote {out_dir / 'model_data.h'}, ")
    return out_dir


def test_cli_writes_the_three_files(generated):
    assert sorted(path.name for path in generated.iterdir()) == sorted(C_FILES)


def test_model_array_compiled_with_gpp_gives_back_the_model_bytes(generated, test_bundle):
    need_program("g++")
    assert _compile_and_run(generated, DUMP_MODEL, "model_data.cc") == test_bundle.read_bytes()


def test_model_settings_compiled_with_gpp_match_the_bundle_and_the_mel_filter_bank(generated, test_bundle):
    need_program("g++")
    settings = json.loads(_compile_and_run(generated, DUMP_SETTINGS))
    bundle = read_bundle(test_bundle)
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


def test_export_c_array_writes_the_same_files_as_bridge_c_array(generated, test_bundle, tmp_path):
    out_dir = tmp_path / "via-export"
    result = CliRunner().invoke(app, ["export", str(test_bundle), "--c-array", "-o", str(out_dir)])
    assert result.exit_code == 0, result.output
    for name in C_FILES:
        assert (out_dir / name).read_text() == (generated / name).read_text()


def test_export_c_array_refuses_a_checkpoint(tmp_path):
    checkpoint = tmp_path / "student.pth"
    checkpoint.write_bytes(b"not used")
    result = CliRunner().invoke(app, ["export", str(checkpoint), "--c-array", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: --c-array takes a deployed model (.tflite or .onnx bundle), got {str(checkpoint)!r}; "
        "make one with 'edge-sed quantize ... --tflite'"
    )
