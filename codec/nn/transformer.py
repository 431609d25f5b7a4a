"""Pre-norm RoPE Transformer over latent frames, with a causal look-back window and a streaming KV cache.

Parameter names follow the authors' checkpoints (``layers.{l}.self_attn.in_proj_weight``, ``norm1``,
``linear1``, ``layer_scale_1.scale`` ...). Attention uses ``scaled_dot_product_attention`` with an explicit boolean
mask: query ``i`` sees key ``j`` iff ``0 <= i - j < context`` (causal) — the same rule offline and while streaming,
which is what makes the streamed output equal the offline one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from codec.config import TransformerConfig
from codec.nn.streaming import StreamingModule


class RMSNorm(nn.Module):
    """RMS normalisation with a learned gain ``alpha [1, 1, D]`` (checkpoint naming)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.alpha = nn.Parameter(torch.ones(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.alpha


class LayerScale(nn.Module):
    """Per-channel residual scaling ``scale [D]`` initialised small so deep stacks start near identity."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def apply_rope(x: torch.Tensor, positions: torch.Tensor, max_period: float) -> torch.Tensor:
    """Rotate interleaved channel pairs of ``x [B, H, T, Dh]`` by angles ``positions [T] * freq``."""
    dh = x.shape[-1]
    freqs = torch.exp(
        torch.arange(0, dh, 2, device=x.device, dtype=torch.float32) * (-torch.log(torch.tensor(max_period)) / dh)
    )
    angles = positions.to(torch.float32)[:, None] * freqs[None]  # [T, Dh/2]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    xr, xi = x[..., 0::2], x[..., 1::2]
    return torch.stack([xr * cos - xi * sin, xr * sin + xi * cos], dim=-1).flatten(-2)


class SelfAttention(StreamingModule):
    """Multi-head self-attention without biases. ``[B, T, D] -> [B, T, D]``; caches K/V while streaming."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.num_heads = cfg.num_heads
        self.causal = cfg.causal
        self.context = cfg.context
        self.max_period = cfg.max_period
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.out_proj = nn.Linear(d, d, bias=False)

    def _mask(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor | None:
        if not self.causal:
            return None
        delta = q_pos[:, None] - k_pos[None, :]
        mask = delta >= 0
        if self.context is not None:
            mask &= delta < self.context
        return mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (
            F.linear(x, self.in_proj_weight).view(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        offset = 0
        if self.is_streaming:
            offset = self._state.get("offset", 0)
        q_pos = torch.arange(offset, offset + t, device=x.device)
        q, k = apply_rope(q, q_pos, self.max_period), apply_rope(k, q_pos, self.max_period)
        k_pos = q_pos
        if self.is_streaming:
            assert self.causal, "only causal attention can stream"
            if "k" in self._state:
                k = torch.cat([self._state["k"], k], dim=2)
                v = torch.cat([self._state["v"], v], dim=2)
            k_pos = torch.arange(offset + t - k.shape[2], offset + t, device=x.device)
            keep = k.shape[2] if self.context is None else min(k.shape[2], self.context)
            self._state.update(k=k[:, :, -keep:], v=v[:, :, -keep:], offset=offset + t)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self._mask(q_pos, k_pos))
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class TransformerLayer(nn.Module):
    """Pre-norm block: ``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))``. ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        d = cfg.d_model
        norm = (lambda: nn.LayerNorm(d, eps=1e-5)) if cfg.norm == "layer_norm" else (lambda: RMSNorm(d))
        self.self_attn = SelfAttention(cfg)
        self.norm1, self.norm2 = norm(), norm()
        self.linear1 = nn.Linear(d, cfg.dim_feedforward, bias=False)
        self.linear2 = nn.Linear(cfg.dim_feedforward, d, bias=False)
        ls = cfg.layer_scale
        self.layer_scale_1 = LayerScale(d, ls) if ls is not None else nn.Identity()
        self.layer_scale_2 = LayerScale(d, ls) if ls is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale_1(self.self_attn(self.norm1(x)))
        return x + self.layer_scale_2(self.linear2(F.gelu(self.linear1(self.norm2(x)))))


class Transformer(nn.Module):
    """A stack of :class:`TransformerLayer`. ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([TransformerLayer(cfg) for _ in range(cfg.num_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ProjectedTransformer(nn.Module):
    """Conv-layout wrapper: ``[B, dimension, F] -> [B, dimension, F]``, projecting to ``d_model`` when they differ.

    With ``num_layers == 0`` it is the identity (no parameters).
    """

    def __init__(self, cfg: TransformerConfig, dimension: int) -> None:
        super().__init__()
        self.enabled = cfg.num_layers > 0
        self.transformer = Transformer(cfg) if self.enabled else None
        self.input_proj = None
        self.output_projs = None
        if self.enabled and cfg.d_model != dimension:
            self.input_proj = nn.Linear(dimension, cfg.d_model, bias=False)
            self.output_projs = nn.ModuleList([nn.Linear(cfg.d_model, dimension, bias=False)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z ``[B, D, F]`` → ``[B, D, F]``."""
        if not self.enabled:
            return z
        x = z.transpose(1, 2)
        if self.input_proj is not None:
            x = self.input_proj(x)
        x = self.transformer(x)
        if self.output_projs is not None:
            x = self.output_projs[0](x)
        return x.transpose(1, 2)
