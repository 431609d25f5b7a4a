"""Training data for the codec: random fixed-length crops from a manifest, with a resumable deterministic order.

Determinism is what makes ``--resume`` exact: :class:`CropSampler` yields ``(utterance index, crop seed)`` pairs
computed from ``(seed, epoch, position)`` only, and the dataset derives the crop offset and the gain jitter from
the crop seed. So the batch at step ``s`` is the same whether the run was interrupted or not, with any number of
DataLoader workers. Processes (DDP ranks) take interleaved slices of the same permutation.

Only the crop is read from disk (soundfile seeks), so memory does not grow with the corpus.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, Sampler

from codec.audio import load_audio


def read_manifest_entries(path: str | Path, min_seconds: float = 0.0) -> list[dict]:
    """Read a JSONL manifest (``audio`` paths relative to the manifest are resolved), keeping utterances of at least
    ``min_seconds``.

    Raises:
        FileNotFoundError / ValueError: missing file, malformed line (with its number), or nothing left.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"manifest not found: {p}")
    entries = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            audio, duration = item["audio"], float(item["duration"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{p}:{n}: not a manifest line ({exc})") from None
        audio_path = Path(audio)
        if not audio_path.is_absolute():
            audio_path = p.parent / audio_path
        if duration >= min_seconds:
            entries.append({**item, "audio": str(audio_path), "duration": duration})
    if not entries:
        raise ValueError(f"{p}: no utterances of at least {min_seconds:g} s")
    return entries


class CropSampler(Sampler):
    """Infinite, resumable sampler of ``(index, crop_seed)`` for one process.

    Args:
        num_items: manifest length.
        seed: run seed.
        rank, world_size: this process's slice of every epoch's permutation.
        start: number of items this process already consumed (``step * batch_size`` on resume).
    """

    def __init__(self, num_items: int, seed: int, rank: int = 0, world_size: int = 1, start: int = 0) -> None:
        self.num_items, self.seed, self.rank, self.world_size, self.start = num_items, seed, rank, world_size, start
        self.per_epoch = max(1, num_items // world_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start
        while True:
            epoch, offset = divmod(position, self.per_epoch)
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_items)
            for i in range(offset, self.per_epoch):
                index = int(perm[i * self.world_size + self.rank])
                yield index, int(np.random.default_rng([self.seed, epoch, i, self.rank]).integers(2**31))
            position = (epoch + 1) * self.per_epoch

    def __len__(self) -> int:  # infinite in practice; len() is only a hint for progress bars
        return 2**31


class CropDataset(Dataset):
    """Fixed-length, loudness-normalised crops ``[1, crop_samples]`` from a manifest.

    Utterances shorter than the crop are zero-padded on the right. ``__getitem__`` takes the ``(index, crop_seed)``
    pairs that :class:`CropSampler` yields.
    """

    def __init__(
        self,
        entries: list[dict],
        sample_rate: int,
        crop_samples: int,
        loudness_db: float = -23.0,
        gain_jitter_db: float = 0.0,
    ) -> None:
        self.entries, self.sample_rate, self.crop = entries, sample_rate, crop_samples
        self.loudness_db, self.gain_jitter_db = loudness_db, gain_jitter_db

    def __len__(self) -> int:
        return len(self.entries)

    def _read(self, entry: dict, rng: np.random.Generator) -> torch.Tensor:
        path = entry["audio"]
        info = sf.info(path)
        if info.samplerate != self.sample_rate:  # rare in prepared corpora: load all, resample, then crop
            wav = load_audio(path, self.sample_rate)
        else:
            wav = None
        total = wav.shape[-1] if wav is not None else info.frames
        start = int(rng.integers(0, max(1, total - self.crop + 1)))
        if wav is None:
            data, _ = sf.read(path, start=start, frames=self.crop, dtype="float32", always_2d=True)
            wav = torch.from_numpy(data.mean(axis=1))[None]
        else:
            wav = wav[:, start : start + self.crop]
        return wav

    def __getitem__(self, item: tuple[int, int]) -> torch.Tensor:
        index, crop_seed = item
        rng = np.random.default_rng(crop_seed)
        wav = self._read(self.entries[index], rng)
        wav = torch.nn.functional.pad(wav, (0, self.crop - wav.shape[-1]))
        rms = wav.pow(2).mean().sqrt().clamp_min(1e-4)
        gain_db = self.loudness_db + float(rng.uniform(-self.gain_jitter_db, self.gain_jitter_db))
        wav = wav * (10 ** (gain_db / 20) / rms)
        return wav.clamp(-1.0, 1.0)


def crop_samples(crop_seconds: float, sample_rate: int, hop_length: int) -> int:
    """Crop length in samples, rounded down to whole frames (at least one)."""
    return max(1, math.floor(crop_seconds * sample_rate / hop_length)) * hop_length


def load_dev_set(entries: list[dict], sample_rate: int, count: int, seconds: float, hop: int) -> list[torch.Tensor]:
    """The fixed dev subset: the first ``count`` utterances (manifest order), cut to whole frames ≤ ``seconds``."""
    out = []
    for entry in entries[:count]:
        wav = load_audio(entry["audio"], sample_rate)
        n = max(hop, min(wav.shape[-1], int(seconds * sample_rate)) // hop * hop)
        out.append(wav[:, :n])
    return out
