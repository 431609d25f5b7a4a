"""Phoneme times from word times, and the per-sub-frame phoneme labels the codec's frame classifier learns from.

``ucodec content-times STORE ALIGNMENT...`` turns alignments (``ucodec align``) into ``STORE/phone_times.jsonl``, one
line ``{"id", "phones": [[symbol_id, start, end], ...]}`` per utterance (seconds):

- a CTC alignment's own phones (``align --phone-model``, best) are used as they are, each lasting until the next
  starts (:func:`timed_phones`);
- word-only alignments (``align --whisper``) get each word's espeak-ng phonemes
  (:func:`codec.content.phonemes.phonemize_words`) spread evenly over its span. That is coarse: Whisper's word edges
  are off by ~0.1 s and a vowel outlasts a stop; a linear probe on log-mels reads such labels at only 28 %.

:func:`subframe_labels` cuts a crop's labels out of them: sub-frame ``j`` takes the phone under its centre, 0 where
no word is spoken (silence, the CTC blank's id), and :data:`IGNORE` past the utterance's end. PAST supervises its
first codebook the same way (a linear phoneme classifier on frame-aligned labels); it needs no whole utterance in a
crop, where CTC does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

PHONE_TIMES_NAME = "phone_times.jsonl"
IGNORE = -100  # label of sub-frames that no loss reads (padding, or an utterance without times)
MAX_PHONE_SECONDS = 0.2  # a CTC-aligned phoneme lasts until the next starts, at most this long


def spread_phones(words: list[dict], phones: list[list[int]]) -> list[list]:
    """``[[symbol_id, start, end], ...]``: each word's phonemes share its ``start``–``end`` span evenly.

    Args:
        words: ``[{"word", "start", "end"}, ...]`` in seconds.
        phones: per word its symbol ids (an empty list gives that word no phone).
    """
    out = []
    for word, ids in zip(words, phones, strict=True):
        if not ids:
            continue
        start, end = float(word["start"]), float(word["end"])
        step = max(0.0, end - start) / len(ids)
        out.extend([s, round(start + k * step, 4), round(start + (k + 1) * step, 4)] for k, s in enumerate(ids))
    return out


def subframe_labels(phones: list[list], first: int, count: int, valid: int, subframe_seconds: float) -> torch.Tensor:
    """Labels ``[count]`` of sub-frames ``first .. first + count - 1`` of an utterance.

    Args:
        phones: ``[[symbol_id, start, end], ...]`` sorted by start (seconds).
        first: index of the first sub-frame in the utterance.
        count: sub-frames wanted.
        valid: how many of them lie inside the utterance (the rest get :data:`IGNORE`).
        subframe_seconds: length of one sub-frame.
    """
    labels = torch.full((count,), IGNORE, dtype=torch.long)
    labels[: max(0, valid)] = 0
    if not phones or valid <= 0:
        return labels
    starts = torch.tensor([p[1] for p in phones])
    ends = torch.tensor([p[2] for p in phones])
    centres = (torch.arange(first, first + valid, dtype=torch.float64) + 0.5) * subframe_seconds
    which = torch.searchsorted(starts.double(), centres, right=True) - 1  # the last phone starting before the centre
    inside = (which >= 0) & (centres < ends.double()[which.clamp_min(0)])
    ids = torch.tensor([p[0] for p in phones], dtype=torch.long)
    labels[:valid] = torch.where(inside, ids[which.clamp_min(0)], torch.zeros_like(which))
    return labels


def timed_phones(phones: list[dict], symbols: tuple[str, ...], max_seconds: float = MAX_PHONE_SECONDS) -> list[list]:
    """``[[symbol_id, start, end], ...]`` from a CTC alignment's phones (``{"symbol", "start", "end"}``).

    A CTC path marks each phoneme by a short spike, not its extent, so a phoneme is taken to last until the next one
    starts, at most ``max_seconds`` (a longer gap is a pause). Symbols outside ``symbols`` are dropped.
    """
    ids = {s: i + 1 for i, s in enumerate(symbols)}
    kept = [p for p in phones if p["symbol"] in ids]
    out = []
    for k, p in enumerate(kept):
        start = float(p["start"])
        nxt = float(kept[k + 1]["start"]) if k + 1 < len(kept) else float(p["end"])
        end = min(max(nxt, float(p["end"])), start + max(max_seconds, float(p["end"]) - start))
        out.append([ids[p["symbol"]], round(start, 4), round(end, 4)])
    return out


def read_phone_times(root: str | os.PathLike) -> dict[str, list[list]]:
    """``{utterance id: phones}`` of a store's ``phone_times.jsonl`` (empty when it has none)."""
    path = Path(root) / PHONE_TIMES_NAME
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        out[row["id"]] = row["phones"]
    return out


def write_phone_times(
    root: str | os.PathLike, alignments: list[str | os.PathLike], language: str = "en-us", min_matched: float = 0.0
) -> tuple[int, int]:
    """Phone times of every aligned utterance of a content store → ``root/phone_times.jsonl`` (atomic, replaced).

    Args:
        root: a content store (``ucodec content-store``); utterances it does not hold are skipped.
        alignments: alignment JSONL files (``ucodec align``), later files winning on repeated ids.
        language: espeak-ng voice of the transcripts.
        min_matched: skip Whisper alignments whose ``matched`` fraction is below this (lines without it are kept).

    Returns:
        ``(written, skipped)`` utterance counts.

    Raises:
        FileNotFoundError / ValueError: no store, a missing or malformed alignment file, or nothing to write.
    """
    from codec.atomic import write_text_atomic
    from codec.content.phonemes import phonemize_words
    from codec.content.store import ContentStore

    store = ContentStore(root)  # raises for a directory that is not a store
    known = set(store.phonemes)
    rows: dict[str, list[dict]] = {}
    aligned: dict[str, list[list]] = {}  # utterances whose alignment has phones (a CTC aligner's)
    skipped = 0
    for path in alignments:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such alignment file")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                utt, words = row["id"], row["words"]
                if any(not {"word", "start", "end"} <= set(w) for w in words):
                    raise KeyError("word fields")
                if any(not {"symbol", "start", "end"} <= set(p) for p in row.get("phones") or []):
                    raise KeyError("phone fields")
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(
                    f"{path}:{n}: not an alignment line "
                    "(id, words[{word, start, end}], optional phones[{symbol, start, end}])"
                ) from None
            if utt not in known or float(row.get("matched", 1.0)) < min_matched:
                skipped += 1
                continue
            if row.get("phones"):
                aligned[utt] = timed_phones(row["phones"], store.info.symbols)
                rows.pop(utt, None)
                continue
            aligned.pop(utt, None)
            rows[utt] = [w for w in words if any(ch.isalnum() for ch in w["word"])]
    if not rows and not aligned:
        raise ValueError(f"{root}: none of the aligned utterances is in this store ({skipped} skipped)")
    ids = list(rows)
    spoken = phonemize_words([" ".join(w["word"] for w in rows[i]) for i in ids], language) if ids else []
    timed = dict(aligned)
    for utt, said in zip(ids, spoken, strict=True):
        timed[utt] = spread_phones(rows[utt], [p for _, p in said])
    lines = [json.dumps({"id": utt, "phones": phones}, separators=(",", ":")) for utt, phones in timed.items()]
    write_text_atomic(Path(root) / PHONE_TIMES_NAME, "\n".join(lines) + "\n")
    return len(lines), skipped
