"""LibriSpeech: ``ROOT/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``.

Transcripts are one file per chapter, ``<speaker>-<chapter>.trans.txt``, one ``ID TEXT`` line per utterance.
``SRC_DIR`` may be the corpus root holding the subsets or a single subset; every subset becomes one manifest.
"""

from __future__ import annotations

from pathlib import Path

from recipes.prepare.runner import Candidate
from recipes.prepare.scan import Scan, subset_dirs


def scan_subset(subset: Path) -> tuple[list[Candidate], list[str]]:
    """Candidates of one subset directory (``<speaker>/<chapter>/*.flac`` + ``*.trans.txt``)."""
    cands: list[Candidate] = []
    problems: list[str] = []
    for chapter in sorted(p for p in subset.glob("*/*") if p.is_dir()):
        speaker = chapter.parent.name
        audio = {p.stem: p for p in chapter.iterdir() if p.suffix.lower() in (".flac", ".wav")}
        texts: dict[str, str] = {}
        for trans in sorted(chapter.glob("*.trans.txt")):
            lines = trans.read_text(encoding="utf-8", errors="replace").splitlines()
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                utt_id, _, text = line.strip().partition(" ")
                if utt_id in texts:
                    problems.append(f"{trans}:{lineno}: {utt_id} transcribed twice (the first line is used)")
                    continue
                texts[utt_id] = text
        for utt_id in sorted(set(audio) | set(texts)):
            cands.append(Candidate(id=utt_id, speaker=speaker, audio=audio.get(utt_id), text=texts.get(utt_id)))
    return cands, problems


def scan(src: Path) -> Scan:
    """Scan a LibriSpeech root or subset directory."""
    parts: dict[str, list[Candidate]] = {}
    problems: dict[str, list[str]] = {}
    for subset in subset_dirs(src, depth=3, pattern="*.trans.txt"):
        parts[subset.name], problems[subset.name] = scan_subset(subset)
    return Scan(parts, problems)
