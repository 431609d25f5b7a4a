"""``ucodec eval tts``: zero-shot TTS evaluation on a test manifest.

For every test line, the synthesizer reads the line's text with a voice prompt taken from *another* utterance of
the same speaker (the next one in manifest order), and the output is scored:

- intelligibility: Whisper tiny.en WER/CER against the input text;
- speaker similarity: cosine to the prompt, to the speaker's centroid (mean embedding of up to
  ``speaker_refs`` real utterances) and to the other speakers' centroids, plus identification accuracy (is the
  nearest centroid the prompt's speaker?) — a voice-cloning TTS should be close to its prompt and far from the rest;
- quality: DNSMOS; speed: real-time factor (wall time / output seconds) and, when the synthesizer can stream,
  the latency of the first audio chunk.

The real recording of each test line is scored the same way (``ground truth``), which shows what the ASR and
DNSMOS give to natural speech of this corpus. The synthesizer is any object with ``sample_rate`` and
``synthesize(text, prompt_wav=..., prompt_text=...) -> wav [1, T]`` (:class:`Synthesizer`), so the module does not
depend on the ``tts`` package.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from codec.evaluation.scoring import Scorer, UtteranceScores
from codec.evaluation.speaker import cosine

NAN = math.nan
TTS_METRICS = ("wer", "sim", "dnsmos")  # a synthesis has no reference signal, so no PESQ/STOI/mel


@runtime_checkable
class Synthesizer(Protocol):
    """What ``eval tts`` needs from a TTS model (``tts.TTS`` satisfies it)."""

    sample_rate: int

    def synthesize(self, text: str, prompt_wav=None, prompt_text=None, **kwargs) -> torch.Tensor:
        """Speech for ``text`` in the voice of ``prompt_wav [1, T]`` (at ``sample_rate``); returns ``[1, T']``."""
        ...


@dataclass(frozen=True)
class TtsEvalOptions:
    """What ``eval tts`` computes."""

    limit: int | None = None  # evaluate the first N usable test lines
    metrics: tuple[str, ...] = TTS_METRICS  # subset of TTS_METRICS
    speaker_refs: int = 5  # real utterances per speaker averaged into its centroid embedding
    max_prompt_seconds: float = 10.0  # prompts are cut to this length
    latency_utterances: int = 5  # measure first-chunk latency on this many lines (0 = never)
    ground_truth: bool = True  # also score the real recordings
    warmup: bool = True  # one untimed synthesis first, so the first line's RTF does not include lazy initialisation
    seed: int | None = 0  # passed to synthesize(seed=...) when not None
    # decoding overrides passed to synthesize(): temperature/top_k/top_p, each a value or per-layer tuple
    sampling: tuple[tuple[str, object], ...] = ()
    progress: bool = True


@dataclass(frozen=True)
class TtsRecord:
    """One test line: its synthesis (``system == "tts"``) or its real recording (``"ground truth"``)."""

    id: str
    speaker: str
    system: str  # "tts" or "ground truth"
    prompt_id: str  # utterance whose audio (and text) was the voice prompt
    text: str
    duration: float  # seconds of audio
    scores: UtteranceScores  # scores.sim = similarity to the prompt
    sim_speaker: float = NAN  # cosine to the speaker's centroid
    sim_other: float = NAN  # mean cosine to the other speakers' centroids
    identified: bool | None = None  # nearest centroid is the prompt's speaker (None without sim or one speaker)
    rtf: float = NAN  # synthesis wall time / audio seconds
    first_chunk_s: float = NAN  # seconds until the first streamed chunk


@dataclass
class TtsEvalResult:
    """Everything ``eval tts`` measured."""

    model: str
    manifest: str
    sample_rate: int
    records: list[TtsRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # ids without a usable prompt (speaker has one utterance)
    num_speakers: int = 0
    command: str = ""

    def records_of(self, system: str) -> list[TtsRecord]:
        return [r for r in self.records if r.system == system]


def choose_prompts(utterances: list) -> dict[str, object]:
    """Map each utterance id to the prompt utterance: the next utterance of the same speaker (cyclically).

    Utterances whose speaker has no other utterance are absent from the result.
    """
    by_speaker: dict[str, list] = defaultdict(list)
    for u in utterances:
        by_speaker[u.speaker].append(u)
    prompts = {}
    for group in by_speaker.values():
        if len(group) < 2:
            continue
        for i, u in enumerate(group):
            prompts[u.id] = group[(i + 1) % len(group)]
    return prompts


def speaker_centroids(scorer: Scorer, utterances: list, load, per_speaker: int) -> dict[str, np.ndarray]:
    """speaker -> unit-norm mean embedding of up to ``per_speaker`` of their real utterances (empty without sim).

    Args:
        scorer: provides the embeddings.
        utterances: the manifest.
        load: ``utterance -> (wav [1, T], sample_rate)``.
        per_speaker: utterances per speaker.
    """
    if not scorer.wants("sim"):
        return {}
    chosen: dict[str, list] = defaultdict(list)
    for u in utterances:
        if len(chosen[u.speaker]) < per_speaker:
            chosen[u.speaker].append(u)
    centroids = {}
    for speaker, group in chosen.items():
        mean = np.mean([scorer.embed(*load(u)) for u in group], axis=0)
        centroids[speaker] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return centroids


def _speaker_scores(embedding: np.ndarray | None, speaker: str, centroids: dict[str, np.ndarray]) -> dict:
    if embedding is None or speaker not in centroids:
        return {}
    sims = {s: cosine(embedding, c) for s, c in centroids.items()}
    others = [v for s, v in sims.items() if s != speaker]
    return {
        "sim_speaker": sims[speaker],
        "sim_other": float(np.mean(others)) if others else NAN,
        "identified": (max(sims, key=sims.get) == speaker) if others else None,
    }


def first_chunk_latency(synthesizer, text: str, prompt_wav: torch.Tensor, prompt_text: str, **kwargs) -> float:
    """Seconds from calling ``synthesizer.stream(...)`` to its first chunk (nan if it cannot stream)."""
    stream = getattr(synthesizer, "stream", None)
    if stream is None:
        return NAN
    start = time.perf_counter()
    iterator = iter(stream(text, prompt_wav=prompt_wav, prompt_text=prompt_text, **kwargs))
    next(iterator, None)
    elapsed = time.perf_counter() - start
    close = getattr(iterator, "close", None)
    if close is not None:
        close()  # stop a generator early: the rest of the synthesis is not needed
    return elapsed


def evaluate_tts(
    synthesizer: Synthesizer,
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: TtsEvalOptions = TtsEvalOptions(),
    model_label: str = "tts",
    command: str = "",
) -> TtsEvalResult:
    """Synthesize every usable test line with a same-speaker prompt, score it, write the report to ``out_dir``.

    Raises:
        FileNotFoundError: the manifest or an audio file is missing.
        ValueError: no line has a same-speaker prompt, an invalid option, a synthesizer without the API.
        MissingExtraError: a selected metric's extra is not installed.
    """
    from tqdm import tqdm

    from codec.audio import load_audio
    from codec.manifest import read_manifest
    from tts.evaluation.report import write_tts_report

    if not isinstance(synthesizer, Synthesizer):
        raise ValueError(f"{type(synthesizer).__name__} has no sample_rate/synthesize(text, prompt_wav, prompt_text)")
    sample_rate = int(synthesizer.sample_rate)
    utterances = read_manifest(manifest)
    prompts = choose_prompts(utterances)
    usable = [u for u in utterances if u.id in prompts]
    if options.limit is not None:
        if options.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {options.limit}")
        usable = usable[: options.limit]
    if not usable:
        raise ValueError(f"{manifest}: no utterance has another utterance of the same speaker to use as a prompt")
    unusable = [m for m in options.metrics if m not in TTS_METRICS]
    if unusable:
        raise ValueError(f"metrics {unusable} need a reference recording; eval tts supports {list(TTS_METRICS)}")
    scorer = Scorer(tuple(options.metrics))
    scorer.load()

    def load(u) -> tuple[torch.Tensor, int]:
        return load_audio(u.audio, sample_rate), sample_rate  # read_manifest resolved the path

    result = TtsEvalResult(model=model_label, manifest=str(manifest), sample_rate=sample_rate, command=command)
    result.skipped = [u.id for u in utterances if u.id not in prompts]
    centroids = speaker_centroids(scorer, utterances, load, options.speaker_refs)
    result.num_speakers = len({u.speaker for u in utterances})
    kwargs = dict(options.sampling) | ({} if options.seed is None else {"seed": options.seed})
    if options.warmup:
        first = usable[0]
        warm_prompt = load(prompts[first.id])[0][:, : int(options.max_prompt_seconds * sample_rate)]
        synthesizer.synthesize(first.text, prompt_wav=warm_prompt, prompt_text=prompts[first.id].text, **kwargs)
    bar = tqdm(usable, desc="eval tts", unit="utt", disable=not options.progress, dynamic_ncols=True)
    for index, utt in enumerate(bar):
        prompt = prompts[utt.id]
        prompt_wav = load(prompt)[0][:, : int(options.max_prompt_seconds * sample_rate)]
        prompt_embedding = scorer.embed(prompt_wav, sample_rate)
        start = time.perf_counter()
        out = synthesizer.synthesize(utt.text, prompt_wav=prompt_wav, prompt_text=prompt.text, **kwargs)
        elapsed = time.perf_counter() - start
        out = _as_mono(out, utt.id)
        duration = out.shape[-1] / sample_rate
        latency = NAN
        if index < options.latency_utterances:
            latency = first_chunk_latency(synthesizer, utt.text, prompt_wav, prompt.text, **kwargs)
        scores = scorer.score(out, sample_rate, text=utt.text, reference_embedding=prompt_embedding)
        extra = _speaker_scores(scorer.embed(out, sample_rate), prompt.speaker, centroids)
        result.records.append(
            TtsRecord(
                utt.id,
                utt.speaker,
                "tts",
                prompt.id,
                utt.text,
                duration,
                scores,
                rtf=elapsed / max(duration, 1e-9),
                first_chunk_s=latency,
                **extra,
            )
        )
        if options.ground_truth:
            real = load(utt)[0]
            real_scores = scorer.score(real, sample_rate, text=utt.text, reference_embedding=prompt_embedding)
            extra = _speaker_scores(scorer.embed(real, sample_rate), prompt.speaker, centroids)
            result.records.append(
                TtsRecord(
                    utt.id,
                    utt.speaker,
                    "ground truth",
                    prompt.id,
                    utt.text,
                    real.shape[-1] / sample_rate,
                    real_scores,
                    **extra,
                )
            )
    write_tts_report(result, out_dir)
    return result


def _as_mono(wav, utt_id: str) -> torch.Tensor:
    """Synthesizer output as float ``[1, T]``; refuse empty or multi-channel output with the utterance id."""
    wav = torch.as_tensor(wav).detach().float().cpu()
    if wav.dim() == 1:
        wav = wav[None]
    if wav.dim() == 3 and wav.shape[:2] == (1, 1):
        wav = wav[0]
    if wav.dim() != 2 or wav.shape[0] != 1 or wav.shape[1] == 0:
        raise ValueError(f"{utt_id}: synthesizer returned shape {tuple(wav.shape)}, expected a non-empty [1, T]")
    return wav
