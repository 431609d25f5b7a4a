"""U-Codec: the 5 Hz neural speech codec.

Public API: :class:`Codec` (encode/decode/streaming, releases), :class:`CodecConfig`, :class:`HY_Tokenizer` (the
authors' flat-token API), and audio I/O helpers.
"""

from codec.audio import load_audio, save_audio
from codec.config import CodecConfig
from codec.hy_tokenizer import HY_Tokenizer
from codec.model import Codec, CodecOutput

__all__ = ["Codec", "CodecConfig", "CodecOutput", "HY_Tokenizer", "load_audio", "save_audio"]
