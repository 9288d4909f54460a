"""Multiply-add accounting against PANNs' Table XII and the reference counters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_sed.cli import app
from edge_sed.models.macs import model_cost
from edge_sed.models.registry import MODELS, model_names

REFERENCE_MACS = Path(__file__).parent / "data" / "panns_reference" / "panns_macs.json"
#: PANNs Table XII, 10 s clips: multiply-adds and trainable parameters.
TABLE_XII = {
    "cnn14": (42.220e9, 80_753_615),
    "mobilenet_v1": (3.614e9, 4_796_303),
    "mobilenet_v2": (2.810e9, 4_075_343),
    "cnn10": (28.166e9, 5_219_279),
    "cnn6": (21.986e9, 4_837_455),
}


@pytest.mark.parametrize("name", sorted(TABLE_XII))
def test_table_xii_is_reproduced(name: str) -> None:
    cost = model_cost(name, seconds=10.0)
    multiply_adds, params = TABLE_XII[name]
    assert abs(cost.panns_multiply_adds / multiply_adds - 1) < 0.01
    assert cost.params == params
    assert cost.macs_frontend == 1_084_539_456  # conv STFT 2*513*1024*1001 + mel 1001*513*64


@pytest.mark.parametrize("name", [spec.name for spec in MODELS.values() if spec.panns_class])
def test_network_macs_equal_the_reference_counters(name: str) -> None:
    reference = json.loads(REFERENCE_MACS.read_text())["models"][MODELS[name].panns_class]
    cost = model_cost(name, seconds=10.0)
    # torch FlopCounterMode's conv + linear MACs of the official model, front end excluded
    assert cost.macs_network == reference["backbone_macs_excl_frontend"]
    assert cost.macs_frontend == reference["frontend_FlopCounterMode_macs"]


def test_strided_layout_costs_less() -> None:
    for family in ("mobilenet_v1", "mobilenet_v2"):
        assert model_cost(f"{family}_strided").macs_network < 0.98 * model_cost(family).macs_network


def test_models_json_lists_the_zoo() -> None:
    result = CliRunner().invoke(app, ["models", "--seconds", "10", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["name"] for row in rows] == model_names()
    by_name = {row["name"]: row for row in rows}
    for name, (multiply_adds, params) in TABLE_XII.items():
        assert abs(by_name[name]["panns_multiply_adds"] / multiply_adds - 1) < 0.01
        assert by_name[name]["params"] == params
    assert {"name", "params", "macs_network", "macs_frontend", "panns_multiply_adds"} <= set(rows[0])


def test_models_table_and_bad_seconds() -> None:
    table = CliRunner().invoke(app, ["models", "--seconds", "1"])
    assert table.exit_code == 0
    assert all(name in table.output for name in model_names())
    assert f"{model_cost('cnn14', seconds=1).params:,}" in table.output  # whole in 80 columns, not '80,753,…'
    for seconds in ("0", "nan", "1e12"):
        bad = CliRunner().invoke(app, ["models", "--seconds", seconds])
        assert bad.exit_code == 1 and bad.output.strip() == f"error: --seconds must be between 0 and 60, got {float(seconds)!r}"
    short = CliRunner().invoke(app, ["models", "--seconds", "0.0001"])  # torch refused the pooling of too few frames
    assert short.exit_code == 1 and short.output.strip() == "error: a 0.0001 s clip is too short for cnn14: it needs at least 0.31 s"


@pytest.mark.parametrize("name", model_names())
def test_the_shortest_clip_a_model_takes_is_counted(name: str) -> None:
    """A 10 ms clip is refused, naming the shortest one the model takes; that one is counted."""
    from edge_sed.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"too short for {name}: it needs at least ") as refused:
        model_cost(name, seconds=0.01)
    shortest = float(str(refused.value).split()[-2])
    assert model_cost(name, seconds=shortest).macs_network > 0
