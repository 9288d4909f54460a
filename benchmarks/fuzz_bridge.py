"""Fuzz the C bridge decoder: a long random run under ASan/UBSan, and libFuzzer if clang has it.

    python benchmarks/fuzz_bridge.py [--inputs 1000000] [--seed 1]   (edge-sed installed, or PYTHONPATH=.)

Prints a table and writes benchmarks/results/fuzz_bridge.json. The random
driver (firmware_bridge/fuzz/random_driver.c) also checks two properties on
every input of its kind: frames between garbage are all recovered, and a frame
with one byte replaced is never accepted.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from firmware_bridge.cbuild import C_DIR, FUZZ_DIR, SANITIZE_FLAGS, compile_c

RESULTS = Path(__file__).parent / "results" / "fuzz_bridge.json"
LIBFUZZER_MAX_LEN = 4200  # about four maximal frames


def _seed_frames() -> list[bytes]:
    """One valid frame of each type, and all of them in one stream."""
    import numpy as np

    from firmware_bridge.protocol import (
        ConfigMessage, EventKind, EventMessage, FrameEncoder, HeartbeatMessage, PcmMessage, ScoresMessage,
        ThresholdEntry,
    )

    encoder = FrameEncoder()
    frames = [
        encoder.encode(message)
        for message in (
            EventMessage(EventKind.ONSET, 3, 50000, 1250),
            EventMessage(EventKind.OFFSET, 3, 50000, 2250, 1000),
            ScoresMessage.from_scores(1000, np.linspace(0, 1, 527)),
            PcmMessage.from_samples(16000, 0, np.arange(-80, 80, dtype=np.int16) * 400),
            HeartbeatMessage(5000, 10, 1, 0),
            ConfigMessage((ThresholdEntry(0, 32768, 19660), ThresholdEntry(5, 40000, 30000))),
        )
    ]
    return [*frames, b"".join(frames)]


def run_random_driver(build: Path, inputs: int, seed: int) -> dict:
    binary = compile_c(
        build / "random_driver",
        [C_DIR / "edge_sed_bridge.c", FUZZ_DIR / "fuzz_decoder.c", FUZZ_DIR / "random_driver.c"],
        flags=SANITIZE_FLAGS,
    )
    start = time.perf_counter()
    done = subprocess.run([str(binary), str(inputs), str(seed)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    report = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    return {
        "tool": "random_driver (gcc, -fsanitize=address,undefined)",
        "compiler": subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
        "inputs": inputs,
        "bytes": report.get("bytes"),
        "frames_decoded": report.get("frames_decoded"),
        "property_failures": report.get("property_failures"),
        "crashes": 0 if done.returncode == 0 else 1,
        "exit_code": done.returncode,
        "seconds": round(seconds, 2),
        "seed": seed,
        "stderr_tail": done.stderr[-2000:],
    }


def run_libfuzzer(build: Path, runs: int, seed: int) -> dict | None:
    if shutil.which("clang") is None:
        return None
    binary = compile_c(
        build / "libfuzzer",
        [C_DIR / "edge_sed_bridge.c", FUZZ_DIR / "fuzz_decoder.c"],
        compiler="clang",
        flags=("-O1", "-g", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"),
    )
    corpus = build / "corpus"
    corpus.mkdir()
    for index, seed_frame in enumerate(_seed_frames()):  # without valid frames the CRC hides the parsers
        (corpus / f"seed{index}").write_bytes(seed_frame)
    start = time.perf_counter()
    done = subprocess.run(
        [str(binary), str(corpus), f"-runs={runs}", f"-seed={seed}", f"-max_len={LIBFUZZER_MAX_LEN}"],
        capture_output=True,
        text=True,
        cwd=build,
    )
    seconds = time.perf_counter() - start
    coverage = re.findall(r"cov: (\d+) ft: (\d+)", done.stderr)
    return {
        "tool": "libFuzzer (clang, -fsanitize=fuzzer,address,undefined)",
        "compiler": subprocess.run(["clang", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
        "inputs": runs,
        "crashes": 0 if done.returncode == 0 else 1,
        "exit_code": done.returncode,
        "seconds": round(seconds, 2),
        "final_coverage_edges": int(coverage[-1][0]) if coverage else None,
        "corpus_files": len(list(corpus.iterdir())),
        "seed": seed,
        "stderr_tail": "" if done.returncode == 0 else done.stderr[-2000:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp)
        runs = [run_random_driver(build, args.inputs, args.seed), run_libfuzzer(build, args.inputs, args.seed)]
    runs = [run for run in runs if run is not None]
    print(f"{'tool':58s} {'inputs':>9s} {'seconds':>8s} {'crashes':>7s}")
    for run in runs:
        print(f"{run['tool']:58s} {run['inputs']:9d} {run['seconds']:8.1f} {run['crashes']:7d}")
    result = {"machine": platform.machine(), "python": platform.python_version(), "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if any(run["crashes"] or run.get("property_failures") for run in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
