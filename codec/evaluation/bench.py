"""``ucodec bench codec``: how fast and how lean our codec is, next to EnCodec and SNAC, measured in one run.

Three measurements, each built to be fair on a small, shared CPU:

1. **Speed** (:func:`time_interleaved`): encode + decode of the same seconds of audio (10 s by default) at each
   model's native rate, with a fixed number of torch threads. The contestants are *interleaved* (round r runs
   every model once, in an order rotated by r), so a burst of load from another process hits all of them alike
   instead of one model's whole series; warm-up rounds are run and discarded (allocator, oneDNN kernel choice);
   the reported time is the median of the timed rounds. The CPU time of the process (all threads) is recorded
   too: a second view that does not count time spent waiting for a core on a machine shared with other jobs.
2. **Peak memory** (:func:`probe_memory`): each model runs in its own subprocess (``codec.evaluation.bench_probe``)
   and reports its peak RSS, with the RSS of the same process before the model was built as the baseline, so the
   numbers are not polluted by the other models or by the parent.
3. **Long-file throughput** (:func:`probe_long_file`): a long file (10 min by default) streamed through the codec
   in fixed chunks with :func:`codec.audio.iter_audio_chunks`, output written as it is produced, in a subprocess;
   peak RSS there shows that memory stays bounded by the chunk, not the file.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from codec.evaluation.peers import Contestant, bench_signal


@dataclass(frozen=True)
class SpeedResult:
    """Encode/decode timing of one contestant (medians over the timed rounds)."""

    name: str
    kind: str  # "ours" or "peer"
    spec: str
    sample_rate: int
    bitrate: float
    num_parameters: int
    random_init: bool
    seconds: float  # audio length per round
    encode_s: float  # median encode time
    decode_s: float  # median decode time
    total_s: float  # median of the per-round encode + decode times
    rounds: tuple[float, ...]  # encode + decode seconds of each timed round
    cpu_s: float = float("nan")  # median CPU seconds (all threads of the process) of encode + decode

    @property
    def rtf(self) -> float:
        """Real-time factor of encode + decode (< 1 is faster than real time)."""
        return self.total_s / self.seconds

    @property
    def realtime(self) -> float:
        """Seconds of audio processed per wall-clock second (1 / RTF)."""
        return self.seconds / self.total_s if self.total_s > 0 else float("inf")

    @property
    def cpu_rtf(self) -> float:
        """CPU seconds (all threads) per second of audio."""
        return self.cpu_s / self.seconds


@dataclass(frozen=True)
class MemoryResult:
    """Peak resident memory of one contestant in a fresh process."""

    spec: str
    baseline_mb: float  # RSS of the probe process (Python + torch) before the model is built
    peak_mb: float  # peak RSS after building the model and running encode + decode

    @property
    def model_mb(self) -> float:
        """What the model and its activations added on top of the baseline."""
        return self.peak_mb - self.baseline_mb


@dataclass(frozen=True)
class LongFileResult:
    """Chunked encode + decode of a long file in a fresh process."""

    spec: str
    name: str
    audio_seconds: float
    wall_seconds: float  # time for all chunks (the model was built before the clock started)
    chunk_seconds: float
    baseline_mb: float
    peak_mb: float

    @property
    def realtime(self) -> float:
        """Seconds of audio per wall-clock second."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def _run_once(contestant: Contestant, wav: torch.Tensor) -> tuple[float, float, float]:
    """Encode + decode ``wav`` once; returns (encode wall s, decode wall s, CPU s of both)."""
    with torch.inference_mode():
        cpu = time.process_time()
        start = time.perf_counter()
        codes = contestant.encode(wav)
        middle = time.perf_counter()
        out = contestant.decode(codes)
        end = time.perf_counter()
        cpu = time.process_time() - cpu
    assert out.shape[-1] >= wav.shape[-1] * 0.9, (contestant.name, tuple(out.shape), tuple(wav.shape))
    return middle - start, end - middle, cpu


def time_interleaved(
    contestants: Sequence[Contestant], seconds: float = 10.0, repeats: int = 5, warmup: int = 1, progress: bool = True
) -> list[SpeedResult]:
    """Time encode + decode of every contestant, interleaved round by round.

    Args:
        contestants: the models (already built).
        seconds: audio length of one round; each model gets it at its own sample rate.
        repeats: timed rounds (the median is reported).
        warmup: untimed rounds first.
        progress: show a tqdm bar.

    Returns:
        One result per contestant, in the given order.

    Raises:
        ValueError: ``repeats < 1``, ``warmup < 0`` or ``seconds <= 0``.
    """
    from tqdm import tqdm

    if repeats < 1 or warmup < 0 or seconds <= 0:
        raise ValueError(f"need repeats >= 1, warmup >= 0, seconds > 0; got {repeats}, {warmup}, {seconds}")
    inputs = [bench_signal(seconds, c.sample_rate) for c in contestants]
    timings: list[list[tuple[float, float, float]]] = [[] for _ in contestants]
    total = (warmup + repeats) * len(contestants)
    with tqdm(total=total, desc="bench codec", unit="run", disable=not progress, dynamic_ncols=True) as bar:
        for round_index in range(warmup + repeats):
            shift = round_index % len(contestants)
            order = list(range(len(contestants)))[shift:] + list(range(len(contestants)))[:shift]
            for i in order:
                bar.set_postfix_str(contestants[i].name)
                measured = _run_once(contestants[i], inputs[i])
                if round_index >= warmup:
                    timings[i].append(measured)
                bar.update()
    results = []
    for contestant, runs in zip(contestants, timings, strict=True):
        totals = tuple(e + d for e, d, _ in runs)
        results.append(
            SpeedResult(
                name=contestant.name,
                kind=contestant.kind,
                spec=contestant.spec,
                sample_rate=contestant.sample_rate,
                bitrate=contestant.bitrate,
                num_parameters=contestant.num_parameters,
                random_init=contestant.random_init,
                seconds=seconds,
                encode_s=statistics.median(e for e, _, _ in runs),
                decode_s=statistics.median(d for _, d, _ in runs),
                total_s=statistics.median(totals),
                rounds=totals,
                cpu_s=statistics.median(c for _, _, c in runs),
            )
        )
    return results


def _probe(args: list[str], timeout: float) -> dict:
    """Run ``python -m codec.evaluation.bench_probe ARGS`` and parse the JSON object it prints last."""
    command = [sys.executable, "-m", "codec.evaluation.bench_probe", *args]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"benchmark probe timed out after {timeout:.0f} s: {' '.join(command)}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"benchmark probe failed ({proc.returncode}): {' '.join(command)}\n" + "\n".join(tail))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def probe_memory(spec: str, seconds: float = 10.0, threads: int = 2, timeout: float = 600) -> MemoryResult:
    """Peak RSS of building ``spec`` and running encode + decode on ``seconds`` of audio, in a fresh process."""
    data = _probe(["memory", "--spec", spec, "--seconds", str(seconds), "--threads", str(threads)], timeout)
    return MemoryResult(spec=spec, baseline_mb=data["baseline_mb"], peak_mb=data["peak_mb"])


def probe_long_file(
    spec: str, path: str | os.PathLike, chunk_seconds: float = 60.0, threads: int = 2, timeout: float = 1800
) -> LongFileResult:
    """Stream the audio file ``path`` through ``spec`` in ``chunk_seconds`` chunks, in a fresh process."""
    args = [
        "long",
        "--spec",
        spec,
        "--threads",
        str(threads),
        "--file",
        str(path),
        "--chunk-seconds",
        str(chunk_seconds),
    ]
    data = _probe(args, timeout)
    return LongFileResult(
        spec=spec,
        name=data["name"],
        audio_seconds=data["audio_seconds"],
        wall_seconds=data["wall_seconds"],
        chunk_seconds=chunk_seconds,
        baseline_mb=data["baseline_mb"],
        peak_mb=data["peak_mb"],
    )


def write_long_test_file(path: str | os.PathLike, seconds: float, sample_rate: int = 16000) -> Path:
    """Write a ``seconds``-long 16-bit wav of the benchmark signal, block by block (memory stays small)."""
    import soundfile as sf

    from codec.atomic import atomic_path

    block = 10.0
    p = Path(path)
    with atomic_path(p) as tmp, sf.SoundFile(str(tmp), "w", sample_rate, 1, subtype="PCM_16", format="WAV") as fh:
        written = 0.0
        seed = 0
        while written < seconds - 1e-9:
            length = min(block, seconds - written)
            fh.write(bench_signal(length, sample_rate, seed=seed)[0, 0].numpy())
            written += length
            seed += 1
    return p
