"""Tokenize a manifest into a token store: sharded, atomic per shard, resumable, multiprocess.

The plan is fixed by the manifest alone: shard ``k`` holds manifest entries ``[k * shard_size, (k + 1) * shard_size)``
(layout in :mod:`codec.store.format`). Each shard is encoded by one process, start to finish, and written atomically:
codes first, then its record (the "done" marker). A killed run therefore leaves only whole shards behind; running the
same command again skips them and writes the rest, and because a shard's bytes depend only on its utterances, the
result is byte-identical to one uninterrupted run with any number of workers. When every shard is done the report
and the index are assembled; a further run changes nothing.

A file that cannot be read or encoded is recorded as a failure (id, audio path, error) in its shard record and in
``report.json`` and skipped, never fatal. ``retry_failed=True`` redoes the shards that have failures.

Workers are spawned processes (``torch.set_num_threads(threads_per_worker)`` each, one per GPU round-robin when the
device is CUDA; :mod:`codec.store.workers`). Within a shard, short files are encoded in length-sorted batches and
long ones streamed chunk by chunk with the exact encoder of :mod:`codec.chunked_encode`
(:mod:`codec.store.encode`), so memory stays flat whatever the file lengths.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codec.atomic import write_json_atomic, write_text_atomic
from codec.store.format import (
    INDEX_NAME,
    INFO_NAME,
    REPORT_NAME,
    SHARD_DIR,
    CodecIdentity,
    Failure,
    ShardRecord,
    StoreInfo,
    read_info,
    store_dtype_name,
)

DEFAULT_SHARD_SIZE = 128  # utterances; ~15 min of audio per resumable unit for typical TTS corpora


@dataclass
class TokenizeResult:
    """Outcome of :func:`tokenize` (the run's own counts and, once complete, the store's totals)."""

    out: Path
    complete: bool  # every shard is done and the index is written
    num_shards: int
    shards_written: int  # by this run
    shards_skipped: int  # already done before this run
    num_utterances: int  # in the manifest
    num_stored: int  # in done shards
    num_failed: int  # in done shards
    audio_seconds: float  # encoded by this run
    wall_seconds: float  # of this run
    failures: list[Failure] = field(default_factory=list)

    @property
    def real_time_factor(self) -> float:
        """Audio seconds encoded per wall-clock second in this run (``x real time``)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def finalize(root: Path, info: StoreInfo) -> tuple[int, list[Failure]]:
    """Assemble ``report.json`` and then ``index.jsonl`` from the shard records. Returns (stored, failures)."""
    lines, failures, frames, seconds = [], [], 0, 0.0
    for k in range(info.num_shards):
        rec = ShardRecord.read(root, k)
        assert rec is not None, f"shard {k} is not done"
        lines += [e.to_json() + "\n" for e in rec.entries]
        failures += rec.failures
        frames += sum(e.n_frames for e in rec.entries)
        seconds += sum(e.duration for e in rec.entries)
    report = {
        "num_utterances": info.num_utterances,
        "num_stored": len(lines),
        "num_failed": len(failures),
        "num_frames": frames,
        "audio_seconds": round(seconds, 3),
        "failures": [asdict(f) for f in failures],
    }
    write_json_atomic(root / REPORT_NAME, report)
    write_text_atomic(root / INDEX_NAME, "".join(lines))
    return len(lines), failures


@contextlib.contextmanager
def store_lock(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the store (two runs writing one store would race); released even on SIGKILL."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"{root}: another run is writing this store") from None
        # Temporaries of a killed run: nobody else can be writing them while we hold the lock.
        for stale in [*root.glob(".*.tmp"), *(root / SHARD_DIR).glob(".*.tmp")]:
            stale.unlink(missing_ok=True)
        yield


def open_or_create(root: Path, info: StoreInfo) -> None:
    """Write ``store.json``, or check that the existing one describes the same plan.

    Raises:
        ValueError: the store was made with another codec, manifest or shard size.
    """
    if not (root / INFO_NAME).is_file():
        if root.exists() and any(p.name != ".lock" for p in root.iterdir()):
            raise ValueError(f"{root}: exists and is not a token store; choose an empty or new --out directory")
        (root / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        write_json_atomic(root / INFO_NAME, info.to_dict())
        return
    old = read_info(root)
    if old.codec.release_id != info.codec.release_id:
        raise ValueError(
            f"{root}: this store was made with codec {old.codec.describe()}; this run uses "
            f"{info.codec.describe()}. Use a new --out directory for another codec"
        )
    if (old.manifest_sha256, old.shard_size) != (info.manifest_sha256, info.shard_size):
        raise ValueError(
            f"{root}: this store was planned from another manifest or shard size (shard size {old.shard_size}, "
            f"{old.num_utterances} utterances from {old.source}); resume with the same ones or use a new --out"
        )
    (root / SHARD_DIR).mkdir(parents=True, exist_ok=True)


def plan_items(manifest: str | os.PathLike) -> tuple[list[dict[str, str]], str]:
    """Manifest entries as work items (audio paths resolved) and the manifest's SHA-256.

    Raises:
        FileNotFoundError, ValueError: unreadable manifest, or duplicate ids (the store is addressed by id).
    """
    from codec.manifest import read_manifest
    from codec.release import sha256_file

    utts = read_manifest(manifest)  # audio paths come back resolved against the manifest's directory
    if not utts:
        raise ValueError(f"{manifest}: the manifest has no utterances")
    seen: set[str] = set()
    for u in utts:
        if u.id in seen:
            raise ValueError(f"{manifest}: duplicate utterance id {u.id!r}; ids must be unique in a token store")
        seen.add(u.id)
    items = [{"id": u.id, "audio": u.audio, "text": u.text, "speaker": u.speaker} for u in utts]
    return items, sha256_file(manifest)


def make_info(codec: Any, num_items: int, shard_size: int, manifest_sha256: str, source: str) -> StoreInfo:
    """The store description for ``codec`` and a plan of ``num_items`` utterances."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    ident = CodecIdentity.of(codec)
    return StoreInfo(
        codec=ident,
        dtype=store_dtype_name(ident.num_codebooks, ident.codebook_size),
        shard_size=shard_size,
        num_shards=(num_items + shard_size - 1) // shard_size,
        num_utterances=num_items,
        manifest_sha256=manifest_sha256,
        source=source,
    )


def tokenize(
    model: Any,
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    *,
    num_workers: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    device: str = "cpu",
    threads_per_worker: int = 1,
    chunk_seconds: float | None = None,
    batch_seconds: float | None = None,
    retry_failed: bool = False,
    max_shards: int | None = None,
    progress: bool = True,
) -> TokenizeResult:
    """Encode every utterance of ``manifest`` with ``model`` into the token store ``out`` (resuming if it exists).

    Args:
        model: codec release directory, shipped release name, or a loaded :class:`codec.model.Codec`.
        manifest: JSONL manifest (:mod:`codec.manifest`); ids must be unique.
        out: store directory (created; an existing store is resumed and must have the same codec/manifest/shards).
        num_workers: processes (default 1 on CPU, one per GPU on CUDA); 1 on CPU runs in this process.
        shard_size: utterances per shard (the unit of atomic writes and of resumption).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        threads_per_worker: torch intra-op threads of each worker.
        chunk_seconds: files longer than this are streamed in chunks of this many seconds (default 60).
        batch_seconds: padded audio per batch of shorter files (default 60 on CPU, 600 on CUDA).
        retry_failed: redo shards whose record lists failures (after fixing the files).
        max_shards: encode at most this many of the pending shards, then return (incremental runs).
        progress: show a tqdm bar on stderr.

    Returns:
        A :class:`TokenizeResult`; ``complete`` tells whether the index is written.

    Raises:
        FileNotFoundError, ValueError: bad manifest/model/arguments, or ``out`` belongs to another codec or plan.
    """
    from codec.chunked_encode import DEFAULT_CHUNK_SECONDS
    from codec.model import Codec
    from codec.store.encode import EncodeOptions, default_batch_seconds
    from codec.store.workers import Progress, ShardTask, run_in_pool, run_in_process, worker_devices

    start = time.perf_counter()
    if threads_per_worker < 1 or (max_shards is not None and max_shards < 0):
        raise ValueError(f"need threads_per_worker >= 1 and max_shards >= 0, got {threads_per_worker}, {max_shards}")
    devices = worker_devices(device, num_workers)
    options = EncodeOptions(
        chunk_seconds=DEFAULT_CHUNK_SECONDS if chunk_seconds is None else chunk_seconds,
        batch_seconds=default_batch_seconds(devices[0]) if batch_seconds is None else batch_seconds,
    )
    items, digest = plan_items(manifest)
    # With worker processes this copy only names the codec (and is what a Codec argument sends to them): keep it on
    # the CPU so the parent holds no GPU memory.
    here = devices[0] if len(devices) == 1 else "cpu"
    codec = model if isinstance(model, Codec) else Codec.from_pretrained(model, device=here)
    root = Path(out)
    info = make_info(codec, len(items), shard_size, digest, str(Path(manifest).resolve()))
    with store_lock(root):
        open_or_create(root, info)
        records = {k: ShardRecord.read(root, k) for k in range(info.num_shards)}
        todo = [k for k, r in records.items() if r is None or (retry_failed and r.failures)]
        skipped = info.num_shards - len(todo)
        if not todo and (root / INDEX_NAME).is_file():
            return _result(root, info, records, 0, skipped, 0.0, start)
        run = todo if max_shards is None else todo[:max_shards]
        tasks = [ShardTask(k, items[k * shard_size : (k + 1) * shard_size]) for k in run]
        remaining = sum(len(items[k * shard_size : (k + 1) * shard_size]) for k in todo)
        bar = Progress(len(items), len(items) - remaining, progress)
        try:
            if len(devices) == 1:
                seconds = run_in_process(codec, root, tasks, info, options, threads_per_worker, bar)
            else:
                ref = model if isinstance(model, Codec) else str(model)
                seconds = run_in_pool(ref, devices, threads_per_worker, root, tasks, info, options, bar)
        finally:
            bar.close()
        records = {k: ShardRecord.read(root, k) for k in range(info.num_shards)}
        if all(r is not None for r in records.values()):
            finalize(root, info)
        return _result(root, info, records, len(run), skipped, seconds, start)


def _result(
    root: Path, info: StoreInfo, records: dict, written: int, skipped: int, seconds: float, start: float
) -> TokenizeResult:
    done = [r for r in records.values() if r is not None]
    return TokenizeResult(
        out=root,
        complete=len(done) == info.num_shards and (root / INDEX_NAME).is_file(),
        num_shards=info.num_shards,
        shards_written=written,
        shards_skipped=skipped,
        num_utterances=info.num_utterances,
        num_stored=sum(len(r.entries) for r in done),
        num_failed=sum(len(r.failures) for r in done),
        audio_seconds=seconds,
        wall_seconds=time.perf_counter() - start,
        failures=[f for r in done for f in r.failures],
    )
