"""The CLI's one place for errors: a user's mistake or the file system's refusal is one line."""

from __future__ import annotations

import errno

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
