"""``ucodec synthesize``, the TTS package's verb list, and the sampling options of TTS decoding.

:data:`TTS_COMMANDS` names the modules that register the TTS verbs (``synthesize`` here, ``train-tts`` and
``export-tts`` in :mod:`tts.cli_train`, ``eval tts*`` and ``bench tts`` in :mod:`tts.evaluation.cli`); the ``ucodec``
program (:mod:`ucodec.cli`) joins them with the other packages'. Heavy imports (torch, the model) happen inside the
handlers so ``ucodec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import codecs
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

TTS_COMMANDS = (
    "tts.cli",  # synthesize
    "tts.cli_train",  # train-tts, export-tts
    "tts.evaluation.cli",  # eval tts, eval tts-align, eval tts-oracle, bench tts
)


def per_layer_values(kind: type) -> Callable[[str], object]:
    """An argparse ``type=`` for sampling options given once or per RVQ layer.

    ``"0.8"`` parses to ``0.8``; ``"0.5,0.8"`` to ``(0.5, 0.8)`` (layer 0, then every finer layer: the last value
    repeats, as in ``tts.sampling.SamplingParams``). A malformed value is an argparse usage error, not a traceback.
    """

    def parse(text: str) -> object:
        parts = [part.strip() for part in text.split(",")]
        try:
            values = tuple(kind(part) for part in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a {kind.__name__} or a comma list of them (per RVQ layer), got {text!r}"
            ) from None
        return values[0] if len(values) == 1 else values

    parse.__name__ = kind.__name__  # argparse names the type in its error messages
    return parse


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """``--temperature``, ``--top-k``, ``--top-p`` and ``--decode-levels`` of TTS decoding, shared by ``synthesize``
    and the ``eval tts*`` verbs."""
    each = "; a comma list gives layer 0 first, the last value repeats for the finer layers"
    p.add_argument(
        "--temperature",
        type=per_layer_values(float),
        help=f"sampling temperature (0 = greedy; default: the model's){each}",
    )
    p.add_argument("--top-k", type=per_layer_values(int), help=f"keep the k most likely codes (0 = off){each}")
    p.add_argument("--top-p", type=per_layer_values(float), help=f"nucleus sampling mass (1 = off){each}")
    p.add_argument(
        "--decode-levels",
        type=int,
        help="decode only the first N generated RVQ levels (0 = all; default: the model's decode_levels)",
    )


def apply_decode_levels(tts, levels: int | None) -> None:
    """Set ``tts.decode_levels`` from ``--decode-levels`` (None keeps the model's); a bad value is a ValueError."""
    from tts.config import check_decode_levels

    if levels is not None:
        tts.decode_levels = check_decode_levels(levels, tts.config.num_codebooks)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``synthesize`` to the ``ucodec`` parser."""
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
    p.add_argument(
        "--stream",
        action="store_true",
        help="generate chunk by chunk and print the first-chunk latency; with '-', read standard input as it arrives "
        "and start on each sentence once the next one begins",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--compile", action="store_true", help="torch.compile the generation steps (slow first call)")
    p.set_defaults(func=run_synthesize)


def stdin_pieces() -> Iterator[str]:
    """Standard input as it arrives (whatever each read returns, decoded as UTF-8), for ``- --stream``."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a descriptor (tests, notebooks)
        yield sys.stdin.read()
        return
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while chunk := os.read(fd, 4096):
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def read_text(args: argparse.Namespace) -> str | Iterator[str]:
    """The text from exactly one of: the argument, ``-`` (stdin; with ``--stream`` read piece by piece as it
    arrives, so speech starts before the input ends), ``--text-file``.

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
        return stdin_pieces() if args.stream else sys.stdin.read()
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
    apply_decode_levels(tts, args.decode_levels)
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
