"""Presenting ``bench codec`` results: the console table, the ratios, and the ``docs/benchmarks.md`` section.

Every number in the document comes from one run of one command, which the document quotes together with the
machine it ran on, so the ratios can be checked by running it again.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field

from codec.evaluation.bench import LongFileResult, MemoryResult, SpeedResult
from codec.evaluation.report import markdown_table, software_line, timestamp

GOAL_SPEEDUP = 3.0  # our shipped codec should be at least this much faster than EnCodec (enc + dec)
REFERENCE_PEER = "EnCodec 24 kHz"


@dataclass
class BenchCodecReport:
    """All results of one ``bench codec`` run."""

    command: str
    threads: int
    seconds: float
    repeats: int
    warmup: int
    speed: list[SpeedResult]
    memory: dict[str, MemoryResult] = field(default_factory=dict)  # spec -> result
    long_file: list[LongFileResult] = field(default_factory=list)
    long_seconds: float = 0.0
    machine: str = ""
    load_before: str = ""
    load_after: str = ""
    when: str = field(default_factory=timestamp)


def machine_description() -> str:
    """CPU model, cores usable by this process, RAM, OS and software versions, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kib = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal"))
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {usable} cores usable{memory}; {software_line()}"


def load_average() -> str:
    """The 1/5/15-minute load averages, or ``n/a``."""
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def speedup(result: SpeedResult, reference: SpeedResult) -> float:
    """How many times faster ``result`` is than ``reference`` (enc + dec wall-clock medians)."""
    return reference.total_s / result.total_s


def cpu_speedup(result: SpeedResult, reference: SpeedResult) -> float:
    """How many times less CPU time ``result`` needs than ``reference`` (enc + dec medians)."""
    return reference.cpu_s / result.cpu_s if result.cpu_s > 0 else float("nan")


def peers_of(report: BenchCodecReport) -> list[SpeedResult]:
    return [r for r in report.speed if r.kind == "peer"]


def speed_table(report: BenchCodecReport) -> str:
    """Markdown table: one row per contestant, one speed-up column per peer."""
    peers = peers_of(report)
    header = ["model", "params", "rate", "bitrate", "encode", "decode", "enc+dec", "RTF", "× real time", "CPU s / s"]
    header += [f"vs {p.name}" for p in peers]
    if report.memory:
        header += ["peak RSS (model)"]
    rows = []
    for r in report.speed:
        row = [
            r.name + (" (random init)" if r.random_init and r.kind == "ours" else ""),
            f"{r.num_parameters / 1e6:.1f} M",
            f"{r.sample_rate / 1000:g} kHz",
            f"{r.bitrate / 1000:.2f} kbps",
            f"{1000 * r.encode_s:.0f} ms",
            f"{1000 * r.decode_s:.0f} ms",
            f"{1000 * r.total_s:.0f} ms",
            f"{r.rtf:.4f}",
            f"{r.realtime:.1f}",
            f"{r.cpu_rtf:.3f}",
        ]
        row += [f"{speedup(r, p):.2f}× ({cpu_speedup(r, p):.2f}×)" for p in peers]
        if report.memory:
            m = report.memory.get(r.spec)
            row.append(f"{m.peak_mb:.0f} MiB ({m.model_mb:+.0f})" if m else "–")
        rows.append(row)
    return markdown_table(header, rows)


def duration_text(seconds: float) -> str:
    """``600 -> "10 min"``, ``90 -> "1.5 min"``, ``4 -> "4 s"``."""
    return f"{seconds / 60:.3g} min" if seconds >= 60 else f"{seconds:.3g} s"


def long_table(report: BenchCodecReport) -> str:
    rows = [
        [
            r.name,
            duration_text(r.audio_seconds),
            duration_text(r.chunk_seconds),
            f"{r.wall_seconds:.1f} s",
            f"{r.realtime:.1f}",
            f"{r.peak_mb:.0f} MiB ({r.peak_mb - r.baseline_mb:+.0f})",
        ]
        for r in report.long_file
    ]
    header = ["model", "audio", "chunk", "wall time", "× real time", "peak RSS (model)"]
    return markdown_table(header, rows)


def headline(report: BenchCodecReport) -> list[str]:
    """One sentence per (our model, peer) pair, the first of ours checked against the goal."""
    ours = [r for r in report.speed if r.kind == "ours"]
    lines = []
    for r in ours:
        for p in peers_of(report):
            lines.append(
                f"- **{r.name}** is **{speedup(r, p):.2f}×** as fast as {p.name} (enc+dec wall-clock median; "
                f"CPU-time ratio {cpu_speedup(r, p):.2f}×)."
            )
    reference = next((p for p in peers_of(report) if p.name == REFERENCE_PEER), None)
    if ours and reference is not None:
        first = ours[0]
        ratio = speedup(first, reference)
        if ratio >= GOAL_SPEEDUP:
            lines.append(f"- Goal (≥ {GOAL_SPEEDUP:g}× EnCodec for {first.name}): **met** ({ratio:.2f}×).")
        else:
            part = "decoder" if first.decode_s > first.encode_s else "encoder"
            lines.append(
                f"- Goal (≥ {GOAL_SPEEDUP:g}× EnCodec for {first.name}): **not met** ({ratio:.2f}×). The {part} "
                f"takes most of its time ({1000 * max(first.encode_s, first.decode_s):.0f} ms of "
                f"{1000 * first.total_s:.0f} ms); a cheaper {part} configuration is what would close the gap."
            )
    return lines


def console_summary(report: BenchCodecReport) -> str:
    """What ``bench codec`` prints: the speed table, the long-file table and the ratios."""
    parts = [speed_table(report)]
    if report.long_file:
        parts.append(long_table(report))
    parts.append("\n".join(headline(report)))
    return "\n".join(parts)


def markdown_section(report: BenchCodecReport) -> str:
    """The ``bench codec`` section of docs/benchmarks.md."""
    spread = ", ".join(f"{r.name} {1000 * min(r.rounds):.0f}–{1000 * max(r.rounds):.0f} ms" for r in report.speed)
    lines = [
        "## Codec speed: encode + decode on CPU",
        "",
        'Command (run from the repository root after `pip install -e ".[eval,bench]"`):',
        "",
        "```bash",
        report.command,
        "```",
        "",
        f"- Machine: {report.machine}",
        f"- Run: {report.when}; load average (1/5/15 min) {report.load_before} before, {report.load_after} after",
        f"- Method: {report.seconds:g} s of audio at each model's native rate, torch limited to {report.threads} "
        f"threads, {report.warmup} warm-up round(s) discarded, median of {report.repeats} timed rounds. The models "
        "run **interleaved** (each round runs every model once, in a rotated order) so that load from other "
        "processes falls on all of them alike. Peer models are built with random weights from their published "
        "architectures (speed does not depend on weight values); EnCodec at 1.5 kbps.",
        "- **This CPU is shared with a background training run**, so absolute times are noisy (per-round range: "
        f"{spread}). The ratios, measured in the same interleaved rounds, are the numbers to quote.",
        "- `CPU s / s`: CPU seconds of the process (both threads) per second of audio, median; the `vs` columns "
        "give the wall-clock speed-up and, in parentheses, the CPU-time ratio: a second view that does not count time "
        "spent waiting for a core, though it still feels cache and memory-bandwidth contention.",
        "- Peak RSS: each model measured alone in a fresh subprocess (`python -m codec.evaluation.bench_probe`); "
        "in parentheses, what the model added to the process's baseline (Python + torch already imported).",
        "",
        speed_table(report),
        *headline(report),
        "",
    ]
    if report.long_file:
        lines += [
            f"### Long file: {duration_text(report.long_seconds)}, streamed in chunks",
            "",
            "The file is read, encoded, decoded and written chunk by chunk (`codec.audio.iter_audio_chunks`), so "
            "memory is bounded by the chunk length, not the file length: compare the peak RSS with the "
            f"{duration_text(report.seconds)} run above.",
            "",
            long_table(report),
        ]
    return "\n".join(lines) + "\n"
