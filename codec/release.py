"""Release directories: ``config.json`` (with ``format_version`` and the weights' SHA-256) + ``model.safetensors``.

Shared by the codec and the TTS. Loading verifies, in order: the directory exists, ``config.json`` parses, its
``kind`` and ``format_version`` are the expected ones, ``model.safetensors`` exists and its SHA-256 matches the one
recorded in the config — so a truncated download or a file from another model is a clear error, never a silent
mismatch. Only safetensors are read: a release can never execute code.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from codec.atomic import safetensors_save_atomic, write_json_atomic

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def models_root() -> Path:
    """Where named releases live: ``$UCODEC_MODELS`` or the repository's ``models/`` folder."""
    env = os.environ.get("UCODEC_MODELS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


def resolve_release(name_or_dir: str | os.PathLike, aliases: dict[str, str] | None = None) -> Path:
    """A directory path, or the name of a shipped release (``models/<name>``), or an alias like ``default``.

    Raises:
        FileNotFoundError: neither a directory nor a known release name.
    """
    text = str(name_or_dir)
    text = (aliases or {}).get(text, text)
    p = Path(text).expanduser()
    if p.is_dir():
        return p
    shipped = models_root() / text
    if shipped.is_dir():
        return shipped
    known = sorted(d.name for d in models_root().glob("*") if (d / CONFIG_NAME).is_file())
    raise FileNotFoundError(f"model {text!r} is neither a directory nor a shipped release; shipped: {known}")


@dataclass(frozen=True)
class Release:
    """What :func:`load_release` returns: the parsed config dict (model section) and the verified weights."""

    path: Path
    meta: dict[str, Any]
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]


def save_release(
    out_dir: str | os.PathLike,
    kind: str,
    format_version: int,
    config: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    dtype: torch.dtype | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a release directory (weights first, then the config naming their hash, both atomically).

    Args:
        out_dir: destination directory (created).
        kind: ``"codec"`` or ``"tts"``; checked on load.
        format_version: layout version; checked on load.
        config: the model's config as a plain dict.
        state_dict: tensors to store (made contiguous, cast to ``dtype`` when floating point and ``dtype`` given).
        dtype: e.g. ``torch.float16`` for small releases; ``None`` keeps the dtypes.
        extra: more top-level keys for ``config.json`` (e.g. the codec a TTS was trained with).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: (v.detach().to(dtype) if dtype is not None and v.is_floating_point() else v.detach()).cpu()
        for k, v in state_dict.items()
    }
    safetensors_save_atomic(tensors, out / WEIGHTS_NAME, metadata={"format": "pt"})
    meta = {"kind": kind, "format_version": format_version, "sha256": sha256_file(out / WEIGHTS_NAME)}
    meta.update(extra or {})
    meta["config"] = config
    write_json_atomic(out / CONFIG_NAME, meta)
    return out


def load_release(path: str | os.PathLike, kind: str, format_version: int, verify: bool = True) -> Release:
    """Read and verify a release directory.

    Raises:
        FileNotFoundError: missing directory, config or weights.
        ValueError: unparsable config, wrong kind or version, hash mismatch, unreadable safetensors.
    """
    from safetensors.torch import load_file

    root = Path(path)
    cfg_path, weights = root / CONFIG_NAME, root / WEIGHTS_NAME
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{root}: not a release directory ({CONFIG_NAME} missing)")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{cfg_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or "config" not in meta:
        raise ValueError(f"{cfg_path}: missing the 'config' section")
    if meta.get("kind", kind) != kind:
        raise ValueError(f"{root}: this is a {meta.get('kind')!r} release, expected a {kind!r} release")
    version = meta.get("format_version")
    if version != format_version:
        raise ValueError(
            f"{root}: format_version {version!r} is not supported by this ucodec (expects {format_version}); "
            "re-export the model with a matching version"
        )
    if not weights.is_file():
        raise FileNotFoundError(f"{root}: {WEIGHTS_NAME} missing")
    if verify and meta.get("sha256") and sha256_file(weights) != meta["sha256"]:
        raise ValueError(f"{weights}: SHA-256 does not match config.json (corrupt or replaced weights)")
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises SafetensorError (not exported under a stable name)
        raise ValueError(f"{weights}: unreadable safetensors file ({exc})") from None
    return Release(path=root, meta=meta, config=meta["config"], state_dict=state)


def load_weights(
    model: torch.nn.Module, release: Release, new_modules: tuple[str, ...] = (), relearn: tuple[str, ...] = ()
) -> None:
    """Load a release's weights into ``model`` (fp16 weights are upcast to the model's fp32).

    ``new_modules``: name prefixes of parts the model adds to the release's (a warm start); their tensors may be
    missing and keep their initialisation. ``relearn``: name prefixes whose release tensors are dropped, so those
    parts keep their initialisation too (a warm start that rebuilds a part, perhaps in another shape).

    Raises:
        ValueError: a tensor is missing, unexpected, or of another shape than the config builds (e.g. a config.json
            edited after export).
    """
    state = {
        k: v.float() if v.is_floating_point() else v
        for k, v in release.state_dict.items()
        if not (relearn and k.startswith(relearn))
    }
    new_modules = tuple(new_modules) + tuple(relearn)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False, with one line per tensor
        lines = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("size mismatch")]
        detail = lines[0] if lines else str(exc).strip().splitlines()[0]
        raise ValueError(f"{release.path}: weights do not match the config ({detail[:300]})") from None
    missing = [k for k in missing if not k.startswith(new_modules)] if new_modules else missing
    if missing or unexpected:
        raise ValueError(
            f"{release.path}: weights do not match the config (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
