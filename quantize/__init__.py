"""Export and int8 quantization of edge-sed models, and the accuracy-drop report.

Checkpoint -> ONNX fp32 bundle (:mod:`quantize.export`)
    ``export_onnx()``: one file, metadata inside, fixed window, host log-mel or
    the front end in the graph; PANNs-layout MobileNets re-parameterised to the
    strided layout; checked against torch on real audio.
ONNX fp32 -> int8 (:mod:`quantize.onnx_int8`)
    ``quantize_onnx()``: ONNX Runtime static QDQ, per-channel weights, calibrated
    on real audio, front-end nodes left in float.
Checkpoint -> TFLite int8 (:mod:`quantize.tflite`)
    ``export_tflite()``: litert-torch PT2E, metadata in the sidecar JSON
    (``[tflite-export]`` extra).
Quantization-aware fine-tuning (:mod:`quantize.qat`)
    ``finetune_qat()``: the LiteRT model fine-tuned with fake quantization on
    the checkpoint's own recipe, the fp32 model's scores as targets
    (``export_tflite(..., qat=QatJob(...))``).
Real audio (:mod:`quantize.clips`)
    ``list_clips()`` (folder, CSV or AudioSet segment list), ``model_windows()``,
    ``calibration_windows()``.
AudioSet's segment lists (:mod:`quantize.audioset`)
    ``audioset_clips()``: ``eval_segments.csv`` rows with local audio, mids as
    display names (multi-label clips).
fp32 vs int8 (:mod:`quantize.report`)
    ``compare_models()`` -> ``QuantizeReport``: size, latency, accuracy/mAP,
    top-1 agreement, score differences; ``format_report()``.
One call (:mod:`quantize.workflow`)
    ``quantize_model()``: what ``edge-sed quantize`` runs.

Torch is imported inside the functions that need it.
"""
