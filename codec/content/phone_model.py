"""A small mel-spectrogram phoneme recognizer (CTC at 50 Hz) whose only job is forced alignment.

Word times from Whisper tiny.en are good to ~0.1 s, and spreading a word's phonemes evenly over its span labels
25 ms sub-frames poorly: a linear probe on 40-band log-mels with ±75 ms of context reads those labels at 28 %
accuracy, barely above the label prior (session 13, docs/codec_training.md). The codec's own CTC head reads 5 Hz
levels and cannot align at all. This model reads the audio itself at 100 Hz, so ``torchaudio``'s CTC forced
alignment (:mod:`codec.content.aligner`) places each phoneme to within a 20 ms emission step.

Trained on any transcribed manifest with the content store's phoneme ids (``ucodec train-phone-model``; a few
thousand utterances and ~15 CPU minutes suffice for the synthetic corpus). Shapes: wav ``[B, T]`` at 16 kHz →
log-mel ``[B, 80, T / 160]`` → stride-2 convolution → ``[B, T / 320, C]`` → Transformer → ``[B, T / 320, V + 1]``
CTC log-probabilities (blank 0, then :data:`codec.content.phonemes.CTC_SYMBOLS`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torchaudio
from torch import nn

CONFIG_NAME = "phone_model.json"
WEIGHTS_NAME = "phone_model.safetensors"


@dataclass(frozen=True)
class PhoneModelConfig:
    """Architecture of the recognizer (defaults: ~2.5 M parameters, 0.15 s of CPU per 10 s of audio)."""

    symbols: tuple[str, ...] = ()  # CTC inventory (blank 0 is implicit)
    sample_rate: int = 16000
    n_mels: int = 80
    mel_hop: int = 160  # 10 ms
    channels: int = 192
    layers: int = 3  # Transformer layers over the 50 Hz frames
    heads: int = 4

    def __post_init__(self) -> None:
        if not self.symbols or self.n_mels < 1 or self.channels % self.heads or self.layers < 0:
            raise ValueError("phone model needs symbols, n_mels >= 1, layers >= 0 and channels divisible by heads")

    @property
    def seconds_per_step(self) -> float:
        """Length of one emission (two mel hops)."""
        return 2 * self.mel_hop / self.sample_rate


class PhoneModel(nn.Module):
    """wav ``[B, T]`` → CTC log-probabilities ``[B, ceil(T / 320), V + 1]``."""

    def __init__(self, cfg: PhoneModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mel = torchaudio.transforms.MelSpectrogram(
            cfg.sample_rate, n_fft=400, hop_length=cfg.mel_hop, n_mels=cfg.n_mels, center=True
        )
        c = cfg.channels
        self.front = nn.Sequential(
            nn.Conv1d(cfg.n_mels, c, 5, stride=2, padding=2), nn.GELU(), nn.Conv1d(c, c, 5, padding=2), nn.GELU()
        )
        layer = nn.TransformerEncoderLayer(c, cfg.heads, 4 * c, dropout=0.1, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False) if cfg.layers else None
        self.out = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, len(cfg.symbols) + 1))

    @property
    def sample_rate(self) -> int:
        """The audio rate it reads (the same attribute a codec has, so aligners take either)."""
        return self.cfg.sample_rate

    def steps(self, samples: torch.Tensor) -> torch.Tensor:
        """Emissions ``[B]`` of inputs of ``samples [B]`` samples."""
        frames = samples // self.cfg.mel_hop + 1  # centred STFT
        return (frames + 1) // 2

    def forward(self, wav: torch.Tensor, samples: torch.Tensor | None = None) -> torch.Tensor:
        x = (self.mel(wav) + 1e-5).log()  # [B, M, T']
        x = (x - x.mean(dim=(1, 2), keepdim=True)) / x.std(dim=(1, 2), keepdim=True).clamp_min(1e-3)
        x = self.front(x).transpose(1, 2)  # [B, T'/2, C]
        if self.body is not None:
            mask = None
            if samples is not None:  # padding of a batch is not attended to
                mask = torch.arange(x.shape[1], device=x.device)[None] >= self.steps(samples).to(x.device)[:, None]
            x = self.body(x, src_key_padding_mask=mask)
        return self.out(x).log_softmax(-1)


def save_phone_model(model: PhoneModel, out: str | os.PathLike, info: dict | None = None) -> None:
    """Write ``out/phone_model.json`` (config and ``info``) and ``out/phone_model.safetensors`` (fp16: an aligner
    needs no more) atomically."""
    from codec.atomic import safetensors_save_atomic, write_json_atomic

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items() if not k.startswith("mel.")}
    safetensors_save_atomic(state, root / WEIGHTS_NAME)
    write_json_atomic(root / CONFIG_NAME, {"config": asdict(model.cfg), "info": info or {}})


def load_phone_model(path: str | os.PathLike) -> PhoneModel:
    """The recognizer saved in directory ``path``, in eval mode.

    Raises:
        FileNotFoundError / ValueError: no model there, or files that do not match.
    """
    from safetensors.torch import load_file

    root = Path(path)
    if not (root / CONFIG_NAME).is_file() or not (root / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{root}: no phone model ({CONFIG_NAME}, {WEIGHTS_NAME}); see ucodec train-phone-model")
    try:
        raw = json.loads((root / CONFIG_NAME).read_text(encoding="utf-8"))["config"]
        model = PhoneModel(PhoneModelConfig(**{**raw, "symbols": tuple(raw["symbols"])}))
        missing, unexpected = model.load_state_dict(load_file(str(root / WEIGHTS_NAME)), strict=False)
    except (KeyError, TypeError, json.JSONDecodeError, RuntimeError) as exc:
        raise ValueError(f"{root}: not a readable phone model ({exc})") from None
    if unexpected or any(not k.startswith("mel.") for k in missing):
        raise ValueError(f"{root}: the weights do not match the config")
    return model.eval()
