"""Files of an ``eval tts`` run: ``report.md``, ``metrics.jsonl`` and ``histograms.png``.

Columns are the systems (the TTS, and the real recordings of the same lines as *ground truth*); rows are the
metrics, mean ± 95 % CI over lines, with WER/CER corpus-level and identification as a percentage.
"""

from __future__ import annotations

import os
from pathlib import Path

from codec.evaluation.codec_report import corpus_rate, flat_record
from codec.evaluation.report import markdown_table, percent, software_line, timestamp, write_jsonl, write_markdown
from codec.evaluation.stats import summarize
from tts.evaluation.evaluate import TtsEvalResult

SYSTEMS = ("tts", "ground truth")

# (label, record -> value, decimals, applies to ground truth)
ROWS = (
    ("speaker SIM to prompt ↑", lambda r: r.scores.sim, 3, True),
    ("speaker SIM to own speaker centroid ↑", lambda r: r.sim_speaker, 3, True),
    ("speaker SIM to other speakers ↓", lambda r: r.sim_other, 3, True),
    ("DNSMOS OVRL ↑", lambda r: r.scores.dnsmos_ovrl, 2, True),
    ("DNSMOS SIG ↑", lambda r: r.scores.dnsmos_sig, 2, True),
    ("DNSMOS BAK ↑", lambda r: r.scores.dnsmos_bak, 2, True),
    ("DNSMOS P.808 ↑", lambda r: r.scores.dnsmos_p808, 2, True),
    ("RTF (wall / audio seconds) ↓", lambda r: r.rtf, 3, False),
    ("first-chunk latency (s) ↓", lambda r: r.first_chunk_s, 3, False),
    ("output duration (s)", lambda r: r.duration, 2, True),
)


def results_table(result: TtsEvalResult) -> str:
    """The markdown results table."""
    rows = []
    for label, get, digits, for_truth in ROWS:
        cells = [label]
        for system in SYSTEMS:
            records = result.records_of(system)
            ok = records and (for_truth or system == "tts")
            cells.append(summarize(get(r) for r in records).format(digits) if ok else "–")
        if any(c != "–" for c in cells[1:]):
            rows.append(cells)
    for label, errors, length in (
        ("WER (Whisper tiny.en) ↓", lambda s: s.word_errors, lambda s: s.words),
        ("CER ↓", lambda s: s.char_errors, lambda s: s.chars),
    ):
        cells = [label] + [percent(corpus_rate(result.records_of(s), errors, length)) for s in SYSTEMS]
        if any(c != "–" for c in cells[1:]):
            rows.append(cells)
    cells = ["speaker identified (nearest centroid) ↑"]
    for system in SYSTEMS:
        flags = [r.identified for r in result.records_of(system) if r.identified is not None]
        cells.append(percent(sum(flags) / len(flags)) if flags else "–")
    if any(c != "–" for c in cells[1:]):
        rows.append(cells)
    return markdown_table(["metric", *SYSTEMS], rows)


def write_tts_report(result: TtsEvalResult, out_dir: str | os.PathLike) -> Path:
    """Write report.md, metrics.jsonl and histograms.png of ``result`` into ``out_dir``; returns report.md."""
    from codec.evaluation.plots import plot_histograms

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "metrics.jsonl", (flat_record(r) for r in result.records))
    figure = ""
    data = {
        label: {s: [get(r) for r in result.records_of(s)] for s in SYSTEMS if for_truth or s == "tts"}
        for label, get, _, for_truth in ROWS[:4] + ROWS[7:8]
    }
    data["WER per line ↓"] = {s: [r.scores.wer for r in result.records_of(s)] for s in SYSTEMS}
    try:
        plot_histograms(out / "histograms.png", data)
        figure = "## Per-line metric distributions\n\n![histograms](histograms.png)\n"
    except ValueError:
        pass  # nothing finite to plot
    tts = result.records_of("tts")
    minutes = sum(r.duration for r in tts) / 60
    skipped = (
        f"- Skipped {len(result.skipped)} line(s) whose speaker has no other utterance to prompt with"
        if result.skipped
        else None
    )
    lines = [
        f"# TTS evaluation: {result.model}\n",
        f"- Test set: `{result.manifest}` — {len(tts)} lines, {result.num_speakers} speakers, "
        f"{minutes:.1f} min synthesized at {result.sample_rate} Hz",
        skipped,
        f"- Command: `{result.command}`" if result.command else None,
        f"- Run: {timestamp()} · {software_line()}",
        "",
        "## Results",
        "",
        "Each line is synthesized with the next utterance of the same speaker as the voice prompt. Mean ± 95 % "
        "confidence interval over lines; WER/CER are corpus-level after text normalisation. *ground truth* scores "
        "the real recording of each line, against the same prompt.",
        "",
        results_table(result),
        figure,
        "## Files\n\n- `metrics.jsonl`: one line per test line and system (`null` = not computed)\n",
    ]
    return write_markdown(out / "report.md", lines)
