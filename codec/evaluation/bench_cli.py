"""``ucodec bench codec``: options and the handler that runs the three measurements and writes the document.

Defaults reproduce ``docs/benchmarks.md``: our ``small`` and ``paper`` configs against EnCodec and SNAC, 10 s of
audio, 2 threads, 1 warm-up + 5 timed interleaved rounds, peak RSS per model in a subprocess, and a 10-minute file
streamed through ``small`` in 60 s chunks. Tests shrink everything (tiny config, no peers, short file).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

DEFAULT_MODELS = "configs/codec/small.yaml,configs/codec/paper.yaml"
DEFAULT_DOC = "docs/benchmarks.md"
SECTION = "bench codec"


def add_bench_codec_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``ucodec bench codec``."""
    p.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        help="comma list of our codecs: config .yaml (random "
        f"weights) or release directories (default {DEFAULT_MODELS})",
    )
    p.add_argument("--peers", default="encodec,snac", help="comma list of encodec,snac, or 'none' (default both)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio length per timed run (default 10)")
    p.add_argument("--repeats", type=int, default=5, help="timed interleaved rounds; the median is reported (5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-model peak-RSS subprocesses")
    p.add_argument("--long-seconds", type=float, default=600.0, help="long-file length, 0 to skip (default 600)")
    p.add_argument("--chunk-seconds", type=float, default=60.0, help="long-file chunk length (default 60)")
    p.add_argument(
        "--long-models",
        default="first",
        help="who streams the long file: 'first' (our first model), "
        "'ours', or 'all' (peers too; SNAC takes about its RTF x the file length)",
    )
    p.add_argument("--doc", default=DEFAULT_DOC, help=f"markdown file to update, '-' for none (default {DEFAULT_DOC})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def resolve_model(spec: str) -> str:
    """A config path relative to the current directory or, failing that, to the repository root."""
    if os.path.exists(spec) or not spec.endswith((".yaml", ".yml")):
        return spec
    root = Path(__file__).resolve().parents[2]
    candidate = root / spec
    if candidate.is_file():
        return str(candidate)
    raise FileNotFoundError(f"codec config not found: {spec}")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def run_bench_codec(args: argparse.Namespace) -> int:
    """Handler of ``ucodec bench codec``."""
    import torch

    from codec.evaluation.bench import probe_long_file, probe_memory, time_interleaved, write_long_test_file
    from codec.evaluation.bench_report import (
        BenchCodecReport,
        console_summary,
        load_average,
        machine_description,
        markdown_section,
    )
    from codec.evaluation.cli import render_command
    from codec.evaluation.peers import PEERS, build_contestant
    from codec.evaluation.report import update_markdown_section

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.long_models not in ("first", "ours", "all"):
        raise ValueError(f"--long-models must be first, ours or all, got {args.long_models!r}")
    peers = [] if args.peers.strip() == "none" else _split(args.peers)
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"--peers: unknown {unknown}; choose from {list(PEERS)} or 'none'")
    ours = [resolve_model(m) for m in _split(args.models)]
    if not ours:
        raise ValueError("--models is empty: name at least one of our codecs")
    torch.set_num_threads(args.threads)
    load_before = load_average()
    contestants = [build_contestant(spec) for spec in ours + peers]
    speed = time_interleaved(contestants, args.seconds, args.repeats, args.warmup, progress=not args.no_progress)
    report = BenchCodecReport(
        command=render_command(args),
        threads=args.threads,
        seconds=args.seconds,
        repeats=args.repeats,
        warmup=args.warmup,
        speed=speed,
        machine=machine_description(),
        long_seconds=args.long_seconds,
    )
    del contestants  # the subprocess measurements below should not compete with resident models for memory
    if not args.no_memory:
        for spec in ours + peers:
            print(f"measuring peak RSS of {spec} in a subprocess ...", flush=True)
            report.memory[spec] = probe_memory(spec, args.seconds, args.threads)
    if args.long_seconds > 0:
        long_specs = {"first": ours[:1], "ours": ours, "all": ours + peers}[args.long_models]
        with tempfile.TemporaryDirectory() as tmp:
            path = write_long_test_file(Path(tmp) / "long.wav", args.long_seconds)
            for spec in long_specs:
                print(f"streaming {args.long_seconds:g} s through {spec} in a subprocess ...", flush=True)
                report.long_file.append(probe_long_file(spec, path, args.chunk_seconds, args.threads))
    report.load_before, report.load_after = load_before, load_average()
    print(console_summary(report))
    if args.doc and args.doc != "-":
        update_markdown_section(args.doc, SECTION, markdown_section(report))
        print(f"wrote {args.doc}")
    return 0
