"""Measurements in a fresh process: its memory and thread pools are its own.

The parent calls :func:`run_child` with a JSON-ready spec; the child, started
as ``python -m <module> '<spec>'``, calls :func:`child_main` with its
measuring function and prints one JSON row. A child that fails gives a row
with an ``error`` message, so the other rows of the run still count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Callable, Mapping

from edge_sed.errors import EdgeSedError

__all__ = ["CHILD_TIMEOUT_S", "run_child", "child_main"]

#: A child that runs longer than this is killed and reported as failed.
CHILD_TIMEOUT_S = 900


def run_child(module: str, spec: Mapping[str, Any], *, threads: int | None = 1,
              timeout_s: float = CHILD_TIMEOUT_S) -> dict[str, Any]:
    """Run ``python -m module '<spec>'`` with *threads* BLAS/OpenMP threads (None: as this
    process's environment has them); its JSON row, or ``{"error": ...}`` (the child's last stderr line)."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS") if threads is not None else ():
        env[name] = str(threads)
    command = [sys.executable, "-m", module, json.dumps(dict(spec))]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def child_main(argv: list[str], measure: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """The child's entry: ``measure(spec)`` printed as one JSON line; an :class:`EdgeSedError` as ``error: ...``."""
    if len(argv) != 1:
        print("usage: python -m <module> '<spec as JSON>'", file=sys.stderr)
        return 2
    try:
        row = measure(json.loads(argv[0]))
    except EdgeSedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(row))
    return 0
