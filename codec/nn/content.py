"""Content heads on the first RVQ levels: a phoneme CTC head and a teacher-distillation projection.

Both read ``prefix [B, D, F]``, the sum of the first ``ContentConfig.levels`` quantizer outputs (straight-through,
so their gradients reach the encoder and those levels' projections). They exist to put the words into few levels:
a language model on the codes then needs to predict only those levels right to be intelligible.

- CTC head: optionally a few non-causal Transformer layers over the frames (``head_layers``), then a linear map
  turns each 5 Hz frame into ``ctc_upsample`` sub-frames (40 Hz by default, enough for English's 12-15 phones a
  second), two small non-causal convolutions, then phoneme logits with blank = 0. Its posteriors also give forced
  alignments (:mod:`codec.content.aligner`).
- Distillation: teacher features (e.g. the Whisper tiny.en encoder, 384-d) predicted from the prefix with cosine
  distance on the frames inside the utterance: one pooled vector per frame through a linear projection, or
  ``teacher_subframes`` vectors per frame (10 = Whisper's own 50 Hz) through the same sub-frame head as CTC. Pooling
  a 200 ms frame to one vector averages its phones away; the sub-frame targets keep their order.
- Frame classifier (``frame_labels``): one linear map turns each frame into ``ctc_upsample`` sub-frames of phoneme
  logits, trained with cross-entropy on timed labels (PAST's phoneme loss). Being linear, it cannot do the reading
  itself: the phonemes must be spelled out in the prefix, which is the point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from codec.config import ContentConfig
from codec.evaluation.wer import edit_distance

BLANK = 0


class SubframeHead(nn.Module):
    """``[B, D, F]`` frames → ``[B, F * U, out_dim]``: each frame becomes ``U`` sub-frames.

    Optionally ``context_layers`` non-causal Transformer layers first mix the frames (a frame alone holds ~3
    phones' worth of a 200 ms window; its neighbours tell where they start and end), then a linear map expands every
    frame into ``U`` sub-frames of ``channels``, two convolutions over the sub-frames refine them (residual), and a
    linear layer after a LayerNorm gives the outputs.
    """

    def __init__(self, dim: int, upsample: int, channels: int, kernel: int, out_dim: int, context_layers: int = 0):
        super().__init__()
        self.upsample = upsample
        self.context = None
        if context_layers:
            layer = nn.TransformerEncoderLayer(
                dim, nhead=4, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True
            )
            self.context = nn.TransformerEncoder(layer, context_layers, enable_nested_tensor=False)
        self.expand = nn.Linear(dim, channels * upsample)
        pad = kernel // 2
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=pad)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=pad)
        self.norm = nn.LayerNorm(channels)
        self.out = nn.Linear(channels, out_dim)

    def forward(self, prefix: torch.Tensor) -> torch.Tensor:
        b, _, f = prefix.shape
        x = prefix.transpose(1, 2)  # [B, F, D]
        if self.context is not None:
            x = self.context(x)
        x = self.expand(x).reshape(b, f * self.upsample, -1).transpose(1, 2)  # [B, C, F*U]
        x = x + self.conv2(F.gelu(self.conv1(F.gelu(x))))
        return self.out(self.norm(x.transpose(1, 2)))


class CtcHead(SubframeHead):
    """``[B, D, F]`` frames → ``[B, F * U, V + 1]`` log-probabilities (blank 0, then the ``V`` symbols)."""

    def __init__(self, dim: int, cfg: ContentConfig) -> None:
        super().__init__(dim, cfg.ctc_upsample, cfg.ctc_channels, cfg.ctc_kernel, len(cfg.symbols) + 1, cfg.head_layers)

    def forward(self, prefix: torch.Tensor) -> torch.Tensor:
        return super().forward(prefix).log_softmax(-1)


class FrameClassifier(nn.Module):
    """``[B, D, F]`` frames → ``[B, F * U, V + 1]`` phoneme logits (0 = no phone): one linear map per frame."""

    def __init__(self, dim: int, cfg: ContentConfig) -> None:
        super().__init__()
        self.upsample, self.classes = cfg.ctc_upsample, len(cfg.symbols) + 1
        self.proj = nn.Linear(dim, self.upsample * self.classes)

    def forward(self, prefix: torch.Tensor) -> torch.Tensor:
        b, _, f = prefix.shape
        return self.proj(prefix.transpose(1, 2)).reshape(b, f * self.upsample, self.classes)


class ContentHeads(nn.Module):
    """The heads a :class:`ContentConfig` asks for (``ctc``, ``distill``, ``frames``; any may be None).

    The distillation head is a plain linear map when it predicts one teacher vector per frame without context
    (``teacher_subframes`` 1, ``head_layers`` 0), else a :class:`SubframeHead`.
    """

    def __init__(self, dim: int, cfg: ContentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.ctc = CtcHead(dim, cfg) if cfg.symbols else None
        self.frames = FrameClassifier(dim, cfg) if cfg.frame_labels else None
        self.distill: nn.Module | None = None
        if cfg.teacher_dim and cfg.teacher_subframes == 1 and not cfg.head_layers:
            self.distill = nn.Linear(dim, cfg.teacher_dim)
        elif cfg.teacher_dim:
            s = cfg.teacher_subframes
            self.distill = SubframeHead(dim, s, cfg.ctc_channels, cfg.ctc_kernel, cfg.teacher_dim, cfg.head_layers)

    def teacher_prediction(self, prefix: torch.Tensor) -> torch.Tensor:
        """``prefix [B, D, F]`` → predicted teacher features ``[B, F * teacher_subframes, Dt]``."""
        if self.distill is None:
            raise ValueError("this codec has no distillation head (model.content.teacher_dim is 0)")
        if isinstance(self.distill, nn.Linear):
            return self.distill(prefix.transpose(1, 2))
        return self.distill(prefix)


def ctc_loss(log_probs: torch.Tensor, targets: list[torch.Tensor], frames: torch.Tensor, upsample: int) -> torch.Tensor:
    """Mean CTC loss per target symbol over the items that have a target.

    Args:
        log_probs: ``[B, F * U, V + 1]`` from :class:`CtcHead`.
        targets: per item a ``[L]`` long tensor of symbol ids (1..V), or an empty tensor for "no transcript here".
        frames: ``[B]`` valid codec frames per item (the rest is padding).
        upsample: sub-frames per frame (``U``).

    Returns:
        A scalar; zero (with a graph) when no item has a target.
    """
    keep = [i for i, t in enumerate(targets) if t.numel() > 0]
    if not keep:
        return log_probs.sum() * 0.0
    lp = log_probs[keep].transpose(0, 1)  # [T, B', V+1]
    tgt = torch.cat([targets[i] for i in keep]).to(log_probs.device)
    lengths = torch.tensor([targets[i].numel() for i in keep], device=log_probs.device)
    inputs = (frames[keep] * upsample).to(log_probs.device)
    loss = F.ctc_loss(lp.float(), tgt, inputs, lengths, blank=BLANK, reduction="sum", zero_infinity=True)
    return loss / lengths.sum().clamp_min(1)


def distill_loss(pred: torch.Tensor, teacher: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance ``1 - cos`` over valid frames.

    Args:
        pred: ``[B, T, Dt]`` predicted teacher features (``T`` = frames x teacher sub-frames).
        teacher: ``[B, T, Dt]`` teacher features.
        frames: ``[B]`` valid steps of ``T`` per item (0 = no teacher for that item).
    """
    mask = torch.arange(pred.shape[1], device=pred.device)[None] < frames.to(pred.device)[:, None]  # [B, F]
    if not mask.any():
        return pred.sum() * 0.0
    cos = F.cosine_similarity(pred.float(), teacher.float().to(pred.device), dim=-1)
    return ((1 - cos) * mask).sum() / mask.sum()


def frame_label_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled sub-frames (``labels`` -100 = ignored); zero when none is labelled.

    Args:
        logits: ``[B, T, V + 1]`` from :class:`FrameClassifier`.
        labels: ``[B, T]`` symbol ids, 0 for "no phone", -100 to ignore.
    """
    labels = labels.to(logits.device)
    if not (labels >= 0).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor | None = None) -> list[list[int]]:
    """Best-path CTC decoding: ``[B, T, V + 1]`` → per item the symbol ids (repeats merged, blanks dropped)."""
    best = log_probs.argmax(-1).cpu()
    out = []
    for i, row in enumerate(best.tolist()):
        if lengths is not None:
            row = row[: int(lengths[i])]
        ids, prev = [], BLANK
        for s in row:
            if s != prev and s != BLANK:
                ids.append(s)
            prev = s
        out.append(ids)
    return out


def error_rate(hyps: list[list[int]], refs: list[list[int]]) -> float:
    """Corpus-level token error rate (e.g. PER): total edits / total reference tokens."""
    edits = sum(edit_distance(r, h) for h, r in zip(hyps, refs, strict=True))
    return edits / max(1, sum(len(r) for r in refs))
