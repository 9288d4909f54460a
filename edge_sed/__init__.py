"""edge-sed: streaming, real-time sound event detection for edge devices.

The run time flows in one direction::

    Source --blocks--> RingBuffer --samples--> StreamingLogMel --frames-->
      Backend (one window every hop) --scores--> EventTracker --events--> Sinks

Run time (numpy, onnxruntime; never torch)
    Configuration (:mod:`edge_sed.config`)
        ``FrontendConfig``, ``StreamConfig``, ``ClassRule``, ``TrackerConfig``; ``resolve()``
        states the precedence: bundle metadata < config file < CLI flags.
    Audio (:mod:`edge_sed.audio`, :mod:`edge_sed.frontend`)
        ``read_audio()``, ``resample()`` (soxr); ``LogMel`` (offline) and ``StreamingLogMel``
        (incremental): one log-mel definition, shared with the torch twin.
    Sources and the loop (:mod:`edge_sed.sources`, :mod:`edge_sed.ringbuffer`, :mod:`edge_sed.pipeline`)
        ``MicSource`` (sounddevice; the callback only copies into a ``RingBuffer``),
        ``FileSource``, ``StdinSource``: float32 mono blocks at the model's rate;
        ``run()`` is the one loop behind ``edge-sed listen`` and ``edge-sed detect``.
    Models (:mod:`edge_sed.bundle`, :mod:`edge_sed.backends`)
        ``ModelBundle`` and ``read_bundle()``: a model file with its metadata;
        ``load_backend()`` opens it with ``OnnxBackend``, ``TFLiteBackend`` (ai-edge-litert,
        tflite-runtime fallback) or ``TorchBackend`` (checkpoints; imports torch);
        ``check_graph()`` refuses metadata that contradicts the graph.
    Tracking (:mod:`edge_sed.tracker`)
        ``EventTracker`` (streaming: median filter -> hysteresis -> min duration / gap
        merge, one ``push`` per hop) and ``track_events()`` (the same over a whole score matrix).
    Events and sinks (:mod:`edge_sed.events`, :mod:`edge_sed.sinks`)
        ``Event`` and ``StreamStatus``; ``open_sinks()`` parses sink specs (``terminal``,
        ``jsonl[:PATH]``, ``tsv[:PATH]``, ``mqtt://...``, the bridge's ``serial://``) into a
        ``SinkSet`` that isolates failing sinks; ``register_sink_scheme()``.
    Errors (:mod:`edge_sed.errors`)
        ``EdgeSedError`` and its subclasses: one clear line for the user.

Evaluation and tuning (the ``[train]`` extra; no torch)
    Evaluation (:mod:`edge_sed.evaluation`)
        ``event_based_scores()``, ``segment_based_scores()`` (sed_eval, DCASE collars),
        ``psds()`` (sed_scores_eval); ``read_tsv()``/``write_tsv()`` for DCASE annotations.
    Soundscapes (:mod:`edge_sed.soundscape`)
        ``load_catalog()``, ``synthesize_set()``, ``write_soundscape_set()``: real recordings
        placed over real backgrounds with known onsets; fixed train/validation/test splits.
    Tuning and training tables (:mod:`edge_sed.tuning`, :mod:`edge_sed.training_table`)
        ``score_recordings()`` (scores through the detect pipeline) and ``tune_rules()`` (per-class
        rules by event F1 on validation data); ``write_training_table()`` (splits for ``edge-sed train``).

Models and training (torch, the ``[train]`` extra)
    Model zoo (:mod:`edge_sed.models`)
        ``registry.build_model()`` / ``MODELS`` (PANNs Cnn14/10/6, MobileNetV1/V2 and their
        frame-wise and strided variants), ``frontend.TorchLogMel`` (the torch log-mel twin),
        ``checkpoint.load_checkpoint()`` / ``save_checkpoint()`` (PANNs' and edge-sed's files),
        ``tagging.tag_file()``, ``macs.model_cost()`` (parameters, MACs, PANNs' multiply-adds),
        ``reparam.to_strided()`` (PANNs MobileNet -> equal strided layout, BN foldable),
        ``fetch.fetch_checkpoint()`` (official Zenodo files, checksum-verified; no torch).
        AudioSet's labels: ``edge_sed.labels.audioset_labels()``.
    Training (:mod:`edge_sed.train`)
        ``DataConfig`` and ``read_dataset()`` (ESC-50, FSDD, librosa examples, CSV
        folders, AudioSet HDF5/segment lists); ``BalancedSampler``; ``AugmentConfig``;
        ``load_recipe()``, ``train()`` (the one loop), ``evaluate_checkpoint()``;
        ``DistillConfig`` and cached teacher logits.

Benchmarks (:mod:`edge_sed.bench`, behind ``edge-sed bench``)
    ``latency.run_latency_benchmark()``, ``macs_map.run_macs_map()``, ``stream``: speed, memory
    and accuracy measured in one run; ``results.write_results()`` writes
    ``benchmarks/results/*.json`` with the machine's description.

Top-level packages beside ``edge_sed``
    ``quantize``: ONNX fp32 export, int8 (ONNX Runtime QDQ, TFLite), the fp32-vs-int8 report.
    ``firmware_bridge``: wire protocol (Python + C99), ``serial://``/``udp://``/``tcp://`` sinks,
    ``listen --source`` for MCU PCM, model-as-C-array export for TFLite Micro.
"""

__version__ = "0.1.0"
