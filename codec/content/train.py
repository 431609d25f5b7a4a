"""The codec trainer's content pieces: open and check the content store, the content losses of one batch, and
warm starts from another codec (``train-codec --init-from``).

Kept out of :mod:`codec.train` so the loop stays one concept; :mod:`codec.nn.content` holds the heads themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from codec.nn.content import ContentHeads, ctc_loss, distill_loss, frame_label_loss


def open_content_store(cfg, content_dir: str | os.PathLike | None):
    """The :class:`~codec.content.store.ContentStore` a run with content heads reads, checked against its config.

    Returns None for a model without content heads (a store given anyway is refused: it would be ignored), and for
    one whose content weights are all 0 when no store is given (a decoder-only fine-tune needs no phonemes).

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
    if content_dir is None and w.ctc == w.distill == w.phones == 0:
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
    if w.phones > 0 and not content.frame_labels:
        raise ValueError("train.loss_weights.phones > 0 needs a frame classifier (model.content.frame_labels: true)")
    if content.frame_labels and w.phones > 0 and not store.phone_times:
        raise ValueError(f"{content_dir}: no phone_times.jsonl (make it from word alignments: ucodec content-times)")
    return store


def content_losses(heads: ContentHeads, prefix: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
    """``{"ctc", "distill"}`` of one batch (zero where the model has no such head), plus ``"phones"`` when the
    model has a frame classifier.

    Args:
        heads: the model's content heads.
        prefix: ``[B, D, F]`` sum of the first ``levels`` RVQ outputs.
        batch: from :func:`codec.crops.collate_content` (``frames``, ``phonemes``, ``teacher``, ``teacher_frames``,
            and ``labels`` for the frame classifier).
    """
    zero = prefix.sum() * 0.0
    out = {"ctc": zero, "distill": zero}
    if heads.ctc is not None:
        read = prefix.detach() if heads.cfg.ctc_detach else prefix  # detached: the head learns, the codec does not
        out["ctc"] = ctc_loss(heads.ctc(read), batch["phonemes"], batch["frames"], heads.cfg.ctc_upsample)
    if heads.distill is not None:
        pred = heads.teacher_prediction(prefix)  # [B, F * Ts, Dt]
        out["distill"] = distill_loss(pred, batch["teacher"], batch["teacher_frames"])
    if heads.frames is not None:
        out["phones"] = frame_label_loss(heads.frames(prefix), batch["labels"]) if "labels" in batch else zero
    return out


def to_device(batch, device):
    """A crop tensor or a content batch dict moved to ``device`` (phoneme lists stay on the CPU for CTC)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def init_weights_from(model: torch.nn.Module, disc: torch.nn.Module | None, source: str | os.PathLike) -> str:
    """Copy the weights of a codec release directory or a training checkpoint into a new run's model (and
    discriminators, from a checkpoint): parameters of the same name and shape; the rest keep their fresh init.

    When the split differs (a one-stack source, or another ``quantizer.split_levels``), the model's first stack
    starts fresh at zero output gain and the source's stack over the latent continues as its second stack, shifted
    to start at the model's split (levels past ``num_codebooks`` are dropped; a smaller split leaves the last
    levels fresh).

    Returns a one-line summary of what was copied and what was new.

    Raises:
        FileNotFoundError / ValueError: nothing loadable at ``source``, or no parameter in common.
    """
    path = Path(source)
    disc_state = None
    if path.is_dir():
        from codec.config import FORMAT_VERSION
        from codec.release import load_release

        release = load_release(path, "codec", FORMAT_VERSION)
        state, source_split = release.state_dict, _split_levels(release.config)
    elif path.is_file():
        from codec.training.experiment import load_checkpoint

        ckpt = load_checkpoint(path)
        state, disc_state = ckpt["model"], ckpt.get("disc")
        source_split = _split_levels((ckpt.get("config") or {}).get("model", {}))
    else:
        raise FileNotFoundError(f"--init-from: {path} is neither a codec release directory nor a checkpoint")
    split = model.config.quantizer.split_levels
    resplit = bool(split and split != source_split)
    if resplit:  # another first stack (or none): it starts fresh, and the source's stack over the latent follows it
        state = {k: v for k, v in state.items() if _level(k) is None or _level(k) >= source_split}
        state = _shift_levels(state, split - source_split, model.config.quantizer.num_codebooks)
    # a source without phone input trained its first stack on the latent: that stack starts fresh on the new input
    new_input = getattr(model, "phone_input", None) is not None and not any(k.startswith("phone_input.") for k in state)
    if split and new_input:
        state = {k: v for k, v in state.items() if _level(k) is None or _level(k) >= split}
    own = model.state_dict()
    copied = {k: v.to(own[k].dtype) for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not copied:
        raise ValueError(f"--init-from: {path} shares no parameter with this model (another architecture?)")
    model.load_state_dict(copied, strict=False)
    new = sorted({k.split(".")[0] + "." + k.split(".")[1] for k in own if k not in copied})
    if disc is not None and disc_state is not None:
        disc.load_state_dict(disc_state)
    if resplit or (split and new_input):
        model.quantizer.silence_levels(split)  # the new first stack adds nothing yet: decodes as its source did
        kept = len(model.quantizer.layers) - split
        if new_input:
            why = "they read the phone input"
        elif source_split:
            why = f"a {split}-level first stack; the source's second-stack levels 1-{kept} follow"
        else:
            why = f"split; the source's levels 1-{kept} follow"
        new = [n for n in new if n != "quantizer.layers"] + [f"quantizer.layers.0-{split - 1} ({why})"]
    return f"initialised {len(copied)} of {len(own)} tensors from {path}; new: {', '.join(new) or 'none'}"


def _split_levels(model_config) -> int:
    """``quantizer.split_levels`` of a model config (a dataclass or its dict form); 0 when absent."""
    if isinstance(model_config, dict):
        return int((model_config.get("quantizer") or {}).get("split_levels", 0))
    return int(getattr(getattr(model_config, "quantizer", None), "split_levels", 0))


def _level(key: str) -> int | None:
    """The RVQ level a state-dict key belongs to (``quantizer.layers.<i>.…``), or None."""
    prefix = "quantizer.layers."
    return int(key[len(prefix) :].split(".", 1)[0]) if key.startswith(prefix) else None


def _shift_levels(state: dict, split: int, num_codebooks: int) -> dict:
    """A source's level ``i`` becomes level ``split + i`` (the ones past ``num_codebooks`` are dropped), so its
    stack over the latent continues as the model's second stack and the levels before it start fresh."""
    prefix = "quantizer.layers."
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            out[key] = value
            continue
        index, rest = key[len(prefix) :].split(".", 1)
        if int(index) + split < num_codebooks:
            out[f"{prefix}{int(index) + split}.{rest}"] = value
    return out
