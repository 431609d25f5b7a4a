"""Frame-aligned text: which word of the target text each 200 ms frame speaks (``model.aligned_text``).

The plain model sees ``[BOS] text [SEP] frames`` and must find out by itself which symbols a frame speaks. With
aligned text every target frame ``j`` carries a **word pointer** ``w(j)``: the index of the last word of the target
text that starts before the frame ends (word 0 before the first word starts). The model is told the word of each
frame it reads and predicts, per frame, how far the pointer moves (the **advance** ``w(j) - w(j - 1)``, in
``advance_classes`` classes, the last meaning "that many or more"; ``w(-1) = 0``). At inference the sampled advance
moves the pointer, which never goes back, and END is only allowed once it has reached the last word (Moshi's inner
monologue and Kyutai's delayed-streams TTS put text on the audio frames in the same spirit; RALL-E conditions on
predicted durations).

A "word" here is a run of frontend symbols between spaces (:func:`word_groups`), the unit the model embeds. Word
times come from ``ucodec align`` (Whisper word timestamps or the codec's CTC head) over the transcript's words;
:func:`group_starts` maps them onto the frontend's words, which normalisation (``1990`` → four words) can make more
or fewer than the transcript's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_WORD_SYMBOLS = 32  # positions inside a word that get their own embedding (longer words share the last one)


@dataclass(frozen=True)
class FrameTextLayout:
    """What batch building needs to lay aligned text on frames: the frontend's word separator, the frame rate and
    the number of advance classes (``TTSConfig.advance_classes``)."""

    space_id: int | None
    frame_rate: float
    classes: int


def word_groups(ids: Sequence[int], space_id: int | None) -> list[int]:
    """The word index of every symbol id (``-1`` for the spaces between words).

    >>> word_groups([5, 6, 3, 7, 3, 3, 8], space_id=3)
    [0, 0, -1, 1, -1, -1, 2]
    """
    groups, word, inside = [], -1, False
    for i in ids:
        if space_id is not None and int(i) == space_id:
            groups.append(-1)
            inside = False
            continue
        if not inside:
            word, inside = word + 1, True
        groups.append(word)
    return groups


def group_starts(num_groups: int, word_starts: Sequence[float]) -> list[float]:
    """Start time (s) of each of ``num_groups`` frontend words from the transcript words' ``word_starts`` when
    nothing but the counts is known (see :func:`frontend_word_starts` for the better mapping).

    Equal counts map one to one; otherwise frontend word ``g`` sits at fractional transcript position
    ``g * N / G`` and its start is interpolated between the neighbouring transcript words' starts.
    """
    n = len(word_starts)
    if num_groups <= 0:
        return []
    if n == 0:
        return [0.0] * num_groups
    if n == num_groups:
        return [float(s) for s in word_starts]
    out = []
    for g in range(num_groups):
        x = g * n / num_groups
        k = min(int(x), n - 1)
        nxt = word_starts[min(k + 1, n - 1)]
        out.append(float(word_starts[k] + (x - k) * (nxt - word_starts[k])))
    return out


MOVES = ((1, 1), (1, 2), (1, 3), (2, 1), (3, 1))  # (frontend words, transcript words) one alignment step covers
UNEVEN = 2.0  # extra cost (in symbols) of a step that is not one word to one word
DIGIT_CHARS = 3.5  # a digit is read as about this many letters ("1990": nineteen ninety)


def frontend_word_starts(
    ids: Sequence[int], space_id: int | None, text: str, word_starts: Sequence[float]
) -> list[float]:
    """Start time (s) of each frontend word of ``ids`` (the frontend's encoding of ``text``) from the start times
    of ``text.split()``'s words.

    espeak-ng joins clitics ("of the" → ``ʌvðə``) and normalisation expands numbers ("1990" → four words), so the
    two word lists differ in length. They are aligned monotonically by length (dynamic programming over steps of
    1:1, 1:2, 1:3, 2:1 and 3:1 words, the cost being the difference between a step's symbols and its characters
    scaled by the utterance's symbols per character, a digit counting ``DIGIT_CHARS`` characters, plus ``UNEVEN``
    for a step that is not 1:1); every frontend
    word of a step starts where the step's first transcript word starts.
    """
    groups = word_groups(ids, space_id)
    n_groups = max(groups, default=-1) + 1
    words = text.split()
    if n_groups == 0:
        return []
    if len(words) != len(word_starts) or not words:
        return group_starts(n_groups, word_starts)
    sym = [0] * n_groups
    for g in groups:
        if g >= 0:
            sym[g] += 1
    chars = [len(w) + (DIGIT_CHARS - 1) * sum(c.isdigit() for c in w) for w in words]
    ratio = sum(sym) / max(sum(chars), 1)
    inf = float("inf")
    cost = [[inf] * (len(words) + 1) for _ in range(n_groups + 1)]
    back: dict[tuple[int, int], tuple[int, int]] = {}
    cost[0][0] = 0.0
    for g in range(n_groups + 1):
        for k in range(len(words) + 1):
            if cost[g][k] == inf:
                continue
            for dg, dk in MOVES:
                if g + dg > n_groups or k + dk > len(words):
                    continue
                step = abs(sum(sym[g : g + dg]) - ratio * sum(chars[k : k + dk])) + (UNEVEN if dg + dk > 2 else 0.0)
                if cost[g][k] + step < cost[g + dg][k + dk]:
                    cost[g + dg][k + dk] = cost[g][k] + step
                    back[(g + dg, k + dk)] = (g, k)
    if cost[n_groups][len(words)] == inf:  # more than 3:1 somewhere: fall back to spreading by count
        return group_starts(n_groups, word_starts)
    out = [0.0] * n_groups
    g, k = n_groups, len(words)
    while (g, k) != (0, 0):
        pg, pk = back[(g, k)]
        for i in range(pg, g):
            out[i] = float(word_starts[pk])
        g, k = pg, pk
    return out


def frame_pointers(starts: Sequence[float], num_frames: int, frame_rate: float) -> list[int]:
    """``w(j)`` for ``j < num_frames``: the last word whose start is before frame ``j``'s end (0 before any)."""
    pointers, w = [], 0
    for j in range(num_frames):
        end = (j + 1) / frame_rate
        while w + 1 < len(starts) and starts[w + 1] < end:
            w += 1
        pointers.append(w)
    return pointers


def advance_targets(pointers: Sequence[int], classes: int) -> list[int]:
    """Advance class of every frame: ``min(w(j) - w(j - 1), classes - 1)`` with ``w(-1) = 0``."""
    prev, out = 0, []
    for w in pointers:
        out.append(min(w - prev, classes - 1))
        prev = w
    return out


def frame_text_targets(
    starts: Sequence[float], num_frames: int, frame_rate: float, classes: int
) -> tuple[list[int], list[int]]:
    """``(pointers, advances)`` of ``num_frames`` target frames plus the END position after them.

    The END position keeps the pointer on the last word (an alignment that leaves words unstarted teaches the jump
    there); its advance is scored like any frame's.
    """
    pointers = frame_pointers(starts, num_frames, frame_rate)
    last = max(len(starts) - 1, 0)
    pointers = pointers + [last]
    return pointers, advance_targets(pointers, classes)


def load_word_times(paths: Iterable[str | os.PathLike], min_matched: float = 0.0) -> tuple[dict[str, list[float]], int]:
    """Word start times per utterance id from ``ucodec align`` JSONL files.

    Args:
        paths: one or more files (later files win on a repeated id).
        min_matched: lines whose ``matched`` fraction (Whisper alignment) is below this are left out.

    Returns:
        ``({id: [start, ...]}, dropped)``.

    Raises:
        FileNotFoundError: a missing file. ValueError: a line that is not an alignment.
    """
    times: dict[str, list[float]] = {}
    dropped = 0
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such word-times file (make one with `ucodec align`)")
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    starts = [float(w["start"]) for w in obj["words"]]
                    key = str(obj["id"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{n}: not a word-times line ({exc})") from None
                if float(obj.get("matched", 1.0)) < min_matched or not starts:
                    dropped += 1
                    continue
                times[key] = starts
    return times, dropped
