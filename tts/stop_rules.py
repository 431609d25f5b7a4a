"""When a generated sequence stops, and how long it is: END, repetition, silence and length rules.

:func:`tts.generate.generate_frames` samples frames; :class:`StopRules` watches them. Per frame ``t`` it sees the
sampled frame ``[B, Q]`` and the previous (fed) one and decides, per sequence still running, whether the sequence
stops here and at which length:

- **END**: layer 0 chose the END code. The sequence is ``t`` frames long (the END frame is not kept).
- **repetition**: the first ``repeat_layers`` layers have equalled the previous frame's ``max_repeat_frames`` times
  in a row; the stuck run is cut (length ``t - run + 1``).
- **silence**: after the first non-silent frame, ``max_silence_frames`` frames in a row equal the codec's silence
  code on those layers; the silent tail is cut but one frame (length ``t - run + 2``).
- **max length**: frame ``t`` is the last one the sequence's ``max_frames`` allows (length ``t + 1``).

The first rule that fires wins, in that order. Everything is a tensor op on the device (no host sync per frame);
:meth:`StopRules.chunk` is the one host read, where the caller hands a chunk of frames out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tts.config import SamplingConfig

RUNNING, END, MAX_LENGTH, REPETITION, SILENCE = range(5)
STOP_REASONS = {RUNNING: "running", END: "end", MAX_LENGTH: "max_length", REPETITION: "repetition", SILENCE: "silence"}


@dataclass
class FrameChunk:
    """Frames ``[start, start + n)`` of every sequence, yielded as generation proceeds.

    Attributes:
        codes: ``[B, Q, n]``; frames at or after a sequence's final length are zeros. (A repetition/silence stop
            trims the stuck tail, which may lie partly in chunks already yielded: a streaming consumer has played
            those frames; :func:`tts.generate.generate` zeroes them.)
        start: index of the first frame in the chunk.
        lengths: final frame count of each sequence that has stopped, None while it runs.
        reasons: why each sequence stopped (``STOP_REASONS`` values).
    """

    codes: torch.Tensor
    start: int
    lengths: list[int | None]
    reasons: list[str]

    @property
    def done(self) -> bool:
        return all(n is not None for n in self.lengths)


class StopRules:
    """The stop bookkeeping of one batch of generated sequences (see the module docstring).

    Args:
        end_id: the END code of layer 0.
        max_frames: ``[B]`` the longest allowed length of each sequence.
        guard: ``max_repeat_frames``, ``repeat_layers`` and ``max_silence_frames`` (0 turns a guard off).
        num_codebooks: Q.
        silence_codes: ``[Q]`` the codec's code for silence (None turns the silence guard off).
        device: where the state tensors live (the model's device).
    """

    def __init__(
        self,
        end_id: int,
        max_frames: Sequence[int],
        guard: SamplingConfig,
        num_codebooks: int,
        silence_codes: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        b = len(max_frames)
        self.end_id = end_id
        self.max_repeat = guard.max_repeat_frames
        self.max_silence = guard.max_silence_frames
        self.horizon = max(max_frames)
        self.max_t = torch.tensor(list(max_frames), device=device)  # [B]
        self.k = min(guard.repeat_layers, num_codebooks)
        use_silence = silence_codes is not None and self.max_silence > 0
        self.silence = silence_codes.to(device)[: self.k] if use_silence else None  # [k]
        self.lengths = torch.full((b,), -1, dtype=torch.long, device=device)  # [B]; -1 while running
        self.reasons = torch.zeros(b, dtype=torch.long, device=device)  # [B] RUNNING, END, ...
        self.repeat_run = torch.zeros(b, dtype=torch.long, device=device)
        self.silent_run = torch.zeros(b, dtype=torch.long, device=device)
        self.spoken = torch.zeros(b, dtype=torch.bool, device=device)

    def update(self, t: int, frame: torch.Tensor, previous: torch.Tensor | None) -> None:
        """Record frame ``t``: ``frame [B, Q]`` as sampled (layer 0 may be END), ``previous [B, Q]`` the frame fed
        before it (None at ``t = 0``). Sequences that stop here get their length and reason."""
        running = self.lengths < 0
        stop = torch.zeros_like(running)
        length_now = torch.full_like(self.lengths, t)
        why = torch.full_like(self.reasons, END)
        k = self.k
        is_end = frame[:, 0] == self.end_id
        stop |= is_end
        if self.max_repeat > 0 and previous is not None:
            same = (frame[:, :k] == previous[:, :k]).all(dim=1) & ~is_end
            self.repeat_run = torch.where(same, self.repeat_run + 1, 0)
            hit = self.repeat_run >= self.max_repeat
            length_now = torch.where(hit & ~stop, t - self.repeat_run + 1, length_now)
            why = torch.where(hit & ~stop, REPETITION, why)
            stop |= hit
        if self.silence is not None:
            is_silent = (frame[:, :k] == self.silence).all(dim=1) & ~is_end
            self.spoken |= ~is_silent & ~is_end
            self.silent_run = torch.where(is_silent & self.spoken, self.silent_run + 1, 0)
            hit = self.silent_run >= self.max_silence
            length_now = torch.where(hit & ~stop, t - self.silent_run + 2, length_now)
            why = torch.where(hit & ~stop, SILENCE, why)
            stop |= hit
        at_max = (t + 1 >= self.max_t) & ~stop  # this frame is the last one allowed
        length_now = torch.where(at_max, t + 1, length_now)
        why = torch.where(at_max, MAX_LENGTH, why)
        stop |= at_max
        newly = running & stop
        self.lengths = torch.where(newly, length_now, self.lengths)
        self.reasons = torch.where(newly, why, self.reasons)

    def chunk(self, codes: torch.Tensor, start: int) -> FrameChunk:
        """The :class:`FrameChunk` of frames ``codes [B, Q, n]`` starting at frame ``start``: frames at or after a
        stopped sequence's length are zeroed. Reads the lengths to the host (the one sync per chunk)."""
        ends = self.lengths.tolist()
        keep = torch.arange(start, start + codes.shape[2], device=codes.device)
        final = torch.tensor([n if n >= 0 else self.horizon for n in ends], device=codes.device)
        codes = codes.masked_fill(keep[None, None, :] >= final[:, None, None], 0)
        lengths = [n if n >= 0 else None for n in ends]
        return FrameChunk(codes, start, lengths, [STOP_REASONS[r] for r in self.reasons.tolist()])
