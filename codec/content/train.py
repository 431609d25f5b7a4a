"""The codec trainer's content pieces: open and check the content store, the content losses of one batch, and
warm starts from another codec (``train-codec --init-from``).

Kept out of :mod:`codec.train` so the loop stays one concept; :mod:`codec.nn.content` holds the heads themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from codec.nn.content import ContentHeads, ctc_loss, distill_loss


def open_content_store(cfg, content_dir: str | os.PathLike | None):
    """The :class:`~codec.content.store.ContentStore` a run with content heads reads, checked against its config.

    Returns None for a model without content heads (a store given anyway is refused: it would be ignored).

    Raises:
        ValueError: heads without a store, a store without heads, or a store whose symbols, teacher width or frame
            hop differ from the model's.
    """
    content = cfg.model.content
    w = cfg.train.loss_weights
    if not content.enabled:
        if content_dir is not None:
            raise ValueError("--content was given but the model has no content heads (set model.content.levels)")
        return None
    if content_dir is None:
        raise ValueError("this model has content heads: pass --content DIR (a store built by ucodec content-store)")
    from codec.content.store import ContentStore

    store = ContentStore(content_dir)
    info = store.info
    if content.symbols and tuple(content.symbols) != info.symbols:
        raise ValueError(f"{content_dir}: its phoneme symbols differ from model.content.symbols")
    if content.teacher_dim and content.teacher_dim != info.teacher_dim:
        raise ValueError(
            f"{content_dir}: teacher features are {info.teacher_dim}-d, model.content.teacher_dim is "
            f"{content.teacher_dim} (a store built with --no-teacher has none)"
        )
    if info.hop_length != cfg.model.hop_length:
        hop = cfg.model.hop_length
        raise ValueError(f"{content_dir}: built for a {info.hop_length}-sample hop, the model's is {hop}")
    if content.symbols and w.ctc > 0 and not store.phonemes:
        raise ValueError(f"{content_dir}: no phonemes.jsonl")
    return store


def content_losses(heads: ContentHeads, prefix: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
    """``{"ctc", "distill"}`` of one batch (zero where the model has no such head).

    Args:
        heads: the model's content heads.
        prefix: ``[B, D, F]`` sum of the first ``levels`` RVQ outputs.
        batch: from :func:`codec.crops.collate_content` (``frames``, ``phonemes``, ``teacher``, ``teacher_frames``).
    """
    zero = prefix.sum() * 0.0
    out = {"ctc": zero, "distill": zero}
    if heads.ctc is not None:
        out["ctc"] = ctc_loss(heads.ctc(prefix), batch["phonemes"], batch["frames"], heads.cfg.ctc_upsample)
    if heads.distill is not None:
        pred = heads.distill(prefix.transpose(1, 2))  # [B, F, Dt]
        out["distill"] = distill_loss(pred, batch["teacher"], batch["teacher_frames"])
    return out


def to_device(batch, device):
    """A crop tensor or a content batch dict moved to ``device`` (phoneme lists stay on the CPU for CTC)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def init_weights_from(model: torch.nn.Module, disc: torch.nn.Module | None, source: str | os.PathLike) -> str:
    """Copy the weights of a codec release directory or a training checkpoint into a new run's model (and
    discriminators, from a checkpoint): parameters of the same name and shape; the rest keep their fresh init.

    Returns a one-line summary of what was copied and what was new.

    Raises:
        FileNotFoundError / ValueError: nothing loadable at ``source``, or no parameter in common.
    """
    path = Path(source)
    disc_state = None
    if path.is_dir():
        from codec.config import FORMAT_VERSION
        from codec.release import load_release

        state = load_release(path, "codec", FORMAT_VERSION).state_dict
    elif path.is_file():
        from codec.training.experiment import load_checkpoint

        ckpt = load_checkpoint(path)
        state, disc_state = ckpt["model"], ckpt.get("disc")
    else:
        raise FileNotFoundError(f"--init-from: {path} is neither a codec release directory nor a checkpoint")
    own = model.state_dict()
    copied = {k: v.to(own[k].dtype) for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not copied:
        raise ValueError(f"--init-from: {path} shares no parameter with this model (another architecture?)")
    model.load_state_dict(copied, strict=False)
    new = sorted({k.split(".")[0] + "." + k.split(".")[1] for k in own if k not in copied})
    if disc is not None and disc_state is not None:
        disc.load_state_dict(disc_state)
    return f"initialised {len(copied)} of {len(own)} tensors from {path}; new: {', '.join(new) or 'none'}"
