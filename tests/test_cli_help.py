"""Every option's help text reads the same in ``--help`` as in the source.

Typer renders help with rich markup, so ``[default: x]`` or ``[stream]`` in a
help string is taken for a style tag and silently dropped; literal brackets
must be written ``\\[``.
"""

from __future__ import annotations

import importlib.metadata

import typer
from rich.text import Text
from typer.testing import CliRunner

import edge_sed
from edge_sed.cli import app


def _commands(command, path: str = "edge-sed"):
    """(path, command) for *command* and every sub-command (Typer's click commands, any version)."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_no_help_text_loses_words_to_rich_markup() -> None:
    swallowed, seen = [], 0
    for path, command in _commands(typer.main.get_command(app)):
        seen += 1
        texts = [("(command)", command.help or "")] + [(param.name, getattr(param, "help", None) or "") for param in command.params]
        for name, text in texts:
            if Text.from_markup(text).plain != text.replace("\\[", "["):
                swallowed.append(f"{path} {name}: {text!r}")
    assert seen > 20  # the whole tree was walked
    assert not swallowed, "\n".join(swallowed)


def test_version_is_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"edge-sed {edge_sed.__version__}\n"
    assert importlib.metadata.version("edge-sed") == edge_sed.__version__  # pyproject reads it from there
