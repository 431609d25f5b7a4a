"""The ``ucodec`` command line: one program, the verbs of every package.

Each package names the modules that register its verbs (``codec.cli.CODEC_COMMANDS``, ``tts.cli.TTS_COMMANDS``,
``recipes.cli.RECIPE_COMMANDS``, ``demo.cli.DEMO_COMMANDS``); this module joins them in that order, the order of the
dependency rule ``codec <- tts <- recipes, demo <- ucodec`` (docs/design.md). The plumbing (error lines, exit codes,
the shared ``eval`` and ``bench`` tables) is :mod:`codec.cli`'s. Nothing heavy is imported to build the parser, so
``ucodec --help`` answers without loading torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from codec.cli import CODEC_COMMANDS, run
from codec.cli import build_parser as build_root
from demo.cli import DEMO_COMMANDS
from recipes.cli import RECIPE_COMMANDS
from tts.cli import TTS_COMMANDS

COMMAND_MODULES = (*CODEC_COMMANDS, *TTS_COMMANDS, *RECIPE_COMMANDS, *DEMO_COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    """The full ``ucodec`` parser (every verb of every package)."""
    return build_root(COMMAND_MODULES)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ucodec`` console script. Returns the process exit code."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
