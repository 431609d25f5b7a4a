"""Phoneme transcriptions with espeak-ng: the labels of the codec's content CTC head and of its aligner.

The TTS frontend (``tts.frontend``) reads text through the same backend; it lives here, at the bottom of the
package graph, because the codec's content supervision needs phonemes too. espeak-ng reads numbers and common
abbreviations itself, so transcripts go in as they are.

CTC labels are IPA characters without stress marks (stress is prosody, not content), one symbol per character, and
no word boundaries: :data:`CTC_SYMBOLS` is the inventory (id = index + 1, blank = 0). :func:`phonemize_words`
keeps the words apart for the aligner.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

# IPA characters espeak-ng produces for English (and most European voices), plus stress/length/tie marks.
IPA = tuple(
    "abcdefhijklmnopqrstuvwxyzæçðøŋœɐɑɒɓɔɕɖɗɘəɚɛɜɝɞɟɠɡɢɣɤɥɦɧɨɪɫɬɭɮɯɰɱɲɳɴɵɶɸɹɺɻɽɾʀʁʂʃʄʈʉʊʋʌʍʎʏʐʑʒʔʕʘʙʛʜʝʟʡʢβθχᵻ"
) + ("ˈ", "ˌ", "ː", "ˑ", "ʰ", "ʲ", "ʷ", "ʼ", "\u0303", "\u0329", "\u032f", "\u0361")
STRESS = ("ˈ", "ˌ")
CTC_SYMBOLS: tuple[str, ...] = tuple(s for s in IPA if s not in STRESS)

_BACKENDS: dict[str, object] = {}


def _bundled_espeak() -> bool:
    """Point phonemizer at the espeak-ng library of the ``espeakng-loader`` wheel; False when it is not installed.

    The system library (``apt-get install espeak-ng``) is preferred — the shipped models were trained with it — and
    the wheel makes ``pip install`` alone enough on a machine without it (its espeak-ng 1.52 differs from Debian's
    1.51 in a few vowels of rare words).
    """
    try:
        import espeakng_loader
        from phonemizer.backend.espeak.wrapper import EspeakWrapper
    except ImportError:
        return False
    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
    return True


def espeak_backend(language: str):
    """The shared espeak-ng backend for ``language`` (created once per process).

    Uses the system's espeak-ng, else the one bundled by the ``espeakng-loader`` wheel.

    Raises:
        ValueError: espeak-ng (or the voice) is not installed — with the fix.
    """
    if language not in _BACKENDS:
        try:
            from phonemizer.backend import EspeakBackend

            quiet = logging.getLogger("tts.phonemizer")
            quiet.setLevel(logging.ERROR)
            options = dict(
                preserve_punctuation=True,
                with_stress=True,
                language_switch="remove-flags",
                words_mismatch="ignore",
                logger=quiet,
            )
            try:
                _BACKENDS[language] = EspeakBackend(language, **options)
            except RuntimeError:
                if not _bundled_espeak():
                    raise
                _BACKENDS[language] = EspeakBackend(language, **options)
        except (RuntimeError, ImportError) as exc:
            raise ValueError(
                f"the phoneme frontend needs espeak-ng with the {language!r} voice "
                f"(apt-get install espeak-ng, or pip install espeakng-loader phonemizer): {exc}"
            ) from None
    return _BACKENDS[language]


def phonemize_words(texts: Sequence[str], language: str = "en-us") -> list[list[tuple[str, list[int]]]]:
    """Per text, its words with their CTC symbol ids: ``[[(word, [ids]), ...], ...]``.

    Words are the whitespace-separated tokens of the text; each is phonemized on its own line of one batched call
    (so word boundaries are exact), and punctuation-only tokens are dropped. A word espeak gives no phoneme for
    keeps an empty id list.
    """
    from phonemizer.separator import Separator

    backend = espeak_backend(language)
    words = [[w for w in text.split() if any(ch.isalnum() for ch in w)] for text in texts]
    flat = [w for ws in words for w in ws]
    phones = backend.phonemize(flat, separator=Separator(phone="", word=" ", syllable=""), strip=True) if flat else []
    ids = {s: i + 1 for i, s in enumerate(CTC_SYMBOLS)}
    out, k = [], 0
    for ws in words:
        row = []
        for w in ws:
            row.append((w, [ids[ch] for ch in phones[k] if ch in ids]))
            k += 1
        out.append(row)
    return out


def phoneme_ids(texts: Sequence[str], language: str = "en-us") -> list[list[int]]:
    """Per text, the CTC symbol ids (1..len(CTC_SYMBOLS)) of its phonemes, words joined (one batched call).

    Raises:
        ValueError: espeak-ng is not installed.
    """
    from phonemizer.separator import Separator

    backend = espeak_backend(language)
    cleaned = [" ".join(text.split()) for text in texts]
    phones = backend.phonemize(cleaned, separator=Separator(phone="", word=" ", syllable=""), strip=True)
    ids = {s: i + 1 for i, s in enumerate(CTC_SYMBOLS)}
    return [[ids[ch] for ch in p if ch in ids] for p in phones]
