"""Public-domain English text for the synthetic corpus, cut into utterance-sized pieces.

Two Debian packages provide it: ``bible-kjv`` (the King James Bible, read with ``bible -f``) and ``fortunes``
(``/usr/share/games/fortunes``). Every piece is plain ASCII without digits, so that all engines read the same words
and the manifest transcript is exactly what was spoken. Pieces hold 4 to 30 words, which at the engines' speaking
rates (2 to 3.5 words/s) lands inside the corpus' 1.5 to 15 s window; the few outliers are dropped after synthesis.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BIBLE_RANGE = "Ge1:1-Re22:21"  # the whole book, Genesis to Revelation
FORTUNE_DIR = Path("/usr/share/games/fortunes")
FORTUNE_SKIP = {"art", "ascii-art", "linux", "linuxcookie", "perl", "computers", "debian", "pets", "startrek"}
MIN_WORDS = 4
MAX_WORDS = 30
_BAD_CHARS = re.compile(r"[^A-Za-z ,.;:!?'\-()\"]")  # digits and symbols: engines would read them differently
_CLAUSE_END = re.compile(r"(?<=[.!?;:,])\s+")
_REF = re.compile(r"^\S+\d+:\d+\s+")


@dataclass(frozen=True)
class Sentence:
    """One piece of text to be read as one utterance."""

    text: str  # what the engine reads and the manifest stores
    source: str  # where it came from (``kjv:Ge1:1`` or ``fortunes:<file>``), for the report


def normalize(text: str) -> str | None:
    """ASCII-only, whitespace-collapsed text with all-caps words in title case; ``None`` when unusable."""
    text = text.replace("`", "'").replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    text = text.replace("\u201d", '"').replace("--", ", ").replace("_", " ")
    text = " ".join(text.split())
    if not text or _BAD_CHARS.search(text):
        return None
    # KJV writes LORD; engines would spell out an all-caps word letter by letter
    text = re.sub(r"\b([A-Z])([A-Z]+)\b", lambda m: m.group(1) + m.group(2).lower(), text)
    text = text.replace('"', "").replace("(", "").replace(")", "")
    text = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(text.split()))  # "said , unto" -> "said, unto"
    text = re.sub(r"([,;:])[,;:]+", r"\1", text).strip(" ,;:-")
    if not re.search(r"[A-Za-z]", text):
        return None
    if text[-1] not in ".!?":
        text += "."
    return text[0].upper() + text[1:]


def chunk(text: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> list[str]:
    """Cut ``text`` at clause boundaries into pieces of ``min_words`` to ``max_words`` words.

    Clauses are packed greedily; a clause longer than ``max_words`` is cut at word boundaries; a short tail is
    merged into the previous piece when that keeps it under ``max_words + min_words``, else dropped.
    """
    clauses: list[list[str]] = []
    for clause in _CLAUSE_END.split(text.strip()):
        words = clause.split()
        while len(words) > max_words:
            clauses.append(words[:max_words])
            words = words[max_words:]
        if words:
            clauses.append(words)
    pieces: list[list[str]] = []
    current: list[str] = []
    for words in clauses:
        if current and len(current) + len(words) > max_words:
            pieces.append(current)
            current = []
        current = current + words
    if current:
        pieces.append(current)
    out: list[list[str]] = []
    for words in pieces:
        if len(words) >= min_words:
            out.append(words)
        elif out and len(out[-1]) + len(words) <= max_words + min_words:
            out[-1] = out[-1] + words
    return [normalize(" ".join(w)) or "" for w in out if normalize(" ".join(w))]


def bible_sentences(bible_range: str = BIBLE_RANGE) -> list[Sentence]:
    """The KJV verses in ``bible_range`` cut into pieces (needs the ``bible`` program from ``bible-kjv``).

    Raises:
        FileNotFoundError: ``bible`` is not installed.
    """
    exe = shutil.which("bible")
    if exe is None:
        raise FileNotFoundError("the `bible` program is missing: apt-get install bible-kjv")
    out = subprocess.run([exe, "-f", bible_range], capture_output=True, text=True, check=True).stdout
    sentences = []
    for line in out.splitlines():
        ref = line.split(" ", 1)[0]
        verse = _REF.sub("", line)
        for piece in chunk(verse):
            sentences.append(Sentence(piece, f"kjv:{ref}"))
    return sentences


def fortune_sentences(directory: Path = FORTUNE_DIR) -> list[Sentence]:
    """Fortunes (one cookie = one text, attribution lines dropped) cut into pieces; empty if not installed."""
    sentences = []
    if not directory.is_dir():
        return sentences
    for path in sorted(directory.iterdir()):
        if path.suffix or path.name in FORTUNE_SKIP or not path.is_file():
            continue
        raw = path.read_text(encoding="utf-8", errors="replace")
        for cookie in raw.split("\n%\n"):
            lines = [ln for ln in cookie.splitlines() if not ln.strip().startswith("--")]
            # indented or tabbed lines are poems, dialogues or ASCII drawings: too irregular to read aloud
            if any(ln.startswith(("\t", "    ")) for ln in lines):
                continue
            text = normalize(" ".join(lines))
            if text is None:
                continue
            for piece in chunk(text):
                sentences.append(Sentence(piece, f"fortunes:{path.name}"))
    return sentences


@functools.cache
def load_sentences() -> list[Sentence]:
    """All pieces: the Bible first, then the fortunes; duplicates (same text) kept once, order preserved."""
    seen: set[str] = set()
    out = []
    for s in bible_sentences() + fortune_sentences():
        if s.text not in seen:
            seen.add(s.text)
            out.append(s)
    return out
