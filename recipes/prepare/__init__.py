"""Corpus preparers: ``ucodec prepare SOURCE SRC_DIR OUT_DIR`` writes JSONL manifests (docs/design.md).

Each source module only knows its layout (``scan(src) -> Scan``); :func:`prepare` runs the shared checking,
reporting and ``.done`` bookkeeping of :mod:`recipes.prepare.runner` on it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from recipes.prepare.runner import PartResult, prepare_parts
from recipes.prepare.scan import require_dir

SOURCES = {
    "libritts": "recipes.prepare.libritts",
    "libritts-r": "recipes.prepare.libritts",  # same layout and naming as LibriTTS
    "librispeech": "recipes.prepare.librispeech",
    "ljspeech": "recipes.prepare.ljspeech",
    "vctk": "recipes.prepare.vctk",
    "folder": "recipes.prepare.folder",
}


def prepare(
    source: str,
    src_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    workers: int = 2,
    force: bool = False,
    mic: str = "mic1",
) -> list[PartResult]:
    """Prepare the manifests of one corpus.

    Args:
        source: one of :data:`SOURCES`.
        src_dir: the corpus as extracted from its archive.
        out_dir: where ``<part>.jsonl``, ``<part>.report.txt`` and the ``.done`` markers go.
        workers: checking processes.
        force: redo parts that are already done.
        mic: VCTK 0.92 microphone (``mic1`` or ``mic2``); ignored by other sources.

    Raises:
        ValueError: unknown source, or nothing of that corpus found under ``src_dir``.
        FileNotFoundError: ``src_dir`` (or a file the layout requires) is missing.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown corpus {source!r}; choose one of {sorted(SOURCES)}")
    src = require_dir(Path(src_dir))
    module = importlib.import_module(SOURCES[source])
    scan = module.scan(src, mic=mic) if source == "vctk" else module.scan(src)
    if not any(scan.parts.values()):
        raise ValueError(f"{src}: no {source} files found; see `ucodec prepare {source} --help` for the layout")
    return prepare_parts(scan.parts, out_dir, source=source, workers=workers, force=force, extra_problems=scan.problems)
