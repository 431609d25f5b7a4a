"""How intelligible each synthetic speaker is: Whisper tiny.en word error rate on a few of its utterances.

Optional (``--asr-samples N``, needs the ``[eval]`` extra): the speaker-embedding check says the identities differ,
this one says they still speak English a recogniser understands — accented MBROLA voices and strong pitch shifts
can fail that. The numbers go into the corpus report; nothing is dropped on their account, since a codec learns
from any speech and the TTS recipes can filter speakers by this table.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from codec.manifest import Utterance


def speaker_wer(root: Path, utterances: Sequence[Utterance], samples: int, threads: int = 2) -> dict[str, float]:
    """Word error rate per speaker on ``samples`` seeded-random utterances of each (text normalised as in eval).

    Raises:
        codec.evaluation.extras.MissingExtraError (a ``FileNotFoundError``-like user error): ``[eval]`` missing.
    """
    from tqdm import tqdm

    from codec.audio import load_audio
    from codec.evaluation.asr import get_asr
    from codec.evaluation.wer import ErrorCount, wer

    asr = get_asr(threads)
    by_speaker: dict[str, list[Utterance]] = {}
    for u in sorted(utterances, key=lambda u: u.id):
        by_speaker.setdefault(u.speaker, []).append(u)
    picks = []
    for speaker in sorted(by_speaker):
        mine = by_speaker[speaker]
        picks += random.Random(f"asr:{speaker}").sample(mine, min(samples, len(mine)))
    totals: dict[str, ErrorCount] = {}
    for u in tqdm(picks, desc="asr", unit="utt"):
        hyp = asr.transcribe(load_audio(root / u.audio, 16000))
        totals[u.speaker] = totals.get(u.speaker, ErrorCount(0, 0)) + wer(u.text, hyp)
    return {speaker: round(count.rate, 4) for speaker, count in totals.items()}
