"""A small causal Transformer with a preallocated (static) KV cache, used by both the global and the local model.

Architecture = Llama's (pre-norm RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU, no biases), so a
Llama checkpoint maps onto it by renaming and concatenating tensors (:mod:`tts.llama`). Two paths share the weights:

- ``forward(x)``: the training path, a whole right-padded sequence with a causal mask (padding comes after the
  real tokens, so causality alone keeps it out of every real position).
- ``forward(x, cache=..., start=...)``: the inference path. Keys/values of the new positions are written into the
  cache at ``start`` and the queries attend to cache entries ``[0, start + S)`` that ``cache.valid`` marks as real
  (left padding of a batch is invalid). Prefill is the same call with ``start = 0``.

Positions for RoPE are passed per sequence (``[B, S]``), so a left-padded batch item sees exactly the rotations it
would see alone, which is what makes batched generation equal per-item generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tts.config import TransformerConfig


@dataclass
class KVCache:
    """Preallocated keys/values of every layer plus which cache slots hold real (non-padding) tokens.

    Attributes:
        keys: per layer ``[B, Hkv, S_max, Dh]``.
        values: per layer ``[B, Hkv, S_max, Dh]``.
        valid: ``[B, S_max]`` bool, False for left padding (and for slots not written yet).
        padded: whether any written slot is padding. Known on the host when the batch is built, so no step has
            to look at ``valid`` to decide whether it needs a mask (that would be a device-to-host sync).
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    valid: torch.Tensor
    padded: bool = False

    @classmethod
    def allocate(
        cls,
        cfg: TransformerConfig,
        batch: int,
        length: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        padded: bool = False,
    ) -> KVCache:
        shape = (batch, cfg.kv_heads, length, cfg.head_dim)
        return cls(
            keys=[torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.num_layers)],
            values=[torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.num_layers)],
            valid=torch.zeros(batch, length, dtype=torch.bool, device=device),
            padded=padded,
        )

    @property
    def capacity(self) -> int:
        return self.valid.shape[1]


def rope_tables(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin ``[B, 1, S, Dh]`` for integer ``positions [B, S]`` (rotate-half layout, as Llama)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    angles = positions.to(torch.float32)[..., None] * inv_freq  # [B, S, Dh/2]
    angles = torch.cat([angles, angles], dim=-1)[:, None]  # [B, 1, S, Dh]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [B, H, S, Dh]``: ``x * cos + rotate_half(x) * sin``."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class Attention(nn.Module):
    """Causal grouped-query self-attention with a fused QKV projection. ``[B, S, D] -> [B, S, D]``.

    Sub-modules are applied through their weights (``F.linear``) rather than called: the decode path runs this
    ~60 times per 5 Hz frame on tiny tensors, where module-call overhead is a visible share of the time.
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.num_heads, self.kv_heads, self.head_dim = cfg.num_heads, cfg.kv_heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, (cfg.num_heads + 2 * cfg.kv_heads) * cfg.head_dim, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def heads(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries ``[B, H, S, Dh]``, keys and values ``[B, Hkv, S, Dh]`` of ``x [B, S, D]``, RoPE applied."""
        b, s, _ = x.shape
        h, hkv, dh = self.num_heads, self.kv_heads, self.head_dim
        q, k, v = F.linear(x, self.qkv.weight).view(b, s, h + 2 * hkv, dh).transpose(1, 2).split([h, hkv, hkv], 1)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return q, k, v

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        mask: torch.Tensor | None,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        """Args:
        x: ``[B, S, D]``.
        rope: cos/sin ``[B, 1, S, Dh]``, or None (no rotation: the local model has learned positions).
        mask: bool ``[B, 1, S, K]`` (True = attend), or None for plain causal attention over ``K = S`` keys.
        cache: this layer's key/value buffers ``[B, Hkv, S_max, Dh]``, written at ``[start, start + S)``; the
            queries then attend to the first ``K = start + S`` slots.
        """
        b, s, _ = x.shape
        h, hkv, dh = self.num_heads, self.kv_heads, self.head_dim
        q, k, v = self.heads(x, rope)
        if cache is not None:
            k_cache, v_cache = cache
            k_cache[:, :, start : start + s] = k
            v_cache[:, :, start : start + s] = v
            k, v = k_cache[:, :, : start + s], v_cache[:, :, : start + s]
        gqa = hkv != h  # each key/value head serves h // hkv query heads
        if mask is None and cache is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=s > 1, enable_gqa=gqa)
        elif mask is None and s == 1:
            out = F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)  # one new query sees every cached key
        else:
            assert mask is not None, "a multi-token step into a cache needs an explicit mask"
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        return F.linear(out.transpose(1, 2).reshape(b, s, h * dh), self.out.weight)


def make_norm(cfg: TransformerConfig) -> nn.Module:
    """RMSNorm (Llama) or a bias-free LayerNorm. Both have one gain vector ``weight [D]``."""
    if cfg.norm == "rms_norm":
        return nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
    return nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=False)


def apply_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` without the module-call overhead."""
    if isinstance(norm, nn.RMSNorm):
        return F.rms_norm(x, norm.normalized_shape, norm.weight, norm.eps)
    return F.layer_norm(x, norm.normalized_shape, norm.weight, None, norm.eps)


class Block(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))`` with a SwiGLU MLP."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn_norm = make_norm(cfg)
        self.attn = Attention(cfg)
        self.mlp_norm = make_norm(cfg)
        self.gate_up = nn.Linear(cfg.d_model, 2 * cfg.dim_feedforward, bias=False)  # fused gate and up projections
        self.down = nn.Linear(cfg.dim_feedforward, cfg.d_model, bias=False)
        self.dropout = cfg.dropout

    def forward(self, x, rope, mask, cache=None, start: int = 0) -> torch.Tensor:
        y = self.attn(apply_norm(self.attn_norm, x), rope, mask, cache, start)
        x = x + (F.dropout(y, self.dropout) if self.training and self.dropout else y)
        gate, up = F.linear(apply_norm(self.mlp_norm, x), self.gate_up.weight).chunk(2, dim=-1)
        y = F.linear(F.silu(gate) * up, self.down.weight)
        return x + (F.dropout(y, self.dropout) if self.training and self.dropout else y)


class Transformer(nn.Module):
    """A stack of :class:`Block` plus a final RMSNorm. ``[B, S, D] -> [B, S, D]``.

    Args:
        cfg: widths and depth.
        rope: rotate queries/keys by position (global model); False for models with learned positions.
    """

    def __init__(self, cfg: TransformerConfig, rope: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.use_rope = rope
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])
        self.norm = make_norm(cfg)
        self.apply(_init_weights)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
        start: int = 0,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the stack.

        Args:
            x: ``[B, S, D]`` input embeddings.
            positions: ``[B, S]`` RoPE positions (default ``0..S-1``; ignored without RoPE).
            cache: inference path: write the new keys/values at ``[start, start + S)`` and attend to the cache.
            start: first cache slot of ``x``.
            valid: ``[B, S]`` bool, which of the new positions are real (False = left padding); recorded in the
                cache. Default: all real. A cache that receives padding must be allocated with ``padded=True``.

        Returns:
            ``[B, S, D]`` normalised hidden states.
        """
        b, s, _ = x.shape
        rope = None
        if self.use_rope:
            if positions is None:
                positions = torch.arange(start, start + s, device=x.device).expand(b, s)
            rope = rope_tables(positions, self.cfg.head_dim, self.cfg.rope_theta)
        mask = None
        if cache is not None:
            if cache.padded:  # an unpadded cache never reads `valid`, so its steps skip the write
                cache.valid[:, start : start + s] = True if valid is None else valid
            elif valid is not None:
                raise ValueError("a cache that receives padding must be allocated with padded=True")
            if cache.padded or s > 1:
                mask = self._cache_mask(cache.valid[:, : start + s] if cache.padded else None, start, s, x.device)
        for i, layer in enumerate(self.layers):
            kv = (cache.keys[i], cache.values[i]) if cache is not None else None
            x = layer(x, rope, mask, kv, start)
        return apply_norm(self.norm, x)

    @staticmethod
    def _cache_mask(valid: torch.Tensor | None, start: int, s: int, device: torch.device) -> torch.Tensor:
        """``[B or 1, 1, S, start + S]``: causal, real keys only (``valid [B, start + S]``, None = all real), and
        every query sees itself (a padding query must not have an empty row, whose softmax would be NaN and would
        leak NaN into the cache)."""
        k = start + s
        q_idx = torch.arange(start, k, device=device)[:, None]
        k_idx = torch.arange(k, device=device)[None, :]
        causal = k_idx <= q_idx  # [S, K]
        if valid is None:
            return causal[None, None]
        return ((causal & valid[:, None, :]) | (k_idx == q_idx))[:, None]


def _init_weights(module: nn.Module) -> None:
    """GPT-2 style init: small normal weights keep the untrained logits near uniform."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)


class StepDecoder:
    """The one-position-per-sequence decode path of a :class:`Transformer` over a :class:`KVCache`.

    Same math as ``Transformer.forward(x, cache=..., start=...)`` with ``S = 1`` (tested), in about half the ops:
    activations stay 2-D ``[B, D]``, the transposed weight views are made once here instead of once per call, and
    the residual additions are fused into ``addmm``. Generation runs this ~33 times per 5 Hz frame on tiny tensors,
    where per-op overhead is a large share of the time.

    Args:
        model: the Transformer (its weights are read at every step, so training updates are seen).
        cache: where keys/values are written.
    """

    def __init__(self, model: Transformer, cache: KVCache) -> None:
        self.cfg, self.cache, self.use_rope = model.cfg, cache, model.use_rope
        self.layers = [
            (
                b.attn_norm,
                b.attn.qkv.weight.t(),
                b.attn.out.weight.t(),
                b.mlp_norm,
                b.gate_up.weight.t(),
                b.down.weight.t(),
            )
            for b in model.layers
        ]
        self.final_norm = model.norm

    def step(self, x: torch.Tensor, start: int, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Feed ``x [B, D]`` at cache slot ``start`` (RoPE ``positions [B]``, default ``start``) → ``[B, D]``."""
        cfg, cache = self.cfg, self.cache
        b = x.shape[0]
        h, hkv, dh = cfg.num_heads, cfg.kv_heads, cfg.head_dim
        rope = None
        if self.use_rope:
            if positions is None:
                positions = torch.full((b,), start, device=x.device)
            rope = rope_tables(positions[:, None], dh, cfg.rope_theta)  # [B, 1, 1, Dh]
        mask = None
        if cache.padded:
            cache.valid[:, start] = True
            mask = cache.valid[:, None, None, : start + 1]
        for i, (attn_norm, w_qkv, w_out, mlp_norm, w_gate_up, w_down) in enumerate(self.layers):
            q, k, v = torch.mm(apply_norm(attn_norm, x), w_qkv).view(b, h + 2 * hkv, 1, dh).split([h, hkv, hkv], 1)
            if rope is not None:
                q, k = apply_rope(q, *rope), apply_rope(k, *rope)
            keys, values = cache.keys[i], cache.values[i]
            keys[:, :, start : start + 1] = k
            values[:, :, start : start + 1] = v
            out = F.scaled_dot_product_attention(
                q, keys[:, :, : start + 1], values[:, :, : start + 1], attn_mask=mask, enable_gqa=hkv != h
            )
            x = torch.addmm(x, out.reshape(b, h * dh), w_out)
            gate, up = torch.mm(apply_norm(mlp_norm, x), w_gate_up).chunk(2, dim=-1)
            x = torch.addmm(x, F.silu(gate) * up, w_down)
        return apply_norm(self.final_norm, x)
