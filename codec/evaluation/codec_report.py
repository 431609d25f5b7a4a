"""Files of an ``eval codec`` run: ``report.md``, ``metrics.jsonl``, ``spectrograms.png``, ``histograms.png``.

The report's table has one column per system (the original recording, then each RVQ depth with its bitrate) and
one row per metric: mean ± 95 % CI over utterances for the per-utterance metrics, corpus-level rates (sum of edits
over sum of reference lengths) for WER and CER.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from codec.evaluation.codec_eval import ORIGINAL, CodecEvalResult, CodecRecord, system_name
from codec.evaluation.report import markdown_table, percent, software_line, timestamp, write_jsonl, write_markdown
from codec.evaluation.scoring import UtteranceScores
from codec.evaluation.stats import bootstrap_rate_ci, summarize


@dataclass(frozen=True)
class MetricRow:
    """One row of the results table."""

    label: str  # shown in the report
    key: str  # attribute of UtteranceScores (also the histogram title)
    digits: int  # decimals shown
    reference_based: bool  # undefined for the original (it is the reference)


METRIC_ROWS = (
    MetricRow("PESQ-WB ↑", "pesq", 3, True),
    MetricRow("STOI ↑", "stoi", 3, True),
    MetricRow("ESTOI ↑", "estoi", 3, True),
    MetricRow("mel distance ↓", "mel_distance", 3, True),
    MetricRow("speaker SIM to original ↑", "sim", 3, True),
    MetricRow("DNSMOS OVRL ↑", "dnsmos_ovrl", 2, False),
    MetricRow("DNSMOS SIG ↑", "dnsmos_sig", 2, False),
    MetricRow("DNSMOS BAK ↑", "dnsmos_bak", 2, False),
    MetricRow("DNSMOS P.808 ↑", "dnsmos_p808", 2, False),
)


def corpus_rate(
    records: Sequence[CodecRecord],
    errors: Callable[[UtteranceScores], int | None],
    length: Callable[[UtteranceScores], int | None],
) -> float:
    """Sum of edits over sum of reference lengths; nan when no record has a transcript."""
    pairs = [(errors(r.scores), length(r.scores)) for r in records if length(r.scores) is not None]
    if not pairs:
        return math.nan
    total = sum(n for _, n in pairs)
    return sum(e for e, _ in pairs) / total if total else math.nan


def results_table(result: CodecEvalResult) -> str:
    """The markdown results table (systems as columns)."""
    systems = result.systems()
    header = ["metric", ORIGINAL] + [f"{system_name(q)} ({result.bitrates[q]:.0f} bps)" for q in result.depths]
    rows = []
    for row in METRIC_ROWS:
        cells = [row.label]
        for system in systems:
            if row.reference_based and system == ORIGINAL:
                cells.append("–")
                continue
            cells.append(summarize(getattr(r.scores, row.key) for r in result.records_of(system)).format(row.digits))
        if any(c != "–" for c in cells[1:]):
            rows.append(cells)
    for label, errors, length in (
        ("WER (Whisper tiny.en) ↓", lambda s: s.word_errors, lambda s: s.words),
        ("CER ↓", lambda s: s.char_errors, lambda s: s.chars),
    ):
        cells = [label] + [rate_with_ci(result.records_of(s), errors, length) for s in systems]
        if any(c != "–" for c in cells[1:]):
            rows.append(cells)
    return markdown_table(header, rows)


def rate_with_ci(records: Sequence[CodecRecord], errors, length) -> str:
    """``"52.8 % [48.1, 57.6]"``: a corpus-level rate and its 95 % bootstrap interval over utterances."""
    rate = corpus_rate(records, errors, length)
    pairs = [(errors(r.scores), length(r.scores)) for r in records if length(r.scores) is not None]
    low, high = bootstrap_rate_ci(pairs)
    if not math.isfinite(rate) or not math.isfinite(low):
        return percent(rate)
    return f"{percent(rate)} [{100 * low:.1f}, {100 * high:.1f}]"


def content_table(content: dict) -> str:
    """The "content of the first levels" table: the codec's CTC head PER and the fixed-protocol probe PERs."""
    header = ["reader", "levels", "PER ↓"]
    rows = []
    if content.get("head_per") is not None:
        rows.append(["the codec's CTC head (greedy)", f"1–{content['levels']}", percent(content["head_per"])])
    if content.get("frames_per") is not None:
        rows.append(["the codec's frame classifier (argmax)", f"1–{content['levels']}", percent(content["frames_per"])])
    for k, per in sorted(content["probe_per"].items(), key=lambda kv: int(kv[0])):
        rows.append(["fixed-protocol CTC probe", "1" if int(k) == 1 else f"1–{k}", percent(per)])
    if content.get("input_per") is not None:
        rows.append(["fixed-protocol CTC probe, phone input before quantization", "–", percent(content["input_per"])])
    return markdown_table(header, rows)


def histogram_data(result: CodecEvalResult) -> dict[str, dict[str, list[float]]]:
    """metric -> system -> per-utterance values, for :func:`codec.evaluation.plots.plot_histograms`."""
    data: dict[str, dict[str, list[float]]] = {}
    for row in METRIC_ROWS[:6]:  # the DNSMOS sub-scores would only crowd the figure
        data[row.label] = {
            system: [getattr(r.scores, row.key) for r in result.records_of(system)]
            for system in result.systems()
            if not (row.reference_based and system == ORIGINAL)
        }
    data["WER per utterance ↓"] = {s: [r.scores.wer for r in result.records_of(s)] for s in result.systems()}
    return data


def write_codec_report(result: CodecEvalResult, out_dir: str | os.PathLike, rows: Sequence) -> Path:
    """Write report.md, metrics.jsonl and the figures of ``result`` into ``out_dir``; returns report.md's path.

    Args:
        result: what :func:`codec.evaluation.codec_eval.evaluate_codec` measured.
        out_dir: output directory (created).
        rows: :class:`codec.evaluation.plots.SpectrogramRow` for the spectrogram figure (may be empty).
    """
    from codec.evaluation.plots import plot_histograms, plot_spectrograms

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "metrics.jsonl", (flat_record(r) for r in result.records))
    figures = []
    if rows:
        plot_spectrograms(out / "spectrograms.png", rows, result.sample_rate)
        figures.append(("Spectrograms: original vs resynthesis", "spectrograms.png"))
    try:
        plot_histograms(out / "histograms.png", histogram_data(result))
        figures.append(("Per-utterance metric distributions", "histograms.png"))
    except ValueError:
        pass  # no metric produced a finite value (e.g. --metrics none): nothing to plot
    originals = result.records_of(ORIGINAL)
    hours = sum(r.duration for r in originals) / 3600
    warning = (
        "> **Random weights**: the model was built from a config, not a trained release; the numbers only show "
        "that the pipeline runs.\n"
        if result.random_init
        else None
    )
    lines = [
        f"# Codec evaluation: {result.model_name}\n",
        warning,
        f"- Model: `{result.model}` — {result.num_parameters / 1e6:.2f} M parameters, {result.sample_rate} Hz, "
        f"{result.frame_rate:g} Hz frames, codebook size {result.codebook_size}",
        f"- Test set: `{result.manifest}` — {len(originals)} utterances, {hours * 60:.1f} min",
        f"- Command: `{result.command}`" if result.command else None,
        f"- Voice: the decoder reads one voice vector pooled from the utterance's own {max(result.depths)}-level "
        "codes at every depth (a TTS gives it the prompt's)"
        if result.voice_conditioned
        else None,
        f"- Run: {timestamp()} · {software_line()}",
        "",
        "## Results",
        "",
        "Mean ± 95 % confidence interval over utterances; WER and CER are corpus-level (all edits / all reference "
        "words) with a 95 % bootstrap interval over utterances in brackets. Text is normalised before scoring "
        "(case, punctuation, numbers as words). The *original* column scores the input recordings themselves, so it "
        "shows the ASR's and DNSMOS's own floor.",
        "",
        results_table(result),
    ]
    if result.content is not None:
        c = result.content
        lines += [
            "",
            "## Content of the first levels (phoneme error rate)",
            "",
            f"Phonemes of the transcripts (espeak-ng, no stress marks) read from the frozen sums of the first levels "
            f"of {c['test_utterances']} test utterances. The probe is trained afresh on {c['train_utterances']} "
            f"utterances of `{c.get('train_manifest', '?')}` with a fixed protocol ({c['protocol']['steps']} steps, "
            "seed 0), so it does not depend on the decoder and any two codecs compare "
            "(`codec/evaluation/content.py`).",
            "",
            content_table(c),
        ]
    for title, name in figures:
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    lines += [
        "## Files",
        "",
        "- `metrics.jsonl`: one line per utterance and system (`null` = not computed)",
        "- `audio/`: resyntheses of the first utterances",
        "",
    ]
    return write_markdown(out / "report.md", lines)


def flat_record(record) -> dict:
    """A metrics.jsonl line of any record dataclass with a ``scores`` field (:class:`UtteranceScores`): its fields
    with the scores inlined, plus utterance WER/CER."""
    from dataclasses import asdict

    line = {k: v for k, v in asdict(record).items() if k != "scores"}
    line.update(asdict(record.scores))
    line["wer"], line["cer"] = record.scores.wer, record.scores.cer
    return line
