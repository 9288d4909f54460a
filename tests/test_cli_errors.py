"""The CLI's one place for errors: a user's mistake or the file system's refusal is one line."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest
import typer

from edge_sed.cli import empty_argument
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


@pytest.mark.parametrize("args, problem", [
    (["detect", ""], "argument 2 is empty"),
    (["detect", "x.wav", "-o", ""], "-o was given an empty value"),
    (["detect", "x.wav", "--model="], "--model was given an empty value"),
])
def test_an_empty_argument_is_named_not_read_as_the_current_folder(args, problem) -> None:
    """``-o "$UNSET"``: a path would read '' as '.', and the error would speak of a folder."""
    result = subprocess.run([sys.executable, "-m", "edge_sed", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {problem}; give a value, or leave the argument out"]


def test_empty_argument_accepts_values_that_end_in_an_equals_sign() -> None:
    assert empty_argument(["train", "teacher", "r.toml", "--set", "train.resume="]) is None
    assert empty_argument(["train", "teacher", "r.toml", "--set=train.resume="]) is None
    assert empty_argument(["detect", "a.wav", "--threshold", "dog=0.5"]) is None
