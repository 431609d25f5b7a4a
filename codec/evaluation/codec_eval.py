"""``ucodec eval codec``: resynthesize a test manifest through a codec and score it.

For every utterance the codec encodes once at the deepest requested RVQ depth; each shallower depth decodes the
first ``q`` layers of the same codes (residual quantisation makes that identical to encoding with ``q`` layers).
Scores per (utterance, depth): PESQ-WB, STOI, ESTOI, mel distance, WER/CER of Whisper tiny.en on the resynthesis,
speaker similarity between original and resynthesis, DNSMOS. The original is scored too (WER, DNSMOS), so a
report shows how much of the error is the ASR's own. Output directory: ``report.md``, ``metrics.jsonl`` (one line
per utterance and system), ``spectrograms.png``, ``histograms.png`` and a few resynthesized wavs in ``audio/``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from codec.evaluation.scoring import METRICS, Scorer, UtteranceScores

ORIGINAL = "original"


@dataclass(frozen=True)
class CodecEvalOptions:
    """What ``eval codec`` computes and writes."""

    num_codebooks: tuple[int, ...] = ()  # RVQ depths to evaluate; empty = the model's full depth only
    limit: int | None = None  # evaluate the first N utterances of the manifest
    metrics: tuple[str, ...] = METRICS  # subset of scoring.METRICS
    plot_utterances: int = 3  # rows of the spectrogram figure
    save_audio: int = 3  # utterances whose resyntheses are written to audio/
    device: str = "cpu"
    progress: bool = True  # tqdm progress bar
    probe_train: str | None = None  # manifest whose utterances train the content probe (None: no content section)


@dataclass(frozen=True)
class CodecRecord:
    """Scores of one utterance through one system (``original`` or a codec depth); a line of metrics.jsonl."""

    id: str
    speaker: str
    system: str  # "original" or "32 cb"
    num_codebooks: int | None  # None for the original
    bitrate: float | None  # bits per second of this depth; None for the original
    duration: float  # seconds
    scores: UtteranceScores


@dataclass
class CodecEvalResult:
    """Everything ``eval codec`` measured; :mod:`codec.evaluation.codec_report` turns it into files."""

    model: str  # what --model named
    model_name: str  # config name of the codec
    random_init: bool  # the model was built from a config with random weights
    num_parameters: int
    sample_rate: int
    frame_rate: float
    codebook_size: int
    manifest: str
    depths: tuple[int, ...]
    bitrates: dict[int, float]  # depth -> bits per second
    records: list[CodecRecord] = field(default_factory=list)
    command: str = ""
    content: dict | None = None  # codec.evaluation.content.content_scores, when a probe manifest was given
    voice_conditioned: bool = False  # the decoder read a voice vector pooled from the utterance's deepest codes

    def systems(self) -> list[str]:
        """Column order of the report: the original, then the depths from shallow to deep."""
        return [ORIGINAL] + [system_name(q) for q in self.depths]

    def records_of(self, system: str) -> list[CodecRecord]:
        return [r for r in self.records if r.system == system]


def system_name(num_codebooks: int) -> str:
    return f"{num_codebooks} cb"


def load_codec(spec: str | os.PathLike, device: str = "cpu"):
    """Load a codec from a release directory, a registered name, or a config file (random weights).

    Returns:
        ``(codec, random_init)``; the codec is in eval mode on ``device``.

    Raises:
        FileNotFoundError / ValueError: from ``Codec.from_pretrained`` or the config loader.
    """
    from codec import Codec, CodecConfig

    path = Path(spec)
    if path.suffix.lower() in (".yaml", ".yml", ".json") and path.is_file():
        codec = Codec(CodecConfig.load(str(path)))
        return codec.to(device).eval(), True
    return Codec.from_pretrained(str(spec), device=device).eval(), False


def parse_depths(text: str | None, maximum: int, minimum: int = 1, option: str = "--num-codebooks") -> tuple[int, ...]:
    """``"8,16,32"`` → ``(8, 16, 32)`` (sorted, unique); ``None``/empty → ``(maximum,)``.

    Raises:
        ValueError: a value is not an integer in ``minimum..maximum`` (the message names ``option``).
    """
    if not text:
        return (maximum,)
    depths = set()
    for part in text.split(","):
        try:
            q = int(part)
        except ValueError:
            raise ValueError(f"{option}: {part!r} is not an integer (expected e.g. 8,16,32)") from None
        if not minimum <= q <= maximum:
            raise ValueError(f"{option}: {q} is outside {minimum}..{maximum} (the model has {maximum} codebooks)")
        depths.add(q)
    return tuple(sorted(depths))


def evaluate_codec(
    codec,
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: CodecEvalOptions = CodecEvalOptions(),
    model_label: str = "",
    random_init: bool = False,
    command: str = "",
) -> CodecEvalResult:
    """Resynthesize and score a manifest, then write the report files to ``out_dir``.

    Args:
        codec: a ``Codec`` (or any object with its encode/decode API and properties).
        manifest: JSONL manifest of the test utterances.
        out_dir: output directory (created).
        options: depths, limit, metrics, figures.
        model_label: how the model is named in the report.
        random_init: say in the report that the weights are random.
        command: the command line, for the report header.

    Raises:
        FileNotFoundError: the manifest or an audio file is missing.
        ValueError: an invalid option, an empty manifest, unreadable audio.
        MissingExtraError: a requested metric's extra is not installed.
    """
    from tqdm import tqdm

    from codec.audio import load_audio, save_audio
    from codec.evaluation.codec_report import write_codec_report
    from codec.evaluation.plots import SpectrogramRow
    from codec.manifest import read_manifest

    utterances = read_manifest(manifest)
    if options.limit is not None:
        if options.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {options.limit}")
        utterances = utterances[: options.limit]
    if not utterances:
        raise ValueError(f"{manifest}: the manifest has no utterances")
    depths = tuple(sorted(set(options.num_codebooks))) or (codec.num_codebooks,)
    bad = [q for q in depths if not 1 <= q <= codec.num_codebooks]
    if bad:
        raise ValueError(f"num_codebooks {bad} outside 1..{codec.num_codebooks}")
    scorer = Scorer(options.metrics)
    scorer.load()  # fail on a missing extra before the first utterance, not after it
    per_layer_bits = codec.bitrate / codec.num_codebooks
    result = CodecEvalResult(
        model=model_label or getattr(codec.config, "name", "codec"),
        model_name=getattr(codec.config, "name", type(codec).__name__),
        random_init=random_init,
        num_parameters=sum(p.numel() for p in codec.parameters()),
        sample_rate=codec.sample_rate,
        frame_rate=codec.frame_rate,
        codebook_size=codec.codebook_size,
        manifest=str(manifest),
        depths=tuple(depths),
        bitrates={q: per_layer_bits * q for q in depths},
        command=command,
        voice_conditioned=bool(getattr(codec, "has_speaker", False)),
    )
    rows = []
    outputs_dir = Path(out_dir) / "audio"
    bar = tqdm(utterances, desc="eval codec", unit="utt", disable=not options.progress, dynamic_ncols=True)
    for index, utt in enumerate(bar):
        wav = load_audio(utt.audio, codec.sample_rate)  # [1, T]; read_manifest resolved the path
        duration = wav.shape[-1] / codec.sample_rate
        original = scorer.score(wav, codec.sample_rate, text=utt.text)
        embedding = scorer.embed(wav, codec.sample_rate)
        result.records.append(CodecRecord(utt.id, utt.speaker, ORIGINAL, None, None, duration, original))
        outputs = resynthesize(codec, wav, depths, options.device)
        for q, out in outputs.items():
            scores = scorer.score(out, codec.sample_rate, text=utt.text, reference=wav, reference_embedding=embedding)
            record = CodecRecord(utt.id, utt.speaker, system_name(q), q, result.bitrates[q], duration, scores)
            result.records.append(record)
        if index < options.save_audio:
            for q, out in outputs.items():
                save_audio(outputs_dir / f"{safe_name(utt.id)}_{q}cb.wav", out, codec.sample_rate)
        if index < options.plot_utterances:
            rows.append(SpectrogramRow(utt.id, wav, {system_name(q): out for q, out in outputs.items()}))
        deepest = result.records_of(system_name(depths[-1]))
        pesq_values = [r.scores.pesq for r in deepest if math.isfinite(r.scores.pesq)]
        if pesq_values:
            bar.set_postfix(pesq=f"{sum(pesq_values) / len(pesq_values):.2f}")
    if options.probe_train:
        from codec.evaluation.content import content_scores

        result.content = content_scores(
            codec, read_manifest(options.probe_train), utterances, progress=options.progress
        )
        result.content["train_manifest"] = str(options.probe_train)
    write_codec_report(result, out_dir, rows)
    return result


def resynthesize(codec, wav: torch.Tensor, depths: Sequence[int], device: str = "cpu") -> dict[int, torch.Tensor]:
    """Encode ``wav [1, T]`` once at the deepest depth and decode each depth's prefix of the codes (a codec with a
    voice conditioner takes the voice from the deepest codes: one vector per utterance).

    Returns:
        depth -> resynthesis ``[1, T]`` (the codec's padding is cut off), float32 on the CPU.
    """
    with torch.inference_mode():
        x = wav.to(device)[None]  # [1, 1, T]
        codes = codec.encode(x, num_codebooks=max(depths))  # [1, Q, F]
        outputs = {}
        for q in depths:
            y = codec.decode(codes[:, :q], reference=codes)  # [1, 1, F * hop]; a voice conditioner reads all levels
            outputs[q] = y[0, :, : wav.shape[-1]].float().cpu()  # [1, T]
    return outputs


def safe_name(text: str) -> str:
    """A file-name-safe version of an utterance id."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:120] or "utt"


__all__ = [
    "CodecEvalOptions",
    "CodecEvalResult",
    "CodecRecord",
    "evaluate_codec",
    "load_codec",
    "parse_depths",
    "resynthesize",
]
