"""Phonetic input for the first quantizer stack: X-Codec's idea with a teacher of our own.

Content losses on the first levels (sessions 9–13, ``docs/codec_training.md``) ask the codec's encoder to learn
phoneme recognition from 2 s crops through a 5 Hz bottleneck, and it barely does: the decoder-free probe read levels
1–4 at 70–74 % PER whatever the loss. X-Codec instead *feeds* a recognizer's features to the quantizer, so the
content is there to be quantized from step 0. Here the recognizer is ``models/phone-aligner`` (a 1.6 M-parameter
CTC phoneme model trained here), frozen inside the codec, and the first ``quantizer.split_levels`` levels quantize a
projection of its output instead of the acoustic latent: the levels hold what it heard (phonemes, their order and
coarse timing) and nothing of the voice, which the second stack carries.

Shapes: wav ``[B, 1, F * hop]`` → CTC log-probabilities ``[B, F * s, V + 1]`` (``s`` = emissions per frame, 10 at
5 Hz; floored at -10; or the posteriors, ``content.phone_features``) → stacked per frame ``[B, F, s * (V + 1)]`` →
LayerNorm → linear → ``[B, D, F]``. Stacking keeps the order of the phones inside a 200 ms frame, which average
pooling would lose. The recognizer reads the whole input at once (non-causal), so a codec with phone input encodes
whole files only (:func:`codec.chunked_encode.can_stream`).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from codec.content.phone_model import PhoneModel, PhoneModelConfig, load_phone_model

LOG_FLOOR = -10.0  # log-probabilities below this carry no information the projection needs


class PhoneInput(nn.Module):
    """Frozen phoneme recognizer + trainable per-frame projection: wav ``[B, 1, T]`` → ``[B, D, T / hop]``."""

    def __init__(
        self, symbols: tuple[str, ...], dim: int, hop_length: int, sample_rate: int, features: str = "log_probs"
    ) -> None:
        super().__init__()
        self.features = features
        self.recognizer = PhoneModel(PhoneModelConfig(symbols=symbols, sample_rate=sample_rate))
        step = self.recognizer.cfg.mel_hop * 2  # samples per emission
        if hop_length % step:
            raise ValueError(f"phone input needs a hop ({hop_length}) that is a multiple of {step} samples")
        self.hop_length = hop_length
        self.per_frame = hop_length // step
        width = self.per_frame * (len(symbols) + 1)
        # normalised first: CTC log-probabilities are mostly a shared blank pattern, and the raw projection came out
        # ~200 times smaller than the latent the other stack reads (its codes collapsed in the first A/B)
        self.proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))
        self.recognizer.requires_grad_(False)
        self.recognizer.eval()

    def train(self, mode: bool = True) -> PhoneInput:
        """Only the projection trains; the recognizer stays in eval mode (no dropout) whatever ``mode`` says."""
        super().train(mode)
        self.recognizer.eval()
        return self

    def load_recognizer(self, path: str | os.PathLike) -> str:
        """Copy a saved recognizer's weights (``ucodec train-phone-model``) into this one; returns a log line.

        Raises:
            FileNotFoundError / ValueError: no phone model at ``path``, or one with other symbols or architecture.
        """
        source = load_phone_model(path)
        if source.cfg != self.recognizer.cfg:
            raise ValueError(
                f"{path}: its phone model config does not match the codec's (symbols or architecture differ)"
            )
        self.recognizer.load_state_dict(source.state_dict())
        return f"phone input: recognizer weights from {path}"

    @torch.no_grad()
    def frame_features(self, wav: torch.Tensor) -> torch.Tensor:
        """wav ``[B, 1, F * hop]`` (already padded to whole frames) → the recognizer's output stacked per frame
        ``[B, F, s * (V + 1)]``, what the projection reads (no gradient: the recognizer is frozen)."""
        b, frames = wav.shape[0], wav.shape[-1] // self.hop_length
        logp = self.recognizer(wav[:, 0].float())  # [B, F * s + 1, V + 1]
        x = logp.exp() if self.features == "posteriors" else logp.clamp_min(LOG_FLOOR)
        return x[:, : frames * self.per_frame].reshape(b, frames, -1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav ``[B, 1, F * hop]`` (already padded to whole frames) → ``[B, D, F]``."""
        x = self.frame_features(wav).to(self.proj[1].weight.dtype)
        return self.proj(x).transpose(1, 2)
