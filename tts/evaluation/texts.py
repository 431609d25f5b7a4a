"""``ucodec eval tts-texts``: does the model read new sentences in its own voice?

``eval tts`` scores test lines that have recordings, each with a same-speaker voice prompt. This is the other half
of what a new user does first: type sentences that are in no corpus and synthesize them **without a prompt** (the
model's default voice). Each text line is synthesized once per seed and transcribed by Whisper tiny.en; the report
gives the corpus-level WER/CER over all (line, seed) pairs, and every transcript, so that what the model says can be
read next to what it was asked to say.

Files: ``OUT/report.md`` and ``OUT/metrics.jsonl`` (one line per text and seed), both written atomically.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from codec.evaluation.codec_report import corpus_rate, flat_record
from codec.evaluation.report import markdown_table, percent, software_line, timestamp, write_jsonl, write_markdown
from codec.evaluation.scoring import Scorer, UtteranceScores
from codec.evaluation.stats import summarize


@dataclass(frozen=True)
class TextRecord:
    """One synthesis of one text line."""

    index: int  # line number among the file's texts (0-based)
    seed: int
    text: str
    scores: UtteranceScores  # the transcript and its word/character edits
    duration: float  # seconds of audio
    rtf: float  # synthesis wall time / audio seconds


def read_texts(path: str | os.PathLike) -> list[str]:
    """The sentences of a UTF-8 text file, one a line; blank lines and lines starting with ``#`` are skipped.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not UTF-8 text, or no sentence in it.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such text file")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{file}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    texts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not texts:
        raise ValueError(f"{file}: no sentence in it (one a line; '#' starts a comment)")
    return texts


def evaluate_texts(
    synthesizer,
    texts: Sequence[str],
    seeds: Sequence[int],
    sampling: dict | None = None,
    progress: bool = True,
) -> list[TextRecord]:
    """Synthesize every text with every seed and no voice prompt, transcribe each with Whisper.

    Args:
        synthesizer: has ``sample_rate`` and ``synthesize(text, seed=..., **sampling) -> [1, T]``.
        texts: the sentences.
        seeds: sampling seeds (one synthesis per text and seed).
        sampling: decoding overrides passed on (temperature / top_k / top_p).

    Raises:
        ValueError: no texts or seeds, or a synthesis that is empty.
        MissingExtraError: Whisper (the [eval] extra) is not installed.
    """
    from tqdm import tqdm

    if not texts or not seeds:
        raise ValueError("need at least one text and one seed")
    scorer = Scorer(("wer",))
    scorer.load()
    rate = int(synthesizer.sample_rate)
    jobs = [(i, text, seed) for i, text in enumerate(texts) for seed in seeds]
    records = []
    for index, text, seed in tqdm(jobs, desc="eval tts-texts", unit="line", disable=not progress, dynamic_ncols=True):
        start = time.perf_counter()
        wav = torch.as_tensor(synthesizer.synthesize(text, seed=seed, **(sampling or {}))).float().reshape(1, -1)
        elapsed = time.perf_counter() - start
        if wav.shape[-1] == 0:
            raise ValueError(f"text {index + 1} ({text!r}), seed {seed}: the synthesizer returned no audio")
        duration = wav.shape[-1] / rate
        records.append(TextRecord(index, seed, text, scorer.score(wav, rate, text=text), duration, elapsed / duration))
    return records


def corpus_rates(records: Sequence[TextRecord]) -> tuple[float, float]:
    """(WER, CER) over all records: edits summed over reference lengths summed."""
    words = corpus_rate(records, lambda s: s.word_errors, lambda s: s.words)
    return words, corpus_rate(records, lambda s: s.char_errors, lambda s: s.chars)


def write_texts_report(
    records: Sequence[TextRecord], out_dir: str | os.PathLike, model: str, texts_file: str, command: str = ""
) -> Path:
    """Write ``report.md`` and ``metrics.jsonl`` of ``records`` into ``out_dir``; returns report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "metrics.jsonl", (flat_record(r) for r in records))
    wer, cer = corpus_rates(records)
    seeds = sorted({r.seed for r in records})
    summary = [
        ["WER (Whisper tiny.en) ↓", percent(wer)],
        ["CER ↓", percent(cer)],
        ["output duration (s)", summarize(r.duration for r in records).format(2)],
        ["RTF (wall / audio seconds) ↓", summarize(r.rtf for r in records).format(3)],
    ]
    transcripts = markdown_table(
        ["#", "seed", "text", "Whisper heard", "word errors"],
        (
            [r.index + 1, r.seed, _cell(r.text), _cell(r.scores.transcript), f"{r.scores.word_errors}/{r.scores.words}"]
            for r in records
        ),
        align="rrllr",
    )
    body = [
        f"# TTS on new texts, no voice prompt: {model}\n",
        f"- Texts: `{texts_file}`: {len({r.index for r in records})} lines × seeds {', '.join(map(str, seeds))} "
        f"= {len(records)} syntheses in the model's default voice",
        f"- Command: `{command}`" if command else None,
        f"- Run: {timestamp()} · {software_line()}",
        "",
        "## Results",
        "",
        "WER/CER are corpus-level over all syntheses after text normalisation; mean ± 95 % confidence interval for "
        "the others. There is no recording to score beside them: compare with the ground truth of `eval tts`.",
        "",
        markdown_table(["metric", "tts"], summary),
        "",
        "## Transcripts",
        "",
        transcripts,
        "",
        "## Files\n\n- `metrics.jsonl`: one line per text and seed\n",
    ]
    return write_markdown(out / "report.md", body)


def _cell(text: str) -> str:
    """``text`` safe inside a markdown table cell (one line, pipes escaped)."""
    return " ".join(text.split()).replace("|", "\\|")
