"""What the demo and the server share about a speech request: limits, checks, tempo change and audio encodings.

Both front ends take untrusted input from people they never see, so every limit lives here once and is stated in the
error message; a user error is a ``ValueError`` that the front end turns into a ``gr.Error`` or a 400 response.
"""

from __future__ import annotations

import io
import math

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

MAX_TEXT_CHARS = 2000  # demo: longer text is refused (it is split into sentences, but a person would wait minutes)
MAX_INPUT_CHARS = 4096  # server: OpenAI's own limit for `input`
MAX_PROMPT_TEXT_CHARS = 500  # a prompt transcript covers a few seconds of speech
MIN_SPEED, MAX_SPEED = 0.25, 4.0  # OpenAI's range for `speed`
RESPONSE_FORMATS = {"wav": "WAV", "flac": "FLAC", "pcm": None}  # pcm = raw s16le mono at the model rate
MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "pcm": "audio/pcm"}

# Time stretch by a phase vocoder: 32 ms windows with 75 % overlap keep speech intelligible at 16 kHz.
STRETCH_FFT = 512
STRETCH_HOP = 128


def check_text(text: object, limit: int, what: str = "text") -> str:
    """Strip ``text`` and check that it is a non-empty string of at most ``limit`` characters.

    Raises:
        ValueError: not a string, empty or only whitespace, or too long (the message states the limit).
    """
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ValueError(f"{what} is empty: type something to say")
    if len(text) > limit:
        raise ValueError(f"{what} has {len(text)} characters; the limit is {limit} (split it into several requests)")
    return text


def check_sampling(temperature: float | None, top_k: int | None, top_p: float | None) -> None:
    """Refuse sampling settings outside their meaningful ranges (None = the model's default).

    Raises:
        ValueError: temperature outside [0, 2], top_k negative, or top_p outside (0, 1].
    """
    if temperature is not None and not 0.0 <= temperature <= 2.0:
        raise ValueError(f"temperature must be in [0, 2], got {temperature}")
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = off), got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (1 = off), got {top_p}")


def check_speed(speed: float) -> float:
    """Speed factor in ``[MIN_SPEED, MAX_SPEED]`` (1 = as generated).

    Raises:
        ValueError: not a finite number in range.
    """
    if not isinstance(speed, (int, float)) or not math.isfinite(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed must be a number in [{MIN_SPEED}, {MAX_SPEED}], got {speed!r}")
    return float(speed)


def change_speed(wav: torch.Tensor, speed: float) -> torch.Tensor:
    """Play ``wav [1, T]`` ``speed`` times faster at the same pitch (phase vocoder) → ``[1, ~T / speed]``.

    A pitch-preserving stretch rather than a resample: a faster voice should not sound like a chipmunk.
    """
    speed = check_speed(speed)
    if speed == 1.0 or wav.shape[-1] == 0:
        return wav
    window = torch.hann_window(STRETCH_FFT)
    spec = torch.stft(
        wav.float(), STRETCH_FFT, STRETCH_HOP, window=window, return_complex=True, center=True
    )  # [1, STRETCH_FFT // 2 + 1, frames]
    advance = torch.linspace(0, math.pi * STRETCH_HOP, spec.shape[-2])[:, None]  # expected phase advance per hop
    stretched = AF.phase_vocoder(spec, speed, advance)
    length = max(1, round(wav.shape[-1] / speed))
    out = torch.istft(stretched, STRETCH_FFT, STRETCH_HOP, window=window, center=True, length=length)
    return out.clamp(-1.0, 1.0)


def to_pcm16(wav: torch.Tensor) -> bytes:
    """``[1, T]`` or ``[T]`` float in [-1, 1] → raw signed 16-bit little-endian mono samples."""
    samples = wav.reshape(-1).float().clamp(-1.0, 1.0).numpy()
    return (np.round(samples * 32767.0)).astype("<i2").tobytes()


def encode_audio(wav: torch.Tensor, sample_rate: int, response_format: str) -> bytes:
    """``[1, T]`` float → the bytes of a ``wav`` (16-bit PCM), ``flac`` (16-bit) or ``pcm`` (raw s16le) file.

    Raises:
        ValueError: an unsupported format (the message lists the supported ones).
    """
    if response_format not in RESPONSE_FORMATS:
        raise ValueError(f"response_format {response_format!r} is not supported; use one of {sorted(RESPONSE_FORMATS)}")
    if response_format == "pcm":
        return to_pcm16(wav)
    buffer = io.BytesIO()
    samples = np.frombuffer(
        to_pcm16(wav), "<i2"
    )  # the same quantisation as pcm, so the formats agree sample for sample
    sf.write(buffer, samples, sample_rate, format=RESPONSE_FORMATS[response_format], subtype="PCM_16")
    return buffer.getvalue()
