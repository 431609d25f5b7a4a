"""``ucodec synthesize`` and ``ucodec bench tts``.

``codec.cli`` imports this module and calls :func:`register`. Heavy imports (torch, the model) happen inside the
handlers so ``ucodec --help`` stays fast. ``bench tts`` joins the ``bench`` command of the evaluation toolkit
through its ``bench_subparsers`` hook; without that module it is offered as ``bench-tts``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from codec.cli import add_sampling_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``synthesize`` and ``bench tts`` to the ``ucodec`` parser."""
    p = subparsers.add_parser(
        "synthesize",
        help="text to speech (optionally in the voice of a prompt wav)",
        description="Synthesize speech from text with a TTS release. Text comes from the argument, --text-file, "
        "or standard input ('-').",
    )
    p.add_argument("text", nargs="?", help="text to speak, or '-' to read standard input")
    p.add_argument("-o", "--output", required=True, help="output .wav/.flac path")
    p.add_argument("--text-file", help="read the text from this UTF-8 file")
    p.add_argument("--prompt", help="voice prompt audio (any rate; a few seconds of the target voice)")
    p.add_argument("--prompt-text", help="transcript of the prompt (optional, needs --prompt)")
    p.add_argument("--model", default="default", help="TTS release directory or name (default: the shipped model)")
    add_sampling_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same audio")
    p.add_argument("--max-seconds", type=float, help="longest allowed sentence in seconds")
    p.add_argument("--stream", action="store_true", help="generate chunk by chunk and print the first-chunk latency")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--compile", action="store_true", help="torch.compile the generation steps (slow first call)")
    p.set_defaults(func=run_synthesize)

    try:
        from codec.evaluation.cli import bench_subparsers
    except ImportError:  # the evaluation toolkit is not installed: offer the benchmark on its own
        bench = subparsers.add_parser("bench-tts", help="TTS generation speed: 5 Hz global-local vs 50 Hz vs flat AR")
    else:
        bench = bench_subparsers(subparsers).add_parser(
            "tts", help="TTS generation speed: 5 Hz global-local vs 50 Hz global-local vs flat AR"
        )
    bench.description = "Generation speed of the three LM layouts (same code, same widths, random weights)."
    add_bench_arguments(bench)
    bench.set_defaults(func=run_bench_tts, command_parser=bench)


DEFAULT_BENCH_CONFIG = "configs/tts/small.yaml"
DEFAULT_BENCH_CODEC = "configs/codec/small.yaml"


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``ucodec bench tts`` (defaults reproduce docs/benchmarks.md)."""
    p.add_argument("--config", default=DEFAULT_BENCH_CONFIG, help=f"base TTS config (default {DEFAULT_BENCH_CONFIG})")
    p.add_argument(
        "--codec",
        default=DEFAULT_BENCH_CODEC,
        help="codec config .yaml (random weights) or release for "
        f"the streaming-decode cost, or 'none' (default {DEFAULT_BENCH_CODEC})",
    )
    p.add_argument("--layouts", default="a,b,c", help="which of a (5 Hz x 32), b (50 Hz x 3), c (flat) (default all)")
    p.add_argument("--batches", default="1,4", help="batch sizes (default 1,4)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio generated per sequence (default 10)")
    p.add_argument("--text-symbols", type=int, default=150, help="text prefix length (default 150)")
    p.add_argument("--prompt-seconds", type=float, default=3.0, help="voice prompt in the prefix (default 3)")
    p.add_argument("--repeats", type=int, default=3, help="timed interleaved rounds; the median is reported (3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    p.add_argument(
        "--backbone",
        action="store_true",
        help="also time a global decode step of our Transformer vs transformers' LlamaModel",
    )
    p.add_argument("--doc", default="docs/benchmarks.md", help="markdown file to update, '-' for none")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def read_text(args: argparse.Namespace) -> str:
    """The text from exactly one of: the argument, ``-`` (stdin), ``--text-file``.

    Raises:
        ValueError: none or several sources.
        FileNotFoundError: the text file does not exist.
    """
    sources = [s for s in (args.text, args.text_file) if s is not None]
    if len(sources) != 1:
        raise ValueError("give the text as an argument, '-' for standard input, or --text-file FILE (exactly one)")
    if args.text_file is not None:
        path = Path(args.text_file)
        if not path.is_file():
            raise FileNotFoundError(f"text file not found: {path}")
        return path.read_text(encoding="utf-8")
    if args.text == "-":
        return sys.stdin.read()
    return args.text


def run_synthesize(args: argparse.Namespace) -> int:
    """Handler of ``ucodec synthesize``."""
    text = read_text(args)
    if args.prompt_text and not args.prompt:
        raise ValueError("--prompt-text needs --prompt (the audio it transcribes)")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.prompt and not Path(args.prompt).is_file():
        raise FileNotFoundError(f"prompt audio not found: {args.prompt}")
    import torch

    from codec.audio import save_audio
    from tts.pipeline import TTS

    if args.threads:
        torch.set_num_threads(args.threads)
    tts = TTS.from_pretrained(args.model, device=args.device)
    tts.compile = args.compile
    options = dict(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, max_seconds=args.max_seconds, seed=args.seed
    )
    start = time.perf_counter()
    if args.stream:
        chunks, first = [], None
        for chunk in tts.stream(text, prompt_wav=args.prompt, prompt_text=args.prompt_text, **options):
            first = first if first is not None else time.perf_counter() - start
            chunks.append(chunk)
        wav = torch.cat(chunks, dim=-1) if chunks else torch.zeros(1, 0)
    else:
        wav = tts.synthesize(text, prompt_wav=args.prompt, prompt_text=args.prompt_text, **options)
    elapsed = time.perf_counter() - start
    save_audio(args.output, wav, tts.sample_rate)
    seconds = wav.shape[-1] / tts.sample_rate
    rtf = elapsed / seconds if seconds else float("nan")
    latency = f", first chunk after {first * 1e3:.0f} ms" if args.stream and first is not None else ""
    print(f"wrote {args.output} ({seconds:.2f} s of audio in {elapsed:.2f} s, RTF {rtf:.2f}{latency})")
    return 0


def run_bench_tts(args: argparse.Namespace) -> int:
    """Handler of ``ucodec bench tts``."""
    from tts.bench_report import run_bench

    return run_bench(args)
