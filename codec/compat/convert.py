"""Convert the authors' generator checkpoint (``generator-*.pt``) into a ucodec release directory.

Our ``seanet`` codec mirrors their module tree index for index, so the mapping is a rename of five prefixes
(``tokenizer.encoder.`` → ``encoder.``, ``tokenizer.encoder_transformer.`` → ``encoder_transformer.``,
``tokenizer.vq.`` → ``quantizer.`` with ``_codebook`` → ``codebook``, ``token2wav.decoder.`` → ``decoder.``,
``token2wav.decoder_transformer.`` → ``decoder_transformer.``) plus folding weight norm: their
``weight_g``/``weight_v`` pairs become one ``weight = g * v / ||v||`` (norm over every dim but 0), and the release
is written with ``norm: none`` — the same function, fewer tensors, no parametrization at inference.

The mapping is driven by *our* model's state dict: every tensor we need is looked up in theirs, and every tensor of
theirs must be used. Anything missing, left over or of the wrong shape is a ``ValueError`` listing it. The
architecture comes from :mod:`codec.compat.config` (their json5 config, or inferred from shapes).

Checkpoints are read with ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is refused,
never executed.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from codec.compat.config import resolve_config
from codec.config import CodecConfig
from codec.model import Codec

# Our top-level module prefix → theirs (the rest of the name is identical, except `_codebook` in the quantizer).
PREFIXES = (
    ("encoder_transformer.", "tokenizer.encoder_transformer."),
    ("encoder.", "tokenizer.encoder."),
    ("quantizer.", "tokenizer.vq."),
    ("decoder_transformer.", "token2wav.decoder_transformer."),
    ("decoder.", "token2wav.decoder."),
)
_CODEBOOK = re.compile(r"^(tokenizer\.vq\.layers\.\d+\.)codebook\.weight$")
_SHOW = 5  # names listed per category in error messages


@dataclass(frozen=True)
class ConversionResult:
    """What :func:`convert_original` did.

    Attributes:
        path: the release directory written.
        config: the architecture used (``norm="none"``).
        num_tensors: tensors read from the checkpoint (all of them).
        num_folded: weight-norm pairs folded into one weight.
        assumed: architecture fields not found in the checkpoint or config, with the value used.
    """

    path: Path
    config: CodecConfig
    num_tensors: int
    num_folded: int
    assumed: dict[str, Any]


def original_name(name: str) -> str:
    """Our parameter name (``norm="none"`` model) → the authors' name (before any ``_g``/``_v`` suffix)."""
    for ours, theirs in PREFIXES:
        if name.startswith(ours):
            name = theirs + name[len(ours) :]
            break
    else:
        raise ValueError(f"parameter {name!r} has no counterpart in the authors' checkpoint")
    return _CODEBOOK.sub(r"\1_codebook.weight", name)


def unwrap_state_dict(obj: Any, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint: the object itself or its ``"model"`` entry; ``module.`` stripped.

    Raises:
        ValueError: not a mapping of names to tensors, or two names that collide once ``module.`` is removed.
    """
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{where}: expected a state dict or {{'model': state dict}}, got {type(obj).__name__}")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(
            f"{where}: expected a state dict or {{'model': state dict}}; {len(bad)} entries are not tensors "
            f"({bad[:_SHOW]})"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        name = key.removeprefix("module.")
        if name in out:
            raise ValueError(f"{where}: {key!r} collides with {name!r} once the 'module.' prefix is removed")
        out[name] = value
    return out


def load_original_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an authors' ``generator-*.pt`` safely (``weights_only=True``) and return its state dict.

    Raises:
        FileNotFoundError: missing file.
        ValueError: not a PyTorch file, a payload that needs arbitrary unpickling, or not a state dict.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    if p.stat().st_size == 0:
        raise ValueError(f"{p}: empty file, not a PyTorch checkpoint")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{p}: refused by torch.load(weights_only=True): {_unpickling_reason(exc)}. The file holds Python objects "
            "besides tensors (or is not a PyTorch checkpoint). If you trust it, re-save just its state dict, e.g. "
            "torch.save(torch.load(path, weights_only=False)['model'], 'generator_state.pt'), and convert that"
        ) from None
    except Exception as exc:  # garbage bytes make the unpickler fail in arbitrary ways (KeyError, EOFError, ...)
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ValueError(f"{p}: not a readable PyTorch checkpoint ({detail})") from None
    return unwrap_state_dict(obj, where=str(p))


def _unpickling_reason(exc: Exception) -> str:
    """The informative part of torch's long weights-only error (e.g. "Unsupported global: GLOBAL argparse...")."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
        detail = " ".join(detail.split()).split(". Please", 1)[0]
        if detail:
            return detail
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``weight = g * v / ||v||``, the norm taken over every dim but 0 (``weight_norm(dim=0)``), in fp32.

    Args:
        g: ``[N, 1, ...]`` magnitudes (``[out, 1, 1]`` for a conv, ``[in, 1, 1]`` for a transposed conv,
            ``[out, 1]`` for a linear layer).
        v: ``[N, ...]`` directions, the weight's full shape.

    Returns:
        ``[N, ...]`` float32 weight.
    """
    v32 = v.float()
    norm = v32.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))  # [N, 1, ...]
    return v32 * (g.float().reshape(norm.shape) / norm)


def _listing(label: str, names: list[str]) -> str:
    shown = ", ".join(names[:_SHOW]) + (f", ... ({len(names) - _SHOW} more)" if len(names) > _SHOW else "")
    return f"{len(names)} {label} ({shown})"


def map_state_dict(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size]
) -> tuple[dict[str, torch.Tensor], int]:
    """Rename and fold the authors' tensors into ours.

    Args:
        state: their state dict (``module.`` stripped).
        expected: our parameter names → shapes (a ``norm="none"`` model's state dict shapes).

    Returns:
        ``(our float32 state dict, number of weight-norm pairs folded)``.

    Raises:
        ValueError: missing, unexpected or wrongly shaped tensors, each category listed (first few + count).
    """
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing: list[str] = []
    mismatched: list[str] = []
    folded = 0
    for name, shape in expected.items():
        src = original_name(name)
        g_name, v_name = src + "_g", src + "_v"
        if src in state:
            tensor = state[src].float() if state[src].is_floating_point() else state[src]
            used.add(src)
        elif src.endswith(".weight") and (g_name in state or v_name in state):
            absent = [n for n in (g_name, v_name) if n not in state]
            if absent:
                missing += absent
                used.update(n for n in (g_name, v_name) if n in state)
                continue
            g, v = state[g_name], state[v_name]
            used.update((g_name, v_name))
            if v.dim() < 2 or g.numel() != v.shape[0]:
                mismatched.append(f"{g_name} {list(g.shape)} vs {v_name} {list(v.shape)}")
                continue
            tensor = fold_weight_norm(g, v)
            folded += 1
        else:
            missing.append(src)
            continue
        if tensor.shape != shape:
            mismatched.append(f"{src}: checkpoint {list(tensor.shape)}, model {list(shape)}")
            continue
        out[name] = tensor
    extra = sorted(k for k in state if k not in used)
    if missing or extra or mismatched:
        parts = [
            _listing(label, names)
            for label, names in (("missing", missing), ("unexpected", extra), ("with the wrong shape", mismatched))
            if names
        ]
        hint = ""
        if any(k.startswith(("tokenizer.proj.", "token2wav.proj.")) for k in extra):
            hint = "; extra down/upsampling layers (tokenizer.proj / token2wav.proj) are not supported"
        raise ValueError(f"checkpoint does not match the architecture: {'; '.join(parts)}{hint}")
    return out, folded


def convert_state_dict(state: Mapping[str, torch.Tensor], config: CodecConfig) -> tuple[Codec, int]:
    """Build a ``norm="none"`` :class:`Codec` for ``config`` and load the authors' tensors into it (strict).

    Returns:
        ``(model in eval mode, number of weight-norm pairs folded)``.
    """
    if config.norm != "none":
        raise ValueError(f"converted models fold weight norm; config.norm must be 'none', got {config.norm!r}")
    model = Codec(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    mapped, folded = map_state_dict(state, expected)
    model.load_state_dict(mapped, strict=True)
    return model.eval(), folded


def convert_original(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: str | os.PathLike | None = None,
    num_heads: int | None = None,
    dtype: torch.dtype | None = None,
    overwrite: bool = False,
) -> ConversionResult:
    """Convert ``generator-*.pt`` into a release directory loadable with :meth:`Codec.from_pretrained`.

    Args:
        checkpoint: the authors' generator checkpoint.
        out_dir: release directory to write.
        config: their json5 config (or a ucodec config); without it the architecture is inferred from shapes.
        num_heads: attention heads (not recoverable from shapes; default: the config's, else 8 with a warning).
        dtype: ``torch.float16`` for a half-size release; None keeps float32.
        overwrite: replace an existing release in ``out_dir``.

    Raises:
        FileNotFoundError: missing checkpoint or config.
        FileExistsError: ``out_dir`` already holds a release and ``overwrite`` is False.
        ValueError: unreadable/unsafe checkpoint, unsupported options, or tensors that do not match.
    """
    out = Path(out_dir)
    if not overwrite and any((out / n).exists() for n in ("config.json", "model.safetensors")):
        raise FileExistsError(f"{out} already holds a release; choose another directory or overwrite it")
    state = load_original_checkpoint(checkpoint)
    resolved = resolve_config(state, config, num_heads=num_heads, name=f"ucodec-original-{Path(checkpoint).stem}")
    model, folded = convert_state_dict(state, resolved.config)
    path = model.save_pretrained(out, dtype=dtype)
    return ConversionResult(
        path=path, config=resolved.config, num_tensors=len(state), num_folded=folded, assumed=resolved.assumed
    )
