"""Factorized residual vector quantizer (cosine lookup in a low-dimensional space, as in DAC / U-Codec).

Per layer: ``e = in_proj(r)`` maps the residual ``r [B, F, D]`` to ``codebook_dim``; the code is the codebook row
with the highest cosine similarity to ``e`` (both L2-normalised); the quantised vector is the *un-normalised* row,
passed straight-through to ``e``'s gradient and projected back with ``out_proj``; the next layer quantises
``r - out_proj(q)``. Decoding from codes sums ``out_proj(codebook[code])`` over layers.

With ``split_levels = S`` > 0 (Mimi's split) the residual restarts from the latent at layer ``S``: layers
``0..S-1`` and ``S..Q-1`` are two residual stacks over the same latent, summed. Decoding is unchanged (a sum over
layers), so codes, releases and the streaming decoder do not care which quantizer made them.

Training extras: commitment/codebook losses, per-sample quantizer dropout (a random prefix of layers, so one model
serves several bitrates), and usage counts that :meth:`FactorizedRVQ.reinit_dead_codes` uses to revive codes that
the batch never picked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from codec.config import QuantizerConfig
from codec.nn.conv import _maybe_weight_norm


@dataclass
class QuantizerOutput:
    """Result of a training pass through the RVQ.

    Attributes:
        quantized: ``[B, D, F]`` sum of the kept layers' outputs (straight-through gradients).
        codes: ``[B, Q, F]`` code indices of all layers.
        commitment_loss: scalar, mean over kept layers of ``||e - sg(q)||^2``.
        codebook_loss: scalar, mean over kept layers of ``||sg(e) - q||^2``.
        num_layers: ``[B]`` number of layers kept per sample (quantizer dropout).
        prefix: ``[B, D, F]`` sum of the first ``prefix_layers`` outputs whatever dropout kept (straight-through
            gradients; the content heads read it), or None when not asked for.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    commitment_loss: torch.Tensor
    codebook_loss: torch.Tensor
    num_layers: torch.Tensor
    prefix: torch.Tensor | None = None


class FactorizedVQ(nn.Module):
    """One RVQ layer: ``in_proj`` (D→cd), ``codebook`` (K×cd), ``out_proj`` (cd→D)."""

    def __init__(self, dim: int, codebook_size: int, codebook_dim: int, norm: str) -> None:
        super().__init__()
        self.in_proj = _maybe_weight_norm(nn.Linear(dim, codebook_dim), norm)
        self.out_proj = _maybe_weight_norm(nn.Linear(codebook_dim, dim), norm)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def lookup(self, e: torch.Tensor) -> torch.Tensor:
        """Cosine-nearest code of each ``e [..., cd]`` → indices ``[...]``."""
        sims = F.normalize(e, dim=-1) @ F.normalize(self.codebook.weight, dim=-1).t()
        return sims.argmax(dim=-1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[B, F]`` → ``[B, F, D]``."""
        return self.out_proj(self.codebook(codes))


class FactorizedRVQ(nn.Module):
    """Residual stack of :class:`FactorizedVQ`. Latents ``[B, D, F]`` ↔ codes ``[B, Q, F]``."""

    def __init__(self, cfg: QuantizerConfig, dim: int, norm: str = "none") -> None:
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(
            [FactorizedVQ(dim, cfg.codebook_size, cfg.codebook_dim, norm) for _ in range(cfg.num_codebooks)]
        )
        # Training bookkeeping, not part of the model's state: usage counts and candidate vectors for revival.
        self._usage: torch.Tensor | None = None
        self._candidates: list[torch.Tensor] = []

    def _check_layers(self, n: int | None) -> int:
        q = len(self.layers)
        if n is None:
            return q
        if not 1 <= n <= q:
            raise ValueError(f"num_codebooks must be between 1 and {q}, got {n}")
        return n

    @torch.no_grad()
    def encode(
        self, z: torch.Tensor, num_codebooks: int | None = None, z_split: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Latents ``[B, D, F]`` → codes ``[B, n, F]`` (the first ``n`` layers). ``z_split [B, D, F]``, with a
        split, is what the first stack quantizes instead of ``z`` (phone input)."""
        n = self._check_layers(num_codebooks)
        if z_split is not None and not self.cfg.split_levels:
            raise ValueError("z_split needs a split quantizer (split_levels > 0)")
        residual = (z if z_split is None else z_split).transpose(1, 2)
        codes = []
        for qi, layer in enumerate(self.layers[:n]):
            if qi and qi == self.cfg.split_levels:
                residual = z.transpose(1, 2)
            idx = layer.lookup(layer.in_proj(residual))
            residual = residual - layer.decode(idx)
            codes.append(idx)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, n, F]`` (n ≤ Q, a prefix of the layers) → latents ``[B, D, F]``."""
        n = self._check_layers(codes.shape[1])
        out = 0
        for q in range(n):
            out = out + self.layers[q].decode(codes[:, q])
        return out.transpose(1, 2)

    def forward(
        self,
        z: torch.Tensor,
        num_codebooks: int | None = None,
        prefix_layers: int = 0,
        prefix_tangent: bool = False,
        z_split: torch.Tensor | None = None,
        split_detach: bool = False,
    ) -> QuantizerOutput:
        """Training pass. z ``[B, D, F]``; ``num_codebooks`` fixes the depth, otherwise dropout may pick it;
        ``prefix_layers`` > 0 also returns the sum of that many first layers (``QuantizerOutput.prefix``);
        ``z_split [B, D, F]``, with a split, is what the first stack quantizes instead of ``z`` (phone input).

        ``prefix_tangent``: the prefix's straight-through gradient reaches each projected residual ``e`` only
        through its direction (its component along ``e`` is removed). The lookup is by cosine, so only the direction
        picks a code; a loss on the prefix that also pulls on ``e``'s norm (content heads) drives ``e`` away from its
        codes, which only the commitment term holds back. The value of the prefix and the reconstruction path
        are unchanged. Only a level's own output is made tangent: the prefix's later levels still reach earlier
        ones through the residual, whose straight-through path keeps its full gradient.

        ``split_detach``: the first stack's contribution to ``quantized`` (the decoder's input) is its
        ``out_proj(code)`` without the straight-through path, so reconstruction trains only those output projections;
        the prefix and the residual inside the first stack keep the straight-through gradient."""
        b = z.shape[0]
        keep = torch.full((b,), self._check_layers(num_codebooks), device=z.device)
        if num_codebooks is None and self.training and self.cfg.dropout_layers:
            choices = torch.tensor(self.cfg.dropout_layers, device=z.device)
            drop = torch.rand(b, device=z.device) < self.cfg.dropout_prob
            picked = choices[torch.randint(len(choices), (b,), device=z.device)]
            keep = torch.where(drop, picked, keep)
        if z_split is not None and not self.cfg.split_levels:
            raise ValueError("z_split needs a split quantizer (split_levels > 0)")
        residual = (z if z_split is None else z_split).transpose(1, 2)
        quantized = torch.zeros_like(residual)
        commit = codebook = z.new_zeros(())
        codes = []
        prefix = None
        for qi, layer in enumerate(self.layers):
            if qi and qi == self.cfg.split_levels:  # the second stack starts again from the latent
                residual = z.transpose(1, 2)
            e = layer.in_proj(residual)  # [B, F, cd]
            idx = layer.lookup(e)
            c = layer.codebook(idx)
            mask = (keep > qi).to(z.dtype)[:, None, None]  # [B, 1, 1]
            denom = mask.sum().clamp_min(1) * e.shape[1] * e.shape[2]
            commit = commit + ((e - c.detach()).pow(2) * mask).sum() / denom
            codebook = codebook + ((e.detach() - c).pow(2) * mask).sum() / denom
            out = layer.out_proj(e + (c - e).detach())
            dec = layer.out_proj(c.detach()) if split_detach and qi < self.cfg.split_levels else out
            quantized = quantized + dec * mask
            if qi < prefix_layers:
                p = out
                if prefix_tangent:  # value e, gradient (I - e e^T / |e|^2) g
                    norm = e.norm(dim=-1, keepdim=True).clamp_min(1e-6)
                    e_dir = e * (norm.detach() / norm)
                    p = layer.out_proj(e_dir + (c - e_dir).detach())
                prefix = p if prefix is None else prefix + p
            residual = residual - out
            codes.append(idx)
            if self.training:
                self._record(qi, idx, e)
        n_layers = keep.to(z.dtype).mean().clamp_min(1)
        return QuantizerOutput(
            quantized=quantized.transpose(1, 2),
            codes=torch.stack(codes, dim=1),
            commitment_loss=commit / n_layers,
            codebook_loss=codebook / n_layers,
            num_layers=keep,
            prefix=None if prefix is None else prefix.transpose(1, 2),
        )

    @torch.no_grad()
    def silence_levels(self, n: int) -> None:
        """Zero the output gain of levels ``0..n-1``: their codes add nothing to the sum until training moves them
        (weight norm: the gain, not ``v``, whose norm must stay non-zero)."""
        for layer in self.layers[:n]:
            for name, param in layer.out_proj.named_parameters():
                if name in ("weight", "bias", "weight_g") or name.endswith("original0"):
                    param.zero_()

    # ----------------------------------------------------------------------------------------- dead codes
    @torch.no_grad()
    def _record(self, qi: int, idx: torch.Tensor, e: torch.Tensor) -> None:
        k = self.cfg.codebook_size
        if self._usage is None or self._usage.device != idx.device:
            self._usage = torch.zeros(len(self.layers), k, device=idx.device)
            self._candidates = [e.new_zeros(0, e.shape[-1]) for _ in self.layers]
        self._usage[qi] += torch.bincount(idx.flatten(), minlength=k).to(self._usage.dtype)
        flat = e.detach().reshape(-1, e.shape[-1])
        pick = torch.randperm(flat.shape[0], device=flat.device)[:k]
        self._candidates[qi] = flat[pick]

    def take_usage(self) -> torch.Tensor | None:
        """Return and reset the usage counts ``[Q, K]`` accumulated since the last call (None if none)."""
        usage, self._usage = self._usage, None
        return usage

    @torch.no_grad()
    def revive_dead_codes(self, usage: torch.Tensor, ema: torch.Tensor | None) -> tuple[torch.Tensor, int]:
        """One step of dead-code tracking: fold this step's usage counts ``[Q, K]`` into the usage EMA
        (``cfg.usage_decay``; None starts every code at the average use, so none is "dead" before it had a chance),
        revive the codes whose EMA is below ``cfg.dead_code_threshold`` and restart theirs at the average.
        Returns the updated EMA (the same tensor, updated in place, once it exists) and the number revived."""
        average = float(usage.sum(-1).mean()) / usage.shape[-1]
        if ema is None:
            ema = torch.full_like(usage, average)
        ema.mul_(self.cfg.usage_decay).add_(usage, alpha=1 - self.cfg.usage_decay)
        if self.cfg.dead_code_threshold <= 0:
            return ema, 0
        dead = ema < self.cfg.dead_code_threshold
        revived = self.reinit_dead_codes(dead)
        ema[dead] = average
        return ema, revived

    @torch.no_grad()
    def reinit_dead_codes(self, dead: torch.Tensor) -> int:
        """Replace the codes flagged in ``dead [Q, K]`` (bool) by encoder vectors seen in the last forward.

        The trainer decides what is dead from an exponential moving average of usage (a single step sees only
        ``B * F`` vectors per layer, often fewer than ``K``, so per-step counts cannot tell dead from unlucky), sums
        usage over processes, and broadcasts the codebooks afterwards so every process holds the same ones.
        Returns the number of codes replaced.
        """
        if not self._candidates:
            return 0
        total = 0
        for qi, layer in enumerate(self.layers):
            idx = dead[qi].nonzero().flatten()
            cand = self._candidates[qi]
            if idx.numel() == 0 or cand.shape[0] == 0 or not layer.codebook.weight.requires_grad:
                continue  # nothing dead, nothing to revive from, or a frozen (pretrained) codebook
            src = cand[torch.randint(cand.shape[0], (idx.numel(),), device=cand.device)]
            layer.codebook.weight[idx] = src.to(layer.codebook.weight.dtype)
            total += idx.numel()
        return total
