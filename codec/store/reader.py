"""Reading a token store: random access by id, iteration by speaker, duration-bucketed batches, a torch Dataset.

Codes are read lazily from the memory-mapped shard files (``safetensors`` slices), so opening a store of any size
costs only its index. A store made by another codec than the one the model expects is refused with a clear error:
codes of different codecs are not interchangeable even when Q and the codebook size agree.

Example:
    >>> store = TokenStore("data/tokens", codec=codec)            # refuses another codec's store
    >>> codes = store.codes("utt-0001")                           # LongTensor [Q, F]
    >>> ds = TokenDataset(store)
    >>> sampler = DurationBucketSampler(ds.lengths, max_frames=2000, seed=0)
    >>> loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_tokens)
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset, Sampler

from codec.store.format import (
    CODES_KEY,
    INDEX_NAME,
    IndexEntry,
    StoreInfo,
    check_codec,
    read_info,
    shard_codes_path,
    shard_record_path,
)


class TokenStore:
    """A finished token store opened for reading.

    Args:
        root: store directory (written by ``ucodec tokenize`` or ``ucodec import-hy``).
        codec: the codec the caller's model uses (a ``Codec``, a ``CodecIdentity`` or a release id string);
            ``None`` skips the check (inspection tools only).

    Raises:
        FileNotFoundError: not a store.
        ValueError: unfinished store, unsupported version, malformed index, or made by another codec.
    """

    def __init__(self, root: str | os.PathLike, codec: Any = None) -> None:
        self.root = Path(root)
        self.info: StoreInfo = read_info(self.root)
        if codec is not None:
            check_codec(self.info, codec, str(self.root))
        index = self.root / INDEX_NAME
        if not index.is_file():
            done = sum(shard_record_path(self.root, k).is_file() for k in range(self.info.num_shards))
            raise ValueError(
                f"{self.root}: unfinished token store ({done} of {self.info.num_shards} shards done); run the same "
                "`ucodec tokenize` command again to finish it"
            )
        self.entries: list[IndexEntry] = []
        with open(index, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    self.entries.append(IndexEntry.from_dict(json.loads(line), f"{index}:{lineno}"))
        self._by_id = {e.id: i for i, e in enumerate(self.entries)}
        self._handles: dict[int, Any] = {}

    # Shard handles are per process: a DataLoader worker reopens them instead of inheriting them.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._by_id

    @property
    def num_codebooks(self) -> int:
        return self.info.codec.num_codebooks

    @property
    def codebook_size(self) -> int:
        return self.info.codec.codebook_size

    @property
    def frame_rate(self) -> float:
        return self.info.codec.frame_rate

    @property
    def total_seconds(self) -> float:
        """Audio seconds stored."""
        return sum(e.duration for e in self.entries)

    def entry(self, utt_id: str) -> IndexEntry:
        """The index entry of ``utt_id``.

        Raises:
            KeyError: the id is not in the store (failed or not in the manifest).
        """
        try:
            return self.entries[self._by_id[utt_id]]
        except KeyError:
            raise KeyError(f"utterance {utt_id!r} is not in the token store {self.root}") from None

    def codes(self, key: str | int) -> torch.Tensor:
        """Codes of an utterance by id or by position in the index: LongTensor ``[Q, F]``."""
        e = self.entries[key] if isinstance(key, int) else self.entry(key)
        return self.read(e)

    def read(self, entry: IndexEntry) -> torch.Tensor:
        """Codes ``[Q, n_frames]`` (long) of an index entry, sliced from its memory-mapped shard."""
        handle = self._handles.get(entry.shard)
        if handle is None:
            from safetensors import safe_open

            path = shard_codes_path(self.root, entry.shard)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: shard missing from the token store")
            handle = self._handles[entry.shard] = safe_open(str(path), framework="pt").get_slice(CODES_KEY)
        return handle[:, entry.offset : entry.offset + entry.n_frames].long()

    def speakers(self) -> list[str]:
        """Sorted distinct speakers."""
        return sorted({e.speaker for e in self.entries})

    def entries_of(self, speaker: str) -> list[IndexEntry]:
        """Index entries of one speaker, in store order."""
        return [e for e in self.entries if e.speaker == speaker]

    def iter_speaker(self, speaker: str) -> Iterator[tuple[IndexEntry, torch.Tensor]]:
        """Yield ``(entry, codes [Q, F])`` for every utterance of ``speaker`` in store order."""
        for e in self.entries_of(speaker):
            yield e, self.read(e)

    def __iter__(self) -> Iterator[tuple[IndexEntry, torch.Tensor]]:
        """Yield ``(entry, codes [Q, F])`` for every utterance in store order."""
        for e in self.entries:
            yield e, self.read(e)


class TokenItem(NamedTuple):
    """One training example; unpacks as ``text, codes, speaker``."""

    text: str
    codes: torch.Tensor  # [Q, F] long
    speaker: str


class TokenDataset(Dataset):
    """``(text, codes [Q, F], speaker)`` examples for the TTS trainer.

    Args:
        store: a :class:`TokenStore` or its directory.
        codec: the codec the model uses; a store from another codec is refused (see :class:`TokenStore`).
        speakers: keep only these speakers (e.g. the training split); ``None`` keeps all.
        min_frames, max_frames: keep utterances with ``min_frames <= F <= max_frames``.
        num_codebooks: return only the first ``num_codebooks`` RVQ layers (lower bitrate); ``None`` keeps all.
    """

    def __init__(
        self,
        store: TokenStore | str | os.PathLike,
        codec: Any = None,
        speakers: Sequence[str] | None = None,
        min_frames: int = 1,
        max_frames: int | None = None,
        num_codebooks: int | None = None,
    ) -> None:
        self.store = store if isinstance(store, TokenStore) else TokenStore(store, codec)
        if isinstance(store, TokenStore) and codec is not None:
            check_codec(self.store.info, codec, str(self.store.root))
        q = self.store.num_codebooks
        if num_codebooks is not None and not 1 <= num_codebooks <= q:
            raise ValueError(f"num_codebooks must be between 1 and {q}, got {num_codebooks}")
        self.num_codebooks = num_codebooks or q
        keep = None if speakers is None else set(speakers)
        if keep is not None and (unknown := sorted(keep - set(self.store.speakers()))):
            raise ValueError(f"speakers {unknown[:5]} are not in the token store {self.store.root}")
        upper = max_frames if max_frames is not None else float("inf")
        self.entries = [
            e for e in self.store.entries if (keep is None or e.speaker in keep) and min_frames <= e.n_frames <= upper
        ]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> TokenItem:
        e = self.entries[i]
        return TokenItem(text=e.text, codes=self.store.read(e)[: self.num_codebooks], speaker=e.speaker)

    @property
    def lengths(self) -> list[int]:
        """Frames of each example (for :class:`DurationBucketSampler`)."""
        return [e.n_frames for e in self.entries]


@dataclass
class TokenBatch:
    """A padded batch.

    Attributes:
        texts: ``B`` transcripts.
        codes: ``[B, Q, F_max]`` long, padded with ``pad_value`` after each example's length.
        lengths: ``[B]`` frames of each example.
        speakers: ``B`` speaker ids.
    """

    texts: list[str]
    codes: torch.Tensor
    lengths: torch.Tensor
    speakers: list[str]


def collate_tokens(items: Sequence[TokenItem], pad_value: int = 0) -> TokenBatch:
    """Stack :class:`TokenItem` s into a :class:`TokenBatch` (right-padded along frames)."""
    lengths = torch.tensor([it.codes.shape[-1] for it in items], dtype=torch.long)
    q = items[0].codes.shape[0]
    codes = torch.full((len(items), q, int(lengths.max())), pad_value, dtype=torch.long)
    for b, it in enumerate(items):
        codes[b, :, : it.codes.shape[-1]] = it.codes
    return TokenBatch([it.text for it in items], codes, lengths, [it.speaker for it in items])


class DurationBucketSampler(Sampler[list[int]]):
    """Batches of similar length under a frame budget (for ``DataLoader(batch_sampler=...)``).

    Examples are sorted by length and cut into ``num_buckets`` equal-count buckets; each epoch shuffles within
    buckets (seeded by ``seed + epoch``), packs each bucket greedily so that ``batch_size * longest <= max_frames``,
    and shuffles the batch order. An example longer than ``max_frames`` gets a batch of its own (never dropped).

    Args:
        lengths: frames per example (``TokenDataset.lengths``).
        max_frames: padded frames per batch (``B * F_max``).
        max_batch_size: cap on ``B`` (``None``: only the frame budget).
        num_buckets: length buckets.
        shuffle: shuffle within buckets and the batch order; ``False`` gives sorted, fixed batches.
        seed: base seed; call :meth:`set_epoch` each epoch for a new order.
        drop_last: drop each bucket's last batch when it is not full (by the frame budget).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_frames: int,
        max_batch_size: int | None = None,
        num_buckets: int = 10,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if max_frames < 1 or num_buckets < 1 or (max_batch_size is not None and max_batch_size < 1):
            raise ValueError(
                f"max_frames, num_buckets, max_batch_size must be >= 1; got {max_frames}, "
                f"{num_buckets}, {max_batch_size}"
            )
        self.lengths = list(lengths)
        self.max_frames, self.max_batch_size = max_frames, max_batch_size
        self.num_buckets, self.shuffle, self.seed, self.drop_last = num_buckets, shuffle, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """The batches of the current epoch (indices into ``lengths``)."""
        rng = random.Random(self.seed + self.epoch)
        order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], i))
        n = len(order)
        out: list[list[int]] = []
        for b in range(self.num_buckets):
            bucket = order[b * n // self.num_buckets : (b + 1) * n // self.num_buckets]
            if self.shuffle:
                rng.shuffle(bucket)
            out += self._pack(bucket)
        if self.shuffle:
            rng.shuffle(out)
        return out

    def _pack(self, bucket: list[int]) -> list[list[int]]:
        batches, cur, longest = [], [], 0
        for i in bucket:
            new_longest = max(longest, self.lengths[i])
            full = self.max_batch_size is not None and len(cur) >= self.max_batch_size
            if cur and (full or new_longest * (len(cur) + 1) > self.max_frames):
                batches.append(cur)
                cur, new_longest = [], self.lengths[i]
            cur.append(i)
            longest = new_longest
        if cur:
            is_full = self.max_batch_size is not None and len(cur) == self.max_batch_size
            if not self.drop_last or is_full or longest * (len(cur) + 1) > self.max_frames:
                batches.append(cur)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
