"""LJSpeech: ``ROOT/metadata.csv`` (``ID|raw text|normalized text``) and ``ROOT/wavs/ID.wav``; one speaker, ``LJ``."""

from __future__ import annotations

import csv
from pathlib import Path

from recipes.prepare.runner import Candidate
from recipes.prepare.scan import Scan

SPEAKER = "LJ"
PART = "ljspeech"


def scan(src: Path) -> Scan:
    """Scan an LJSpeech root.

    Raises:
        FileNotFoundError: ``metadata.csv`` is missing (not an LJSpeech tree).
    """
    meta = src / "metadata.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} not found: an LJSpeech root holds metadata.csv and wavs/")
    texts: dict[str, str] = {}
    problems: list[str] = []
    with open(meta, encoding="utf-8", errors="replace", newline="") as fh:
        # QUOTE_NONE: the transcripts contain bare double quotes that are part of the text
        for lineno, row in enumerate(csv.reader(fh, delimiter="|", quoting=csv.QUOTE_NONE), 1):
            if not row or not row[0].strip():
                continue
            if len(row) < 2:
                problems.append(f"{meta}:{lineno}: expected ID|text|normalized text, got {'|'.join(row)!r}")
                continue
            # the normalised column spells out numbers and abbreviations; fall back to the raw text without it
            text = row[2] if len(row) > 2 and row[2].strip() else row[1]
            texts[row[0].strip()] = text
    wavs = {p.stem: p for p in (src / "wavs").glob("*.wav")}
    cands = [
        Candidate(id=utt_id, speaker=SPEAKER, audio=wavs.get(utt_id), text=texts.get(utt_id))
        for utt_id in sorted(set(wavs) | set(texts))
    ]
    return Scan({PART: cands}, {PART: problems})
