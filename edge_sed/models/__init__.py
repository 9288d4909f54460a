"""The torch model zoo (the ``[train]`` extra): PANNs-compatible taggers built from
shared blocks and architecture tables.

- :mod:`~edge_sed.models.registry`: ``MODELS``, ``model_names()``, ``build_model()``
- :mod:`~edge_sed.models.frontend`: ``TorchLogMel``, the torch twin of ``edge_sed.frontend.LogMel``
- :mod:`~edge_sed.models.tagger`: ``SoundTagger``, the one model class
- :mod:`~edge_sed.models.blocks`, :mod:`~edge_sed.models.panns`, :mod:`~edge_sed.models.mobilenet`:
  blocks and architecture tables

Import the submodules directly; importing this package does not import torch.
"""
