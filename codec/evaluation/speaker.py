"""Speaker similarity: cosine between resemblyzer d-vectors (GE2E LSTM, 256-d, weights shipped in the package).

Used for codec evaluation (does the resynthesis keep the voice?) and TTS evaluation (does the synthesized voice
match the prompt's speaker rather than the others?). Audio is resampled to 16 kHz, volume-normalised and stripped
of long silences (resemblyzer's own preprocessing) before embedding; when the VAD leaves too little (very short or
near-silent input), the untrimmed audio is embedded instead so a score is always defined. The encoder is loaded
once per process (:func:`get_speaker_encoder`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from codec.evaluation.extras import import_resemblyzer

SPEAKER_RATE = 16000  # resemblyzer's sampling rate
MIN_VOICED_SECONDS = 0.5  # below this after VAD trimming, embed the untrimmed signal


class SpeakerEncoder:
    """resemblyzer ``VoiceEncoder`` on the CPU, with a numpy/torch friendly ``embed``."""

    def __init__(self) -> None:
        resemblyzer = import_resemblyzer()
        self._audio = resemblyzer.audio
        self._encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)

    def embed(self, wav: torch.Tensor | np.ndarray, sample_rate: int = SPEAKER_RATE) -> np.ndarray:
        """Unit-norm speaker embedding ``[256]`` (float32) of mono speech ``[1, T]``/``[T]`` at ``sample_rate``."""
        from codec.evaluation.metrics import to_mono_numpy

        audio = to_mono_numpy(wav)
        if sample_rate != SPEAKER_RATE:
            from codec.audio import resample

            audio = resample(torch.from_numpy(audio).float()[None], sample_rate, SPEAKER_RATE)[0].double().numpy()
        audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
        normalised = self._audio.normalize_volume(audio, self._audio.audio_norm_target_dBFS, increase_only=True)
        trimmed = self._audio.trim_long_silences(normalised)
        chosen = trimmed if len(trimmed) >= MIN_VOICED_SECONDS * SPEAKER_RATE else normalised
        with torch.inference_mode():
            embedding = self._encoder.embed_utterance(chosen)
        return np.asarray(embedding, dtype=np.float32)

    def similarity(self, a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, sample_rate: int) -> float:
        """Cosine similarity of the speakers of two signals (1.0 = same embedding)."""
        return cosine(self.embed(a, sample_rate), self.embed(b, sample_rate))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors ``[D]`` (0.0 when either is all zeros)."""
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denom) if denom > 0 else 0.0


@functools.lru_cache(maxsize=1)
def get_speaker_encoder() -> SpeakerEncoder:
    """The process-wide speaker encoder (loaded on first call)."""
    return SpeakerEncoder()


def speaker_similarity(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, sample_rate: int = 16000) -> float:
    """Cosine similarity of the resemblyzer embeddings of two mono signals at ``sample_rate``.

    Raises:
        MissingExtraError: the ``[eval]`` extra is not installed.
    """
    return get_speaker_encoder().similarity(a, b, sample_rate)
