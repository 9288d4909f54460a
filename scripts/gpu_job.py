"""The one-call GPU job: teacher -> cached teacher logits -> distilled student ->
student from scratch -> evaluation, for one ESC-50 fold, inside one device call.

It calls the library (``edge_sed.train.loop``), not the CLI, so nothing the
run-time CLI imports (sounddevice, ...) needs to exist on the device. What
comes back in ``--results`` (at most 8 files, each under 16 MiB): both
students' ``best.pt`` (MobileNetV2, about 15 MiB fp32; never the teacher),
the teacher logits (``.npy`` + index), ``metrics.json`` and the runs' CSV logs.

    python scripts/gpu_job.py --fold 1 --results "$OUT"          # on the GPU machine
    python scripts/gpu_job.py --smoke --results /tmp/gpu_smoke   # a minutes-long CPU rehearsal
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Overrides that shrink the job to a CPU rehearsal of every step (2 classes, a small teacher).
SMOKE = [
    "train.epochs=1",
    "train.steps_per_epoch=2",
    "train.batch_size=4",
    "train.eval_batch_size=8",
    "train.num_workers=0",
    "train.device='cpu'",
    "train.bn_recalibration_batches=1",
    "data.classes=['dog', 'rain']",
]
SMOKE_TEACHER = ["model.architecture='mobilenet_v2'"]
SMOKE_DISTILL = ["distill.crop_hop_s=1.0", "distill.batch_size=8"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, default=1)
    parser.add_argument("--results", type=Path, required=True, help="folder for the files to bring back")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "gpu")
    parser.add_argument("--smoke", action="store_true", help="1 epoch of 2 steps on CPU, 2 classes, a MobileNetV2 teacher")
    args = parser.parse_args()

    import torch

    from edge_sed.train.loop import evaluate_checkpoint, load_recipe, train

    def recipe(name: str, run: str, *extra: str):
        overrides = [f"data.val_fold={args.fold}", f"train.out_dir={args.runs / run}", *extra]
        if args.smoke:
            overrides += SMOKE + (SMOKE_TEACHER if run == "teacher" else []) + (SMOKE_DISTILL if "distill" in run else [])
        return load_recipe(ROOT / "configs" / name, overrides)

    started = time.perf_counter()
    timings, results = {}, {}
    teacher_recipe = recipe("esc50_teacher_gpu.toml", "teacher")
    steps = [
        ("teacher", teacher_recipe),
        ("student_distill", recipe("esc50_student_distill_gpu.toml", "student_distill", f"distill.teacher={args.runs / 'teacher' / 'best.pt'}")),
        ("student_scratch", recipe("esc50_student_scratch_gpu.toml", "student_scratch")),
    ]
    for name, run_recipe in steps:
        began = time.perf_counter()
        results[name] = train(run_recipe)
        timings[name] = round(time.perf_counter() - began, 1)
        print(f"{name}: {timings[name]} s, best {results[name].best_metrics}", flush=True)

    metrics = {
        "fold": args.fold,
        "smoke": args.smoke,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "seconds": timings,
        "total_seconds": round(time.perf_counter() - started, 1),
        "data_note": "ESC-50 decoded from the Opus copy of scripts/pack_gpu_data.py (lossy), 16 kHz",
        "best_epoch": {name: result.best_metrics for name, result in results.items()},
        "evaluate": {
            name: evaluate_checkpoint(
                results[name].best_checkpoint, teacher_recipe.data, fold=args.fold, device="cuda" if torch.cuda.is_available() else "cpu"
            )
            for name in results
        },
    }
    out = args.results
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    for name in ("student_distill", "student_scratch"):
        shutil.copy(results[name].best_checkpoint, out / f"{name}.pt")
    logits = args.runs / "student_distill" / "teacher_logits"
    shutil.copy(logits / "logits.npy", out / "teacher_logits.npy")
    shutil.copy(logits / "index.json", out / "teacher_logits_index.json")
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        for name in results:
            tar.add(args.runs / name / "metrics.csv", arcname=f"{name}_metrics.csv")
    print(json.dumps(metrics["evaluate"], indent=1))


if __name__ == "__main__":
    main()
