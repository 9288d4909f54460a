"""Does distillation pay? Teacher from scratch, student from scratch and student
distilled, cross-validated over ESC-50 folds with the CPU recipes in ``configs/``.

For each fold k (validation fold k, training on the others):

1. teacher: ``configs/esc50_teacher_cpu.toml`` (Cnn6, 16 kHz front end);
2. student from scratch: ``configs/esc50_student_scratch_cpu.toml`` (MobileNetV1);
3. student distilled: ``configs/esc50_student_distill_cpu.toml`` from fold k's teacher.

Folds run in parallel worker processes (one torch thread each); a finished run
(its ``result.json``) is not run again, so the script can be stopped and
continued. ``--aggregate`` only collects what has finished. Prints a table and
writes ``benchmarks/results/train_esc50.json`` and ``.md``.

    OMP_NUM_THREADS=1 python benchmarks/train_esc50.py --folds 1 2 --workers 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout; spawned fold workers import edge_sed from here too
RESULTS = ROOT / "benchmarks" / "results"
RUNS = ("teacher", "student_scratch", "student_distill")
RECIPES = {
    "teacher": "configs/esc50_teacher_cpu.toml",
    "student_scratch": "configs/esc50_student_scratch_cpu.toml",
    "student_distill": "configs/esc50_student_distill_cpu.toml",
}


def _overrides(run: str, fold: int, args: argparse.Namespace) -> list[str]:
    out = Path(args.out) / f"fold{fold}" / run
    epochs = args.teacher_epochs if run == "teacher" else args.student_epochs
    overrides = [f"data.val_fold={fold}", f"train.out_dir={out}", f"train.epochs={epochs}", "train.threads=1"]
    if args.all_classes:
        overrides.append("data.classes=[]")
    if run == "student_distill":
        overrides.append(f"distill.teacher={Path(args.out) / f'fold{fold}' / 'teacher' / 'best.pt'}")
    return overrides


def _run_fold(fold: int, args: argparse.Namespace) -> None:
    import torch

    from edge_sed.train.loop import load_recipe, train

    torch.set_num_threads(1)
    for run in RUNS:
        done = Path(args.out) / f"fold{fold}" / run / "result.json"
        if done.exists():
            continue
        overrides = _overrides(run, fold, args)
        started = time.perf_counter()
        result = train(load_recipe(ROOT / RECIPES[run], overrides))
        record = {
            "run": run,
            "fold": fold,
            "recipe": RECIPES[run],
            "overrides": overrides,
            "seconds": round(time.perf_counter() - started, 1),
            "best": result.best_metrics,
            "history": result.history,
        }
        done.write_text(json.dumps(record, indent=1), encoding="utf-8")
        print(f"fold {fold} {run}: {record['seconds']} s, best {result.best_metrics}", flush=True)


def _aggregate(args: argparse.Namespace) -> dict:
    records = [json.loads(path.read_text()) for path in sorted(Path(args.out).glob("fold*/*/result.json"))]
    summary = {}
    for run in RUNS:
        rows = [r for r in records if r["run"] == run]
        if not rows:
            continue
        entry = {"folds": [r["fold"] for r in rows], "seconds": [r["seconds"] for r in rows]}
        for metric in ("val_accuracy", "val_mAP"):
            values = [r["best"][metric] for r in rows]
            entry[metric] = {
                "per_fold": values,
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            }
        summary[run] = entry
    report = {
        "what": "ESC-50 clips, cross-validated by official fold: teacher vs student from scratch vs distilled student",
        "classes": "all 50" if args.all_classes else "ESC-10 (10 classes, 400 clips, 80 per fold)",
        "teacher_epochs": args.teacher_epochs,
        "student_epochs": args.student_epochs,
        "metric_note": "best validation epoch per run (model selection on the validation fold, as the recipes keep best.pt)",
        "machine": f"{platform.processor() or platform.machine()}, CPU only, 1 torch thread per fold worker, shared with other jobs",
        "summary": summary,
        "runs": [{k: v for k, v in r.items() if k != "history"} | {"history": r["history"]} for r in records],
    }
    return report


def _table(report: dict) -> str:
    lines = [
        "| model | folds | accuracy (mean ± std) | mAP (mean ± std) | minutes per fold |",
        "|---|---|---|---|---|",
    ]
    for run, entry in report["summary"].items():
        acc, mAP = entry["val_accuracy"], entry["val_mAP"]
        minutes = statistics.fmean(entry["seconds"]) / 60
        lines.append(
            f"| {run} | {','.join(map(str, entry['folds']))} | {acc['mean']:.3f} ± {acc['std']:.3f} "
            f"| {mAP['mean']:.3f} ± {mAP['std']:.3f} | {minutes:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--teacher-epochs", type=int, default=6)
    parser.add_argument("--student-epochs", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--all-classes", action="store_true", help="all 50 classes instead of ESC-10")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_esc50"))
    parser.add_argument("--aggregate", action="store_true", help="only collect finished runs")
    args = parser.parse_args()
    if not args.aggregate:
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers) as pool:
            pool.starmap(_run_fold, [(fold, args) for fold in args.folds])
    report = _aggregate(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train_esc50.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    table = _table(report)
    (RESULTS / "train_esc50.md").write_text(
        f"# Distillation on ESC-50 ({report['classes']})\n\n{table}\n\n"
        f"Teacher Cnn6 ({args.teacher_epochs} epochs), students MobileNetV1 ({args.student_epochs} epochs), "
        "16 kHz front end, 2 s random crops, whole 5 s clips for validation. "
        "Reproduce: `OMP_NUM_THREADS=1 python benchmarks/train_esc50.py "
        f"--folds {' '.join(map(str, args.folds))} --teacher-epochs {args.teacher_epochs} "
        f"--student-epochs {args.student_epochs}`.\n",
        encoding="utf-8",
    )
    print(table)


if __name__ == "__main__":
    main()
