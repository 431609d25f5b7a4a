"""Codec training losses: multi-resolution mel L1, adversarial (hinge or LSGAN) and feature matching."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn


class MultiResolutionMelLoss(nn.Module):
    """Mean over resolutions of L1 between log-mel spectrograms. ``[B, 1, T]`` x2 → scalar.

    Args:
        sample_rate: audio rate.
        n_ffts: STFT sizes, one mel transform each (window = n_fft, hop = n_fft / 4).
        n_mels: mel bands per resolution (same length as ``n_ffts``).
    """

    def __init__(self, sample_rate: int, n_ffts: tuple[int, ...], n_mels: tuple[int, ...]) -> None:
        super().__init__()
        if len(n_ffts) != len(n_mels):
            raise ValueError(f"mel loss: {len(n_ffts)} n_ffts but {len(n_mels)} n_mels")
        self.mels = nn.ModuleList(
            [
                torchaudio.transforms.MelSpectrogram(
                    sample_rate=sample_rate, n_fft=n, hop_length=n // 4, n_mels=m, power=1.0, center=True
                )
                for n, m in zip(n_ffts, n_mels, strict=True)
            ]
        )

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        loss = fake.new_zeros(())
        for mel in self.mels:
            a = torch.log(mel(fake[:, 0].float()).clamp_min(1e-5))
            b = torch.log(mel(real[:, 0].float()).clamp_min(1e-5))
            loss = loss + F.l1_loss(a, b)
        return loss / len(self.mels)


def generator_adv_loss(fake_logits: list[torch.Tensor], kind: str) -> torch.Tensor:
    """Adversarial loss of the generator, averaged over sub-discriminators."""
    if kind == "hinge":
        losses = [F.relu(1 - lg).mean() for lg in fake_logits]
    else:  # lsgan
        losses = [(1 - lg).pow(2).mean() for lg in fake_logits]
    return torch.stack(losses).mean()


def discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor], kind: str) -> torch.Tensor:
    """Discriminator loss (real → 1, fake → 0 / -1), averaged over sub-discriminators."""
    losses = []
    for r, f in zip(real_logits, fake_logits, strict=True):
        if kind == "hinge":
            losses.append(F.relu(1 - r).mean() + F.relu(1 + f).mean())
        else:
            losses.append((1 - r).pow(2).mean() + f.pow(2).mean())
    return torch.stack(losses).mean()


def feature_matching_loss(real_feats: list[list[torch.Tensor]], fake_feats: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean relative L1 between discriminator feature maps of real (detached) and fake audio."""
    losses = []
    for rs, fs in zip(real_feats, fake_feats, strict=True):
        for r, f in zip(rs, fs, strict=True):
            r = r.detach()
            losses.append(F.l1_loss(f, r) / r.abs().mean().clamp_min(1e-5))
    return torch.stack(losses).mean()
