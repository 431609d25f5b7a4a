"""Command-line plumbing shared by every package, and the codec's own verbs.

The ``ucodec`` program is assembled at the top (:mod:`ucodec.cli`): each package lists the modules that own its
verbs (here :data:`CODEC_COMMANDS`; ``tts.cli.TTS_COMMANDS``, ...) and each such module exposes
``register(subparsers)``, which adds its parsers and sets ``func`` (``args -> int`` exit code). Modules are named by
string and imported when the parser is built; they import their heavy dependencies (torch, models) inside the
handlers, so building the parser (``ucodec --help``) stays fast. Two commands are shared tables that several packages
fill: ``eval`` and ``bench`` (:func:`subcommand_table`).

``python -m codec.cli`` runs the codec's verbs alone (``train-codec``, ``tokenize``, ...); ``python -m ucodec`` runs
them all.

User mistakes and environment failures (``ValueError``, ``FileNotFoundError``, a full disk, ...) become one red line
on stderr and exit code 2; Ctrl-C is exit code 130. Tracebacks are shown only with ``UCODEC_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

CODEC_COMMANDS = (
    "codec.cli_codec",  # encode, decode, info
    "codec.compat.cli",  # convert-original, export-hy, import-hy
    "codec.evaluation.cli",  # eval codec, bench codec
    "codec.cli_train",  # train-codec, export, plot
    "codec.store.cli",  # tokenize, store-info
    "codec.content.cli",  # content-store, content-times, train-phone-model, align
)

DESCRIPTION = "U-Codec: 5 Hz neural speech codec and global-local TTS."

# The commands whose sub-commands come from several packages: name -> (help, description).
SHARED_TABLES = {
    "eval": ("evaluate a codec or a TTS model on a test manifest", "Offline evaluation."),
    "bench": ("speed benchmarks against peer models", "Speed benchmarks (CPU, offline)."),
}
TABLE_ATTR = "_ucodec_subcommands"

# OSError covers the environment's refusals too (disk full, read-only filesystem): one line, not a traceback.
USER_ERRORS = (ValueError, OSError)


def _use_color() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ


def fail(message: str) -> int:
    """Print one red error line and return exit code 2."""
    text = f"error: {message}"
    print(f"\033[31m{text}\033[0m" if _use_color() else text, file=sys.stderr)
    return 2


def print_help(parser: argparse.ArgumentParser) -> int:
    """Print ``parser``'s help and return exit code 2 (a command given without its sub-command)."""
    parser.print_help()
    return 2


def subcommand_table(subparsers: argparse._SubParsersAction, name: str) -> argparse._SubParsersAction:
    """The sub-command table of the shared command ``name`` (``eval`` or ``bench``), created on first use.

    Every package adds its own entries (``eval codec`` here, ``eval tts`` in the TTS package) without knowing who
    else does, in any order::

        p = subcommand_table(subparsers, "bench").add_parser("tts", help="...")
        p.set_defaults(func=run_bench_tts)

    Args:
        subparsers: the top-level ``ucodec`` sub-command table (what ``register`` receives).
        name: a key of :data:`SHARED_TABLES`.
    """
    parser = subparsers.choices.get(name)
    if parser is None:
        help_line, description = SHARED_TABLES[name]
        parser = subparsers.add_parser(name, help=help_line, description=description)
        table = parser.add_subparsers(dest=f"{name}_command", metavar="WHAT")
        setattr(parser, TABLE_ATTR, table)
        parser.set_defaults(func=lambda args, p=parser: print_help(p))
    return getattr(parser, TABLE_ATTR)


def build_parser(modules: Sequence[str] = CODEC_COMMANDS, prog: str = "ucodec") -> argparse.ArgumentParser:
    """The root parser with the verbs of ``modules`` (module names, each with a ``register(subparsers)``).

    A module that is missing from this installation (an optional package) is skipped.
    """
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, epilog="Run `ucodec COMMAND --help` for the options of a command."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # optional command module not present in this installation
            raise
        module.register(sub)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` with ``parser`` and run the chosen handler; user errors become one line and exit code 2."""
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        return print_help(parser)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if os.environ.get("UCODEC_DEBUG"):
            raise
        return fail(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    """The codec's verbs alone (``python -m codec.cli train-codec ...``). Returns the process exit code."""
    return run(build_parser(CODEC_COMMANDS), argv)


if __name__ == "__main__":
    sys.exit(main())
