"""Word and character error rates, with the text normalisation that makes them fair.

WER is only meaningful when the reference and the ASR output are written the same way: Whisper writes "23",
"Mr." and "don't", a corpus may write "twenty-three", "Mister" and "dont". :func:`normalize_text` maps both to one
spoken form: lower case, numbers as words (cardinals, ordinals, decimals, years, currency, percent), common titles
expanded, apostrophes dropped, hyphens and other punctuation turned into spaces, hesitation fillers removed.
Corpus-level rates are sums of edits over sums of reference lengths (:class:`ErrorCount` adds up), never a mean of
per-utterance rates, which would over-weight short utterances.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                      "nine": "ninth", "twelve": "twelfth"}  # fmt: skip
_TITLES = {"mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "prof": "professor", "jr": "junior",
           "sr": "senior", "st": "saint", "vs": "versus", "etc": "et cetera"}  # fmt: skip
_CURRENCY = {"$": ("dollar", "dollars"), "£": ("pound", "pounds"), "€": ("euro", "euros")}
_FILLERS = {"uh", "um", "uhm", "er", "ah", "hmm", "mm", "mhm"}
_SCALE_WORDS = {"hundred"} | {name for _, name in _SCALES}
_SMALL_NUMBER_WORDS = set(_ONES[1:]) | set(_TENS[2:])
_MAX_NUMBER = 10**15  # longer digit strings (phone numbers, ids) are read digit by digit
_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def number_to_words(n: int) -> str:
    """Cardinal English words for a non-negative integer, without "and": ``105 -> "one hundred five"``."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for scale, name in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return number_to_words(high) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError(n)


def ordinal_to_words(n: int) -> str:
    """Ordinal English words: ``21 -> "twenty first"``, ``100 -> "one hundredth"``."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def year_to_words(n: int) -> str:
    """How a year is read: ``1999 -> "nineteen ninety nine"``, ``1900 -> "nineteen hundred"``, ``2024 -> "twenty
    twenty four"``; 2000..2009 are read as cardinals ("two thousand five")."""
    if 2000 <= n <= 2009:
        return number_to_words(n)
    high, low = divmod(n, 100)
    if low == 0:
        return number_to_words(high) + " hundred"
    return number_to_words(high) + (" oh " if low < 10 else " ") + number_to_words(low)


def _digits(text: str) -> str:
    n = int(text)
    return number_to_words(n) if len(text) < 16 and n < _MAX_NUMBER else " ".join(_ONES[int(c)] for c in text)


def _expand_numbers(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000,000 -> 1000000
    for symbol, (one, many) in _CURRENCY.items():
        text = re.sub(
            re.escape(symbol) + r"(\d+(?:\.\d+)?)",
            lambda m, o=one, p=many: m[1] + " " + (o if m[1] == "1" else p),
            text,
        )
    text = re.sub(r"(\d)\s*%", r"\1 percent", text)
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", lambda m: ordinal_to_words(int(m[1])), text)
    text = re.sub(
        r"\b(\d+)\.(\d+)\b", lambda m: _digits(m[1]) + " point " + " ".join(_ONES[int(c)] for c in m[2]), text
    )
    text = re.sub(
        r"\b(1[1-9]\d\d|20\d\d)\b(?!\s*(?:percent|dollars?|pounds?|euros?)\b)", lambda m: year_to_words(int(m[1])), text
    )
    return re.sub(r"\d+", lambda m: " " + _digits(m[0]) + " ", text)


def normalize_text(text: str) -> str:
    """Normalise English text for WER scoring (see the module docstring for the rules).

    Examples:
        ``"Mr. Smith paid $5 on the 21st, didn't he?"`` → ``"mister smith paid five dollars on the twenty first
        didnt he"``.
    """
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE).lower()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))  # café -> cafe
    text = text.replace("&", " and ")
    text = _expand_numbers(text)
    text = re.sub(r"\b(" + "|".join(_TITLES) + r")\b\.?", lambda m: _TITLES[m[1]], text)
    text = re.sub(r"(?<=\w)'(?=\w)|'", "", text)  # don't -> dont; quotes and possessive apostrophes vanish
    text = re.sub(r"[^\w\s]|_", " ", text)  # hyphens and all other punctuation separate words
    words = [w for w in text.split() if w not in _FILLERS]
    # "one hundred and five" (British reading) == "one hundred five" (our expansion of 105)
    out: list[str] = []
    for i, w in enumerate(words):
        after_scale = out and out[-1] in _SCALE_WORDS
        if w == "and" and after_scale and i + 1 < len(words) and words[i + 1] in _SMALL_NUMBER_WORDS:
            continue
        out.append(w)
    return " ".join(out)


@dataclass(frozen=True)
class ErrorCount:
    """Edit distance of a hypothesis against a reference; add counts to get corpus-level rates."""

    errors: int  # substitutions + deletions + insertions
    length: int  # reference length (words for WER, characters for CER)

    @property
    def rate(self) -> float:
        """``errors / length``; 0.0 for an empty reference matched exactly, ``errors`` when the reference is empty."""
        return self.errors / self.length if self.length else float(self.errors)

    def __add__(self, other: ErrorCount) -> ErrorCount:
        return ErrorCount(self.errors + other.errors, self.length + other.length)


def edit_distance(reference: list[str] | str, hypothesis: list[str] | str) -> int:
    """Levenshtein distance (unit costs) between two token sequences; O(len(ref) * len(hyp)) time, O(len(hyp))
    memory."""
    previous = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def wer(reference: str, hypothesis: str, normalize: bool = True) -> ErrorCount:
    """Word errors of ``hypothesis`` against ``reference`` (both normalised first unless ``normalize=False``)."""
    if normalize:
        reference, hypothesis = normalize_text(reference), normalize_text(hypothesis)
    ref, hyp = reference.split(), hypothesis.split()
    return ErrorCount(edit_distance(ref, hyp), len(ref))


def cer(reference: str, hypothesis: str, normalize: bool = True) -> ErrorCount:
    """Character errors (spaces count as characters, runs of whitespace as one) of ``hypothesis``."""
    if normalize:
        reference, hypothesis = normalize_text(reference), normalize_text(hypothesis)
    ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    return ErrorCount(edit_distance(ref, hyp), len(ref))
