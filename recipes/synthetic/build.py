"""``ucodec prepare synthetic OUT_DIR --hours H``: the offline multi-speaker corpus, stage by stage.

Stages (each ends with an ``OUT_DIR/.<stage>.done`` marker and is skipped when the marker exists):

1. ``probe``: every installed candidate identity reads the fixed probe sentences (``probe/``).
2. ``select``: speaker-embedding centroids of the probes; near-duplicate identities are dropped
   (cosine >= ``probe_threshold``, stricter than the final bound to leave a margin) -> ``identities.json``.
3. ``plan``: the seeded sentence assignment and the test-unseen speakers -> ``plan.json``.
4. ``synthesize``: the work units on ``workers`` processes -> ``wavs/`` and ``units/``.
5. ``verify``: centroids from the corpus itself; any pair at or above ``threshold`` loses one identity.
6. ``manifests``: ``all``, ``train``, ``dev``, ``test-seen``, ``test-unseen`` ``.jsonl`` (audio paths relative to
   ``OUT_DIR``) and the corpus report (``report.json``, ``corpus.md``, ``corpus.png``).

A rerun of a finished corpus is a no-op; a killed run resumes (finished units are reused, wavs are only ever
renamed into place complete). ``plan.json`` records the seed and hours; asking for other ones in the same directory
is refused rather than silently mixing two corpora.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from codec.atomic import write_json_atomic
from codec.manifest import Utterance, merge, write_manifest
from recipes.synthetic import identity as ident_mod
from recipes.synthetic.engines import missing_tools, voice_available
from recipes.synthetic.plan import PROBE_TEXTS, Assignment, choose_unseen, fit_rate, make_plan, split
from recipes.synthetic.render import Job, run_jobs
from recipes.synthetic.voices import Identity, candidates

MIN_IDENTITIES = 6  # 4 unseen + 2 seen is the least that makes all four splits


@dataclass(frozen=True)
class SyntheticConfig:
    """Options of the synthetic corpus recipe."""

    hours: float = 10.0  # audio to produce, all splits together
    seed: int = 0  # chooses the sentences and the unseen speakers
    workers: int = 2  # rendering processes (one per core)
    engines: tuple[str, ...] | None = None  # restrict to these engines (None = all installed)
    voices: tuple[str, ...] | None = None  # restrict to these candidate identities (None = all)
    identity_check: bool = True  # drop near-duplicate identities with the resemblyzer speaker encoder
    probe_threshold: float = 0.80  # selection bound on the probe centroids (margin below `threshold`)
    threshold: float = 0.85  # bound that every kept pair of corpus centroids must respect
    min_seconds: float = 1.5  # utterance window
    max_seconds: float = 15.0
    verify_samples: int = 8  # utterances per speaker for the corpus centroids
    asr_samples: int = 0  # utterances per speaker for the Whisper WER table (0 = skip; needs the [eval] extra)
    report: str | None = None  # also write the markdown report here (PNG beside it)


def _done(out: Path, stage: str) -> Path:
    return out / f".{stage}.done"


def _mark(out: Path, stage: str, started: float) -> None:
    write_json_atomic(_done(out, stage), {"seconds": round(time.time() - started, 1)})


def _log(msg: str) -> None:
    print(f"[synthetic] {msg}", flush=True)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _identity(obj: dict) -> Identity:
    return Identity(**obj)


def probe(out: Path, cfg: SyntheticConfig) -> dict:
    """Stage 1: probe renders of every available candidate; returns ``{name: {identity, lengths, durations}}``."""
    path = out / "probe" / "probe.json"
    if _done(out, "probe").is_file():
        return _load(path)
    started = time.time()
    pool = candidates(cfg.engines, cfg.voices)
    cands = [c for c in pool if voice_available(c.engine, c.voice)]
    missing = [c.name for c in pool if c not in cands]
    if missing:
        _log(f"{len(missing)} candidate voices are not installed and are skipped: {', '.join(missing)}")
    if len(cands) < MIN_IDENTITIES:
        raise FileNotFoundError(
            f"only {len(cands)} voices installed (need {MIN_IDENTITIES}); run: bash recipes/synthetic/install.sh"
        )
    jobs = [
        Job(c.name, c, tuple((f"{c.name}_probe{i}", t) for i, t in enumerate(PROBE_TEXTS)), str(out / "probe"), 0.3, 30)
        for c in cands
    ]
    results = {r["unit"]: r for r in run_jobs(jobs, cfg.workers, "probe")}
    info = {}
    for c in cands:
        utts = results[c.name]["utterances"]
        if len(utts) >= 2:
            info[c.name] = {
                "identity": asdict(c),
                "lengths": [len(u["text"]) for u in utts],
                "durations": [u["duration"] for u in utts],
                "wavs": [u["audio"] for u in utts],
            }
    write_json_atomic(path, info)
    _mark(out, "probe", started)
    return info


def select(out: Path, cfg: SyntheticConfig, probes: dict) -> dict:
    """Stage 2: keep distinct identities; returns the content of ``identities.json``."""
    path = out / "identities.json"
    if _done(out, "select").is_file():
        return _load(path)
    started = time.time()
    names = list(probes)
    if cfg.identity_check:
        groups = {n: [out / "probe" / w for w in probes[n]["wavs"]] for n in names}
        cents = ident_mod.centroids(groups, cfg.workers)
        sel = ident_mod.select_distinct(names, cents, cfg.probe_threshold)
        kept, dropped = sel.kept, sel.dropped
    else:
        kept, dropped = names, {}
    if len(kept) < MIN_IDENTITIES:
        raise ValueError(f"only {len(kept)} distinct identities ({kept}); need {MIN_IDENTITIES}: install more voices")
    result = {
        "check": "resemblyzer" if cfg.identity_check else "none",
        "probe_threshold": cfg.probe_threshold,
        "kept": kept,
        "dropped": {n: {"duplicate_of": d[0], "cosine": d[1]} for n, d in dropped.items()},
    }
    write_json_atomic(path, result)
    _mark(out, "select", started)
    _log(f"{len(kept)} distinct identities kept, {len(dropped)} near-duplicates dropped")
    return result


def plan(out: Path, cfg: SyntheticConfig, probes: dict, selected: dict) -> list[Assignment]:
    """Stage 3: the seeded plan (``plan.json``); refuses a directory planned with another seed or size."""
    from recipes.synthetic.texts import load_sentences

    path = out / "plan.json"
    if _done(out, "plan").is_file():
        stored = _load(path)
        if (stored["seed"], stored["hours"]) != (cfg.seed, cfg.hours):
            raise ValueError(
                f"{out} holds a corpus planned with --seed {stored['seed']} --hours {stored['hours']:g}; "
                f"use another OUT_DIR for --seed {cfg.seed} --hours {cfg.hours:g}"
            )
        return [
            Assignment(_identity(a["identity"]), a["unseen"], tuple(map(tuple, a["sentences"])))
            for a in stored["assignments"]
        ]
    started = time.time()
    idents = [_identity(probes[n]["identity"]) for n in selected["kept"]]
    rates = {n: fit_rate(probes[n]["lengths"], probes[n]["durations"]) for n in selected["kept"]}
    unseen = choose_unseen(selected["kept"], cfg.seed)
    window = (cfg.min_seconds, cfg.max_seconds)
    assignments = make_plan(idents, rates, load_sentences(), cfg.hours, cfg.seed, unseen, window)
    stored = {
        "seed": cfg.seed,
        "hours": cfg.hours,
        "unseen": unseen,
        "assignments": [
            {"identity": asdict(a.identity), "unseen": a.unseen, "sentences": [list(s) for s in a.sentences]}
            for a in assignments
        ],
    }
    write_json_atomic(path, stored)
    _mark(out, "plan", started)
    return assignments


def synthesize(out: Path, cfg: SyntheticConfig, assignments: list[Assignment]) -> tuple[list[Utterance], list[dict]]:
    """Stage 4: render every unit (finished units are reused); returns (utterances, rejected)."""
    started = time.time()
    jobs = [
        Job(unit, a.identity, items, str(out), cfg.min_seconds, cfg.max_seconds)
        for a in assignments
        for unit, items in a.units()
    ]
    results = run_jobs(jobs, cfg.workers, "synthesize")
    by_unit = {r["unit"]: r for r in results}
    utts, rejected = [], []
    for job in jobs:  # plan order, not completion order: the manifests must not depend on scheduling
        utts += [Utterance.from_dict(e) for e in by_unit[job.unit]["utterances"]]
        rejected += by_unit[job.unit]["rejected"]
    if not _done(out, "synthesize").is_file():
        _mark(out, "synthesize", started)
    return utts, rejected


def verify(out: Path, cfg: SyntheticConfig, utts: list[Utterance]) -> dict:
    """Stage 5: corpus centroids and the final near-duplicate pruning (``verify.json``)."""
    import random

    import numpy as np

    path = out / "verify.json"
    if _done(out, "verify").is_file():
        return _load(path)
    started = time.time()
    names = sorted({u.speaker for u in utts})
    hours = {n: sum(u.duration for u in utts if u.speaker == n) / 3600 for n in names}
    result: dict = {"check": "none", "threshold": cfg.threshold, "speakers": names, "dropped": {}}
    if cfg.identity_check:
        groups = {}
        for n in names:
            mine = sorted((u for u in utts if u.speaker == n), key=lambda u: u.id)
            pick = random.Random(f"verify:{n}").sample(mine, min(cfg.verify_samples, len(mine)))
            groups[n] = [out / u.audio for u in pick]
        cents = ident_mod.centroids(groups, cfg.workers)
        dropped = ident_mod.prune_duplicates(names, cents, cfg.threshold, hours)
        sim = ident_mod.cosine_matrix(cents, names)
        result.update(
            check="resemblyzer",
            cosine=np.round(sim, 4).tolist(),
            dropped={n: {"duplicate_of": d[0], "cosine": d[1]} for n, d in dropped.items()},
        )
    write_json_atomic(path, result)
    _mark(out, "verify", started)
    return result


def intelligibility(out: Path, cfg: SyntheticConfig, utts: list[Utterance]) -> dict[str, float]:
    """Optional stage: Whisper WER per speaker (``asr.json``); empty when ``cfg.asr_samples`` is 0."""
    from recipes.synthetic.intelligibility import speaker_wer

    path = out / "asr.json"
    if cfg.asr_samples <= 0:
        return _load(path) if path.is_file() else {}
    if _done(out, "asr").is_file():
        return _load(path)
    started = time.time()
    result = speaker_wer(out, utts, cfg.asr_samples, threads=cfg.workers)
    write_json_atomic(path, result)
    _mark(out, "asr", started)
    return result


def validate(cfg: SyntheticConfig) -> None:
    """Check the options alone, before anything is probed or installed: a bad option is the user's first error.

    Raises:
        ValueError: a non-positive size, an empty duration window, or an unknown engine or identity.
    """
    from recipes.synthetic.voices import candidates

    if cfg.hours <= 0:
        raise ValueError(f"--hours must be positive, got {cfg.hours}")
    if cfg.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {cfg.workers}")
    if not 0 < cfg.min_seconds < cfg.max_seconds:
        raise ValueError(f"need 0 < min_seconds < max_seconds, got {cfg.min_seconds} and {cfg.max_seconds}")
    candidates(cfg.engines, cfg.voices)  # raises on unknown engines or identity names


def build_synthetic(out_dir: str | os.PathLike, cfg: SyntheticConfig) -> dict:
    """Build (or finish, or confirm) the synthetic corpus in ``out_dir``; returns the report dict.

    Raises:
        FileNotFoundError: required programs or voices are missing (the message says what to install).
        ValueError: bad options, or ``out_dir`` holds a corpus of another seed/size.
    """
    from recipes.synthetic.report import write_report

    validate(cfg)
    out = Path(out_dir)
    if _done(out, "manifests").is_file():
        _log(f"{out} is complete (remove {_done(out, 'manifests')} to rebuild the manifests); nothing to do")
        return _load(out / "report.json")
    tools = missing_tools()
    if tools:
        raise FileNotFoundError(f"missing programs: {', '.join(tools)}; run: bash recipes/synthetic/install.sh")
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    probes = probe(out, cfg)
    selected = select(out, cfg, probes)
    assignments = plan(out, cfg, probes, selected)
    unseen = [a.identity.name for a in assignments if a.unseen]
    utts, rejected = synthesize(out, cfg, assignments)
    checked = verify(out, cfg, utts)
    utts = [u for u in utts if u.speaker not in checked["dropped"]]
    splits = split(utts, [n for n in unseen if n not in checked["dropped"]], cfg.seed)
    for name, part in splits.items():
        write_manifest(out / f"{name}.jsonl", part)
    write_manifest(out / "all.jsonl", merge(*(part for _, part in splits.items())))
    asr = intelligibility(out, cfg, [u for _, part in splits.items() for u in part])
    stage_seconds = {p.name[1:-5]: _load(p).get("seconds") for p in sorted(out.glob(".*.done"))}
    elapsed = time.time() - started
    report = write_report(out, cfg, splits, selected, checked, rejected, stage_seconds, elapsed, asr)
    _mark(out, "manifests", started)
    return report
