"""Evaluation and benchmarks of the TTS model (extras ``[eval]``), built on the shared metrics of
:mod:`codec.evaluation`.

- :mod:`tts.evaluation.evaluate` / :mod:`tts.evaluation.report`: ``ucodec eval tts`` (zero-shot WER, SIM, DNSMOS, RTF);
- :mod:`tts.evaluation.alignment`: ``ucodec eval tts-align`` (does the global model's attention follow the text?);
- :mod:`tts.evaluation.oracle`: ``ucodec eval tts-oracle`` (WER with the recording's first K RVQ layers forced);
- :mod:`tts.evaluation.bench` / :mod:`tts.evaluation.bench_report`: ``ucodec bench tts`` (generation speed);
- :mod:`tts.evaluation.cli`: those verbs.

Importing the package is cheap; heavy imports happen in the handlers.
"""
