"""What a layout scanner returns, and the helpers the scanners share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from recipes.prepare.runner import Candidate


@dataclass(frozen=True)
class Scan:
    """The candidates of a source tree, grouped in parts (one manifest each)."""

    parts: dict[str, list[Candidate]]  # part name -> candidates
    problems: dict[str, list[str]] = field(default_factory=dict)  # part name -> problems found while scanning


def require_dir(src: Path) -> Path:
    """``src`` as a directory.

    Raises:
        FileNotFoundError: it does not exist.
        NotADirectoryError: it is a file.
    """
    if not src.exists():
        raise FileNotFoundError(f"source directory not found: {src}")
    if not src.is_dir():
        raise NotADirectoryError(f"source must be a directory: {src}")
    return src


def subset_dirs(src: Path, depth: int, pattern: str) -> list[Path]:
    """The subset directories of a Libri-style corpus.

    ``src`` is itself a subset when files matching ``pattern`` sit ``depth`` levels below it (e.g. ``depth=3`` for
    ``speaker/chapter/file``); otherwise each child directory holding such files is a subset.
    """
    glob = "/".join(["*"] * (depth - 1) + [pattern])
    if next(src.glob(glob), None) is not None:
        return [src]
    return sorted(p for p in src.iterdir() if p.is_dir() and next(p.glob(glob), None) is not None)
