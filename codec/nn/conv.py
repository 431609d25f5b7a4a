"""Causal 1-D convolutions that stream: the building blocks of SEANet, the mel encoder and the iSTFT decoder.

Padding arithmetic (why the numbers are what they are):

* A conv with kernel ``k``, dilation ``d`` and stride ``s`` has an effective kernel ``k_eff = (k - 1) * d + 1``. To be
  causal, output ``i`` may only see inputs ``<= i * s + s - 1``; padding ``k_eff - s`` zeros on the left achieves
  that, and ``T`` inputs (a multiple of ``s``) then give exactly ``T / s`` outputs.
* When ``T`` is not a multiple of ``s``, extra zeros go on the right so the last partial window still yields an
  output (the codec pads its input to a multiple of the hop anyway, so this only matters for direct use).
* A transposed conv with kernel ``k`` and stride ``s`` produces ``(T - 1) * s + k`` samples; the last ``k - s`` only
  hold partial sums that the *next* input would complete. Causal mode drops them offline, and streaming mode keeps
  them as state and adds them to the next chunk, so both give ``T * s`` samples with identical values.

Parameter names follow the authors' checkpoints (``conv.conv.weight``, ``convtr.convtr.weight``) so that converting
their weights is a rename.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from codec.nn.streaming import StreamingModule


def _maybe_weight_norm(module: nn.Module, norm: str) -> nn.Module:
    if norm == "weight_norm":
        return weight_norm(module)
    if norm != "none":
        raise ValueError(f"unknown norm {norm!r}; allowed: 'weight_norm', 'none'")
    return module


class NormConv1d(nn.Module):
    """``nn.Conv1d`` with optional weight norm, stored as ``.conv`` (checkpoint naming)."""

    def __init__(self, *args, norm: str = "none", **kwargs) -> None:
        super().__init__()
        self.conv = _maybe_weight_norm(nn.Conv1d(*args, **kwargs), norm)


class NormConvTranspose1d(nn.Module):
    """``nn.ConvTranspose1d`` with optional weight norm, stored as ``.convtr`` (checkpoint naming)."""

    def __init__(self, *args, norm: str = "none", **kwargs) -> None:
        super().__init__()
        self.convtr = _maybe_weight_norm(nn.ConvTranspose1d(*args, **kwargs), norm)


class StreamingConv1d(StreamingModule):
    """Causal (or centred) Conv1d. ``[B, C_in, T] -> [B, C_out, ceil(T / stride)]``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        causal: bool = True,
        norm: str = "none",
    ) -> None:
        super().__init__()
        self.conv = NormConv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            dilation=dilation,
            groups=groups,
            bias=bias,
            norm=norm,
        )
        self.causal = causal
        self.stride = stride
        self.kernel_eff = (kernel_size - 1) * dilation + 1
        self.pad_total = self.kernel_eff - stride

    def _extra_right(self, length: int) -> int:
        # Zeros needed on the right so that the last (partial) stride window still produces an output.
        n_frames = (length - self.kernel_eff + self.pad_total) / self.stride + 1
        ideal = (math.ceil(n_frames) - 1) * self.stride + (self.kernel_eff - self.pad_total)
        return max(0, ideal - length)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        # Run as a 2-D conv over a singleton height: on CPU, oneDNN's 1-D path is 1.3-1.6x slower for dense convs
        # and ~12x slower for depthwise ones (measured fwd+bwd, torch 2.14, 2 threads). Same weights, same result.
        c = self.conv.conv
        y = F.conv2d(
            x.unsqueeze(2),
            c.weight.unsqueeze(2),
            c.bias,
            stride=(1, c.stride[0]),
            dilation=(1, c.dilation[0]),
            groups=c.groups,
        )
        return y.squeeze(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, C_in, T]`` → ``[B, C_out, T']``; in streaming mode ``T`` may be any chunk length."""
        if self.is_streaming:
            return self._forward_stream(x)
        extra = self._extra_right(x.shape[-1])
        if self.causal:
            x = F.pad(x, (self.pad_total, extra))
        else:
            right = self.pad_total // 2
            x = F.pad(x, (self.pad_total - right, right + extra))
        return self._conv(x)

    def _forward_stream(self, x: torch.Tensor) -> torch.Tensor:
        assert self.causal, "only causal convolutions can stream"
        state = self._state
        prev = state.get("prev")
        if prev is None:  # the offline left padding, as the initial history
            prev = x.new_zeros(x.shape[0], x.shape[1], self.pad_total)
        buf = torch.cat([prev, x], dim=-1)
        n_out = (buf.shape[-1] - self.kernel_eff) // self.stride + 1 if buf.shape[-1] >= self.kernel_eff else 0
        if n_out <= 0:
            state["prev"] = buf
            return x.new_zeros(x.shape[0], self.conv.conv.out_channels, 0)
        used = n_out * self.stride
        out = self._conv(buf[..., : used + self.kernel_eff - self.stride])
        state["prev"] = buf[..., used:]
        return out


class StreamingConvTranspose1d(StreamingModule):
    """Causal ConvTranspose1d. ``[B, C_in, T] -> [B, C_out, T * stride]``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        causal: bool = True,
        norm: str = "none",
    ) -> None:
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"transposed conv kernel {kernel_size} must be >= stride {stride}")
        self.convtr = NormConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride, norm=norm)
        self.causal = causal
        self.stride = stride
        self.trim = kernel_size - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, C_in, T]`` → ``[B, C_out, T * stride]``."""
        if self.is_streaming:
            return self._forward_stream(x)
        y = self.convtr.convtr(x)
        if self.causal:
            return y[..., : y.shape[-1] - self.trim]
        right = self.trim // 2
        return y[..., self.trim - right : y.shape[-1] - right]

    def _forward_stream(self, x: torch.Tensor) -> torch.Tensor:
        assert self.causal, "only causal transposed convolutions can stream"
        mod = self.convtr.convtr
        # Bias is added once to the emitted samples; the carried partial sums must not hold it twice.
        y = F.conv_transpose1d(x, mod.weight, None, stride=self.stride)
        partial = self._state.get("partial")
        if partial is not None:
            y[..., : partial.shape[-1]] += partial
        n = x.shape[-1] * self.stride
        self._state["partial"] = y[..., n:]
        out = y[..., :n]
        if mod.bias is not None:
            out = out + mod.bias[:, None]
        return out
