"""What the codec and the TTS trainers share (the TTS trainer imports it from here; see docs/design.md).

- :mod:`codec.training.experiment`: the experiment directory (config.yaml, checkpoints, CSV logs), the learning-rate
  schedule and the stop flag;
- :mod:`codec.training.skeleton`: the common command-line arguments, the resume/prepare prologue and the export of a
  checkpoint.

The codec's own trainer is :mod:`codec.train` (with :mod:`codec.cli_train`); the TTS's is :mod:`tts.train`.
"""
