"""Content store: the labels of the codec's content heads, computed once per corpus, never per training step.

Layout of a store directory (``ucodec content-store MANIFEST OUT``)::

    OUT/content.json             plan: manifest SHA-256, shard size, teacher name/width, frame rate, CTC symbols
    OUT/phonemes.jsonl           {"id", "ids"} per utterance: CTC symbol ids (:mod:`codec.content.phonemes`)
    OUT/phone_times.jsonl        optional, {"id", "phones"}: timed phonemes (``ucodec content-times``,
                                 :mod:`codec.content.phone_times`), the frame classifier's labels
    OUT/teacher/shard-NNNNN.safetensors   per utterance id a ``[F * R, Dt]`` fp16 tensor: the teacher's own frames
                                 (``R = hop_length / teacher_hop``, 10 for Whisper at 5 Hz), cut or zero-padded
                                 to the utterance's ``F`` whole codec frames. Training pools them to the sub-frame
                                 rate it asks for (``model.content.teacher_subframes``: 1 = one mean per frame, a
                                 non-causal average pool). Stores built before ``teacher_hop`` existed hold one
                                 pooled vector per frame (``R = 1``).

The teacher is the Whisper tiny.en encoder shipped offline with the ``[eval]`` extra (384-d at 50 Hz). Each
utterance is encoded on its own, cut to whole codec frames and not padded to Whisper's 30 s window: measured on the
synthetic corpus, its 5 Hz features match those of the 30-s-padded encoding at cosine 0.95-0.96 while taking 0.03 s
instead of 0.7 s. Packing several utterances into one 30 s window would be cheaper still, but Whisper's absolute
positions change the features of an utterance that does not start at 0 s (cosine 0.3 to its own features alone), so
the target would depend on a packing the codec never sees. Shards are written atomically and a rerun skips finished
ones, so an interrupted build resumes like ``ucodec tokenize``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from codec.atomic import safetensors_save_atomic, write_json_atomic, write_text_atomic

INFO_NAME = "content.json"
PHONEMES_NAME = "phonemes.jsonl"
TEACHER_DIR = "teacher"
WHISPER = "whisper-tiny.en"
WHISPER_DIM = 384
WHISPER_RATE = 16000
WHISPER_WINDOW = 30 * WHISPER_RATE  # samples Whisper encodes at once
WHISPER_HOP = 320  # samples per encoder frame (50 Hz)


@dataclass(frozen=True)
class ContentInfo:
    """What ``content.json`` records; a rerun must match it to resume."""

    manifest_sha256: str
    num_utterances: int
    shard_size: int
    hop_length: int  # codec samples per frame (3200 at 5 Hz)
    sample_rate: int
    teacher: str | None  # "whisper-tiny.en" or None (phonemes only)
    teacher_dim: int
    symbols: tuple[str, ...]
    teacher_hop: int = 0  # samples per stored teacher vector (320: Whisper's 50 Hz); 0 = older stores, = hop_length

    @property
    def num_shards(self) -> int:
        return math.ceil(self.num_utterances / self.shard_size)

    @property
    def teacher_per_frame(self) -> int:
        """Stored teacher vectors per codec frame (``R``)."""
        return self.hop_length // self.teacher_hop if self.teacher_hop else 1


def shard_path(root: Path, shard: int) -> Path:
    return root / TEACHER_DIR / f"shard-{shard:05d}.safetensors"


class WhisperTeacher:
    """Whisper tiny.en encoder features cut to a codec's whole frames (inference only, CPU, one thread)."""

    def __init__(self, hop_length: int, threads: int = 1) -> None:
        from codec.evaluation.asr import bundled_whisper_dir
        from codec.evaluation.extras import offline_hub, require

        offline_hub()
        fw = require("faster_whisper", "eval", "the Whisper teacher (faster-whisper)")
        if hop_length % WHISPER_HOP:
            raise ValueError(f"the codec hop {hop_length} is not a multiple of Whisper's {WHISPER_HOP} samples")
        self.hop, self.pool = hop_length, hop_length // WHISPER_HOP
        self.model = fw.WhisperModel(str(bundled_whisper_dir()), device="cpu", compute_type="int8", cpu_threads=threads)

    def features(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        """Per utterance (16 kHz, ``[T]``) its ``[ceil(T / hop) * hop / 320, 384]`` encoder features (50 Hz).

        Raises:
            ValueError: an utterance longer than Whisper's 30 s window.
        """
        out = []
        for wav in wavs:
            frames = max(1, math.ceil(len(wav) / self.hop))
            if frames * self.hop > WHISPER_WINDOW:
                raise ValueError(f"an utterance of {len(wav) / WHISPER_RATE:.1f} s; the teacher reads at most 30 s")
            audio = np.zeros(frames * self.hop, dtype=np.float32)
            audio[: len(wav)] = wav
            mel = self.model.feature_extractor(audio)[:, : frames * self.hop // (WHISPER_HOP // 2)]
            enc = np.asarray(self.model.encode(mel[None]))[0]  # [frames * pool, 384] at 50 Hz
            enc = np.pad(enc, ((0, max(0, frames * self.pool - len(enc))), (0, 0)))[: frames * self.pool]
            out.append(enc)
        return out


class ContentStore:
    """Read access to a finished or partial store: phonemes and teacher features by utterance id."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        path = self.root / INFO_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{self.root}: not a content store (no {INFO_NAME}); build it with content-store")
        data = json.loads(path.read_text(encoding="utf-8"))
        self.info = ContentInfo(**{**data, "symbols": tuple(data["symbols"])})
        self.phonemes: dict[str, list[int]] = {}
        ph = self.root / PHONEMES_NAME
        if ph.is_file():
            for line in ph.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.phonemes[row["id"]] = row["ids"]
        from codec.content.phone_times import read_phone_times

        self.phone_times = read_phone_times(self.root)  # {id: [[symbol_id, start, end], ...]} (ucodec content-times)
        self._where: dict[str, Path] = {}
        self._open: dict[Path, object] = {}
        for shard in range(self.info.num_shards):
            p = shard_path(self.root, shard)
            if p.is_file():
                from safetensors import safe_open

                with safe_open(str(p), "pt") as fh:
                    self._where.update({k: p for k in fh.keys()})

    def teacher(self, utt_id: str) -> torch.Tensor | None:
        """``[F, Dt]`` float32 teacher features of an utterance, or None when the store has none for it."""
        p = self._where.get(utt_id)
        if p is None:
            return None
        if p not in self._open:  # opened lazily in each DataLoader worker (handles do not cross processes)
            from safetensors import safe_open

            self._open[p] = safe_open(str(p), "pt")
        return self._open[p].get_tensor(utt_id).float()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": {}}


def write_phonemes(root: Path, items: list[dict], language: str) -> int:
    """Phonemize every transcript in one batched espeak call → ``phonemes.jsonl`` (atomic). Returns how many
    utterances have no phoneme (their CTC target is empty and the loss skips them)."""
    from codec.content.phonemes import phoneme_ids

    ids = phoneme_ids([it.get("text") or "" for it in items], language)
    lines = [json.dumps({"id": it["id"], "ids": row}) + "\n" for it, row in zip(items, ids, strict=True)]
    write_text_atomic(root / PHONEMES_NAME, "".join(lines))
    return sum(1 for row in ids if not row)


def write_teacher_shard(root: Path, teacher: WhisperTeacher, part: list[dict], shard: int) -> None:
    """Teacher features of one shard's items → ``teacher/shard-NNNNN.safetensors`` (atomic)."""
    from codec.audio import load_audio

    wavs = [load_audio(it["audio"], WHISPER_RATE)[0].numpy().astype(np.float32) for it in part]
    feats = teacher.features(wavs)
    tensors = {it["id"]: torch.from_numpy(f).half() for it, f in zip(part, feats, strict=True)}
    safetensors_save_atomic(tensors, shard_path(root, shard))


def describe(info: ContentInfo) -> dict:
    return {**asdict(info), "symbols": list(info.symbols)}


_WORKER: dict = {}


def _init_worker(hop: int) -> None:
    torch.set_num_threads(1)
    _WORKER["teacher"] = WhisperTeacher(hop, threads=1)


def _run_shard(args: tuple) -> int:
    root, part, shard = args
    write_teacher_shard(Path(root), _WORKER["teacher"], part, shard)
    return shard


def build_content_store(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    teacher: bool = True,
    shard_size: int = 256,
    workers: int = 1,
    hop_length: int = 3200,
    sample_rate: int = 16000,
    language: str = "en-us",
    progress: bool = True,
) -> ContentInfo:
    """Build (or resume) a content store for ``manifest`` in ``out``: phonemes, then teacher shards.

    Raises:
        FileNotFoundError / ValueError: unreadable manifest, duplicate ids, a store of another plan in ``out``,
            no espeak-ng, or (with ``teacher``) the ``[eval]`` extra missing.
    """
    from codec.content.phonemes import CTC_SYMBOLS
    from codec.store.writer import plan_items, store_lock

    if shard_size < 1 or workers < 1:
        raise ValueError(f"shard size and workers must be >= 1, got {shard_size} and {workers}")
    items, sha = plan_items(manifest)
    if teacher:
        WhisperTeacher(hop_length)  # fail now, before anything is written, when the teacher cannot load
    info = ContentInfo(
        manifest_sha256=sha,
        num_utterances=len(items),
        shard_size=shard_size,
        hop_length=hop_length,
        sample_rate=sample_rate,
        teacher=WHISPER if teacher else None,
        teacher_dim=WHISPER_DIM if teacher else 0,
        symbols=CTC_SYMBOLS,
        teacher_hop=WHISPER_HOP if teacher else 0,
    )
    root = Path(out)
    with store_lock(root):
        info_path = root / INFO_NAME
        if info_path.is_file():
            old = json.loads(info_path.read_text(encoding="utf-8"))
            if old != describe(info):
                raise ValueError(f"{root}: a content store of another manifest or plan; use a new output directory")
        elif any(p.name != ".lock" for p in root.iterdir()):
            raise ValueError(f"{root}: exists and is not a content store; choose an empty or new directory")
        if not (root / PHONEMES_NAME).is_file():
            empty = write_phonemes(root, items, language)
            if empty:
                print(f"warning: {empty} of {len(items)} transcripts gave no phoneme; the CTC loss skips them")
        write_json_atomic(info_path, describe(info))
        if not teacher:
            return info
        (root / TEACHER_DIR).mkdir(exist_ok=True)
        for stale in (root / TEACHER_DIR).glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        todo = [s for s in range(info.num_shards) if not shard_path(root, s).is_file()]
        from tqdm import tqdm

        bar = tqdm(total=info.num_shards, initial=info.num_shards - len(todo), unit="shard", disable=not progress)
        jobs = [(str(root), items[s * shard_size : (s + 1) * shard_size], s) for s in todo]
        if workers == 1:
            _init_worker(hop_length)
            for job in jobs:
                _run_shard(job)
                bar.update(1)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(hop_length,)) as ex:
                for _ in ex.map(_run_shard, jobs):
                    bar.update(1)
        bar.close()
    return info
