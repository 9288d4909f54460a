"""The shipped systemd unit (deploy/edge-sed.service): systemd accepts it, and each of its
ExecStart lines is a listen command that edge-sed parses, sinks included."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import typer

from conftest import need_program
from edge_sed.cli import app
from edge_sed.sinks import parse_mqtt_url, parse_sink_spec

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "edge-sed.service"
INSTALLED = "/opt/edge-sed/.venv/bin/edge-sed"  # where the unit expects edge-sed (README, "Running as a service")


def _commands() -> list[list[str]]:
    """The unit's ExecStart command lines, the commented-out alternative included."""
    lines = [line.lstrip("#") for line in UNIT.read_text().splitlines() if line.lstrip("#").startswith("ExecStart=")]
    return [shlex.split(line.partition("=")[2]) for line in lines]


def test_every_exec_start_is_a_listen_command_edge_sed_parses() -> None:
    commands = _commands()
    assert len(commands) == 2
    group = typer.main.get_command(app)
    for program, command, *args in commands:
        assert (program, command) == (INSTALLED, "listen")
        listen = group.get_command(group.make_context("edge-sed", [command]), command)
        params = listen.make_context(command, list(args)).params  # unknown options or bad values raise here
        assert params["block"] == 1.0 and params["device"] == "USB"
        for spec in params["sink"]:
            parsed = parse_sink_spec(spec)
            if parsed.scheme == "mqtt":
                assert parse_mqtt_url(spec).spool_dir == Path("/var/lib/edge-sed/mqtt-spool")  # the StateDirectory
            else:
                assert parsed.target.startswith("/var/lib/edge-sed/")


def test_systemd_verifies_the_unit(tmp_path) -> None:
    need_program("systemd-analyze")
    installed = Path(sys.executable).parent / "edge-sed"  # this environment's console script stands in for /opt's
    assert installed.is_file()
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(installed)))
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stderr
    assert str(unit) not in verified.stderr and UNIT.name not in verified.stderr, verified.stderr
