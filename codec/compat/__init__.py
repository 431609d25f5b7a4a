"""Compatibility with the U-Codec authors' code and formats.

- :mod:`codec.compat.config`: reading the authors' JSON5 model configs (:mod:`codec.compat.json5_lite`) into a
  :class:`codec.config.CodecConfig`;
- :mod:`codec.compat.convert`: converting their ``generator-*.pt`` checkpoints into a ucodec release;
- :mod:`codec.compat.hy_tokenizer`: :class:`HY_Tokenizer`, their flat int16 token API (also ``from codec import
  HY_Tokenizer``);
- :mod:`codec.compat.hy_store`: a token store exported to / imported from flat HY token files;
- :mod:`codec.compat.cli`: ``ucodec convert-original``, ``export-hy`` and ``import-hy``.

docs/original_checkpoints.md describes the formats.
"""
