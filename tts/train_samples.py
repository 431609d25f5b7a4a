"""Dev samples during TTS training: synthesize a few held-out sentences zero-shot and score them.

Listening to a handful of utterances catches what the loss does not (a model that mumbles with a good loss, a
model that never says END). Each evaluation writes ``EXP/samples/step_XXXXXXX/<n>_<id>.wav`` for the same
sentences, prompts and seeds, so the files of successive steps can be compared, and scores them with Whisper
tiny.en (WER against the transcript) when the ``[eval]`` extra is installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from codec.audio import save_audio
from codec.model import Codec
from tts.batch import build_prefix
from tts.generate import generate, length_limits
from tts.model import TTSModel
from tts.sampling import SamplingParams
from tts.train_data import TTSTrainData


@dataclass
class SampleResult:
    """What :func:`dev_samples` produced.

    Attributes:
        paths: the written wav files.
        stop_reasons: why generation stopped, per sample (``"end"`` is what a trained model does).
        wer: corpus word error rate of Whisper's transcripts, or None when not scored.
    """

    paths: list[Path] = field(default_factory=list)
    stop_reasons: list[str] = field(default_factory=list)
    wer: float | None = None

    @property
    def end_rate(self) -> float:
        """Fraction of samples that ended with END (not by a length or repetition guard)."""
        return sum(r == "end" for r in self.stop_reasons) / max(1, len(self.stop_reasons))


@torch.inference_mode()
def dev_samples(
    model: TTSModel,
    codec: Codec,
    data: TTSTrainData,
    count: int,
    out_dir: str | Path,
    seed: int = 0,
    score: bool = True,
) -> SampleResult:
    """Synthesize dev utterances ``0, n/count, 2n/count, ...`` with a prompt from another utterance of the same
    speaker, write them to ``out_dir``, and (``score``) transcribe them.

    Args:
        model: the LM (eval mode is set and restored by the caller).
        codec: decodes the generated codes.
        data: the dev data (texts, prompts).
        count: how many utterances.
        seed: sampling seed of the first sample (sample i uses ``seed + i``).
    """
    n = len(data)
    picks = sorted({k * n // count for k in range(min(count, n))})
    device = next(model.parameters()).device
    cfg = model.config
    params = SamplingParams.create(cfg.num_codebooks, cfg.sampling)
    result = SampleResult()
    out = Path(out_dir)
    texts = []
    for k, index in enumerate(picks):
        ids, prompt = data.zero_shot(index, seed)
        prefix = build_prefix(
            [ids], [prompt], cfg.num_codebooks, None, cfg.frame_position_stride, cfg.aligned_text, data.space
        ).to(device)
        low, high = length_limits([len(ids)], cfg.sampling, cfg.frame_rate)
        gen = generate(model, prefix, params, [seed + k], low, high)
        codes = gen.codes[:, :, : gen.lengths[0]]
        wav = codec.decode(codes.to(codec.device))[0].float().cpu() if gen.lengths[0] else torch.zeros(1, 0)
        entry = data.entries[index]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", entry.id)[:60]
        result.paths.append(save_audio(out / f"{k:02d}_{name}.wav", wav, codec.sample_rate))
        result.stop_reasons.append(gen.reasons[0])
        texts.append((entry.text, wav))
    if score:
        result.wer = _score(texts, codec.sample_rate)
    return result


def _score(texts: list[tuple[str, torch.Tensor]], sample_rate: int) -> float | None:
    """Corpus WER of Whisper tiny.en on ``(reference, wav)`` pairs; None without the ``[eval]`` extra."""
    try:
        from codec.evaluation.asr import get_asr
        from codec.evaluation.wer import ErrorCount, wer

        asr = get_asr()
    except (ImportError, FileNotFoundError, ValueError):
        return None
    total = ErrorCount(0, 0)
    for reference, wav in texts:
        hypothesis = asr.transcribe(wav, sample_rate) if wav.numel() else ""
        total = total + wer(reference, hypothesis)
    return total.rate
