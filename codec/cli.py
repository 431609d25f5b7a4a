"""The ``ucodec`` command line: one program, many subcommands.

Each subcommand lives in the module that owns its concept and exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (``args -> int`` exit code). The modules are listed here by name and imported when the parser is
built; the ``tts``/``demo`` ones are optional so that ``codec`` keeps working (and never imports ``tts`` at import
time) when they are absent.

User mistakes and environment failures (``ValueError``, ``FileNotFoundError``, a full disk, ...) become one red line
on stderr and exit code 2; Ctrl-C is exit code 130. Tracebacks are shown only with ``UCODEC_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

COMMAND_MODULES = (
    "codec.cli_codec",  # encode, decode, info
    "codec.cli_convert",  # convert-original
    "recipes.cli",  # prepare
    "codec.evaluation.cli",  # eval codec|tts, bench codec
    "codec.cli_train",  # train-codec, export, plot
    "codec.store_cli",  # tokenize
    "codec.content_cli",  # content-store, align
    "tts.cli",  # synthesize, train-tts, bench tts
    "tts.cli_train",  # train-tts, export-tts
    "demo.cli",  # demo, serve
)

# OSError covers the environment's refusals too (disk full, read-only filesystem): one line, not a traceback.
USER_ERRORS = (ValueError, OSError)


def _use_color() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ


def fail(message: str) -> int:
    """Print one red error line and return exit code 2."""
    text = f"error: {message}"
    print(f"\033[31m{text}\033[0m" if _use_color() else text, file=sys.stderr)
    return 2


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
    """``--temperature``, ``--top-k`` and ``--top-p`` of TTS decoding, shared by ``synthesize`` and ``eval tts``."""
    each = "; a comma list gives layer 0 first, the last value repeats for the finer layers"
    p.add_argument(
        "--temperature",
        type=per_layer_values(float),
        help=f"sampling temperature (0 = greedy; default: the model's){each}",
    )
    p.add_argument("--top-k", type=per_layer_values(int), help=f"keep the k most likely codes (0 = off){each}")
    p.add_argument("--top-p", type=per_layer_values(float), help=f"nucleus sampling mass (1 = off){each}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ucodec",
        description="U-Codec: 5 Hz neural speech codec and global-local TTS.",
        epilog="Run `ucodec COMMAND --help` for the options of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # optional command module not present in this installation
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ucodec`` console script. Returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if os.environ.get("UCODEC_DEBUG"):
            raise
        return fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
