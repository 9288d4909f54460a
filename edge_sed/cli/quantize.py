"""``edge-sed export`` and ``edge-sed quantize``: checkpoint -> ONNX fp32 -> int8 (ONNX, TFLite).

Torch and the quantizers are imported inside the commands, never at start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_sed.cli._app import command, console
from edge_sed.errors import ConfigError, require
from quantize.clips import CALIBRATION_WINDOWS

__all__ = ["export", "quantize"]

OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="File to write.")]


@command("export", help="Export a torch checkpoint to an ONNX fp32 model bundle (metadata inside).")
def export(
    checkpoint: Annotated[Path, typer.Argument(help="PANNs or edge-sed checkpoint (.pth/.pt); with --c-array, an int8 .tflite bundle.")],
    output: OutputOpt,
    model: Annotated[Optional[str], typer.Option("--model", help="Registry name (default: the checkpoint's, or inferred).")] = None,
    window: Annotated[Optional[float], typer.Option("--window", help="Window in seconds (default: the checkpoint's, else 1.0).")] = None,
    hop: Annotated[Optional[float], typer.Option("--hop", help="Hop in seconds (default: the checkpoint's, else 0.25).")] = None,
    in_graph_frontend: Annotated[
        bool, typer.Option("--in-graph-frontend", help="Put the log-mel front end in the graph (input: waveform).")
    ] = False,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset.")] = 17,
    verify_audio: Annotated[
        Optional[list[Path]], typer.Option("--verify-audio", help="Real audio to check ONNX against torch on (default: a shipped clip).")
    ] = None,
    c_array: Annotated[
        bool,
        typer.Option(
            "--c-array",
            help="Write the given int8 .tflite (with its .tflite.json sidecar) as model_data.{h,cc} + model_settings.h for TFLite Micro into the -o directory.",
        ),
    ] = False,
) -> None:
    if c_array:
        if checkpoint.suffix != ".tflite":
            raise ConfigError(
                f"--c-array takes a TFLite model (.tflite, for TFLite Micro), got {str(checkpoint)!r}; "
                "make one with 'edge-sed quantize ... --tflite'"
            )
        from edge_sed.cli.bridge import c_array as write_c_array

        write_c_array(checkpoint, output)
        return
    require("torch", what="edge-sed export", extra="train")
    from quantize.export import VERIFY_AUDIO, export_onnx

    result = export_onnx(
        checkpoint,
        output,
        stream_overrides={"window_s": window, "hop_s": hop},
        in_graph_frontend=in_graph_frontend,
        opset=opset,
        verify_audio=verify_audio or (VERIFY_AUDIO,),
        architecture=model,
    )
    bundle = result.bundle
    console.print(
        f"wrote {result.path} ({bundle.architecture}, {len(bundle.labels)} classes, input {bundle.input}, "
        f"window {bundle.stream.window_s:g} s, hop {bundle.stream.hop_s:g} s); "
        f"max |onnx - torch| {result.max_abs_diff:.2e} on {result.n_windows} windows",
        highlight=False,
        soft_wrap=True,
    )


@command("quantize", help="Quantize an ONNX fp32 bundle to int8 (ONNX Runtime QDQ; TFLite with --tflite).")
def quantize(
    model: Annotated[Path, typer.Argument(help="fp32 .onnx bundle from 'edge-sed export'.")],
    output: OutputOpt,
    calibration: Annotated[Path, typer.Option("--calibration", help="Folder or CSV (filename column) of real audio.")],
    max_windows: Annotated[int, typer.Option("--max-windows", help="Calibration windows to draw.")] = CALIBRATION_WINDOWS,
    tflite: Annotated[bool, typer.Option("--tflite", help="Also write <output stem>.tflite (int8 from the stem to the logits; needs --checkpoint).")] = False,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="The checkpoint the model was exported from.")] = None,
    report: Annotated[bool, typer.Option("--report", help="Measure fp32 vs int8 side by side.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON (implies --report).")] = False,
    labelled: Annotated[
        Optional[Path], typer.Option("--labelled", help="Labelled clips for the report [ESC-50 held-out fold].")
    ] = None,
    fold: Annotated[Optional[int], typer.Option("--fold", help="Keep only this fold of a --labelled CSV.")] = None,
    keep_float: Annotated[
        Optional[list[str]],
        typer.Option("--keep-float", help="Leave this torch module (e.g. features.0) in float in the ONNX int8 model (repeatable)."),
    ] = None,
    qat_epochs: Annotated[
        int, typer.Option("--qat-epochs", help="Fine-tune the TFLite model with fake quantization for N epochs (0: calibrate only).")
    ] = 0,
    recipe: Annotated[
        Optional[Path], typer.Option("--recipe", help="Training recipe for --qat-epochs (default: the one the checkpoint was trained with).")
    ] = None,
    overrides: Annotated[
        Optional[list[str]], typer.Option("--set", help="Override a recipe value for --qat-epochs, section.key=value (repeatable).")
    ] = None,
) -> None:
    require("onnx", what="edge-sed quantize", extra="train")
    from quantize.report import format_report
    from quantize.workflow import quantize_model

    if tflite and checkpoint is None:
        raise ConfigError("--tflite converts from the torch checkpoint: add --checkpoint CHECKPOINT.pth")
    if qat_epochs and not tflite:
        raise ConfigError("--qat-epochs fine-tunes the TFLite model: add --tflite --checkpoint CHECKPOINT.pth")
    qat = None
    if qat_epochs:
        from edge_sed.cli.train import RichProgress
        from quantize.qat import QatConfig, QatJob, qat_recipe

        qat = QatJob(qat_recipe(checkpoint, recipe, overrides or ()), QatConfig(epochs=qat_epochs), RichProgress())
    result = quantize_model(
        model,
        output,
        calibration,
        max_windows=max_windows,
        tflite_checkpoint=checkpoint if tflite else None,
        qat=qat,
        keep_float=keep_float or (),
        report=report or json_output,
        labelled=labelled,
        fold=fold,
    )
    if json_output and result.report is not None:
        console.print_json(json.dumps(result.report.to_dict()))
        return
    written = ", ".join(str(path) for path in (result.onnx_int8, result.tflite_int8) if path)
    console.print(f"wrote {written}", highlight=False, soft_wrap=True)
    if result.report is not None:
        console.print(format_report(result.report), highlight=False, markup=False, soft_wrap=True)
