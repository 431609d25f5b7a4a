"""Offline evaluation and benchmarks of the codec, and the metrics the TTS evaluation shares (extras ``[eval]`` and
``[bench]``).

- shared metrics, each in a leaf module and each model loaded once per process: :mod:`codec.evaluation.metrics`
  (PESQ-WB, STOI/ESTOI, mel distance), :mod:`codec.evaluation.asr` and :mod:`codec.evaluation.wer` (WER/CER with
  Whisper tiny.en), :mod:`codec.evaluation.speaker` (SIM), :mod:`codec.evaluation.dnsmos` (DNSMOS);
  :mod:`codec.evaluation.scoring` runs a chosen set of them;
- :mod:`codec.evaluation.codec_eval`: ``ucodec eval codec``; :mod:`codec.evaluation.bench`: ``ucodec bench codec``
  against EnCodec and SNAC.

The TTS evaluation lives in :mod:`tts.evaluation` and imports from here, never the other way.
Importing the package is cheap: optional dependencies are imported on first use (:mod:`codec.evaluation.extras`).
"""
