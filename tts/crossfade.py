"""Joining separately synthesized sentences with short cross-fades, incrementally.

:class:`CrossFader` is used both by the streaming path (chunks arrive as they are decoded) and by the offline
path (each sentence arrives as one chunk), so the two produce the same samples by construction. It holds back the
last ``overlap`` samples of the current piece, because they may still be mixed with the head of the next piece;
at a piece boundary the held tail fades out while the new head fades in (equal-gain linear ramps).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class CrossFader:
    """Incremental cross-fading joiner for ``[C, n]`` audio chunks.

    Args:
        overlap: cross-fade length in samples (0 = plain concatenation).
    """

    def __init__(self, overlap: int) -> None:
        if overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        self.overlap = overlap
        self.pending: torch.Tensor | None = None  # current piece, not yet emitted
        self.tail: torch.Tensor | None = None  # end of the previous piece, waiting to be mixed

    def push(self, chunk: torch.Tensor) -> torch.Tensor:
        """Add the next ``[C, n]`` samples of the current piece; return the samples that are final (may be empty)."""
        self.pending = chunk if self.pending is None else torch.cat([self.pending, chunk], dim=-1)
        if self.tail is not None:
            n = self.tail.shape[-1]
            if self.pending.shape[-1] < n:
                return chunk[..., :0]
            ramp = torch.linspace(0.0, 1.0, n + 2, dtype=chunk.dtype, device=chunk.device)[1:-1]
            mixed = self.tail * (1.0 - ramp) + self.pending[..., :n] * ramp
            self.pending = torch.cat([mixed, self.pending[..., n:]], dim=-1)
            self.tail = None
        cut = max(self.pending.shape[-1] - self.overlap, 0)
        out, self.pending = self.pending[..., :cut], self.pending[..., cut:]
        return out

    def end_piece(self) -> None:
        """The current piece is complete: its held-back end becomes the tail for the next piece."""
        if self.pending is not None and self.pending.shape[-1]:
            if self.tail is not None:  # the piece was shorter than the previous tail: keep them in sequence
                self.pending = torch.cat([self.tail, self.pending], dim=-1)
            self.tail, self.pending = self.pending[..., -self.overlap :] if self.overlap else None, None
            if self.tail is not None and self.tail.shape[-1] == 0:
                self.tail = None

    def flush(self) -> torch.Tensor | None:
        """Everything still held (call once at the end)."""
        parts = [t for t in (self.tail, self.pending) if t is not None and t.shape[-1]]
        self.tail = self.pending = None
        return torch.cat(parts, dim=-1) if parts else None


def crossfade_join(pieces: Iterable[torch.Tensor], overlap: int) -> torch.Tensor:
    """Join ``[C, n_i]`` pieces with ``overlap``-sample cross-fades (total length ``sum(n_i) - overlap * (k-1)``
    when every piece is longer than ``overlap``)."""
    fader = CrossFader(overlap)
    out = []
    for piece in pieces:
        out.append(fader.push(piece))
        fader.end_piece()
    rest = fader.flush()
    if rest is not None:
        out.append(rest)
    if not out:
        raise ValueError("nothing to join")
    return torch.cat(out, dim=-1)
