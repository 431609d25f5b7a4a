"""Token sampling for the local model: temperature, top-k and top-p per RVQ layer, seeded per sequence.

Sampling uses the Gumbel-max trick: ``argmax(logits / T + g)`` with ``g = -log(-log(u))``, ``u ~ U(0, 1)``, is an
exact draw from ``softmax(logits / T)`` (restricted to the top-k / top-p set by masking the rest to -inf). Its
randomness is a plain tensor, so the noise of a whole frame is drawn up front, one ``torch.rand`` per sequence from
that sequence's own ``torch.Generator``. Two consequences we rely on:

- no ``multinomial`` and no host round trip inside the frame loop;
- a sequence's samples depend only on its own seed, so a batch produces exactly what each item produces alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tts.config import SamplingConfig, per_layer


@dataclass(frozen=True)
class SamplingParams:
    """Per-layer sampling settings (length Q each)."""

    temperature: tuple[float, ...]
    top_k: tuple[int, ...]
    top_p: tuple[float, ...]

    @classmethod
    def create(
        cls,
        num_codebooks: int,
        defaults: SamplingConfig | None = None,
        temperature: float | Sequence[float] | None = None,
        top_k: int | Sequence[int] | None = None,
        top_p: float | Sequence[float] | None = None,
    ) -> SamplingParams:
        """Resolve user values (None = the config default) to per-layer tuples.

        A list gives per-layer values and its last entry repeats: ``top_k=[50, 20]`` is 50 for layer 0, 20 after.

        Raises:
            ValueError: negative temperature or top_k, top_p outside (0, 1], more values than layers.
        """
        d = defaults or SamplingConfig()
        t = per_layer(d.temperature if temperature is None else _tuple(temperature), num_codebooks, "temperature")
        k = per_layer(d.top_k if top_k is None else _tuple(top_k), num_codebooks, "top_k")
        p = per_layer(d.top_p if top_p is None else _tuple(top_p), num_codebooks, "top_p")
        if any(not isinstance(x, (int, float)) or x < 0 for x in t):
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {list(t)}")
        if any(not isinstance(x, int) or x < 0 for x in k):
            raise ValueError(f"top_k must be an integer >= 0 (0 = off), got {list(k)}")
        if any(not isinstance(x, (int, float)) or not 0 < x <= 1 for x in p):
            raise ValueError(f"top_p must be in (0, 1] (1 = off), got {list(p)}")
        return cls(tuple(float(x) for x in t), tuple(int(x) for x in k), tuple(float(x) for x in p))

    @classmethod
    def greedy(cls, num_codebooks: int) -> SamplingParams:
        return cls((0.0,) * num_codebooks, (0,) * num_codebooks, (1.0,) * num_codebooks)

    @property
    def is_greedy(self) -> bool:
        return all(t == 0 for t in self.temperature)


def _tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


class NoiseSource:
    """Per-sequence Gumbel noise from one ``torch.Generator`` per sequence, on the device that uses it (a CPU draw
    copied to a GPU every frame would serialise the loop).

    Args:
        seeds: one seed per batch item (item i of a batch == a batch of one with ``seeds[i]``).
        device: where the noise is drawn and used. Draws are deterministic per device type (CPU and CUDA
            generators are different algorithms).
    """

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.generators = []
        for s in seeds:
            g = torch.Generator(device=self.device)
            g.manual_seed(int(s))
            self.generators.append(g)

    def gumbel(self, *shape: int) -> torch.Tensor:
        """``[B, *shape]`` standard Gumbel noise."""
        u = torch.stack([torch.rand(shape, generator=g, device=self.device) for g in self.generators])
        tiny = torch.finfo(u.dtype).tiny
        return -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-7)))


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Mask ``logits [B, V]`` to -inf outside the top-k and the smallest top-p nucleus (the best token always
    stays). ``top_k = 0`` / ``top_p = 1`` switch a filter off."""
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs > top_p  # tokens after the nucleus is already full
        ordered = ordered.masked_fill(drop, float("-inf"))
        logits = torch.empty_like(logits).scatter_(-1, order, ordered)
    return logits


def sample(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float, gumbel: torch.Tensor | None
) -> torch.Tensor:
    """One token per row of ``logits [B, V]`` → ``[B]`` long.

    Same draws as ``argmax(filter_logits(logits / T, top_k, top_p) + gumbel)``, computed on the top-k candidates
    only (``topk`` returns them sorted, so the nucleus needs no sort over the whole vocabulary).

    Args:
        temperature: 0 = greedy (argmax; ``gumbel`` unused).
        gumbel: ``[B, V]`` noise from :class:`NoiseSource` (required unless greedy).
    """
    if temperature <= 0:
        return logits.argmax(dim=-1)
    assert gumbel is not None, "sampling with temperature > 0 needs noise"
    vocab = logits.shape[-1]
    k = top_k if 0 < top_k < vocab else vocab
    if k == vocab and top_p >= 1.0:
        return (logits / temperature + gumbel).argmax(dim=-1)
    values, index = logits.topk(k, dim=-1)  # [B, k], sorted descending
    values = values / temperature
    if top_p < 1.0:
        probs = values.softmax(dim=-1)
        values = values.masked_fill(probs.cumsum(dim=-1) - probs > top_p, float("-inf"))
    choice = (values + gumbel.gather(-1, index)).argmax(dim=-1, keepdim=True)
    return index.gather(-1, choice)[:, 0]
