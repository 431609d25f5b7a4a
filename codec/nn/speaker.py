"""A global voice vector for the decoder, pooled from reference codes.

A TTS that predicts only the first (content) levels well leaves the voice to the decoder; without help the decoder
of those levels speaks in one average voice. :class:`SpeakerConditioner` pools the dequantized latent of a
reference's codes at full depth (another utterance of the same voice in training, the voice prompt at inference)
over time, mean and standard deviation, and maps it to one vector that is added to every frame of the decoder's
input. A global pool of a different utterance carries the voice and almost nothing of the words, so the decoder
learns to take only the voice from it.

The output layer starts at zero: a warm start from a decoder without conditioning is exactly that decoder.
"""

from __future__ import annotations

import torch
from torch import nn


class SpeakerConditioner(nn.Module):
    """Reference latent ``[B, D, Fr]`` → voice vector ``[B, D, 1]`` (added to the decoder input ``[B, D, F]``).

    Args:
        dimension: latent width ``D``.
        hidden: width of the MLP between the pooled statistics ``[B, 2D]`` and the vector.
    """

    def __init__(self, dimension: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * dimension, hidden), nn.GELU(), nn.Linear(hidden, dimension))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, reference: torch.Tensor) -> torch.Tensor:
        """reference ``[B, D, Fr]`` (``Fr >= 1``) → ``[B, D, 1]``."""
        mean = reference.mean(dim=-1)
        std = reference.var(dim=-1, unbiased=False).clamp_min(1e-8).sqrt()
        return self.net(torch.cat([mean, std], dim=-1)).unsqueeze(-1)
