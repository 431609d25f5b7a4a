"""Global-local hierarchical TTS on top of the 5 Hz codec (see docs/design.md).

Public API: :class:`TTS` (``from_pretrained``, ``synthesize``, ``synthesize_batch``, ``stream``,
``save_pretrained``), :class:`TTSConfig`, :class:`TTSModel`. They are imported on first use, so ``import tts.cli``
(what ``ucodec --help`` does) stays free of torch.
"""

from __future__ import annotations

__all__ = ["TTS", "TTSConfig", "TTSModel"]

_HOMES = {"TTS": "tts.pipeline", "TTSConfig": "tts.config", "TTSModel": "tts.model"}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'tts' has no attribute {name!r}")
