"""The CLI's one place for errors: a user's mistake or the file system's refusal is one line."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest
import typer

from edge_sed.cli._app import handle_errors
from edge_sed.errors import ConfigError


def _failing(exc: Exception):
    @handle_errors
    def command() -> None:
        raise exc

    return command


@pytest.mark.parametrize("exc, line", [
    (ConfigError("hop_s must be positive"), "error: hop_s must be positive"),
    (OSError(errno.ENOSPC, "No space left on device", "model.onnx"), "error: No space left on device: 'model.onnx'"),
    (FileExistsError(errno.EEXIST, "File exists", "out"), "error: File exists: 'out' (a file stands where a folder is needed)"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "error: Connection refused"),
])
def test_errors_become_one_line_and_exit_1(capsys, exc, line) -> None:
    with pytest.raises(typer.Exit) as stopped:
        _failing(exc)()
    assert stopped.value.exit_code == 1
    assert capsys.readouterr().err.splitlines() == [line]


def test_an_option_value_of_the_wrong_type_is_one_line_exit_2() -> None:
    """click's own usage errors, raised before any edge-sed code runs, through the console script's main()."""
    result = subprocess.run([sys.executable, "-m", "edge_sed", "detect", "x.wav", "--hop", "abc"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: Invalid value for '--hop': ") and line.endswith("(see 'edge-sed detect --help')")
