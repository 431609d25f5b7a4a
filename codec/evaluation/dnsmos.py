"""DNSMOS P.835 (Microsoft's non-intrusive MOS predictor) through the ``speechmos`` package's ONNX models.

Non-intrusive means no reference is needed, so the same number describes an original recording, a codec
resynthesis and a TTS output. ``speechmos`` ships the ONNX files (``dnsmos_models/sig_bak_ovr.onnx`` and the P.808
model ``model_v8.onnx``); it scores 9.01 s windows with a 1 s hop and loops shorter clips to that length, exactly
as the reference DNSMOS script does. Input is resampled to 16 kHz and clipped to [-1, 1] (speechmos refuses
anything outside). The ONNX sessions are created once per process (:func:`get_dnsmos`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import torch

from codec.evaluation.extras import require

DNSMOS_RATE = 16000


@dataclass(frozen=True)
class DnsmosScore:
    """DNSMOS P.835 scores, each a MOS on the 1..5 scale (higher is better)."""

    ovrl: float  # overall quality
    sig: float  # speech signal quality
    bak: float  # background noise (5 = no audible noise)
    p808: float  # P.808 overall MOS from the second model


class Dnsmos:
    """The DNSMOS predictor: two ONNX sessions from the ``speechmos`` package."""

    def __init__(self) -> None:
        require("onnxruntime", "eval", "DNSMOS (onnxruntime)")
        require("librosa", "eval", "DNSMOS (librosa)")
        module = require("speechmos.dnsmos", "eval", "DNSMOS (speechmos)")
        models = os.path.join(os.path.dirname(os.path.abspath(module.__file__)), "dnsmos_models")
        self._model = module.DNSMOS(os.path.join(models, "sig_bak_ovr.onnx"), os.path.join(models, "model_v8.onnx"))

    def score(self, wav: torch.Tensor | np.ndarray, sample_rate: int = DNSMOS_RATE) -> DnsmosScore:
        """Score mono speech ``[1, T]``/``[T]`` at ``sample_rate``.

        Raises:
            ValueError: the signal is empty.
        """
        from codec.evaluation.metrics import to_mono_numpy

        audio = to_mono_numpy(wav)
        if audio.size == 0:
            raise ValueError("DNSMOS needs a non-empty signal")
        if sample_rate != DNSMOS_RATE:
            from codec.audio import resample

            audio = resample(torch.from_numpy(audio).float()[None], sample_rate, DNSMOS_RATE)[0].double().numpy()
        audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
        result = self._model(audio, DNSMOS_RATE, False)
        return DnsmosScore(
            ovrl=float(result["ovrl_mos"]),
            sig=float(result["sig_mos"]),
            bak=float(result["bak_mos"]),
            p808=float(result["p808_mos"]),
        )


@functools.lru_cache(maxsize=1)
def get_dnsmos() -> Dnsmos:
    """The process-wide DNSMOS predictor (loaded on first call)."""
    return Dnsmos()


def dnsmos(wav: torch.Tensor | np.ndarray, sample_rate: int = DNSMOS_RATE) -> DnsmosScore:
    """DNSMOS P.835 scores of one mono signal (see :class:`DnsmosScore`).

    Raises:
        MissingExtraError: the ``[eval]`` extra is not installed.
    """
    return get_dnsmos().score(wav, sample_rate)
