"""Atomic file writes: a reader never sees a half-written file, a crash never destroys the old one.

Every writer in the project goes through :func:`atomic_path`: it yields a temporary path in the destination's
directory (same filesystem, so the final ``os.replace`` is atomic), fsyncs the finished file, renames it over the
destination and removes the temporary on any error (including ``KeyboardInterrupt``). The finished file gets the
permissions an ordinary write would give it: those of the file it replaces, else the default of the process's
umask (``mkstemp`` alone would leave every output readable by its owner only).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import (os.umask is process-wide, so not while other threads write files)


def _final_mode(dest: Path) -> int:
    """The mode ``dest`` would have after an ordinary write: its current one, else ``0o666`` less the umask."""
    try:
        return stat.S_IMODE(dest.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def _fsync_dir(directory: Path) -> None:
    # The rename itself lives in the directory entry; fsync it so the new name survives a power loss.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``path`` atomically, on failure it is deleted.

    Args:
        path: final destination. Its parent directory is created if missing.
        suffix: suffix of the temporary file (defaults to the destination's, so writers that dispatch on the
            extension, like soundfile, still work).

    Raises:
        OSError: when the directory is not writable or the disk is full; the destination is then untouched.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or dest.suffix + ".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _final_mode(dest))
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Serialise ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def torch_save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (training states; releases use safetensors)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def safetensors_save_atomic(tensors: dict, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """``safetensors.torch.save_file`` to ``path`` atomically (tensors are made contiguous first)."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
