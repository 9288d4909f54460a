"""The training loop end to end on four fixture clips: teacher, cached teacher logits,
distilled student, resume, evaluate, the CLI's one-line config errors and a 2-process DDP run."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edge_sed.cli import app
from edge_sed.errors import ConfigError
from edge_sed.train.distill import TeacherLogits, distillation_loss
from edge_sed.train.loop import load_recipe, train

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ("dog", "rain", "siren", "clapping")


@pytest.fixture()
def tiny_recipe(tmp_path: Path, data_dir: Path) -> Path:
    """A recipe over 4 fixture clips (2 folds): MobileNetV1, 1 s crops, 2 steps of 2 clips."""
    rows = [f"{next(data_dir.glob(f'esc50_{name}_*.flac'))},{name},{k % 2 + 1}" for k, name in enumerate(CLIPS)]
    (tmp_path / "metadata.csv").write_text("filename,label,fold\n" + "\n".join(rows) + "\n", encoding="utf-8")
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(
        f"""
[model]
architecture = "mobilenet_v1"
[frontend]
sample_rate = 16000
n_fft = 512
hop_length = 160
n_mels = 64
fmin = 50.0
fmax = 7500.0
[data]
kind = "csv"
root = "{tmp_path}"
cache_dir = "{tmp_path / 'cache'}"
val_fold = 0
crop_s = 1.0
[augment]
background_dir = "{data_dir}"
background_prob = 0.5
reverb_prob = 0.5
[train]
out_dir = "{tmp_path / 'teacher'}"
epochs = 1
batch_size = 2
eval_batch_size = 4
steps_per_epoch = 2
warmup_steps = 1
threads = 1
tensorboard = false
bn_recalibration_batches = 1
""",
        encoding="utf-8",
    )
    return recipe


def test_distillation_loss_matches_a_hand_computation() -> None:
    logits = torch.tensor([[2.0, -1.0]])
    labels = torch.tensor([[1.0, 0.0]])
    teacher = torch.tensor([[1.0, 0.5]])
    temperature, kd_lambda = 2.0, 0.25
    soft = torch.sigmoid(teacher / temperature)

    def bce(z: float, y: float) -> float:
        p = 1 / (1 + math.exp(-z))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    label_part = (bce(2.0, 1.0) + bce(-1.0, 0.0)) / 2
    soft_part = (bce(1.0, float(soft[0, 0])) + bce(-0.5, float(soft[0, 1]))) / 2
    loss = distillation_loss(logits, labels, soft, torch.ones(1), kd_lambda=kd_lambda, temperature=temperature)
    assert float(loss) == pytest.approx(kd_lambda * label_part + (1 - kd_lambda) * soft_part, rel=1e-6)
    unweighted = distillation_loss(logits, labels, soft, torch.zeros(1), kd_lambda=kd_lambda, temperature=temperature)
    assert float(unweighted) == pytest.approx(kd_lambda * label_part, rel=1e-6)
    assert float(distillation_loss(logits, labels, None, None, kd_lambda=0.1, temperature=1.0)) == pytest.approx(label_part)


def test_teacher_logits_lookup_by_key_and_crop(tmp_path: Path) -> None:
    cache = TeacherLogits(
        np.arange(10, dtype=np.float32).reshape(5, 2), ("a", "b"), np.array([0, 3]), np.array([3, 2]), {"crop_s": 1.0}
    )
    cache.save(tmp_path)
    loaded = TeacherLogits.load(tmp_path)
    clips = loaded.rows_for(["b", "a", "zz", "b"])
    assert clips.tolist() == [1, 0, -1, 1]
    logits, weight = loaded.lookup(clips, np.array([1, 2, 0, 9]))
    assert logits.tolist() == [[8, 9], [4, 5], [0, 0], [8, 9]]
    assert weight.tolist() == [1, 1, 0, 1]


def test_tiny_teacher_then_student_end_to_end(tiny_recipe: Path, tmp_path: Path) -> None:
    from edge_sed.models.checkpoint import load_checkpoint

    recipe = load_recipe(tiny_recipe)
    teacher = train(recipe)
    assert math.isfinite(teacher.history[0]["train_loss"])
    assert teacher.history[0]["val_accuracy"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    raw = torch.load(teacher.best_checkpoint, weights_only=True)
    assert raw["labels"] == ["clapping", "dog", "rain", "siren"]
    assert raw["train_config"]["model"]["architecture"] == "mobilenet_v1"
    loaded = load_checkpoint(teacher.best_checkpoint)
    assert loaded.frontend.fmax == 7500.0
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, raw["model"][name])

    student = train(
        load_recipe(
            tiny_recipe,
            [
                f"distill.teacher={teacher.best_checkpoint}",
                "distill.crop_hop_s=0.5",
                f"train.out_dir={tmp_path / 'student'}",
            ],
        )
    )
    cached = TeacherLogits.load(tmp_path / "student" / "teacher_logits")
    assert cached.counts.tolist() == [9, 9, 9, 9]  # 1 s crops every 0.5 s over 5 s clips
    assert cached.logits.shape == (36, 4) and np.isfinite(cached.logits).all()
    assert math.isfinite(student.history[0]["train_loss"])

    resumed = train(load_recipe(tiny_recipe, [f"train.out_dir={tmp_path / 'teacher'}", "train.epochs=2",
                                              f"train.resume={tmp_path / 'teacher' / 'last.pt'}"]))
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert (tmp_path / "teacher" / "metrics.csv").read_text().count("\n") == 3
    last = tmp_path / "teacher" / "last.pt"
    with pytest.raises(ConfigError, match=r"has already run 2 of 2 epochs; ask for more epochs \(--epochs N\)"):
        train(load_recipe(tiny_recipe, ["train.epochs=2", f"train.resume={last}"]))
    elsewhere = train(load_recipe(tiny_recipe, [f"train.out_dir={tmp_path / 'more'}", "train.epochs=3", f"train.resume={last}"]))
    assert elsewhere.best_checkpoint.is_file()  # the best so far came along, if epoch 3 did not beat it

    result = CliRunner().invoke(app, ["evaluate", str(teacher.best_checkpoint), str(tmp_path), "--fold", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert '"clips": 2' in result.output and '"accuracy"' in result.output
    json.loads(result.output, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    for device, message in [("banana", "error: --device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'banana'"),
                            ("cuda:0", "error: --device 'cuda:0' asks for CUDA, but torch sees no GPU; use 'cpu'")]:
        if device.startswith("cuda") and torch.cuda.is_available():
            continue
        refused = CliRunner().invoke(app, ["evaluate", str(teacher.best_checkpoint), str(tmp_path), "--device", device])
        assert refused.exit_code == 1 and refused.output.strip() == message, refused.output

    wider = tmp_path / "wider"  # one more label than the model knows: its clips are left out
    wider.mkdir()
    rows = (tmp_path / "metadata.csv").read_text().splitlines()
    (wider / "metadata.csv").write_text("\n".join([*rows, rows[1].replace(",dog,", ",cat,")]) + "\n")
    result = CliRunner().invoke(app, ["evaluate", str(teacher.best_checkpoint), str(wider), "--json"])
    assert result.exit_code == 0, result.output
    assert '"clips": 4' in result.output


def test_unknown_config_key_is_one_cli_line(tiny_recipe: Path) -> None:
    broken = tiny_recipe.read_text().replace("epochs = 1", "epoch = 1")
    tiny_recipe.write_text(broken)
    result = CliRunner().invoke(app, ["train", "teacher", str(tiny_recipe)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: unknown key 'epoch' in [train] (did you mean 'epochs'?); valid keys: out_dir,")
    with pytest.raises(ConfigError, match=r"override 'train\.epochs' is not section\.key=value"):
        load_recipe(tiny_recipe, ["train.epochs"])
    tiny_recipe.write_text(broken.replace("epoch = 1", "epochs = 1"))
    result = CliRunner().invoke(app, ["train", "distill", str(tiny_recipe)])
    assert result.exit_code == 1 and "has no [distill] section" in result.output
    with pytest.raises(ConfigError, match=r"^epochs in \[train\] must be an integer, got 'three'$"):
        load_recipe(tiny_recipe, ["train.epochs=three"])
    with pytest.raises(ConfigError, match=r"^\[augment\] must be a table of key = value settings, got 5$"):
        load_recipe({"data": {"kind": "csv"}, "augment": 5})
    with pytest.raises(ConfigError, match=r"^classes in \[data\] must be a list of strings, got 'dog'$"):
        load_recipe({"data": {"kind": "csv", "classes": "dog"}})
    # values out of range are named with their section, once
    with pytest.raises(ConfigError, match=r"^\[train\] epochs must be > 0, got 0$"):
        load_recipe(tiny_recipe, ["train.epochs=0"])
    with pytest.raises(ConfigError, match=r"^\[data\] needs root \(the csv folder or file\)$"):
        load_recipe({"data": {"kind": "csv"}})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_two_cpu_processes_on_gloo(tiny_recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "edge_sed", "--debug", "train", "teacher", str(tiny_recipe),
        "--out", str(out), "--set", "train.steps_per_epoch=1", "--set", "train.device='cpu'",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = {int(rank): clips for rank, clips in re.findall(r"rank (\d) epoch 0 clips (\[.*?\])", run.stderr)}
    assert sorted(seen) == [0, 1]
    assert seen[0] != seen[1]
    assert re.findall(r"rank (\d) writes", run.stderr) == ["0", "0"]  # best.pt and last.pt, rank 0 only
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and math.isfinite(float(rows[1].split(",")[1]))
    assert torch.load(out / "best.pt", weights_only=True)["labels"] == ["clapping", "dog", "rain", "siren"]


def test_fine_tuning_takes_every_weight_but_the_head_from_a_panns_file(tmp_path: Path) -> None:
    from edge_sed.config import FrontendConfig
    from edge_sed.errors import ModelError
    from edge_sed.models.registry import build_model
    from edge_sed.train.loop import ModelConfig, _build_model

    official = build_model("mobilenet_v1")  # PANNs' layout: 32 kHz front end, 527 classes
    path = tmp_path / "MobileNetV1_mAP=0.389.pth"
    torch.save({"model": official.state_dict(), "iteration": 0}, path)
    edge = FrontendConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=50.0, fmax=7500.0)
    recipe = load_recipe({"model": {"architecture": "mobilenet_v1", "init_checkpoint": str(path)}, "data": {"root": "x"}})
    recipe = dataclasses.replace(recipe, frontend=edge)
    model = _build_model(recipe, 4)
    source, tuned = official.state_dict(), model.state_dict()
    assert tuned["fc_audioset.weight"].shape == (4, 1024)
    assert torch.equal(tuned["features.3.0.weight"], source["features.3.0.weight"])
    assert torch.equal(tuned["fc1.weight"], source["fc1.weight"])
    assert tuned["spectrogram_extractor.stft.conv_real.weight"].shape[0] == 257  # the 16 kHz front end stays
    wrong = dataclasses.replace(recipe, model=ModelConfig("cnn6", str(path)))
    with pytest.raises(ModelError, match="does not fit this architecture"):
        _build_model(wrong, 4)
