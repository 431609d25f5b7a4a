"""Training data for the TTS LM: token-store utterances with sampled voice prompts, in token-budget batches.

Everything random is a function of ``(seed, epoch, position)``: :class:`StepBatchSampler` gives batch ``k`` of rank
``r`` without replaying the batches before it, and each item carries its own seed, from which
:class:`TTSTrainData` draws the prompt. So the batch at step ``s`` is the same whether the run was interrupted or
not, with any number of DataLoader workers, which is what makes ``--resume`` exact.

Text is turned into ids once per run by the model's frontend (:func:`encode_texts`) and cached in the experiment
directory, keyed by the frontend's symbol table, because phonemizing a corpus takes minutes.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from codec.atomic import write_json_atomic
from codec.store.format import IndexEntry
from codec.store.reader import DurationBucketSampler, TokenStore
from tts.aligned_text import frontend_word_starts
from tts.batch import TTSItem
from tts.frontend import TextFrontend
from tts.train_config import PromptConfig

ENCODE_CHUNK = 256  # texts per phonemizer call

ItemKey = tuple[int, tuple[int, ...]]  # (utterance index, item seed)


def frontend_fingerprint(frontend: TextFrontend) -> str:
    """A short hash of everything that decides the ids of a text (kind, language, normalisation, symbols)."""
    c = frontend.config
    key = json.dumps([c.kind, c.language, c.normalize, frontend.symbols])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def encode_texts(frontend: TextFrontend, texts: Sequence[str], cache_dir: str | Path | None = None) -> dict:
    """Ids of every distinct text (``None`` for text with nothing speakable), cached on disk.

    Args:
        frontend: the model's frontend.
        texts: transcripts (duplicates are encoded once).
        cache_dir: where ``text_ids-<fingerprint>.json`` lives; texts already in it are not encoded again.

    Returns:
        ``{text: list[int] | None}``.
    """
    path = Path(cache_dir) / f"text_ids-{frontend_fingerprint(frontend)}.json" if cache_dir else None
    cache: dict[str, list[int] | None] = {}
    if path is not None and path.is_file():
        cache = json.loads(path.read_text(encoding="utf-8"))
    todo = sorted({t for t in texts if t not in cache})
    for start in range(0, len(todo), ENCODE_CHUNK):
        chunk = todo[start : start + ENCODE_CHUNK]
        try:
            cache.update(zip(chunk, frontend.encode_batch(chunk), strict=True))
        except ValueError:  # one unspeakable text fails the batch: isolate it
            for text in chunk:
                try:
                    cache[text] = frontend.encode(text)
                except ValueError:
                    cache[text] = None
    if path is not None and todo:
        write_json_atomic(path, cache)
    return cache


class TTSTrainData(Dataset):
    """``TTSItem`` s of a token store: target codes, text ids and a voice prompt drawn from the item's seed.

    Args:
        store: the token store (already checked against the model's codec).
        text_ids: ``{text: ids | None}`` from :func:`encode_texts`.
        prompt: prompt sampling policy.
        min_frames, max_frames: targets outside this range are not used (they may still be prompts).
        space_id: id of the word separator put between a prompt transcript and the target text (None: nothing).
        word_starts: ``{utterance id: word start times}`` for aligned text (:mod:`tts.aligned_text`); targets
            without times are then not used. None = plain text.
        levels: keep the first ``levels`` RVQ levels of every target and prompt (a model of fewer levels than the
            store's codec, ``model.num_codebooks``); None = all.

    ``__getitem__`` takes ``(index, seed)`` as yielded by :class:`StepBatchSampler`.
    """

    def __init__(
        self,
        store: TokenStore,
        text_ids: dict,
        prompt: PromptConfig,
        min_frames: int = 1,
        max_frames: int | None = None,
        space_id: int | None = None,
        word_starts: dict[str, list[float]] | None = None,
        levels: int | None = None,
    ) -> None:
        self.store, self.text_ids, self.prompt, self.space = store, text_ids, prompt, space_id
        self.levels = levels
        self.word_starts = word_starts
        upper = max_frames if max_frames is not None else math.inf
        usable = [e for e in store.entries if min_frames <= e.n_frames <= upper]
        self.entries = [e for e in usable if text_ids.get(e.text) is not None]
        if len(usable) > len(self.entries):
            warnings.warn(f"{len(usable) - len(self.entries)} utterances have no speakable text; skipped", stacklevel=2)
        if word_starts is not None:
            timed = [e for e in self.entries if e.id in word_starts]
            if len(timed) < len(self.entries):
                warnings.warn(
                    f"{store.root}: {len(self.entries) - len(timed)} of {len(self.entries)} utterances have no word "
                    "times (train.word_times); skipped",
                    stacklevel=2,
                )
            self.entries = timed
        if not self.entries:
            raise ValueError(f"{store.root}: no utterance of {min_frames}..{max_frames} frames with speakable text")
        rate = store.frame_rate
        self.crop_frames = (max(1, round(prompt.crop_seconds[0] * rate)), max(1, round(prompt.crop_seconds[1] * rate)))
        limit = prompt.max_transcript_seconds * rate
        self.pool: dict[str, list[IndexEntry]] = {}  # speaker -> every utterance that can be a prompt
        for e in store.entries:
            self.pool.setdefault(e.speaker, []).append(e)
        self.spoken = {  # speaker -> short utterances whose transcript can be prepended
            spk: [e for e in pool if e.n_frames <= limit and text_ids.get(e.text) is not None]
            for spk, pool in self.pool.items()
        }
        self.lengths = [self._bound(e) for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def _bound(self, e: IndexEntry) -> int:
        """Upper bound of the global sequence length of ``e`` with any prompt it can get (for the token budget)."""
        prompt = 0
        if self.prompt.p_none < 1 and len(self.pool[e.speaker]) > 1:
            prompt = self.crop_frames[1]
            if self.prompt.p_transcript > 0:
                extra = 1 if self.space is not None else 0
                prompt = max(
                    [prompt] + [p.n_frames + len(self.text_ids[p.text]) + extra for p in self.spoken[e.speaker]]
                )
        return 2 + len(self.text_ids[e.text]) + e.n_frames + prompt

    def _read(self, e: IndexEntry) -> torch.Tensor:
        """Codes ``[Q, F]`` of ``e``: the store's levels, or its first ``levels`` for a model of fewer."""
        codes = self.store.read(e)
        return codes if self.levels is None else codes[: self.levels]

    def choose_prompt(self, e: IndexEntry, rng: np.random.Generator) -> tuple[torch.Tensor | None, list[int]]:
        """A prompt for ``e``: ``(codes [Q, Fp] | None, transcript ids to prepend, possibly empty)``."""
        others = [p for p in self.pool[e.speaker] if p.id != e.id]
        if not others or rng.random() < self.prompt.p_none:
            return None, []
        spoken = [p for p in self.spoken[e.speaker] if p.id != e.id]
        if spoken and rng.random() < self.prompt.p_transcript:
            src = spoken[int(rng.integers(len(spoken)))]
            ids = list(self.text_ids[src.text]) + ([self.space] if self.space is not None else [])
            return self._read(src), ids
        src = others[int(rng.integers(len(others)))]
        n = min(src.n_frames, int(rng.integers(self.crop_frames[0], self.crop_frames[1] + 1)))
        start = int(rng.integers(src.n_frames - n + 1))
        return self._read(src)[:, start : start + n], []

    def __getitem__(self, key: ItemKey) -> TTSItem:
        index, seed = key
        e = self.entries[index]
        prompt, head = self.choose_prompt(e, np.random.default_rng(list(seed)))
        own = list(self.text_ids[e.text])
        starts = None
        if self.word_starts is not None:  # the transcript's word times, mapped onto the frontend's words
            starts = frontend_word_starts(own, self.space, e.text, self.word_starts[e.id])
        return TTSItem(head + own, prompt, self._read(e), target_text_length=len(own), word_starts=starts)

    def zero_shot(self, index: int, seed: int) -> tuple[list[int], torch.Tensor | None]:
        """Inference inputs for utterance ``index``: its text ids and a crop prompt from another utterance of the
        same speaker (None when it has no other) — what a user's zero-shot call looks like."""
        e = self.entries[index]
        rng = np.random.default_rng([seed, index])
        others = [p for p in self.pool[e.speaker] if p.id != e.id]
        if not others:
            return list(self.text_ids[e.text]), None
        src = others[int(rng.integers(len(others)))]
        n = min(src.n_frames, self.crop_frames[1])
        return list(self.text_ids[e.text]), self._read(src)[:, :n]


class StepBatchSampler(Sampler[list[ItemKey]]):
    """Infinite, position-addressed batches of ``(index, seed)`` for one process, under a token budget.

    Each epoch is packed by :class:`codec.store.reader.DurationBucketSampler` (seed ``seed + epoch``: similar
    lengths together, ``B * longest <= max_tokens``). Rank ``r`` of ``W`` takes batches ``r, r + W, ...`` of it; the
    last ``len % W`` batches are left out so that every rank makes the same number of steps.

    Args:
        lengths: sequence length bound per item (:attr:`TTSTrainData.lengths`).
        start_step: the first step to yield (the step a resumed run continues from).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_tokens: int,
        max_batch_size: int | None = None,
        num_buckets: int = 10,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
    ) -> None:
        self.packer = DurationBucketSampler(lengths, max_tokens, max_batch_size, num_buckets, seed=seed)
        self.seed, self.rank, self.world_size, self.start_step = seed, rank, world_size, start_step
        self._epoch: tuple[int, list[list[int]]] | None = None
        if self.steps_in_epoch(0) == 0:
            raise ValueError(f"{len(lengths)} utterances make fewer batches than the {world_size} processes")

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every batch of ``epoch`` (all ranks), memoised for the current epoch."""
        if self._epoch is None or self._epoch[0] != epoch:
            self.packer.set_epoch(epoch)
            self._epoch = (epoch, self.packer.batches())
        return self._epoch[1]

    def steps_in_epoch(self, epoch: int) -> int:
        return len(self.epoch_batches(epoch)) // self.world_size

    def locate(self, step: int) -> tuple[int, int]:
        """``(epoch, step within it)`` of a global step (walks the epochs: packing is cheap next to training)."""
        epoch = 0
        while step >= (n := self.steps_in_epoch(epoch)):
            step -= n
            epoch += 1
        return epoch, step

    def __iter__(self) -> Iterator[list[ItemKey]]:
        epoch, i = self.locate(self.start_step)
        while True:
            batches = self.epoch_batches(epoch)
            for j in range(i, len(batches) // self.world_size):
                batch = batches[j * self.world_size + self.rank]
                yield [(index, (self.seed, epoch, j, self.rank, slot)) for slot, index in enumerate(batch)]
            epoch, i = epoch + 1, 0

    def __len__(self) -> int:  # infinite in practice; a hint for progress bars only
        return 2**31


def fixed_batches(data: TTSTrainData, max_tokens: int, count: int, seed: int) -> list[list[ItemKey]]:
    """``count`` batches spread evenly over an unshuffled, length-sorted packing, with fixed prompts: the dev set,
    the same at every evaluation and covering short and long utterances alike."""
    packed = DurationBucketSampler(data.lengths, max_tokens, num_buckets=1, shuffle=False).batches()
    chosen = packed if len(packed) <= count else [packed[k * len(packed) // count] for k in range(count)]
    return [[(i, (seed, 0, j, 0, slot)) for slot, i in enumerate(b)] for j, b in enumerate(chosen)]
