"""Benchmarks behind ``edge-sed bench``: speed, memory and accuracy, measured in one run.

- :mod:`~edge_sed.bench.latency`: per-window latency per model x backend x threads,
  each case in a fresh process (``run_latency_benchmark``, ``measure_case``).
- :mod:`~edge_sed.bench.macs_map`: params, MACs, PANNs multiply-adds, mAP and
  accuracy per model and precision (``run_macs_map``).
- :mod:`~edge_sed.bench.stream`: CPU share and memory of the ``listen`` pipeline.
- :mod:`~edge_sed.bench.exports`: the model file of every precision (through ``quantize``).
- :mod:`~edge_sed.bench.results`: the JSON result files (``write_results``), ratios
  within one run (``add_ratios``), goals, Markdown tables (``format_table``).
- :mod:`~edge_sed.bench.machine`, :mod:`~edge_sed.bench.timing`,
  :mod:`~edge_sed.bench.inputs`, :mod:`~edge_sed.bench.plot`,
  :mod:`~edge_sed.bench.reference`: machine info, timing, real audio, the
  MACs-vs-mAP plot and PANNs' published points.

Torch and ``quantize`` are imported only inside the functions that need them.
"""
