"""Encoding the utterances of one shard: short files in length-sorted batches, long files streamed.

Why batches: one utterance of a few seconds is a small forward pass dominated by per-call overhead (32 RVQ layers,
4 Transformer layers, ~20 convolutions); packing similar lengths into one ``[B, 1, T]`` pass is ~30 % more audio per
CPU-second and is what keeps a GPU busy. Padding is on the right and the codec is causal, so each utterance's codes
are cut from its own first ``ceil(T / hop)`` frames — the same frames a lone ``codec.encode`` computes (bit-identical
in our tests; a BLAS library is free to round a batched product differently, which could flip a near-tie code).

Files longer than ``chunk_seconds`` take the exact streaming path of :mod:`codec.chunked_encode` one at a time, so
memory is bounded by ``max(batch_seconds, 2 * chunk_seconds)`` of audio whatever the corpus holds. The batches are
formed from the shard's contents alone, so a shard's bytes never depend on the process or the run that wrote it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from codec.chunked_encode import DEFAULT_CHUNK_SECONDS, EncodedAudio, encode_file

DEFAULT_BATCH_SECONDS = 60.0  # padded audio per CPU batch; GPUs get 10x (see default_batch_seconds)
# Batches are padded to a multiple of this many frames (1 s at 5 Hz, < 1 % more compute): the causal codec ignores
# trailing zeros, and few distinct input shapes keep oneDNN's per-shape primitive cache, and so memory, small.
PAD_QUANTUM_FRAMES = 5
# oneDNN caches up to 1024 primitives with their buffers, one per input shape; with every batch a new shape that
# is ~300 MB of growth per process over a corpus. 64 keeps memory flat at no measured cost in speed.
ONEDNN_CACHE_CAPACITY = "64"


@dataclass(frozen=True)
class EncodeOptions:
    """How a shard is encoded (memory bounds and batching)."""

    chunk_seconds: float = DEFAULT_CHUNK_SECONDS  # longer files are streamed in chunks of this many seconds
    batch_seconds: float = DEFAULT_BATCH_SECONDS  # padded audio per batch of short files (B * longest)

    def __post_init__(self) -> None:
        if self.chunk_seconds <= 0 or self.batch_seconds <= 0:
            raise ValueError(
                f"chunk_seconds and batch_seconds must be positive, got {self.chunk_seconds}, {self.batch_seconds}"
            )


def limit_primitive_cache() -> None:
    """Bound oneDNN's primitive cache in this process (read when oneDNN first runs; a user's setting wins)."""
    import os

    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY)


def default_batch_seconds(device: str) -> float:
    """Batch budget for a device: GPUs amortise far more per call than a CPU core."""
    return DEFAULT_BATCH_SECONDS * (10 if device.startswith("cuda") else 1)


def _error(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _pack(lengths: list[tuple[int, float]], budget: float) -> list[list[int]]:
    """Greedy batches over ``(item, seconds)`` sorted ascending: ``len(batch) * longest <= budget`` (at least one)."""
    batches: list[list[int]] = []
    cur: list[int] = []
    for i, seconds in lengths:
        if cur and (len(cur) + 1) * seconds > budget:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def _encode_batch(codec: Any, wavs: list[torch.Tensor]) -> list[torch.Tensor]:
    """``[1, T_b]`` waves → their codes ``[Q, ceil(T_b / hop)]`` from one right-padded pass."""
    quantum = PAD_QUANTUM_FRAMES * codec.hop_length
    longest = -(-max(w.shape[-1] for w in wavs) // quantum) * quantum  # round up: few distinct shapes
    batch = torch.stack([F.pad(w, (0, longest - w.shape[-1])) for w in wavs]).to(codec.device)  # [B, 1, T]
    codes = codec.encode(batch).cpu()  # [B, Q, F_max]
    return [codes[b, :, : math.ceil(w.shape[-1] / codec.hop_length)].clone() for b, w in enumerate(wavs)]


def encode_items(
    codec: Any,
    paths: list[str],
    options: EncodeOptions,
    on_utterance: Callable[[float], None] | None = None,
) -> list[EncodedAudio | str]:
    """Encode audio files; returns, in input order, an :class:`EncodedAudio` or the error message of a failure.

    Args:
        codec: the :class:`codec.model.Codec`.
        paths: audio files.
        options: chunking and batching.
        on_utterance: called once per file with its seconds of audio (0 for a failure).
    """
    from codec.audio import audio_info, load_audio

    results: list[EncodedAudio | str | None] = [None] * len(paths)

    def done(i: int, result: EncodedAudio | str) -> None:
        results[i] = result
        if on_utterance:
            on_utterance(result.num_samples / codec.sample_rate if isinstance(result, EncodedAudio) else 0.0)

    short: list[tuple[int, float]] = []
    long: list[int] = []
    for i, path in enumerate(paths):
        try:
            seconds = audio_info(path).duration
        except Exception as exc:  # missing or not audio: a report line
            done(i, _error(exc))
            continue
        if seconds > options.chunk_seconds:
            long.append(i)
        else:
            short.append((i, seconds))
    short.sort(key=lambda pair: (pair[1], pair[0]))
    for batch in _pack(short, options.batch_seconds):
        wavs = {}
        for i in batch:
            try:
                wavs[i] = load_audio(paths[i], codec.sample_rate)
            except Exception as exc:  # truncated data, NaN samples...
                done(i, _error(exc))
        if not wavs:
            continue
        try:
            codes = dict(zip(wavs, _encode_batch(codec, list(wavs.values())), strict=True))
        except Exception:  # isolate the culprit: encode one by one
            codes = {}
            for i, wav in wavs.items():
                try:
                    codes[i] = _encode_batch(codec, [wav])[0]
                except Exception as exc:
                    done(i, _error(exc))
        for i, c in codes.items():
            done(i, EncodedAudio(codes=c, num_samples=int(wavs[i].shape[-1])))
    for i in long:
        try:
            done(i, encode_file(codec, paths[i], options.chunk_seconds))
        except Exception as exc:
            done(i, _error(exc))
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def encode_shard(
    codec: Any,
    root: Path,
    shard: int,
    items: list[dict[str, str]],
    info: Any,
    options: EncodeOptions,
    on_utterance: Callable[[float], None] | None = None,
) -> tuple[int, float]:
    """Encode the utterances of one shard and write it (:func:`codec.store.format.write_shard`).

    Args:
        codec: the :class:`codec.model.Codec`.
        root: store directory.
        shard: shard number.
        items: ``{"id", "audio" (resolved path), "text", "speaker"}`` in manifest order.
        info: the store's :class:`codec.store.format.StoreInfo`.
        options: chunking and batching.
        on_utterance: progress callback, called with each utterance's audio seconds.

    Returns:
        (utterances stored, audio seconds stored).
    """
    from codec.store.format import Failure, IndexEntry, write_shard

    results = encode_items(codec, [it["audio"] for it in items], options, on_utterance)
    codes, entries, failures = [], [], []
    offset, seconds = 0, 0.0
    for item, res in zip(items, results, strict=True):
        if isinstance(res, str):
            failures.append(Failure(id=item["id"], audio=item["audio"], error=res))
            continue
        n = int(res.codes.shape[1])
        duration = res.num_samples / codec.sample_rate
        entries.append(IndexEntry(item["id"], item["speaker"], item["text"], n, shard, offset, round(duration, 4)))
        codes.append(res.codes)
        offset += n
        seconds += duration
    write_shard(root, shard, codes, entries, failures, info)
    return len(entries), seconds
