"""Training data for the codec: random fixed-length crops from a manifest, with a resumable deterministic order.

Determinism is what makes ``--resume`` exact: :class:`CropSampler` yields ``(utterance index, crop seed)`` pairs
computed from ``(seed, epoch, position)`` only, and the dataset derives the crop offset and the gain jitter from
the crop seed. So the batch at step ``s`` is the same whether the run was interrupted or not, with any number of
DataLoader workers. Processes (DDP ranks) take interleaved slices of the same permutation.

Only the crop is read from disk (soundfile seeks), so memory does not grow with the corpus.

With a content store (:mod:`codec.content.store`) the crops start on frame boundaries and each item also carries
the teacher features of its frames and, when the whole utterance fits in the crop, its phoneme ids (a CTC target
needs the whole transcript), plus per-sub-frame phoneme labels when the model has a frame classifier;
:func:`collate_content` batches such items.
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
from codec.content.phone_times import subframe_labels


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
        content=None,
        hop_length: int = 0,
        teacher_subframes: int = 1,
        label_subframes: int = 0,
        reference_samples: int = 0,
    ) -> None:
        self.entries, self.sample_rate, self.crop = entries, sample_rate, crop_samples
        # a voice reference per item: a crop of another utterance of the same speaker (0 = none)
        self.reference_samples = reference_samples
        self.by_speaker: dict[str, list[int]] = {}
        if reference_samples:
            for i, entry in enumerate(entries):
                self.by_speaker.setdefault(str(entry.get("speaker", "")), []).append(i)
        self.loudness_db, self.gain_jitter_db = loudness_db, gain_jitter_db
        self.content, self.hop = content, hop_length  # a ContentStore: items become dicts (see collate_content)
        if content is not None and (hop_length < 1 or crop_samples % hop_length):
            raise ValueError(f"content crops need whole frames: crop {crop_samples}, hop {hop_length}")
        self.subframes = teacher_subframes  # teacher vectors per frame in the items (pooled from the store's)
        self.label_subframes = label_subframes  # phoneme labels per frame (0 = none; from the store's phone times)
        if content is not None and content.info.teacher_dim and content.info.teacher_per_frame % teacher_subframes:
            raise ValueError(
                f"the content store holds {content.info.teacher_per_frame} teacher vectors per frame, which do not "
                f"pool to {teacher_subframes} (model.content.teacher_subframes must divide it)"
            )

    def __len__(self) -> int:
        return len(self.entries)

    def _read(self, entry: dict, rng: np.random.Generator, length: int | None = None) -> tuple[torch.Tensor, int, int]:
        """The crop ``[1, <= length]`` (default: the crop length), its start sample and the utterance's length in
        samples."""
        crop = length or self.crop
        path = entry["audio"]
        info = sf.info(path)
        if info.samplerate != self.sample_rate:  # rare in prepared corpora: load all, resample, then crop
            wav = load_audio(path, self.sample_rate)
        else:
            wav = None
        total = wav.shape[-1] if wav is not None else info.frames
        if self.content is not None:  # frame-aligned start, so the crop's frames are the utterance's frames
            frames = math.ceil(total / self.hop)
            start = self.hop * int(rng.integers(0, max(1, frames - crop // self.hop + 1)))
        else:
            start = int(rng.integers(0, max(1, total - crop + 1)))
        if wav is None:
            data, _ = sf.read(path, start=start, frames=crop, dtype="float32", always_2d=True)
            wav = torch.from_numpy(data.mean(axis=1))[None]
        else:
            wav = wav[:, start : start + crop]
        return wav, start, total

    def _normalise(self, wav: torch.Tensor, length: int, rng: np.random.Generator) -> torch.Tensor:
        """Zero-pad ``[1, <= length]`` to ``length`` and scale it to the loudness target (± the gain jitter)."""
        wav = torch.nn.functional.pad(wav, (0, length - wav.shape[-1]))
        rms = wav.pow(2).mean().sqrt().clamp_min(1e-4)
        gain_db = self.loudness_db + float(rng.uniform(-self.gain_jitter_db, self.gain_jitter_db))
        return (wav * (10 ** (gain_db / 20) / rms)).clamp(-1.0, 1.0)

    def _reference_source(self, index: int, crop_seed: int) -> tuple[int, np.random.Generator]:
        """Which utterance item ``(index, crop_seed)`` takes its voice reference from (another one of its speaker;
        itself when the speaker has only one), and the generator that then places the reference's crop."""
        rng = np.random.default_rng([crop_seed, 1])  # its own stream: the item's crop and gain stay as they were
        group = self.by_speaker[str(self.entries[index].get("speaker", ""))]
        others = [i for i in group if i != index] if len(group) > 1 else group
        return others[int(rng.integers(len(others)))], rng

    def _reference(self, index: int, crop_seed: int) -> torch.Tensor:
        """The voice reference ``[1, reference_samples]`` of item ``(index, crop_seed)``, loudness-normalised."""
        other, rng = self._reference_source(index, crop_seed)
        wav, _, _ = self._read(self.entries[other], rng, self.reference_samples)
        return self._normalise(wav, self.reference_samples, rng)

    def __getitem__(self, item: tuple[int, int]) -> torch.Tensor:
        index, crop_seed = item
        rng = np.random.default_rng(crop_seed)
        wav, start, total = self._read(self.entries[index], rng)
        wav = self._normalise(wav, self.crop, rng)
        if self.content is None and not self.reference_samples:
            return wav
        item = {"wav": wav} if self.content is None else self._with_content(self.entries[index], wav, start, total)
        if self.reference_samples:
            item["reference"] = self._reference(index, crop_seed)
        return item

    def _with_content(self, entry: dict, wav: torch.Tensor, start: int, total: int) -> dict:
        crop_frames, first = self.crop // self.hop, start // self.hop
        utt_frames = math.ceil(total / self.hop)
        frames = min(crop_frames, utt_frames - first)
        whole = start == 0 and total <= self.crop
        ids = self.content.phonemes.get(entry.get("id")) if whole else None
        teacher = self.content.teacher(entry.get("id")) if self.content.info.teacher_dim else None
        dim, r, s = max(1, self.content.info.teacher_dim), self.content.info.teacher_per_frame, self.subframes
        feats = torch.zeros(crop_frames * s, dim)
        teacher_frames = 0
        if teacher is not None:
            part = teacher[first * r : (first + crop_frames) * r]
            n = part.shape[0] // r
            part = part[: n * r].reshape(n * s, r // s, -1).mean(1)  # pool R stored vectors to S per frame
            feats[: part.shape[0]] = part
            teacher_frames = min(frames, n) * s
        item = {
            "wav": wav,
            "frames": frames,
            "phonemes": torch.tensor(ids or [], dtype=torch.long),
            "teacher": feats,
            "teacher_frames": teacher_frames,
        }
        if self.label_subframes:
            u = self.label_subframes
            times = self.content.phone_times.get(entry.get("id"))
            valid = frames * u if times is not None else 0  # no times: every sub-frame is ignored
            seconds = self.hop / u / self.sample_rate
            item["labels"] = subframe_labels(times or [], first * u, crop_frames * u, valid, seconds)
        return item


def collate_content(items: list[dict]) -> dict:
    """Batch content items: ``wav [B, 1, S]``, ``frames [B]``, ``teacher [B, F * Ts, Dt]`` (``Ts`` teacher
    vectors per frame), ``teacher_frames [B]`` (valid teacher vectors) and
    ``phonemes`` (a list of ``[L]`` tensors, empty where the crop is not a whole utterance)."""
    return {
        "wav": torch.stack([it["wav"] for it in items]),
        "frames": torch.tensor([it["frames"] for it in items]),
        "teacher": torch.stack([it["teacher"] for it in items]),
        "teacher_frames": torch.tensor([it["teacher_frames"] for it in items]),
        "phonemes": [it["phonemes"] for it in items],
        **({"labels": torch.stack([it["labels"] for it in items])} if "labels" in items[0] else {}),
        **({"reference": torch.stack([it["reference"] for it in items])} if "reference" in items[0] else {}),
    }


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
