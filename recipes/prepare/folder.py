"""A folder of audio files with transcripts: ``ROOT/.../<speaker>/<name>.wav`` + ``<name>.txt`` beside it.

Any depth is accepted; the speaker is the name of the file's parent folder and the utterance id is the path relative
to the root without its suffix (``/`` becomes ``-``), so ids are unique across speakers. wav, flac, ogg and mp3 are
read (whatever libsndfile decodes). A ``.txt`` without audio, or audio without a ``.txt``, is reported.
"""

from __future__ import annotations

from pathlib import Path

from recipes.prepare.runner import AUDIO_SUFFIXES, Candidate, audio_files, read_text
from recipes.prepare.scan import Scan

PART = "manifest"


def _utt_id(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix().replace("/", "-")


def scan(src: Path) -> Scan:
    """Scan a folder tree."""
    cands: list[Candidate] = []
    problems: list[str] = []
    seen_stems: set[Path] = set()
    for audio in audio_files(src):
        stem = audio.with_suffix("")
        if stem in seen_stems:
            problems.append(f"{_utt_id(audio, src)}: several audio files share this name; {audio.name} skipped")
            continue
        seen_stems.add(stem)
        txt = audio.with_suffix(".txt")
        text = read_text(txt) if txt.is_file() else None
        speaker = audio.parent.name if audio.parent != src else src.name
        cands.append(Candidate(id=_utt_id(audio, src), speaker=speaker, audio=audio, text=text))
    for txt in sorted(src.rglob("*.txt")):
        if txt.with_suffix("") not in seen_stems and not txt.name.endswith(".report.txt"):
            speaker = txt.parent.name if txt.parent != src else src.name
            cands.append(Candidate(id=_utt_id(txt, src), speaker=speaker, audio=None, text=read_text(txt)))
    if not cands:
        raise ValueError(f"{src}: no audio files ({', '.join(AUDIO_SUFFIXES)}) or transcripts found")
    return Scan({PART: cands}, {PART: problems})
