"""LibriTTS and LibriTTS-R: ``ROOT/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<p>_<s>.wav``.

Each wav has its transcript beside it as ``<stem>.normalized.txt`` (used) and ``<stem>.original.txt`` (the fallback
when the normalised one is missing). LibriTTS-R has the same layout and naming. ``SRC_DIR`` may be the corpus root
holding the subsets (``train-clean-100``, ``dev-clean``, ...) or a single subset directory; every subset becomes one
manifest named after it.
"""

from __future__ import annotations

from pathlib import Path

from recipes.prepare.runner import Candidate, read_text
from recipes.prepare.scan import Scan, subset_dirs

SUFFIXES = (".normalized.txt", ".original.txt")


def scan_subset(subset: Path) -> tuple[list[Candidate], list[str]]:
    """Candidates of one subset directory (``<speaker>/<chapter>/*.wav``)."""
    cands: list[Candidate] = []
    problems: list[str] = []
    for chapter in sorted(p for p in subset.glob("*/*") if p.is_dir()):
        speaker = chapter.parent.name
        wavs = {p.stem: p for p in chapter.glob("*.wav")}
        texts: dict[str, Path] = {}
        for suffix in SUFFIXES:  # in order of preference: the normalised transcript wins when both exist
            for txt in chapter.glob("*" + suffix):
                texts.setdefault(txt.name[: -len(suffix)], txt)
        for stem in sorted(set(wavs) | set(texts)):
            text = read_text(texts[stem]) if stem in texts else None
            cands.append(Candidate(id=stem, speaker=speaker, audio=wavs.get(stem), text=text))
    return cands, problems


def scan(src: Path) -> Scan:
    """Scan a LibriTTS(-R) root or subset directory."""
    parts: dict[str, list[Candidate]] = {}
    problems: dict[str, list[str]] = {}
    for subset in subset_dirs(src, depth=3, pattern="*.wav"):
        parts[subset.name], problems[subset.name] = scan_subset(subset)
    return Scan(parts, problems)
