"""Text frontend: raw text → sentences → normalised text → symbols → ids from a table saved with the model.

Three kinds (``FrontendConfig.kind``):

- ``phoneme`` (default): espeak-ng through ``phonemizer``, IPA with stress marks; punctuation is kept as symbols
  because it carries prosody (pauses, questions). Each IPA character is one symbol, word boundaries are spaces.
- ``sentencepiece``: a unigram model trained from corpus text (:meth:`TextFrontend.train_sentencepiece`) for text
  without a phonemizer voice.
- ``char``: lower-cased letters and punctuation; needs nothing installed (tests, quick experiments).

Ids 0, 1, 2 are PAD, BOS, SEP for every kind. The symbol table is written next to the weights
(``frontend.json``, plus ``sentencepiece.model``), so a model always reads text the way it was trained.
Symbols the table does not know are dropped with one warning each, never a crash; text that is empty after
normalisation raises ``ValueError``. One espeak backend per language is created lazily and reused.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from codec.atomic import write_bytes_atomic, write_json_atomic
from codec.content.phonemes import IPA, espeak_backend  # noqa: F401  (espeak_backend: re-exported)
from tts.config import FrontendConfig
from tts.normalize import normalize_text, split_sentences

SPECIALS = ("<pad>", "<bos>", "<sep>")
FRONTEND_FILE = "frontend.json"
SPM_FILE = "sentencepiece.model"
PUNCTUATION = tuple(",.!?;:-'\"()")
LETTERS = tuple("abcdefghijklmnopqrstuvwxyzàáâäçèéêëìíîïñòóôöùúûüß")

_log = logging.getLogger(__name__)


def default_symbols(kind: str) -> list[str]:
    """The built-in table for ``phoneme`` / ``char`` (specials, space, punctuation, then the alphabet)."""
    alphabet = IPA if kind == "phoneme" else LETTERS
    return [*SPECIALS, " ", *PUNCTUATION, *alphabet]


class TextFrontend:
    """Text → ids for one model.

    Args:
        config: which kind, language and normalisation.
        symbols: the id table (default: :func:`default_symbols`; a loaded model passes its saved table).
        spm_model: serialized sentencepiece model (``kind == "sentencepiece"`` only).
    """

    def __init__(self, config: FrontendConfig, symbols: Sequence[str] | None = None, spm_model: bytes | None = None):
        self.config = config
        self._spm = None
        self._spm_bytes = spm_model
        if config.kind == "sentencepiece":
            if spm_model is None:
                raise ValueError("a sentencepiece frontend needs a trained model (TextFrontend.train_sentencepiece)")
            import sentencepiece as spm

            self._spm = spm.SentencePieceProcessor(model_proto=spm_model)
            pieces = [self._spm.id_to_piece(i) for i in range(self._spm.get_piece_size())]
            symbols = symbols or [*SPECIALS, *pieces]
        self.symbols = list(symbols or default_symbols(config.kind))
        if tuple(self.symbols[:3]) != SPECIALS:
            raise ValueError(f"a symbol table must start with {list(SPECIALS)}, got {self.symbols[:3]}")
        self.ids = {s: i for i, s in enumerate(self.symbols)}
        self._warned: set[str] = set()

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    # ------------------------------------------------------------------------------------------ text → pieces
    def normalize(self, text: str) -> str:
        """Expand numbers, money, abbreviations ... (when ``config.normalize``) and collapse whitespace."""
        return normalize_text(text) if self.config.normalize else " ".join(text.split())

    def split(self, text: str, allow_empty: bool = False) -> list[str]:
        """Normalised, cleaned sentences of ``text`` (each at most ``max_sentence_chars`` long where possible).

        Raises:
            ValueError: nothing speakable is left (unless ``allow_empty``: then the list is empty).
        """
        pieces = split_sentences(text, self.config.max_sentence_chars, normalize=self.config.normalize)
        sentences = [s for s in (self.clean(p) for p in pieces) if self._speakable(s)]
        if not sentences and not allow_empty:
            raise ValueError(f"text is empty after normalisation: {text[:80]!r}")
        return sentences

    def clean(self, text: str) -> str:
        """Drop characters no frontend can speak (anything but Latin letters, digits, spaces and
        ``PUNCTUATION``), with one warning per new character, and collapse spaces."""
        kept, dropped = [], []
        for ch in text:
            if ch.isspace() or ch in PUNCTUATION or (ch.isalnum() and ord(ch) < 0x250):
                kept.append(ch)
            else:
                kept.append(" ")
                dropped.append(ch)
        unknown = sorted(set(dropped) - self._warned)
        if unknown:
            self._warned.update(unknown)
            warnings.warn(f"dropped characters that cannot be spoken: {unknown} (in {text[:40]!r})", stacklevel=3)
        return " ".join("".join(kept).split())

    @staticmethod
    def _speakable(text: str) -> bool:
        return any(ch.isalnum() for ch in text)

    def symbolize(self, texts: Sequence[str]) -> list[list[str]]:
        """Normalised texts → symbol lists (one phonemizer call for the whole batch)."""
        kind = self.config.kind
        if kind == "phoneme":
            from phonemizer.separator import Separator

            backend = espeak_backend(self.config.language)
            outs = backend.phonemize(list(texts), separator=Separator(phone="", word=" ", syllable=""), strip=True)
            return [list(" ".join(out.split())) for out in outs]
        if kind == "char":
            return [list(" ".join(t.lower().split())) for t in texts]
        return [self._spm.encode(t, out_type=str) for t in texts]

    # ------------------------------------------------------------------------------------------ ids
    def encode_batch(self, texts: Sequence[str], normalized: bool = False) -> list[list[int]]:
        """Ids for each text (no BOS/SEP; :mod:`tts.batch` adds them).

        Raises:
            ValueError: a text has no speakable symbol after normalisation (the message quotes it).
        """
        prepared = [self.clean(t if normalized else self.normalize(t)) for t in texts]
        for raw, t in zip(texts, prepared, strict=True):
            if not self._speakable(t):
                raise ValueError(f"text is empty after normalisation: {raw[:80]!r}")
        out = []
        for raw, symbols in zip(texts, self.symbolize(prepared), strict=True):
            ids = [self.ids[s] for s in symbols if s in self.ids]
            unknown = sorted({s for s in symbols if s not in self.ids} - self._warned)
            if unknown:
                self._warned.update(unknown)
                warnings.warn(f"dropped symbols the model does not know: {unknown} (in {raw[:40]!r})", stacklevel=2)
            if not any(self.symbols[i].strip() and self.symbols[i] not in PUNCTUATION for i in ids):
                raise ValueError(f"text is empty after normalisation: {raw[:80]!r}")
            out.append(ids)
        return out

    def encode(self, text: str, normalized: bool = False) -> list[int]:
        """Ids of one text; see :meth:`encode_batch`."""
        return self.encode_batch([text], normalized=normalized)[0]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids → symbol string (for inspection)."""
        return "".join(self.symbols[i] for i in ids if i >= len(SPECIALS))

    # ------------------------------------------------------------------------------------------ files
    def save(self, out_dir: str | os.PathLike) -> None:
        """Write ``frontend.json`` (kind, language, symbol table) and the sentencepiece model if any."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if self._spm_bytes is not None:
            write_bytes_atomic(out / SPM_FILE, self._spm_bytes)
        write_json_atomic(
            out / FRONTEND_FILE, {"kind": self.config.kind, "language": self.config.language, "symbols": self.symbols}
        )

    @classmethod
    def load(cls, directory: str | os.PathLike, config: FrontendConfig) -> TextFrontend:
        """Read the table saved by :meth:`save`.

        Raises:
            FileNotFoundError: ``frontend.json`` (or the sentencepiece model) is missing.
            ValueError: unreadable, or its kind disagrees with ``config``.
        """
        root = Path(directory)
        path = root / FRONTEND_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{root}: {FRONTEND_FILE} (the text frontend's symbol table) is missing")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            symbols, kind = list(data["symbols"]), data["kind"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a frontend table ({exc})") from None
        if kind != config.kind:
            raise ValueError(f"{path}: frontend kind {kind!r} differs from the config's {config.kind!r}")
        spm_bytes = None
        if kind == "sentencepiece":
            if not (root / SPM_FILE).is_file():
                raise FileNotFoundError(f"{root}: {SPM_FILE} is missing")
            spm_bytes = (root / SPM_FILE).read_bytes()
        return cls(config, symbols, spm_bytes)

    @classmethod
    def train_sentencepiece(cls, texts: Iterable[str], config: FrontendConfig) -> TextFrontend:
        """Train a unigram sentencepiece model on (normalised) corpus text and return a frontend using it.

        ``hard_vocab_limit`` is off, so a small corpus yields a smaller vocabulary instead of an error.
        """
        import io

        import sentencepiece as spm

        prepared = [normalize_text(t) if config.normalize else t for t in texts]
        prepared = [t for t in prepared if t.strip()]
        if not prepared:
            raise ValueError("cannot train a sentencepiece model on empty text")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(prepared),
            model_writer=model,
            vocab_size=config.sentencepiece_vocab_size,
            model_type="unigram",
            character_coverage=1.0,
            hard_vocab_limit=False,
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            minloglevel=2,
        )
        return cls(config, spm_model=model.getvalue())
