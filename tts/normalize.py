"""English text normalisation: what a reader says for numbers, money, ordinals, times, years and abbreviations.

``normalize_text("Dr. Smith paid $3.50 on May 1st, 1999 at 3:30.")`` →
``"Doctor Smith paid three dollars and fifty cents on May first, nineteen ninety-nine at three thirty."``

The rules are ordered from the most specific pattern to the least (money before decimals before plain numbers), and
each one consumes its match, so a number is read once. Everything here is pure string work with no dependencies;
characters outside what the frontends can speak are left for :mod:`tts.frontend` to report and drop.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}  # fmt: skip

# Abbreviations that end in a period and are read as a word. Case-sensitive where the lower-case form is a word.
_ABBREVIATIONS = {
    "Mr.": "mister", "Mrs.": "missus", "Ms.": "miz", "Dr.": "doctor", "Prof.": "professor", "Jr.": "junior",
    "Sr.": "senior", "Capt.": "captain", "Gen.": "general", "Lt.": "lieutenant", "Col.": "colonel",
    "Sgt.": "sergeant", "Rev.": "reverend", "Hon.": "honorable", "Gov.": "governor", "Sen.": "senator",
    "Rep.": "representative", "Mt.": "mount", "Ft.": "fort", "Ave.": "avenue", "Blvd.": "boulevard",
    "Rd.": "road", "Jan.": "January", "Feb.": "February", "Mar.": "March", "Apr.": "April", "Aug.": "August",
    "Sept.": "September", "Sep.": "September", "Oct.": "October", "Nov.": "November", "Dec.": "December",
    "Co.": "company", "Corp.": "corporation", "Inc.": "incorporated", "Ltd.": "limited", "Dept.": "department",
    "vs.": "versus", "etc.": "et cetera", "e.g.": "for example", "i.e.": "that is", "approx.": "approximately",
    "a.m.": "a m", "p.m.": "p m", "vol.": "volume", "ch.": "chapter",
}  # fmt: skip
_SYMBOLS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "%": " percent ", "#": " number "}
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", "sen", "sen")}  # fmt: skip
_PUNCT_MAP = {"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'", "–": "-", "—": ", ", "…": "...",
              "«": '"', "»": '"', "\u00a0": " "}  # fmt: skip


def number_to_words(n: int) -> str:
    """Cardinal English words: ``1234 -> "one thousand two hundred thirty-four"``; negative numbers get "minus";
    numbers of 10**15 and more are read digit by digit."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= 10**15:
        return digits_to_words(str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            words = f"{number_to_words(head)} {name}"
            return words + (f" {number_to_words(rest)}" if rest else "")
    raise AssertionError(n)  # unreachable: every n >= 100 has a scale


def digits_to_words(digits: str) -> str:
    """``"0451" -> "zero four five one"``."""
    return " ".join(_ONES[int(d)] for d in digits if d.isdigit())


def ordinal_to_words(n: int) -> str:
    """``21 -> "twenty-first"``, ``100 -> "one hundredth"``."""
    words = number_to_words(n)
    head, sep, last = words.rpartition("-") if "-" in words.split(" ")[-1] else words.rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year_to_words(year: int) -> str:
    """Years as they are spoken: 1999 → nineteen ninety-nine, 1900 → nineteen hundred, 2005 → two thousand five,
    2024 → twenty twenty-four."""
    if 2000 <= year <= 2009 or year % 1000 == 0:
        return number_to_words(year)
    high, low = divmod(year, 100)
    if low == 0:
        return f"{number_to_words(high)} hundred"
    return f"{number_to_words(high)} {'oh ' if low < 10 else ''}{number_to_words(low)}"


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _money(match: re.Match) -> str:
    one, many, cent, cents = _CURRENCIES[match.group("cur")]
    whole, frac, scale = match.group("whole"), match.group("frac"), match.group("scale")
    if scale:  # "$2.5 million" -> "two point five million dollars"
        amount = _decimal_words(whole, frac) if frac else number_to_words(_int(whole))
        return f"{amount} {scale} {many}"
    n = _int(whole)
    words = f"{number_to_words(n)} {one if n == 1 else many}"
    if frac:
        c = int(frac.ljust(2, "0")[:2])
        if c:
            words = (
                f"{words} and {number_to_words(c)} {cent if c == 1 else cents}"
                if n
                else f"{number_to_words(c)} {cent if c == 1 else cents}"
            )
    return words


def _decimal_words(whole: str, frac: str) -> str:
    return f"{number_to_words(_int(whole))} point {digits_to_words(frac)}"


def _time(match: re.Match) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute == 0:
        return f"{number_to_words(hour)} o'clock"
    return f"{number_to_words(hour)} {'oh ' if minute < 10 else ''}{number_to_words(minute)}"


def _plain_number(match: re.Match) -> str:
    text = match.group(0)
    if "," not in text and len(text) == 4 and 1100 <= int(text) <= 2099:
        return year_to_words(int(text))
    if len(text) > 1 and text.startswith("0") and "," not in text:
        return digits_to_words(text)  # codes like "007" are read digit by digit
    return number_to_words(_int(text))


def _decade(match: re.Match) -> str:
    words = year_to_words(int(match.group(1)))  # "1990s" -> "nineteen nineties"
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"
_RULES: list[tuple[re.Pattern, object]] = [
    (
        re.compile(
            rf"(?P<cur>[$£€¥])\s?(?P<whole>{_NUMBER})(?:\.(?P<frac>\d+))?"
            r"(?:\s(?P<scale>thousand|million|billion|trillion)\b)?"
        ),
        _money,
    ),
    (re.compile(r"\b(\d{1,2}):(\d{2})\b"), _time),
    (re.compile(r"\b(\d{4})s\b"), _decade),
    (re.compile(rf"\b({_NUMBER})(st|nd|rd|th)\b", re.IGNORECASE), lambda m: ordinal_to_words(_int(m.group(1)))),
    (re.compile(r"(?<![\w.])-(?=\d)"), lambda m: "minus "),
    (re.compile(rf"\b({_NUMBER})\.(\d+)\b"), lambda m: _decimal_words(m.group(1), m.group(2))),
    (re.compile(rf"\b({_NUMBER})\s?-\s?(?=\d)"), lambda m: f"{m.group(1)} to "),
    (re.compile(rf"\b(?:{_NUMBER})\b"), _plain_number),
]
_ABBREV_RE = re.compile(
    r"(?<![\w.])("
    + "|".join(re.escape(a) for a in sorted(_ABBREVIATIONS, key=len, reverse=True))
    + r")(?=\s|$|[,;:!?])"
)


def _abbreviation(match: re.Match) -> str:
    abbreviation, word = match.group(1), _ABBREVIATIONS[match.group(1)]
    # "Mr." -> "Mister": a capital keeps a following sentence boundary detectable by split_sentences
    return word[:1].upper() + word[1:] if abbreviation[:1].isupper() else word


def normalize_text(text: str) -> str:
    """Expand what a reader would say; collapse whitespace. Sentence punctuation is kept (it carries prosody).

    Args:
        text: raw English text.

    Returns:
        The normalised text (may be empty; the frontend decides whether that is an error).
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(_PUNCT_MAP.get(ch, ch) for ch in text)
    text = _ABBREV_RE.sub(_abbreviation, text)
    text = re.sub(r"\b[Nn]o\.\s?(?=\d)", "number ", text)  # "No. 5"; a sentence-final "no." stays a word
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)  # "word ," -> "word,"
    return re.sub(r"\s+", " ", text).strip()


_BOUNDARY = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9$£€¥])")
_NOT_AN_END = re.compile(
    r"(?:\b[A-Z]|" + "|".join(r"\b" + re.escape(a[:-1]) for a in _ABBREVIATIONS if a[0].isupper()) + r")\.$"
)


def sentence_ends(text: str) -> list[tuple[int, int]]:
    """``(end, next start)`` of every sentence boundary of raw ``text``: after ``. ! ?`` (and a closing quote or
    bracket), before whitespace and a capital or digit. A period after a title abbreviation ("Dr.") or an initial
    ("J.") is not a sentence end, nor "No." before a number."""
    ends, start = [], 0
    for match in _BOUNDARY.finditer(text):
        before = text[start : match.start()]
        if _NOT_AN_END.search(before) or (re.search(r"\b[Nn]o\.$", before) and text[match.end()].isdigit()):
            continue
        ends.append((match.start(), match.end()))
        start = match.end()
    return ends


def split_sentences(text: str, max_chars: int = 300, normalize: bool = True) -> list[str]:
    """Split raw text into sentences (:func:`sentence_ends`), normalise each (optional), and split any longer than
    ``max_chars`` at ``, ; :`` and finally at spaces, so no piece is longer than ``max_chars`` unless it is one long
    word.

    Splitting happens before normalisation because normalised text loses the capitals ("12 dogs" -> "twelve dogs")
    that mark sentence starts.
    """
    sentences, start = [], 0
    for end, after in sentence_ends(text):
        sentences.append(text[start:end])
        start = after
    sentences.append(text[start:])
    out: list[str] = []
    for sentence in sentences:
        sentence = normalize_text(sentence) if normalize else " ".join(sentence.split())
        if sentence:
            out.extend(_split_long(sentence, max_chars))
    return out


def take_complete_sentences(text: str) -> tuple[str, str]:
    """Streamed raw text → ``(complete, rest)``: ``complete`` ends at the last sentence boundary, ``rest`` (which
    may still grow) follows it. A sentence counts as complete once the next one has begun, since a boundary needs
    the next sentence's first character. ``split_sentences`` of the parts gives the sentences of the whole."""
    ends = sentence_ends(text)
    if not ends:
        return "", text
    end, after = ends[-1]
    return text[:end], text[after:]


def complete_parts(pieces: Iterable[str]) -> Iterator[str]:
    """Join streamed text pieces and yield the text of each run of complete sentences as soon as it is known to be
    complete (:func:`take_complete_sentences`), then the rest when the pieces end.

    Raises:
        ValueError: a piece that is not a string.
    """
    buffer = ""
    for piece in pieces:
        if not isinstance(piece, str):
            raise ValueError(f"text pieces must be strings, got {type(piece).__name__}")
        done, buffer = take_complete_sentences(buffer + piece)
        if done:
            yield done
    if buffer.strip():
        yield buffer


def _split_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    for pattern in (r"(?<=[,;:])\s+", r"\s+"):
        parts = re.split(pattern, sentence)
        if len(parts) == 1:
            continue
        pieces, current = [], ""
        for part in parts:
            candidate = f"{current} {part}".strip()
            if current and len(candidate) > max_chars:
                pieces.append(current)
                current = part
            else:
                current = candidate
        pieces.append(current)
        return [p for piece in pieces for p in _split_long(piece, max_chars)] if pattern != r"\s+" else pieces
    return [sentence]
