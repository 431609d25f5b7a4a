"""Where the global model looks in the text: a diagnostic of text-to-frame alignment (``ucodec eval tts-align``).

A decoder-only TTS model reads only if, while it predicts frame ``f``, some attention head looks at the symbols
spoken around ``f``. Loss curves do not show whether that has happened; this probe does. It runs the global model
teacher-forced on real utterances (no prompt: ``[BOS] text [SEP] frames``) and scores, for every layer and head, the
attention of each target frame over the text symbols:

- ``mass``: the share of the frame's attention that goes to text at all (the rest goes to BOS, SEP and frames);
- ``peak``: the weight of the most attended symbol, renormalised over the text (1 = one symbol, 1/L = uniform);
- ``corr``: Pearson correlation of the most attended symbol's relative position (``(argmax + 0.5) / L``) with the
  frame's relative position (``(f + 0.5) / F``), over the frames of an utterance;
- ``lag``: mean ``|relative argmax - relative frame position|``; an aligned head stays near 0 (speaking rate varies
  within a sentence, so ~0.05-0.1 is already a good alignment), a head stuck on a few symbols scores ~0.25 or more.

Every score is the mean over utterances. A head with ``corr`` near 1 and a small ``lag`` is an alignment head;
a model without one has not started to read, whatever its loss (``docs/tts_training.md``). The converse does not
hold: with aligned positions (``frame_position_stride > 0``) a head that merely attends at a fixed RoPE offset
already draws a diagonal, so there the probe shows that the right text is within a frame's reach, not that the
model reads it; the WER of ``ucodec eval tts`` says that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tts.batch import collate
from tts.model import TTSModel
from tts.transformer import Attention

SCORES = ("mass", "peak", "corr", "lag")


@dataclass(frozen=True)
class AlignmentScores:
    """Per-head scores, each ``[num_layers, num_heads]`` (means over ``utterances``); see the module docstring."""

    mass: np.ndarray
    peak: np.ndarray
    corr: np.ndarray
    lag: np.ndarray
    utterances: int

    def best_head(self) -> tuple[int, int]:
        """(layer, head) with the highest ``corr``."""
        flat = int(np.nanargmax(np.nan_to_num(self.corr, nan=-2.0)))
        layer, head = np.unravel_index(flat, self.corr.shape)
        return int(layer), int(head)


def text_attention(model: TTSModel, text_ids: Sequence[int], codes: torch.Tensor) -> torch.Tensor:
    """Attention of each target frame over the text, in every layer and head of the global model.

    Args:
        model: the TTS LM (its global model must use RoPE, as every config here does).
        text_ids: the utterance's text symbols (``frontend.encode``), ``L`` of them.
        codes: its codes ``[Q, F]`` (``codec.encode``).

    Returns:
        ``[num_layers, num_heads, F, L]``: row ``f`` is the attention of the position that predicts frame ``f + 1``
        (the input of frame ``f``) over the text symbols, not renormalised (rows sum to ``mass``).
    """
    num_text, num_frames = len(text_ids), codes.shape[1]
    first_frame = num_text + 2  # [BOS] text [SEP] frames
    caught: list[torch.Tensor] = []

    def keep(module: Attention, args: tuple, _out: torch.Tensor) -> None:
        x, rope = args[0], args[1]  # the block's normed input [1, S, D] and the RoPE tables
        s, h, hkv, dh = x.shape[1], module.num_heads, module.kv_heads, module.head_dim
        q, k, _ = module.heads(x, rope)  # the very projection the attention used
        logits = (q @ k.repeat_interleave(h // hkv, 1).transpose(-1, -2)) / dh**0.5  # [1, H, S, S]
        causal = torch.ones(s, s, dtype=torch.bool, device=x.device).triu(1)
        weights = logits.masked_fill(causal, float("-inf")).softmax(-1)[0]
        caught.append(weights[:, first_frame : first_frame + num_frames, 1 : 1 + num_text])

    hooks = [m.register_forward_hook(keep) for m in model.global_model.modules() if isinstance(m, Attention)]
    try:
        batch = collate([(list(text_ids), None, codes)], model.config.end_id, model.config.frame_position_stride)
        with torch.inference_mode():
            model(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(caught)


def score_attention(att: torch.Tensor) -> dict[str, np.ndarray]:
    """``mass``, ``peak``, ``corr``, ``lag`` of one utterance, each ``[num_layers, num_heads]``.

    Args:
        att: ``[num_layers, num_heads, F, L]`` from :func:`text_attention`.
    """
    a = att.double().numpy()
    num_frames, num_text = a.shape[-2:]
    mass = a.sum(-1)  # [Ly, H, F]
    share = a / np.maximum(mass[..., None], 1e-12)
    where = (share.argmax(-1) + 0.5) / num_text  # [Ly, H, F]
    frame = (np.arange(num_frames) + 0.5) / num_frames
    if num_frames > 2:
        centred, ref = where - where.mean(-1, keepdims=True), frame - frame.mean()
        denominator = np.sqrt((centred**2).sum(-1) * (ref**2).sum())
        corr = np.where(denominator > 0, (centred * ref).sum(-1) / np.maximum(denominator, 1e-12), 0.0)
    else:  # no slope to speak of
        corr = np.full(mass.shape[:2], np.nan)
    return {
        "mass": mass.mean(-1),
        "peak": share.max(-1).mean(-1),
        "corr": corr,
        "lag": np.abs(where - frame).mean(-1),
    }


def probe(model: TTSModel, items: Sequence[tuple[Sequence[int], torch.Tensor]]) -> AlignmentScores:
    """Mean scores over ``items`` = ``(text_ids, codes [Q, F])`` pairs.

    Raises:
        ValueError: no items.
    """
    if not items:
        raise ValueError("the alignment probe needs at least one utterance")
    per = [score_attention(text_attention(model, ids, codes)) for ids, codes in items]
    means = {name: np.nanmean(np.stack([p[name] for p in per]), 0) for name in SCORES}
    return AlignmentScores(**means, utterances=len(per))


def report(scores: AlignmentScores, model_label: str, command: str) -> str:
    """Markdown: the best head, then one table per score (rows = layers, columns = heads)."""
    layer, head = scores.best_head()
    lines = [
        f"# Text-to-frame alignment: `{model_label}`",
        "",
        f"`{command}` — {scores.utterances} utterances, teacher-forced, no prompt (`tts/evaluation/alignment.py`).",
        "",
        f"Best head: layer {layer}, head {head}: corr {scores.corr[layer, head]:.2f}, lag "
        f"{scores.lag[layer, head]:.3f}, peak {scores.peak[layer, head]:.2f}, mass {scores.mass[layer, head]:.2f}.",
    ]
    for name in SCORES:
        table = getattr(scores, name)
        lines += ["", f"## {name}", "", "| layer | " + " | ".join(f"h{h}" for h in range(table.shape[1])) + " |"]
        lines.append("|---|" + "---:|" * table.shape[1])
        lines += [f"| {i} | " + " | ".join(f"{v:.2f}" for v in row) + " |" for i, row in enumerate(table)]
    return "\n".join(lines) + "\n"
