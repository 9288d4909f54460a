"""Paths to the shipped C sources and one way to compile them (tests, fuzzing, benchmarks)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["C_DIR", "FUZZ_DIR", "STRICT_C_FLAGS", "SANITIZE_FLAGS", "compile_c"]

#: edge_sed_bridge.h/.c and examples/.
C_DIR = Path(__file__).parent / "c"
#: The libFuzzer target and the random driver.
FUZZ_DIR = Path(__file__).parent / "fuzz"
#: The warnings the C side must compile cleanly under.
STRICT_C_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
#: AddressSanitizer and UndefinedBehaviorSanitizer, any report fatal.
SANITIZE_FLAGS = ("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all")


def compile_c(output: Path, sources: Sequence[Path], *, compiler: str = "gcc", flags: Sequence[str] = ()) -> Path:
    """Compile and link *sources* with the bridge header on the include path; return *output*.

    Raises ``subprocess.CalledProcessError`` (with the compiler's output) on failure.
    """
    command = [compiler, *STRICT_C_FLAGS, *flags, f"-I{C_DIR}", "-o", str(output), *map(str, sources)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return output
