"""U-Codec: the 5 Hz neural speech codec.

Public API: :class:`Codec` (encode/decode/streaming, releases), :class:`CodecConfig`, :class:`HY_Tokenizer` (the
authors' flat-token API), and audio I/O helpers. They are imported on first use, so that ``import codec.cli`` (what
``ucodec --help`` does) stays free of torch. The package layout is in docs/design.md.
"""

from __future__ import annotations

__all__ = ["Codec", "CodecConfig", "CodecOutput", "HY_Tokenizer", "load_audio", "save_audio"]

_HOMES = {
    "Codec": "codec.model",
    "CodecOutput": "codec.model",
    "CodecConfig": "codec.config",
    "HY_Tokenizer": "codec.compat.hy_tokenizer",
    "load_audio": "codec.audio",
    "save_audio": "codec.audio",
}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'codec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
