"""Writing evaluation results: JSON Lines of per-utterance records, markdown tables, the command that made them.

A report must be reproducible by reading it, so every markdown report names the exact command line and the
software it ran with. ``nan`` (a metric that could not be computed) is written as JSON ``null``, because ``NaN`` is
not valid JSON and would break other readers (``jq``, pandas with strict parsing).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from codec.atomic import write_text_atomic


def json_value(value: Any) -> Any:
    """``value`` with non-finite floats replaced by ``None`` (recursively through lists and dicts)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> Path:
    """Write dataclass instances (or dicts) as JSON Lines to ``path`` atomically."""
    lines = []
    for record in records:
        obj = dataclasses.asdict(record) if dataclasses.is_dataclass(record) else dict(record)
        lines.append(json.dumps(json_value(obj), ensure_ascii=False) + "\n")
    write_text_atomic(path, "".join(lines))
    return Path(path)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON Lines written by :func:`write_jsonl` (``null`` stays ``None``)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_markdown(path: str | os.PathLike, lines: Iterable[str | None]) -> Path:
    """Write ``lines`` (``None`` entries left out) as one markdown file at ``path`` atomically; returns the path."""
    write_text_atomic(path, "\n".join(line for line in lines if line is not None) + "\n")
    return Path(path)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one character per column (``l``/``r``/``c``, default: first column
    left, the others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    for row in rows:
        assert len(row) == len(header), (row, header)
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def command_line(argv: Sequence[str] | None = None) -> str:
    """The ``ucodec ...`` command that is running (from ``sys.argv`` unless ``argv`` is given), shell-quoted."""
    args = list(sys.argv[1:] if argv is None else argv)
    return "ucodec " + shlex.join(args)


def software_line() -> str:
    """``Python 3.11.7 · torch 2.x · Linux x86_64`` for report headers."""
    import torch

    return f"Python {platform.python_version()} · torch {torch.__version__} · {platform.system()} {platform.machine()}"


def timestamp() -> str:
    """Current UTC time, ``2026-11-25 04:40 UTC``."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def percent(value: float, digits: int = 1) -> str:
    """``0.1234 -> "12.3 %"``; ``–`` for nan."""
    return "–" if not math.isfinite(value) else f"{100 * value:.{digits}f} %"


def section_markers(key: str) -> tuple[str, str]:
    """The HTML comments that delimit the generated section ``key`` in a shared markdown file."""
    return f"<!-- {key}: begin (generated, do not edit by hand) -->", f"<!-- {key}: end -->"


def update_markdown_section(path: str | os.PathLike, key: str, body: str, title: str = "# Benchmarks") -> Path:
    """Replace the section ``key`` of the markdown file ``path`` with ``body`` (or append it), atomically.

    Several commands write into one ``docs/benchmarks.md`` (``bench codec``, ``bench tts``); each owns the text
    between its markers and leaves the rest of the file, hand-written notes included, untouched.

    Args:
        path: markdown file (created with ``title`` when missing).
        key: section name, e.g. ``"bench codec"``.
        body: markdown of the section, without the markers.
        title: first line of a newly created file.
    """
    p = Path(path)
    begin, end = section_markers(key)
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = p.read_text(encoding="utf-8") if p.is_file() else f"{title}\n\n"
    start = text.find(begin)
    stop = text.find(end, start + 1) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        rest = text[stop + len(end) :].lstrip("\n")
        text = text[:start] + block + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    write_text_atomic(p, text)
    return p
