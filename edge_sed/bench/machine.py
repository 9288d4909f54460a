"""What a benchmark ran on: CPU model, cores, memory, load and library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["machine_info", "available_cores", "int8_flags", "BENCH_LIBRARIES", "INT8_FLAGS"]

#: Distributions whose versions every result file records (absent ones are recorded as null).
BENCH_LIBRARIES = (
    "numpy",
    "scipy",
    "onnxruntime",
    "onnx",
    "ai-edge-litert",
    "tflite-runtime",
    "litert-torch",
    "torch",
    "matplotlib",
)

#: CPU flags (as /proc/cpuinfo names them on x86 and ARM) that decide how int8 kernels add their
#: products: in 32 bits with VNNI, AMX or ARM's dot product; in 16-bit pairs with AVX2 alone.
INT8_FLAGS = ("avx2", "avx512bw", "avx_vnni", "avx512_vnni", "amx_int8", "asimddp", "i8mm")

_CPUINFO = Path("/proc/cpuinfo")
_MEMINFO = Path("/proc/meminfo")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def int8_flags(cpuinfo: str) -> list[str] | None:
    """The :data:`INT8_FLAGS` in the text of ``/proc/cpuinfo`` (None where it lists no flags)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):  # x86, ARM
            present = set(value.split())
            return [flag for flag in INT8_FLAGS if flag in present]
    return None


def _physical_cores(cpuinfo: str) -> int | None:
    cores, physical_id = set(), "0"
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical_id = value.strip()
        elif key == "core id":
            cores.add((physical_id, value.strip()))
    return len(cores) or None


def _memory_total_mib() -> float | None:
    if _MEMINFO.is_file():
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """A JSON-ready description of this machine and its software.

    Returns
    -------
    dict with ``cpu_model``, ``logical_cores``, ``physical_cores``,
    ``available_cores``, ``cpu_int8_flags`` (:func:`int8_flags`),
    ``memory_total_mib``, ``load_average`` (1, 5, 15 min, at the time of the
    call: other work on the machine shows here),
    ``platform``, ``python``, ``edge_sed`` (this package's version) and
    ``libraries`` (distribution -> version or None).
    """
    from edge_sed import __version__

    cpuinfo = _CPUINFO.read_text(errors="replace") if _CPUINFO.is_file() else ""  # Linux; elsewhere none
    return {
        "cpu_model": _cpu_model(cpuinfo),
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(cpuinfo),
        "available_cores": available_cores(),
        "cpu_int8_flags": int8_flags(cpuinfo),
        "memory_total_mib": _memory_total_mib(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "edge_sed": __version__,
        "libraries": {name: _version(name) for name in BENCH_LIBRARIES},
    }
