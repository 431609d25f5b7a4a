"""Reference-based signal metrics for a resynthesis against its original: PESQ-WB, STOI, ESTOI, mel distance.

All functions take the reference and the degraded signal as mono ``[T]`` or ``[1, T]`` (torch or numpy, float in
[-1, 1]) at ``sample_rate``, cut both to the shorter length (a codec pads to a multiple of its hop) and return a
plain float. PESQ is defined at 8/16 kHz only, so other rates are resampled to 16 kHz first; STOI resamples to
10 kHz internally. The model-based metrics (WER, speaker similarity, DNSMOS) are in :mod:`codec.evaluation.asr`,
:mod:`codec.evaluation.speaker` and :mod:`codec.evaluation.dnsmos`; this module re-exports their entry points so
``from codec.evaluation.metrics import ...`` reaches every metric.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from codec.evaluation.asr import WhisperASR, get_asr
from codec.evaluation.dnsmos import DnsmosScore, dnsmos
from codec.evaluation.extras import require
from codec.evaluation.speaker import SpeakerEncoder, get_speaker_encoder, speaker_similarity
from codec.evaluation.wer import ErrorCount, cer, normalize_text, wer

__all__ = [
    "DnsmosScore",
    "ErrorCount",
    "SignalMetrics",
    "SpeakerEncoder",
    "WhisperASR",
    "cer",
    "dnsmos",
    "estoi",
    "get_asr",
    "get_speaker_encoder",
    "mel_distance",
    "normalize_text",
    "pesq_wb",
    "signal_metrics",
    "speaker_similarity",
    "stoi",
    "wer",
]

PESQ_RATE = 16000  # PESQ wide-band is defined at 16 kHz
# (n_fft, n_mels) of the mel-distance resolutions; hop = n_fft // 4. 16 ms to 128 ms windows at 16 kHz, so both
# pitch harmonics (long windows) and transients (short ones) count.
MEL_RESOLUTIONS: tuple[tuple[int, int], ...] = ((256, 32), (512, 64), (1024, 128), (2048, 128))
LOG_FLOOR = 1e-5  # mel power floor before log10: -50 dB, below anything audible in 16-bit audio


@dataclass(frozen=True)
class SignalMetrics:
    """Reference-based scores of one degraded signal. ``nan`` marks a score that could not be computed."""

    pesq: float  # PESQ-WB MOS-LQO, about 1.0 (bad) .. 4.64 (identical)
    stoi: float  # short-time objective intelligibility, 0 .. 1
    estoi: float  # extended STOI (handles modulated noise better), 0 .. 1
    mel_distance: float  # multi-resolution log10-mel L1 distance, 0 = identical, lower is better


def to_mono_numpy(wav: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[T]`` or ``[1, T]`` (torch or numpy) → contiguous float64 numpy ``[T]``.

    Raises:
        ValueError: more than one channel or a non-finite sample.
    """
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(wav, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise ValueError(f"expected a mono [T] or [1, T] signal, got shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ValueError("signal contains NaN or Inf samples")
    return np.ascontiguousarray(arr)


def align(reference: torch.Tensor | np.ndarray, degraded: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as float64 ``[T]`` cut to the shorter length (codec output is padded to a multiple of hop)."""
    ref, deg = to_mono_numpy(reference), to_mono_numpy(degraded)
    n = min(len(ref), len(deg))
    if n == 0:
        raise ValueError("cannot compare an empty signal")
    return ref[:n], deg[:n]


def _resample_np(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    if orig == new:
        return x
    from codec.audio import resample

    return resample(torch.from_numpy(x).float()[None], orig, new)[0].double().numpy()


def pesq_wb(reference, degraded, sample_rate: int = PESQ_RATE) -> float:
    """Wide-band PESQ (ITU-T P.862.2) MOS-LQO of ``degraded`` against ``reference``.

    Args:
        reference: clean signal ``[T]`` / ``[1, T]``.
        degraded: signal under test, same rate.
        sample_rate: rate of both; resampled to 16 kHz when different.

    Returns:
        About 4.64 for identical signals, down to about 1.0; ``nan`` when PESQ finds no speech (silence) or the
        signal is shorter than PESQ's minimum (about 0.25 s).

    Raises:
        MissingExtraError: the ``[eval]`` extra is not installed.
    """
    pesq = require("pesq", "eval", "PESQ")
    ref, deg = align(reference, degraded)
    if not ref.any() or not deg.any():
        return math.nan  # PESQ normalises by the peak: an all-zero signal has no level to compare
    ref, deg = _resample_np(ref, sample_rate, PESQ_RATE), _resample_np(deg, sample_rate, PESQ_RATE)
    try:
        return float(pesq.pesq(PESQ_RATE, ref, deg, "wb"))
    except (pesq.NoUtterancesError, pesq.BufferTooShortError):
        return math.nan


def _stoi(reference, degraded, sample_rate: int, extended: bool) -> float:
    pystoi = require("pystoi", "eval", "ESTOI" if extended else "STOI")
    ref, deg = align(reference, degraded)
    return float(pystoi.stoi(ref, deg, sample_rate, extended=extended))


def stoi(reference, degraded, sample_rate: int = 16000) -> float:
    """Short-time objective intelligibility (0..1; 1.0 for identical signals).

    Raises:
        MissingExtraError: the ``[eval]`` extra is not installed.
    """
    return _stoi(reference, degraded, sample_rate, extended=False)


def estoi(reference, degraded, sample_rate: int = 16000) -> float:
    """Extended STOI (0..1; 1.0 for identical signals).

    Raises:
        MissingExtraError: the ``[eval]`` extra is not installed.
    """
    return _stoi(reference, degraded, sample_rate, extended=True)


@functools.lru_cache(maxsize=16)
def _mel_transform(sample_rate: int, n_fft: int, n_mels: int) -> torch.nn.Module:
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels, power=2.0, center=True
    )


def mel_distance(
    reference, degraded, sample_rate: int = 16000, resolutions: tuple[tuple[int, int], ...] = MEL_RESOLUTIONS
) -> float:
    """Multi-resolution log-mel distance: mean over resolutions of ``mean |log10 M_ref - log10 M_deg|``.

    Args:
        reference: clean signal ``[T]`` / ``[1, T]``.
        degraded: signal under test, same rate.
        sample_rate: rate of both.
        resolutions: ``(n_fft, n_mels)`` pairs; the hop is ``n_fft // 4``.

    Returns:
        0.0 for identical signals; larger is worse (in log10 units, i.e. 1.0 = 10 dB mean error).
    """
    ref, deg = align(reference, degraded)
    pair = torch.from_numpy(np.stack([ref, deg])).float()  # [2, T]
    total = 0.0
    with torch.inference_mode():
        for n_fft, n_mels in resolutions:
            mel = _mel_transform(sample_rate, n_fft, n_mels)(pair)  # [2, n_mels, frames]
            logmel = torch.log10(mel.clamp_min(LOG_FLOOR))
            total += float((logmel[0] - logmel[1]).abs().mean())
    return total / len(resolutions)


def signal_metrics(reference, degraded, sample_rate: int = 16000) -> SignalMetrics:
    """All reference-based scores of ``degraded`` against ``reference`` (see :class:`SignalMetrics`)."""
    return SignalMetrics(
        pesq=pesq_wb(reference, degraded, sample_rate),
        stoi=stoi(reference, degraded, sample_rate),
        estoi=estoi(reference, degraded, sample_rate),
        mel_distance=mel_distance(reference, degraded, sample_rate),
    )
