"""Discriminators for codec training: multi-period (HiFi-GAN) and multi-resolution STFT (EnCodec/Vocos style).

Each sub-discriminator returns its logits and its intermediate feature maps (for the feature-matching loss).
Widths are configurable because on CPU the discriminators can cost more than the generator; the defaults in
``configs/codec/train_cpu.yaml`` are deliberately narrow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from codec.train_config import DiscriminatorConfig

DiscOutput = tuple[list[torch.Tensor], list[list[torch.Tensor]]]  # logits per sub-disc, feature maps per sub-disc


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Leaky-ReLU conv stack + logit conv: returns flattened logits ``[B, N]`` and every layer's output."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        feats.append(x)
    x = post(x)
    feats.append(x)
    return x.flatten(1), feats


class PeriodDiscriminator(nn.Module):
    """Folds ``[B, 1, T]`` into ``[B, 1, T / p, p]`` and applies 2-D convs along time."""

    def __init__(self, period: int, channels: int, max_channels: int) -> None:
        super().__init__()
        self.period = period
        chans = [1] + [min(channels * 4**i, max_channels) for i in range(4)]
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(chans[i], chans[i + 1], (5, 1), stride=(3, 1), padding=(2, 0)))
                for i in range(len(chans) - 1)
            ]
        )
        self.convs.append(weight_norm(nn.Conv2d(chans[-1], chans[-1], (5, 1), padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = wav.shape
        if t % self.period:
            wav = F.pad(wav, (0, self.period - t % self.period), mode="reflect")
        x = wav.view(b, c, -1, self.period)
        return _conv_stack(self.convs, self.post, x)


class STFTDiscriminator(nn.Module):
    """1-D convs over time with the compressed complex STFT bins as channels, at one resolution.

    Treating frequency as channels (rather than 2-D convs over the spectrogram) keeps this ~10x cheaper on CPU
    while still judging the fine spectral structure at that resolution.
    """

    def __init__(self, n_fft: int, channels: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        c, bins = channels, n_fft // 2 + 1
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv1d(2 * bins, c, 7, padding=3)),
                weight_norm(nn.Conv1d(c, c, 5, stride=2, padding=2)),
                weight_norm(nn.Conv1d(c, c, 5, stride=2, padding=2)),
                weight_norm(nn.Conv1d(c, c, 3, padding=1)),
            ]
        )
        self.post = weight_norm(nn.Conv1d(c, 1, 3, padding=1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(
            wav[:, 0], self.n_fft, hop_length=self.n_fft // 4, window=self.window, return_complex=True
        )  # [B, n_fft/2+1, N]
        # Power-law compression of the magnitude (phase kept): loud bins would otherwise dominate the first layer.
        spec = spec * spec.abs().clamp_min(1e-5).pow(-0.7)
        x = torch.cat([spec.real, spec.imag], dim=1)  # [B, 2 * bins, N]
        return _conv_stack(self.convs, self.post, x)


class Discriminators(nn.Module):
    """All sub-discriminators. ``wav [B, 1, T]`` → (logits list, feature-map lists)."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.subs = nn.ModuleList(
            [PeriodDiscriminator(p, cfg.mpd_channels, cfg.mpd_max_channels) for p in cfg.periods]
            + [STFTDiscriminator(n, cfg.stft_channels) for n in cfg.stft_ffts]
        )

    def forward(self, wav: torch.Tensor) -> DiscOutput:
        logits, feats = [], []
        for d in self.subs:
            lg, ft = d(wav)
            logits.append(lg)
            feats.append(ft)
        return logits, feats
