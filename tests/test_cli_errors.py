"""The CLI's one place for errors: a user's mistake or the file system's refusal is one line."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_under_stdout_names_stdout() -> None:
    """``edge-sed models > FILE`` on a full disk: the error says the command's own output could not be written."""
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "edge_sed", "models"], stdout=full, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: No space left on device: '<stdout>'"]


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


_WITHOUT_TRAIN_EXTRA = """
import sys

class NoTrainExtra:
    \"\"\"Import hook: torch and onnx are not installed, as after a plain 'pip install edge-sed'.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoTrainExtra())
from edge_sed.cli import main
sys.argv = ["edge-sed", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("args, what, module", [
    (["export", "student.pt", "-o", "student.onnx"], "edge-sed export", "torch"),
    (["quantize", "student.onnx", "-o", "student.int8.onnx", "--calibration", "clips"], "edge-sed quantize", "onnx"),
    (["tune", "student.onnx", "validation.tsv", "-o", "tuned.onnx"], "edge-sed tune", "onnx"),
    (["bench", "latency"], "bench latency", "torch"),
    (["bench", "macs-map"], "bench macs-map", "torch"),
])
def test_commands_that_need_the_train_extra_say_so_in_one_line(tmp_path, args, what, module) -> None:
    result = subprocess.run([sys.executable, "-c", _WITHOUT_TRAIN_EXTRA, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {what} needs the [train] extra ({module} is not installed): pip install 'edge-sed[train]'"]
