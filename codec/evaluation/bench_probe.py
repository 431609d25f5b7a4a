"""Subprocess side of the codec benchmark: measure one model alone, print one JSON line.

Run by :mod:`codec.evaluation.bench` as ``python -m codec.evaluation.bench_probe MODE --spec SPEC ...``; a fresh
process per model is the only way to get a peak RSS that belongs to that model. Modes:

- ``memory``: build the model, encode + decode ``--seconds`` of the benchmark signal twice, report peak RSS;
- ``long``: build the model, stream ``--file`` through it in ``--chunk-seconds`` chunks (read with
  :func:`codec.audio.iter_audio_chunks`, output appended to a wav next to nothing in memory), report the wall time
  of the chunk loop and the peak RSS.

Both report ``baseline_mb``, the peak RSS after importing torch and this package but before building the model.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux: ``VmHWM`` from ``/proc/self/status``, the high-water mark of this program's own address space.
    ``getrusage().ru_maxrss`` is wrong here: Linux carries it over from the parent across fork + exec, so a probe
    started by a big parent would report the parent's size. Elsewhere ``ru_maxrss`` is the best there is.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def _memory(args: argparse.Namespace, contestant) -> dict:
    import torch

    from codec.evaluation.peers import bench_signal

    wav = bench_signal(args.seconds, contestant.sample_rate)
    with torch.inference_mode():
        for _ in range(2):
            contestant.decode(contestant.encode(wav))
    return {}


def _long(args: argparse.Namespace, contestant) -> dict:
    import soundfile as sf
    import torch

    from codec.audio import iter_audio_chunks

    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        out_path = Path(tmp) / "out.wav"
        start = time.perf_counter()
        with sf.SoundFile(str(out_path), "w", contestant.sample_rate, 1, subtype="PCM_16", format="WAV") as out:
            for chunk in iter_audio_chunks(args.file, contestant.sample_rate, args.chunk_seconds):  # [1, t]
                with torch.inference_mode():
                    y = contestant.decode(contestant.encode(chunk[None]))  # [1, 1, >= t]
                out.write(y[0, 0, : chunk.shape[-1]].clamp(-1, 1).numpy())
                total += chunk.shape[-1]
        wall = time.perf_counter() - start
    return {"audio_seconds": total / contestant.sample_rate, "wall_seconds": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codec.evaluation.bench_probe", description=__doc__)
    parser.add_argument("mode", choices=["memory", "long"])
    parser.add_argument("--spec", required=True, help="encodec, snac, a codec config .yaml or a release directory")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="memory mode: audio length")
    parser.add_argument("--file", help="long mode: audio file to stream")
    parser.add_argument("--chunk-seconds", type=float, default=60.0, help="long mode: chunk length")
    args = parser.parse_args(argv)

    import warnings

    import torch

    from codec.evaluation.peers import build_contestant

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    baseline = peak_rss_mb()
    contestant = build_contestant(args.spec)
    if args.mode == "memory":
        result = _memory(args, contestant)
    else:
        if not args.file:
            parser.error("long mode needs --file")
        result = _long(args, contestant)
    result.update(name=contestant.name, baseline_mb=baseline, peak_mb=peak_rss_mb())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
