"""edge-sed: streaming, real-time sound event detection for edge devices.

The run time flows in one direction::

    Source --blocks--> RingBuffer --samples--> StreamingLogMel --frames-->
      Backend (one window every hop) --scores--> EventTracker --events--> Sinks

Configuration (:mod:`edge_sed.config`)
    ``FrontendConfig``, ``StreamConfig``, ``ClassRule``, ``TrackerConfig``; ``resolve()``
    states the precedence: bundle metadata < config file < CLI flags.
Audio (:mod:`edge_sed.audio`, :mod:`edge_sed.frontend`)
    ``read_audio()``, ``resample()``; ``LogMel`` (offline) and ``StreamingLogMel``
    (incremental), one log-mel definition shared with the torch twin.
Models (:mod:`edge_sed.bundle`, :mod:`edge_sed.backends`)
    ``ModelBundle`` and ``read_bundle()``: a model file with its metadata;
    ``load_backend()`` opens it with ONNX Runtime, LiteRT or torch.
Events (:mod:`edge_sed.events`)
    ``Event`` and ``StreamStatus``, the values handed to sinks.
Tracking (:mod:`edge_sed.tracker`)
    ``EventTracker`` (streaming: median filter -> hysteresis -> min duration / gap
    merge, one ``push`` per hop) and ``track_events()`` (the same over a whole score matrix).
Soundscapes (:mod:`edge_sed.soundscape`)
    ``load_catalog()``, ``synthesize_set()``, ``write_soundscape_set()``: real recordings
    placed over real backgrounds with known onsets; fixed train/validation/test splits.
Tuning and training tables (:mod:`edge_sed.tuning`, :mod:`edge_sed.training_table`)
    ``score_recordings()`` (scores through the detect pipeline) and ``tune_rules()`` (per-class
    rules by event F1 on validation data); ``write_training_table()`` (the splits for ``edge-sed train``).
Sinks (:mod:`edge_sed.sinks`)
    ``open_sinks()`` parses sink specs (``terminal``, ``jsonl[:PATH]``, ``tsv[:PATH]``,
    ``mqtt://...``) into a ``SinkSet`` that isolates failing sinks; ``TerminalSink``,
    ``JsonlSink``, ``TsvSink``, ``MqttSink`` (spooled, at least once); ``register_sink_scheme()``.
Sources and the loop (:mod:`edge_sed.sources`, :mod:`edge_sed.ringbuffer`, :mod:`edge_sed.pipeline`)
    ``MicSource`` (sounddevice; the callback only copies into a ``RingBuffer``),
    ``FileSource``, ``StdinSource``: float32 mono blocks at the model's rate (soxr);
    ``run()`` is the one loop behind ``edge-sed listen`` and ``edge-sed detect``.
Model zoo, torch only (:mod:`edge_sed.models`)
    ``registry.build_model()`` / ``MODELS`` (PANNs Cnn14/10/6, MobileNetV1/V2 and their
    frame-wise and strided variants), ``frontend.TorchLogMel`` (the torch log-mel twin),
    ``checkpoint.load_checkpoint()`` / ``save_checkpoint()`` (PANNs' and edge-sed's files),
    ``tagging.tag_file()``, ``macs.model_cost()`` (parameters, MACs, PANNs' multiply-adds),
    ``reparam.to_strided()`` (PANNs MobileNet -> equal strided layout, BN foldable),
    ``fetch.fetch_checkpoint()`` (official Zenodo files, checksum-verified; no torch).
    AudioSet's labels: ``edge_sed.labels.audioset_labels()``.
Benchmarks (:mod:`edge_sed.bench`, behind ``edge-sed bench``)
    ``latency.run_latency_benchmark()``, ``macs_map.run_macs_map()``, ``stream``:
    speed, memory and accuracy measured in one run; ``results.write_results()``
    writes ``benchmarks/results/*.json`` with the machine's description.
Backends (:mod:`edge_sed.backends`)
    ``OnnxBackend``, ``TFLiteBackend`` (ai-edge-litert, tflite-runtime fallback),
    ``TorchBackend`` (checkpoints; imports torch); ``check_graph()`` refuses metadata
    that contradicts the graph. Export and int8: the top-level ``quantize`` package.
Evaluation (:mod:`edge_sed.evaluation`, ``[train]`` extra)
    ``event_based_scores()``, ``segment_based_scores()`` (sed_eval, DCASE collars),
    ``psds()`` (sed_scores_eval); ``read_tsv()``/``write_tsv()`` for DCASE annotations.
Training (:mod:`edge_sed.train`, torch)
    ``DataConfig`` and ``read_dataset()`` (ESC-50, FSDD, librosa examples, CSV
    folders, AudioSet HDF5/segment lists); ``BalancedSampler``; ``AugmentConfig``;
    ``load_recipe()``, ``train()`` (the one loop), ``evaluate_checkpoint()``;
    ``DistillConfig`` and cached teacher logits.
Errors (:mod:`edge_sed.errors`)
    ``EdgeSedError`` and its subclasses: one clear line for the user.

Torch is imported only by ``edge_sed.models`` and ``edge_sed.train`` (the
``[train]`` extra); nothing on the run-time path imports it.
"""

__version__ = "0.1.0"
