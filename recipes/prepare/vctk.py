"""VCTK, both releases.

- 0.92 (``VCTK-Corpus-0.92``): ``wav48_silence_trimmed/<spk>/<spk>_<nnn>_mic{1,2}.flac`` and
  ``txt/<spk>/<spk>_<nnn>.txt``; the ``mic`` option picks the microphone (``mic1`` by default).
- 0.80 (``VCTK-Corpus``): ``wav48/<spk>/<spk>_<nnn>.wav`` and ``txt/<spk>/<spk>_<nnn>.txt``.

Speakers without transcripts (p315 in the real corpus) are reported, not fatal.
"""

from __future__ import annotations

from pathlib import Path

from recipes.prepare.runner import Candidate, read_text
from recipes.prepare.scan import Scan

PART = "vctk"
MICS = ("mic1", "mic2")


def scan(src: Path, mic: str = "mic1") -> Scan:
    """Scan a VCTK root.

    Raises:
        ValueError: ``mic`` is not ``mic1``/``mic2``.
        FileNotFoundError: neither ``wav48_silence_trimmed/`` nor ``wav48/`` exists.
    """
    if mic not in MICS:
        raise ValueError(f"unknown VCTK microphone {mic!r}; use one of {list(MICS)}")
    audio: dict[str, Path] = {}
    if (src / "wav48_silence_trimmed").is_dir():
        suffix = f"_{mic}"
        for p in (src / "wav48_silence_trimmed").glob(f"*/*{suffix}.flac"):
            audio[p.stem[: -len(suffix)]] = p
    elif (src / "wav48").is_dir():
        audio = {p.stem: p for p in (src / "wav48").glob("*/*.wav")}
    else:
        raise FileNotFoundError(f"{src}: neither wav48_silence_trimmed/ (VCTK 0.92) nor wav48/ (VCTK 0.80) found")
    texts = {p.stem: p for p in (src / "txt").glob("*/*.txt")}
    cands = []
    for utt_id in sorted(set(audio) | set(texts)):
        speaker = (audio.get(utt_id) or texts[utt_id]).parent.name
        text = read_text(texts[utt_id]) if utt_id in texts else None
        cands.append(Candidate(id=utt_id, speaker=speaker, audio=audio.get(utt_id), text=text))
    return Scan({PART: cands})
