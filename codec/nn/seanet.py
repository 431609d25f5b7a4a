"""SEANet convolutional encoder and decoder (the paper's front and back end), causal and streamable.

The module layout mirrors the authors' checkpoints index for index (``model.{i}``), so their tensors map onto ours
by name. With S stages and R residual blocks per stage:

* encoder: ``0`` stem conv; stage s: residual blocks at ``1 + s(R+2) + j``, ELU, strided conv at ``(s+1)(R+2)``
  (strides are ``ratios`` reversed); ELU; final conv to ``dimension`` at ``S(R+2) + 2``.
* decoder: ``0`` conv from ``dimension``; stage s: ELU, transposed conv at ``2 + s(R+2)``, residual blocks at
  ``3 + s(R+2) + j``; ELU; final conv to one channel at ``S(R+2) + 2``.
"""

from __future__ import annotations

import torch
from torch import nn

from codec.config import SeanetConfig
from codec.nn.conv import StreamingConv1d, StreamingConvTranspose1d


class SeanetResBlock(nn.Module):
    """Bottleneck residual block with identity skip. ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, compress: int, causal: bool, norm: str) -> None:
        super().__init__()
        hidden = channels // compress
        self.block = nn.Sequential(
            nn.ELU(),
            StreamingConv1d(channels, hidden, kernel_size, dilation=dilation, causal=causal, norm=norm),
            nn.ELU(),
            StreamingConv1d(hidden, channels, 1, causal=causal, norm=norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class SeanetEncoder(nn.Module):
    """Waveform → latent frames. ``[B, 1, T] -> [B, dimension, T / prod(ratios)]`` (T a multiple of the hop)."""

    def __init__(self, cfg: SeanetConfig, dimension: int, causal: bool = True, norm: str = "none") -> None:
        super().__init__()
        layers: list[nn.Module] = [StreamingConv1d(1, cfg.n_filters, cfg.kernel_size, causal=causal, norm=norm)]
        channels = cfg.n_filters
        for ratio in reversed(cfg.ratios):
            for j in range(cfg.n_residual_layers):
                layers.append(
                    SeanetResBlock(channels, cfg.residual_kernel_size, cfg.dilation_base**j, cfg.compress, causal, norm)
                )
            layers += [
                nn.ELU(),
                StreamingConv1d(channels, channels * 2, 2 * ratio, stride=ratio, causal=causal, norm=norm),
            ]
            channels *= 2
        layers += [nn.ELU(), StreamingConv1d(channels, dimension, cfg.last_kernel_size, causal=causal, norm=norm)]
        self.model = nn.Sequential(*layers)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav ``[B, 1, T]`` → latent ``[B, D, F]``."""
        return self.model(wav)


class SeanetDecoder(nn.Module):
    """Latent frames → waveform. ``[B, dimension, F] -> [B, 1, F * prod(ratios)]``; streams frame by frame."""

    def __init__(self, cfg: SeanetConfig, dimension: int, causal: bool = True, norm: str = "none") -> None:
        super().__init__()
        channels = cfg.n_filters * 2 ** len(cfg.ratios)
        layers: list[nn.Module] = [StreamingConv1d(dimension, channels, cfg.kernel_size, causal=causal, norm=norm)]
        for ratio in cfg.ratios:
            layers += [
                nn.ELU(),
                StreamingConvTranspose1d(channels, channels // 2, 2 * ratio, stride=ratio, causal=causal, norm=norm),
            ]
            channels //= 2
            for j in range(cfg.n_residual_layers):
                layers.append(
                    SeanetResBlock(channels, cfg.residual_kernel_size, cfg.dilation_base**j, cfg.compress, causal, norm)
                )
        layers += [nn.ELU(), StreamingConv1d(channels, 1, cfg.last_kernel_size, causal=causal, norm=norm)]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """latent ``[B, D, F]`` → wav ``[B, 1, F * hop]``."""
        return self.model(z)
