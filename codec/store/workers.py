"""Running shard tasks: in this process, or on spawned worker processes, with one progress bar.

Each worker loads the codec once (``torch.set_num_threads(threads)``, its own device: CUDA workers are spread over
the visible GPUs round-robin) and then encodes whole shards; it reports every utterance on a queue so the bar moves
per utterance (utt/s) and shows audio seconds per second. A worker that dies (out of memory, killed) makes the run
stop with an error; the shards finished so far are kept and the next run resumes from them.
"""

from __future__ import annotations

import os
import queue as queue_mod
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codec.store.encode import EncodeOptions, encode_shard
from codec.store.format import StoreInfo

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: a shard number and its manifest items (``{"id", "audio", "text", "speaker"}``)."""

    shard: int
    items: list[dict[str, str]]


class Progress:
    """A tqdm bar in utterances with audio-seconds/s and the real-time factor; silent when disabled."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar = None
        self.seconds = 0.0
        self.start = time.perf_counter()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="utt", desc="tokenize", dynamic_ncols=True)

    def update(self, seconds: float) -> None:
        self.seconds += seconds
        if self.bar is not None:
            self.bar.update(1)
            rate = self.seconds / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix_str(f"{rate:.1f} audio-s/s (x{rate:.0f} real time)", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_in_process(
    codec: Any, root: Path, tasks: list[ShardTask], info: StoreInfo, options: EncodeOptions, threads: int, bar: Progress
) -> float:
    """Encode ``tasks`` here, in order. Returns the audio seconds encoded."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        total = 0.0
        for task in tasks:
            total += encode_shard(codec, root, task.shard, task.items, info, options, bar.update)[1]
        return total
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------- worker processes
_WORKER: dict[str, Any] = {}


def _init_worker(model: Any, devices: Any, threads: int, progress: Any, root: str, info: StoreInfo, options: Any):
    from codec.store.encode import limit_primitive_cache

    limit_primitive_cache()  # before the first convolution runs
    import torch

    from codec.model import Codec

    torch.set_num_threads(threads)
    device = devices.get()  # each worker takes the next device name from the shared queue
    codec = model.to(device) if isinstance(model, Codec) else Codec.from_pretrained(model, device=device)
    _WORKER.update(codec=codec.eval(), progress=progress, root=Path(root), info=info, options=options)


def _run_task(task: ShardTask) -> float:
    w = _WORKER
    return encode_shard(w["codec"], w["root"], task.shard, task.items, w["info"], w["options"], w["progress"].put)[1]


def run_in_pool(
    model: Any,
    devices: list[str],
    threads: int,
    root: Path,
    tasks: list[ShardTask],
    info: StoreInfo,
    options: EncodeOptions,
    bar: Progress,
) -> float:
    """Encode ``tasks`` on ``len(devices)`` spawned processes. Returns the audio seconds encoded.

    Args:
        model: a release directory / shipped name (each worker loads it) or a ``Codec`` (pickled to each worker).
        devices: one torch device name per worker.
        threads: torch threads per worker.

    Raises:
        RuntimeError: a worker process died; finished shards are kept for the next run.
    """
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # fork after torch initialised its thread pools can deadlock
    progress, device_queue = ctx.Queue(), ctx.Queue()
    for d in devices:
        device_queue.put(d)
    args = (model, device_queue, threads, progress, str(root), info, options)
    executor = ProcessPoolExecutor(len(devices), mp_context=ctx, initializer=_init_worker, initargs=args)
    total = 0.0
    try:
        pending = {executor.submit(_run_task, t) for t in tasks}
        while pending:
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            _drain(progress, bar)
            for fut in done:
                total += fut.result()
        _drain(progress, bar)
    except BrokenProcessPool:
        raise RuntimeError(
            f"a tokenize worker died (out of memory or killed); finished shards are kept in {root} — "
            "run the same command again to resume"
        ) from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return total


def _drain(progress: Any, bar: Progress) -> None:
    while True:
        try:
            bar.update(progress.get_nowait())
        except queue_mod.Empty:
            return


def worker_devices(device: str, num_workers: int | None) -> list[str]:
    """One device name per worker: CPU workers all on ``cpu``; CUDA workers over the visible GPUs round-robin.

    Raises:
        ValueError: CUDA requested but not available, or a bad worker count.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
        if ":" in device:
            return [device] * (num_workers or 1)
        n_gpu = torch.cuda.device_count()
        return [f"cuda:{i % n_gpu}" for i in range(num_workers or n_gpu)]
    if device != "cpu":
        raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    n = 1 if num_workers is None else num_workers
    if not 1 <= n <= (os.cpu_count() or 1) * 4:
        raise ValueError(f"num_workers must be between 1 and {(os.cpu_count() or 1) * 4}, got {n}")
    return ["cpu"] * n
