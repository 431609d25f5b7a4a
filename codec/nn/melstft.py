"""The CPU-cheap codec ends: a log-mel encoder and a Vocos-like iSTFT decoder, both causal and streamable.

Both share a causal ConvNeXt block (depthwise causal conv → LayerNorm → MLP → layer scale → residual).

iSTFT arithmetic: STFT frame ``n`` is placed at output samples ``[n * stft_hop, n * stft_hop + n_fft)``; output
sample ``t`` therefore depends only on frames ``<= t / stft_hop`` (causal, no look-ahead). Offline the trailing
``n_fft - stft_hop`` partial sums are dropped; streaming keeps them and adds them to the next chunk — the same
numbers either way.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from codec.config import IstftDecoderConfig, MelEncoderConfig, TransformerConfig
from codec.nn.conv import StreamingConv1d, StreamingConvTranspose1d
from codec.nn.streaming import StreamingModule
from codec.nn.transformer import ProjectedTransformer


class ConvNeXtBlock(nn.Module):
    """Causal ConvNeXt block. ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, intermediate: int, kernel_size: int, layer_scale: float = 1e-2) -> None:
        super().__init__()
        self.dwconv = StreamingConv1d(channels, channels, kernel_size, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, intermediate)
        self.pwconv2 = nn.Linear(intermediate, channels)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)  # [B, T, C]
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y)))) * self.gamma
        return x + y.transpose(1, 2)


class MelEncoder(nn.Module):
    """Waveform → latent frames via causal log-mel. ``[B, 1, T] -> [B, dimension, T / hop]`` (T a multiple of hop)."""

    def __init__(self, cfg: MelEncoderConfig, sample_rate: int, dimension: int) -> None:
        super().__init__()
        self.cfg = cfg
        # center=False plus n_fft - mel_hop zeros on the left: mel frame k ends at sample (k + 1) * mel_hop.
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=cfg.n_fft, hop_length=cfg.mel_hop, n_mels=cfg.n_mels, center=False, power=1.0
        )
        c = cfg.channels
        self.conv_in = StreamingConv1d(cfg.n_mels, c, cfg.kernel_size)
        stages = []
        for stride in cfg.strides:
            blocks = [ConvNeXtBlock(c, 3 * c, cfg.kernel_size) for _ in range(cfg.blocks_per_stage)]
            stages.append(nn.Sequential(*blocks, StreamingConv1d(c, c, 2 * stride, stride=stride)))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.proj = nn.Linear(c, dimension)

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """wav ``[B, 1, T]`` → causal log-mel ``[B, n_mels, T / mel_hop]``."""
        x = F.pad(wav[:, 0], (self.cfg.n_fft - self.cfg.mel_hop, 0))
        return torch.log(self.mel(x).clamp_min(1e-5))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav ``[B, 1, T]`` → latent ``[B, D, F]``."""
        x = self.stages(self.conv_in(self.log_mel(wav)))
        return self.proj(self.norm(x.transpose(1, 2))).transpose(1, 2)


class CausalISTFT(StreamingModule):
    """Overlap-add inverse STFT with a Hann synthesis window. spec ``[B, n_fft/2+1, N]`` complex → ``[B, N*hop]``."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # Steady-state sum of overlapping windows; dividing by it keeps the output scale independent of overlap.
        self.scale = float(n_fft / (2 * hop))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=1) * self.window[None, :, None]  # [B, n_fft, N]
        n = frames.shape[-1]
        length = (n - 1) * self.hop + self.n_fft
        y = F.fold(frames, output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop))[:, 0, 0]
        y = y / self.scale
        if self.is_streaming:
            partial = self._state.get("partial")
            if partial is not None:
                y[:, : partial.shape[-1]] += partial
            self._state["partial"] = y[:, n * self.hop :]
        return y[:, : n * self.hop]


class IstftDecoder(nn.Module):
    """Latent frames → waveform. ``[B, dimension, F] -> [B, 1, F * hop]``; streams frame by frame."""

    def __init__(
        self, cfg: IstftDecoderConfig, hop_length: int, dimension: int, transformer: TransformerConfig | None = None
    ) -> None:
        """``transformer``: settings of the optional Transformer at the STFT frame rate (``cfg.transformer_layers``
        layers of it, at width ``cfg.channels``)."""
        super().__init__()
        self.cfg = cfg
        up = hop_length // cfg.stft_hop
        c = cfg.channels
        # Kernel 2*up: each STFT frame mixes its codec frame with the previous one (smooth, still causal).
        self.upsample = StreamingConvTranspose1d(dimension, c, 2 * up, stride=up)
        self.transformer = None
        if cfg.transformer_layers:
            t = transformer or TransformerConfig()
            t = dataclasses.replace(t, num_layers=cfg.transformer_layers, d_model=c)
            self.transformer = ProjectedTransformer(t, c)
        self.blocks = nn.Sequential(
            *[ConvNeXtBlock(c, cfg.intermediate, cfg.kernel_size) for _ in range(cfg.num_blocks)]
        )
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.n_bins = cfg.n_fft // 2 + 1
        self.head = nn.Linear(c, 2 * self.n_bins)
        self.istft = CausalISTFT(cfg.n_fft, cfg.stft_hop)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """latent ``[B, D, F]`` → wav ``[B, 1, F * hop]``."""
        x = self.upsample(z)
        if self.transformer is not None:
            x = self.transformer(x)
        x = self.blocks(x)
        h = self.head(self.norm(x.transpose(1, 2))).transpose(1, 2)  # [B, 2 * n_bins, N]
        log_mag, phase = h.split(self.n_bins, dim=1)
        # exp with a clamp: magnitudes span decades, and an unbounded exp can overflow early in training.
        mag = torch.exp(log_mag.clamp(max=math.log(1e2)))
        spec = torch.polar(mag, phase)
        return self.istft(spec)[:, None]
