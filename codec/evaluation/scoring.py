"""One scorer for every evaluation: computes the selected metrics of one signal, with the models loaded once.

``eval codec`` and ``eval tts`` score signals the same way, so the choice of metrics (``--metrics``), the handling
of a missing extra and the per-utterance result type live here. Metric names on the command line:

=========  ==========================================================  ============================
name       what                                                        needs
=========  ==========================================================  ============================
pesq       PESQ-WB against the reference                               a reference signal
stoi       STOI and ESTOI against the reference                        a reference signal
mel        multi-resolution log-mel distance to the reference          a reference signal
wer        Whisper tiny.en transcript, WER and CER against the text    the text
sim        speaker similarity to a reference embedding                 a reference embedding
dnsmos     DNSMOS P.835 (OVRL, SIG, BAK) and P.808                     nothing
=========  ==========================================================  ============================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

METRICS = ("pesq", "stoi", "mel", "wer", "sim", "dnsmos")
NAN = math.nan


@dataclass(frozen=True)
class UtteranceScores:
    """Scores of one signal; ``nan``/``None`` where a metric was not requested or does not apply."""

    pesq: float = NAN  # PESQ-WB MOS-LQO vs the reference
    stoi: float = NAN  # STOI vs the reference
    estoi: float = NAN  # ESTOI vs the reference
    mel_distance: float = NAN  # log10-mel L1 distance to the reference (lower is better)
    transcript: str | None = None  # Whisper tiny.en output
    word_errors: int | None = None  # word edits against the normalised text
    words: int | None = None  # words in the normalised text
    char_errors: int | None = None  # character edits
    chars: int | None = None  # characters in the normalised text
    sim: float = NAN  # cosine speaker similarity to the reference embedding
    dnsmos_ovrl: float = NAN
    dnsmos_sig: float = NAN
    dnsmos_bak: float = NAN
    dnsmos_p808: float = NAN

    @property
    def wer(self) -> float:
        """Utterance word error rate (``nan`` without ASR)."""
        return NAN if self.words is None else self.word_errors / max(self.words, 1)

    @property
    def cer(self) -> float:
        return NAN if self.chars is None else self.char_errors / max(self.chars, 1)


def parse_metrics(text: str | None) -> tuple[str, ...]:
    """``"pesq,stoi"`` → ``("pesq", "stoi")``; ``None``/``"all"`` → every metric; ``"none"`` → none.

    Raises:
        ValueError: an unknown metric name (the message lists the allowed ones).
    """
    if text is None or text.strip() == "all":
        return METRICS
    if text.strip() == "none":
        return ()
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}, 'all' or 'none'")
    return names


class Scorer:
    """Computes the selected metrics of signals.

    Args:
        metrics: names from :data:`METRICS`.
    """

    def __init__(self, metrics: tuple[str, ...] = METRICS) -> None:
        self.metrics = parse_metrics(",".join(metrics)) if metrics else ()

    def wants(self, name: str) -> bool:
        return name in self.metrics

    def load(self) -> None:
        """Import/load everything the selected metrics need now, so a missing extra fails before any work.

        Raises:
            MissingExtraError: an extra is not installed.
        """
        from codec.evaluation.extras import require

        if self.wants("pesq"):
            require("pesq", "eval", "PESQ")
        if self.wants("stoi"):
            require("pystoi", "eval", "STOI")
        if self.wants("wer"):
            from codec.evaluation.asr import get_asr

            get_asr()
        if self.wants("sim"):
            from codec.evaluation.speaker import get_speaker_encoder

            get_speaker_encoder()
        if self.wants("dnsmos"):
            from codec.evaluation.dnsmos import get_dnsmos

            get_dnsmos()

    def embed(self, wav: torch.Tensor, sample_rate: int) -> np.ndarray | None:
        """Speaker embedding ``[256]`` of ``wav`` when ``sim`` is selected, else ``None``."""
        if not self.wants("sim"):
            return None
        from codec.evaluation.speaker import get_speaker_encoder

        return get_speaker_encoder().embed(wav, sample_rate)

    def score(
        self,
        wav: torch.Tensor,
        sample_rate: int,
        text: str | None = None,
        reference: torch.Tensor | None = None,
        reference_embedding: np.ndarray | None = None,
    ) -> UtteranceScores:
        """Score ``wav [1, T]`` at ``sample_rate``.

        Args:
            wav: the signal under test.
            sample_rate: its rate (every model resamples as it needs).
            text: what was said; enables WER/CER.
            reference: the clean signal at the same rate; enables PESQ/STOI/mel.
            reference_embedding: a speaker embedding (from :meth:`embed`); enables SIM.
        """
        from codec.evaluation import metrics as m

        values: dict = {}
        if reference is not None:
            if self.wants("pesq"):
                values["pesq"] = m.pesq_wb(reference, wav, sample_rate)
            if self.wants("stoi"):
                values["stoi"] = m.stoi(reference, wav, sample_rate)
                values["estoi"] = m.estoi(reference, wav, sample_rate)
            if self.wants("mel"):
                values["mel_distance"] = m.mel_distance(reference, wav, sample_rate)
        if text is not None and self.wants("wer"):
            hypothesis = m.get_asr().transcribe(wav, sample_rate)
            words, chars = m.wer(text, hypothesis), m.cer(text, hypothesis)
            values.update(
                transcript=hypothesis,
                word_errors=words.errors,
                words=words.length,
                char_errors=chars.errors,
                chars=chars.length,
            )
        if reference_embedding is not None and self.wants("sim"):
            from codec.evaluation.speaker import cosine

            values["sim"] = cosine(self.embed(wav, sample_rate), reference_embedding)
        if self.wants("dnsmos"):
            score = m.dnsmos(wav, sample_rate)
            values.update(dnsmos_ovrl=score.ovrl, dnsmos_sig=score.sig, dnsmos_bak=score.bak, dnsmos_p808=score.p808)
        return UtteranceScores(**values)
