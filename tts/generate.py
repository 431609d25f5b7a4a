"""Fast autoregressive generation: prefill, then per frame one global step and Q / G local steps.

The loop is built for CPU latency (gpt-fast style):

- **Static caches.** The global KV cache is allocated once for ``prefix + max_frames`` slots; the local cache holds
  one slot per local step and is overwritten every frame (step p only reads slots ``<= p``, all written this
  frame).
- **No host syncs.** Every per-sequence decision (END allowed yet? forced stop? repetition or silence guard? the
  stops are :class:`tts.stop_rules.StopRules`) is a tensor op. The only device→host read is one per
  ``end_check_every`` frames (or per streamed chunk), which is also where a caller gets frames.
- **Batch > 1** uses left padding (see :func:`tts.batch.build_prefix`): every sequence writes the same cache slot
  at each step, padding keys are masked, RoPE positions count from each sequence's own start, and each sequence
  samples from its own generator. Sequences that have ended keep running (their frames are discarded) until all
  have ended, so the batch never reshapes.
- ``compile=True`` wraps the global step and the whole Q-step local frame in ``torch.compile``; eager is the
  reference and stays correct.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from tts.batch import Prefix
from tts.config import SamplingConfig
from tts.model import TTSModel
from tts.sampling import NoiseSource, SamplingParams, sample
from tts.stop_rules import FrameChunk, StopRules
from tts.transformer import KVCache, StepDecoder


@dataclass
class GenerationOutput:
    """Result of :func:`generate`.

    Attributes:
        codes: ``[B, Q, F]`` with ``F = max(lengths)``; zeros after each sequence's length.
        lengths: frames per sequence.
        reasons: ``"end"``, ``"max_length"``, ``"repetition"`` or ``"silence"`` per sequence.
    """

    codes: torch.Tensor
    lengths: list[int]
    reasons: list[str]


def length_limits(
    text_lengths: Sequence[int], cfg: SamplingConfig, frame_rate: float, max_seconds: float | None = None
) -> tuple[list[int], list[int]]:
    """Minimum and maximum frames per sequence from its target-text length (symbols).

    ``min = floor(min_frames_per_symbol * n)``, ``max = min(ceil(max_frames_per_symbol * n) + margin,
    max_seconds * frame_rate)``; max is at least 1 and at least min.
    """
    cap = max(1, int((max_seconds or cfg.max_seconds) * frame_rate))
    lows, highs = [], []
    for n in text_lengths:
        high = min(math.ceil(cfg.max_frames_per_symbol * n) + cfg.max_frames_margin, cap)
        low = min(int(cfg.min_frames_per_symbol * n), high)
        lows.append(low)
        highs.append(max(high, 1))
    return lows, highs


def local_frame(
    model: TTSModel,
    hidden: torch.Tensor,
    decoder: StepDecoder,
    params: SamplingParams,
    gumbel: torch.Tensor | None,
    allow_end: torch.Tensor,
    forced: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample one frame with S = Q / G local steps of G layers each (:class:`tts.model.LocalModel`).

    Args:
        hidden: ``[B, Dg]`` global hidden state that predicts this frame.
        decoder: the local Transformer's step decoder over an S-slot cache (overwritten every frame).
        gumbel: ``[B, Q, V + 1]`` noise (None when greedy).
        allow_end: ``[B]`` bool, whether layer 0 may choose END at this frame.
        forced: ``[B, K]`` codes that layers ``< K`` take instead of sampling (``eval tts-oracle``); None = none.

    Returns:
        ``[B, Q]`` codes; layer 0 may be END (``codebook_size``).
    """
    local = model.local
    end_id = model.config.end_id
    base = local.frame_inputs(hidden)  # [B, S, D]
    prev = None  # the codes of the previous step: [B] when G = 1, else [B, G]
    codes = []
    for p in range(local.steps):
        h = decoder.step(local.step_input(base, p, prev), p)  # [B, D]
        step_codes = []
        for q in range(p * local.group, (p + 1) * local.group):
            if step_codes:
                h = local.intra_step(h, step_codes[-1], q)
            if forced is not None and q < forced.shape[1]:
                token = code = forced[:, q]
            else:
                logits = local.step_logits(h, q)  # [B, V + 1] for layer 0, [B, V] after
                if q == 0:
                    logits[:, end_id] = logits[:, end_id].masked_fill(~allow_end, float("-inf"))
                noise = None if gumbel is None else gumbel[:, q, : logits.shape[-1]]
                token = sample(logits, params.temperature[q], params.top_k[q], params.top_p[q], noise)
                code = token.clamp_max(end_id - 1) if q == 0 else token  # END is never an input embedding
            codes.append(token)
            step_codes.append(code)
        prev = step_codes[0] if local.group == 1 else torch.stack(step_codes, dim=1)
    return torch.stack(codes, dim=1)


def global_step(
    model: TTSModel,
    frame: torch.Tensor,
    positions: torch.Tensor,
    decoder: StepDecoder,
    slot: int,
    extra: torch.Tensor | None = None,
):
    """Feed ``frame [B, Q]`` (+ ``extra [B, D]``, the aligned text's input) at cache ``slot`` (RoPE ``positions
    [B]``) → hidden ``[B, Dg]`` for the next frame."""
    x = model.frame_emb(frame[:, :, None])[:, 0]  # [B, D]
    if extra is not None:
        x = x + extra
    return decoder.step(x, slot, positions)


class PointerState:
    """The word pointer of aligned text during generation (:mod:`tts.aligned_text`), one per sequence.

    Per frame, :meth:`advance` samples how far the pointer moves (at temperature 1 from the model's advance head;
    argmax when ``greedy``), never past the last word, and returns what that frame adds to the local model's
    conditioning and, once generated, to its global input. :attr:`at_end` says which sequences may END.
    """

    def __init__(self, model: TTSModel, prefix: Prefix, noise: NoiseSource | None) -> None:
        self.pointer_net = model.pointer
        self.words = model.pointer.vectors(model.text_emb(prefix.tokens), prefix.word_of_token)  # [B, G, D]
        self.last = torch.tensor([n - 1 for n in prefix.num_words], device=self.words.device)
        self.pointer = torch.zeros_like(self.last)
        self.noise = noise

    def advance(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``hidden [B, Dg]`` (predicts the next frame) → ``(global_add, local_add)`` ``[B, D]`` of that frame."""
        logits = self.pointer_net.head(hidden)  # [B, C]
        if self.noise is None:
            step = logits.argmax(-1)
        else:
            step = sample(logits, 1.0, 0, 1.0, self.noise.gumbel(logits.shape[-1]))
        self.pointer = torch.minimum(self.pointer + step, self.last)
        return self.pointer_net.inputs(self.words, self.pointer, step)

    def place(self, pointer: torch.Tensor, step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Put the pointer where the caller says (``[B]`` word and advance class; an oracle's recording times)
        instead of sampling it; returns the frame's inputs as :meth:`advance` does."""
        self.pointer = torch.minimum(pointer.to(self.last.device), self.last)
        return self.pointer_net.inputs(self.words, self.pointer, step.to(self.last.device))

    @property
    def at_end(self) -> torch.Tensor:
        return self.pointer == self.last


@torch.inference_mode()
def generate_frames(
    model: TTSModel,
    prefix: Prefix,
    params: SamplingParams,
    seeds: Sequence[int],
    min_frames: Sequence[int],
    max_frames: Sequence[int],
    guard: SamplingConfig | None = None,
    silence_codes: torch.Tensor | None = None,
    chunk_frames: int | None = None,
    compile: bool = False,
) -> Iterator[FrameChunk]:
    """Generate frames for a left-padded batch, yielding a :class:`FrameChunk` every ``chunk_frames`` frames.

    Args:
        prefix: ``[BOS] text [SEP] prompt`` per item (:func:`tts.batch.build_prefix`).
        params: per-layer sampling settings.
        seeds: one per item.
        min_frames / max_frames: per item (:func:`length_limits`); END is impossible before min, and a sequence
            stops at max.
        guard: repetition/silence settings and ``end_check_every`` (default: the model config's sampling).
        silence_codes: ``[Q]`` the codec's code for silence, for the silence guard (None disables it).
        chunk_frames: frames per yielded chunk (default ``guard.end_check_every``). Each chunk is one host sync.
        compile: ``torch.compile`` the step functions.
    """
    cfg = model.config
    guard = guard or cfg.sampling
    b, s = prefix.tokens.shape
    q, end_id = cfg.num_codebooks, cfg.end_id
    if not len(seeds) == len(min_frames) == len(max_frames) == b:
        raise ValueError(f"need one seed, min and max length per item (batch of {b})")
    chunk = chunk_frames or guard.end_check_every
    if chunk < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk}")
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    prefix = prefix.to(device)
    horizon = max(max_frames)
    global_cache = KVCache.allocate(cfg.global_model, b, s + horizon, dtype, device, padded=prefix.padded)
    global_decoder = StepDecoder(model.global_model, global_cache)
    local_decoder = StepDecoder(
        model.local.transformer, KVCache.allocate(cfg.local_model, b, cfg.local_steps, dtype, device)
    )
    noise = None if params.is_greedy else NoiseSource(seeds, device)
    frame_fn: Callable = local_frame
    step_fn: Callable = global_step
    if compile:
        frame_fn = torch.compile(local_frame, dynamic=False)
        step_fn = torch.compile(global_step, dynamic=True)

    x = model.embed(prefix.tokens, prefix.codes, prefix.is_frame)
    pointer = None
    if model.pointer is not None:
        if prefix.word_of_token is None:
            raise ValueError("this model reads aligned text: build its prefix with aligned_text=True")
        pointer = PointerState(model, prefix, noise)
    valid = prefix.valid if prefix.padded else None
    hidden = model.global_model(x, positions=prefix.positions, cache=global_cache, start=0, valid=valid)
    hidden = hidden[:, -1]  # [B, Dg]: the last prefix position predicts frame 0
    next_pos = prefix.next_positions  # RoPE position of frame 0, per sequence
    min_t = torch.tensor(list(min_frames), device=device)
    rules = StopRules(end_id, max_frames, guard, q, silence_codes, device)
    previous = extra = None
    pending, chunk_start = [], 0
    for t in range(horizon):
        if t > 0:
            pos = next_pos + prefix.frame_step * (t - 1)
            hidden = step_fn(model, previous, pos, global_decoder, s + t - 1, extra)
        allow_end = min_t <= t
        context = hidden
        if pointer is not None:
            extra, local_add = pointer.advance(hidden)
            context, allow_end = hidden + local_add, allow_end & pointer.at_end
        gumbel = noise.gumbel(q, cfg.head_vocab) if noise is not None else None
        frame = frame_fn(model, context, local_decoder, params, gumbel, allow_end)  # [B, Q]
        rules.update(t, frame, previous)
        frame = frame.clamp_max(end_id - 1)  # an END frame is fed as a valid (discarded) frame
        pending.append(frame)
        previous = frame
        if len(pending) == chunk or t == horizon - 1:
            out = rules.chunk(torch.stack(pending, dim=2), chunk_start)  # [B, Q, n]; the one host sync per chunk
            yield out
            chunk_start += out.codes.shape[2]
            pending = []
            if out.done:
                return


def generate(
    model: TTSModel,
    prefix: Prefix,
    params: SamplingParams,
    seeds: Sequence[int],
    min_frames: Sequence[int],
    max_frames: Sequence[int],
    **kwargs,
) -> GenerationOutput:
    """Run :func:`generate_frames` to the end and collect ``codes [B, Q, max(lengths)]``."""
    chunks = list(generate_frames(model, prefix, params, seeds, min_frames, max_frames, **kwargs))
    last = chunks[-1]
    lengths = [int(n) for n in last.lengths]
    codes = torch.cat([c.codes for c in chunks], dim=2)[:, :, : max(lengths)]
    # a guard may cut a sequence back into frames of an earlier chunk: zero everything after each final length
    after = (
        torch.arange(codes.shape[2], device=codes.device)[None, :]
        >= torch.tensor(lengths, device=codes.device)[:, None]
    )
    return GenerationOutput(codes=codes.masked_fill(after[:, None, :], 0), lengths=lengths, reasons=last.reasons)
