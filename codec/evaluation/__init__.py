"""Offline evaluation and benchmarks for the codec and the TTS (extras ``[eval]`` and ``[bench]``).

- :mod:`codec.evaluation.metrics`: PESQ-WB, STOI/ESTOI, mel distance, and the model-based metrics (WER/CER with
  Whisper tiny.en, speaker similarity, DNSMOS), each model loaded once per process;
- :mod:`codec.evaluation.codec_eval` / :mod:`codec.evaluation.tts_eval`: ``ucodec eval codec`` / ``eval tts``;
- :mod:`codec.evaluation.bench`: ``ucodec bench codec`` against EnCodec and SNAC.

Importing the package is cheap: optional dependencies are imported on first use (:mod:`codec.evaluation.extras`).
"""
