"""Render one work unit of the synthetic corpus: a batch of sentences read by one identity.

A unit runs inside a worker process. For each sentence the engine writes a raw wav to a scratch directory; sox then
converts it (16 kHz mono 16-bit, the identity's pitch/tempo shift, peak level -2 dBFS) into a temporary file beside
the destination, the duration is checked against the corpus window, and only then is the file renamed into place
(:func:`codec.atomic.atomic_path`). A killed run therefore leaves complete wavs or nothing — never a truncated file.
The unit's result (entries and rejected sentences) is written last, atomically, as ``units/<unit>.json``; that file
is the unit's done-marker, and a rerun reuses the wavs that already exist.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codec.atomic import atomic_path, write_json_atomic
from recipes.synthetic.engines import render
from recipes.synthetic.voices import Identity

SAMPLE_RATE = 16000
PEAK_DB = -2.0  # peak normalisation: engines differ by 20 dB in level, and MBROLA voices clip without it


@dataclass(frozen=True)
class Job:
    """One unit of work."""

    unit: str  # unit name; the result goes to <root>/units/<unit>.json
    identity: Identity  # who reads
    items: tuple[tuple[str, str], ...]  # (utterance id, text), in order
    root: str  # corpus (or probe) directory; wavs go to <root>/wavs/<speaker>/<id>.wav
    min_seconds: float = 1.5  # shorter results are rejected
    max_seconds: float = 15.0  # longer results are rejected


class _Rejected(Exception):
    pass


def unit_path(root: str | Path, unit: str) -> Path:
    """Where the result of ``unit`` is stored."""
    return Path(root) / "units" / f"{unit}.json"


def wav_relpath(speaker: str, utt_id: str) -> str:
    """Audio path of an utterance, relative to the corpus root (manifests store it relative, so corpora move)."""
    return f"wavs/{speaker}/{utt_id}.wav"


def _sox_effects(ident: Identity) -> list[str]:
    effects: list[str] = []
    if ident.pitch:
        effects += ["pitch", str(ident.pitch)]
    if ident.tempo != 1.0:
        effects += ["tempo", "-s", f"{ident.tempo:g}"]
    return effects + ["rate", "-v", str(SAMPLE_RATE), "gain", "-n", f"{PEAK_DB:g}"]


def _convert(raw: Path, dest: Path, ident: Identity, min_s: float, max_s: float) -> float:
    """sox ``raw`` into ``dest`` atomically; returns the duration. Raises ``_Rejected`` outside the window."""
    from codec.audio import audio_info
    from recipes.synthetic.engines import _run

    with atomic_path(dest) as tmp:
        # -R: repeatable (fixed seeds), -D: no dither, so the same input gives the same bytes on every machine
        _run(
            ["sox", "-R", "-D", "-V1", str(raw), "-t", "wav", "-c", "1", "-b", "16", "-e", "signed-integer", str(tmp)]
            + _sox_effects(ident)
        )
        info = audio_info(tmp)
        if info.sample_rate != SAMPLE_RATE:
            raise _Rejected(f"sox wrote {info.sample_rate} Hz")
        if not min_s <= info.duration <= max_s:
            raise _Rejected(f"duration {info.duration:.2f} s outside [{min_s:g}, {max_s:g}] s")
        return info.duration


def _remove_stale_temps(dest: Path) -> None:
    # atomic_path's temporaries of a SIGKILLed run: only this unit ever writes this utterance, so they are ours
    for stale in dest.parent.glob(f".{dest.name}.*"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def run_job(job: Job) -> dict:
    """Render ``job`` (or load its stored result) and return ``{"unit", "utterances", "rejected"}``.

    Engine failures and out-of-window durations reject single sentences; they never fail the unit.
    """
    from codec.audio import audio_info

    result_path = unit_path(job.root, job.unit)
    if result_path.is_file():
        return json.loads(result_path.read_text(encoding="utf-8"))
    _remove_stale_temps(result_path)
    ident = job.identity
    root = Path(job.root)
    entries: dict[str, dict] = {}
    rejected: list[dict] = []
    todo: list[tuple[str, str, Path]] = []
    for utt_id, text in job.items:
        dest = root / wav_relpath(ident.name, utt_id)
        _remove_stale_temps(dest)
        if dest.is_file():  # rendered by an interrupted earlier run; complete, since it was renamed into place
            entries[utt_id] = _entry(ident, utt_id, text, audio_info(dest).duration)
        else:
            todo.append((utt_id, text, dest))
    with tempfile.TemporaryDirectory(prefix="ucodec-synth-") as scratch:
        raws = {utt_id: Path(scratch) / f"{utt_id}.wav" for utt_id, _, _ in todo}
        try:
            render(ident.engine, ident.voice, [(text, raws[utt_id]) for utt_id, text, _ in todo])
        except Exception:  # noqa: BLE001 - one bad sentence must not cost the batch: retry one by one
            for utt_id, text, _ in todo:
                if not raws[utt_id].is_file():
                    with contextlib.suppress(Exception):
                        render(ident.engine, ident.voice, [(text, raws[utt_id])])
        for utt_id, text, dest in todo:
            try:
                if not raws[utt_id].is_file():
                    raise _Rejected(f"{ident.engine} produced no audio")
                duration = _convert(raws[utt_id], dest, ident, job.min_seconds, job.max_seconds)
                entries[utt_id] = _entry(ident, utt_id, text, duration)
            except (_Rejected, RuntimeError, ValueError, OSError) as exc:
                rejected.append({"id": utt_id, "text": text, "reason": str(exc)[:200]})
    order = [utt_id for utt_id, _ in job.items]
    result = {
        "unit": job.unit,
        "utterances": [entries[i] for i in order if i in entries],
        "rejected": rejected,
    }
    write_json_atomic(result_path, result)
    return result


def _entry(ident: Identity, utt_id: str, text: str, duration: float) -> dict:
    return {
        "id": utt_id,
        "audio": wav_relpath(ident.name, utt_id),
        "text": text,
        "speaker": ident.name,
        "duration": round(duration, 4),
        "sample_rate": SAMPLE_RATE,
    }


def _init_worker() -> None:
    # one worker per core: keep torch and ONNX from starting their own thread pools on top
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def run_jobs(jobs: list[Job], workers: int, desc: str) -> list[dict]:
    """Run ``jobs`` on ``workers`` processes (most expensive first), with a progress bar in utterances."""
    import multiprocessing

    from tqdm import tqdm

    jobs = sorted(jobs, key=lambda j: -j.identity.cost * len(j.items))
    total = sum(len(j.items) for j in jobs)
    results = []
    with tqdm(total=total, desc=desc, unit="utt", smoothing=0.05) as bar:
        if workers <= 1:
            for job in jobs:
                results.append(run_job(job))
                bar.update(len(job.items))
            return results
        ctx = multiprocessing.get_context("spawn")  # never fork a parent that holds torch threads
        with ctx.Pool(workers, initializer=_init_worker) as pool:
            for res in pool.imap_unordered(run_job, jobs):
                results.append(res)
                bar.update(len(res["utterances"]) + len(res["rejected"]))
    return results
