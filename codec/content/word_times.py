"""Word times of a transcript from Whisper's word timestamps (``ucodec align --whisper``).

Whisper tiny.en (offline, the ``[eval]`` extra) recognises the words and times them; its words are not the
transcript's (misrecognitions, split or merged words), so the two word sequences are matched with
:class:`difflib.SequenceMatcher` on normalised spellings:

- equal runs take Whisper's times word for word;
- a replaced run (``k`` transcript words against ``m`` recognised ones) spreads the recognised span evenly over the
  ``k`` words;
- transcript words Whisper missed share the gap between their neighbours evenly (a zero-length gap gives them
  zero-length spans at that point).

Output lines have the CTC aligner's format (:mod:`codec.content.aligner`) with no phones, plus ``matched``: the
fraction of transcript words that Whisper recognised exactly, a per-utterance confidence to filter on.
"""

from __future__ import annotations

import os
import re
from difflib import SequenceMatcher

from codec.content.aligner import Alignment, ResumableLines

_KEEP = re.compile(r"[^a-z0-9']+")


def normalise(word: str) -> str:
    """Lower case without punctuation (apostrophes kept): the spelling two word lists are matched on."""
    return _KEEP.sub("", word.lower())


def transfer_times(
    words: list[str], recognised: list[tuple[str, float, float]], duration: float
) -> tuple[list[dict], float]:
    """Give every transcript word a ``start``/``end`` (seconds) from recognised ``(word, start, end)`` triples.

    Args:
        words: the transcript's words in order.
        recognised: Whisper's words with times, in order.
        duration: the utterance's length in seconds (bounds the gaps at both ends).

    Returns:
        ``([{"word", "start", "end"}, ...], matched)`` with one entry per transcript word, times non-decreasing.
    """
    ref = [normalise(w) for w in words]
    hyp = [normalise(w) for w, _, _ in recognised]
    times: list[tuple[float, float] | None] = [None] * len(words)
    matched = 0
    for op, i1, i2, j1, j2 in SequenceMatcher(None, ref, hyp, autojunk=False).get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                times[i1 + k] = recognised[j1 + k][1:]
            matched += i2 - i1
        elif op == "replace":
            start, end = recognised[j1][1], recognised[j2 - 1][2]
            step = (end - start) / (i2 - i1)
            for k in range(i2 - i1):
                times[i1 + k] = (start + k * step, start + (k + 1) * step)
    _fill_gaps(times, duration)
    out, last = [], 0.0
    for word, (start, end) in zip(words, times, strict=True):  # monotone, inside the utterance
        start = min(max(start, last), duration)
        end = min(max(end, start), duration)
        out.append({"word": word, "start": round(start, 3), "end": round(end, 3)})
        last = start
    return out, matched / max(1, len(words))


def _fill_gaps(times: list, duration: float) -> None:
    """Spread each run of untimed words evenly over the gap between its timed neighbours (in place)."""
    i = 0
    while i < len(times):
        if times[i] is not None:
            i += 1
            continue
        j = i
        while j < len(times) and times[j] is None:
            j += 1
        lo = times[i - 1][1] if i > 0 else 0.0
        hi = times[j][0] if j < len(times) else duration
        hi = max(hi, lo)
        step = (hi - lo) / (j - i)
        for k in range(i, j):
            times[k] = (lo + (k - i) * step, lo + (k - i + 1) * step)
        i = j


def align_manifest_whisper(
    manifest: str | os.PathLike, out: str | os.PathLike, threads: int = 0, progress: bool = True
) -> tuple[int, list[str]]:
    """Word times of every transcribed utterance of a manifest into a JSONL file (written atomically at the end;
    a killed run resumes from ``OUT.partial``).

    Returns:
        ``(aligned, failures)`` as :func:`codec.content.aligner.align_manifest`.

    Raises:
        FileNotFoundError / ValueError: no manifest, an empty one, or the ``[eval]`` extra (Whisper) missing.
    """
    from tqdm import tqdm

    from codec.audio import load_audio
    from codec.evaluation.asr import ASR_RATE, WhisperASR
    from codec.manifest import read_manifest

    utts = read_manifest(manifest)
    if not utts:
        raise ValueError(f"{manifest}: the manifest has no utterances")
    asr = WhisperASR(threads=threads)  # before any output exists: no Whisper, no file
    output = ResumableLines(out, {u.id for u in utts})
    failures = []
    todo = [u for u in utts if u.id not in output.done]
    for utt in tqdm(todo, desc="align (whisper)", unit="utt", disable=not progress):
        words = (utt.text or "").split()
        if not words:
            failures.append(f"{utt.id}: no transcript")
            continue
        try:
            wav = load_audio(utt.audio, ASR_RATE)
        except (ValueError, OSError) as exc:
            failures.append(f"{utt.id}: {exc}")
            continue
        timed, matched = transfer_times(words, asr.word_times(wav), wav.shape[-1] / ASR_RATE)
        output.add(Alignment(utt.id, timed, []).to_json(matched=round(matched, 3)) + "\n")
    return output.finish(), failures  # nothing aligned: no output file (the CLI reports the failure)
