"""Training (torch only; the ``[train]`` extra): one loop for teachers and students.

=================  ===========================================================
module             main names
=================  ===========================================================
``data``           ``DataConfig``, ``ClipTable``, ``read_dataset``, ``ClipDataset``
``sampler``        ``BalancedSampler`` (PANNs' balanced sampling, DDP-aware)
``augment``        ``AugmentConfig``, ``WaveformAugment``, ``mixup``, ``spec_augment``
``distill``        ``DistillConfig``, ``TeacherLogits``, ``distillation_loss``
``loop``           ``Recipe``, ``load_recipe``, ``train``, ``evaluate_checkpoint``
``metrics``        ``tagging_metrics`` (mAP, AUC, d', accuracy; numpy/scipy)
=================  ===========================================================

Import the submodules; this package imports nothing itself, so the CLI can
load it lazily.
"""
