"""The shared engine of every corpus preparer: check candidate files in parallel, write manifests and reports.

A preparer only knows its corpus layout: it scans the source tree into :class:`Candidate` entries grouped in parts
(a part is one output manifest, e.g. a LibriTTS subset). :func:`prepare_parts` then checks every candidate on a
process pool with a progress bar (the audio is decoded in full, so truncated files are caught), writes
``OUT_DIR/<part>.jsonl`` and ``OUT_DIR/<part>.report.txt`` atomically and finally the ``OUT_DIR/.<part>.done``
marker. A part whose marker exists is skipped, so an interrupted run resumes where it stopped and a finished one is a
no-op. Bad files are listed in the report and left out of the manifest; they never stop the run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codec.atomic import write_json_atomic, write_text_atomic
from codec.manifest import Utterance, validate, write_manifest

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass(frozen=True)
class Candidate:
    """A would-be manifest entry found by a layout scanner, not yet checked.

    ``audio`` or ``text`` is ``None`` when the scanner found one without the other (a mismatched pair); the check
    then reports it instead of decoding anything.
    """

    id: str  # utterance id in the corpus' own naming
    speaker: str  # speaker id
    audio: Path | None  # the audio file, None when only a transcript was found
    text: str | None  # the transcript, None when only audio was found


@dataclass(frozen=True)
class PartResult:
    """What :func:`prepare_parts` did for one part."""

    name: str  # part name (the manifest is <name>.jsonl)
    manifest: Path  # the written manifest
    kept: int  # utterances in the manifest
    rejected: int  # bad candidates listed in the report
    hours: float  # audio hours in the manifest
    skipped: bool = False  # True when the part's .done marker already existed
    problems: list[str] = field(default_factory=list)  # the report lines (empty when skipped)


def check_candidate(cand: Candidate) -> Utterance | str:
    """Turn a candidate into an utterance, or a one-line reason why it is unusable.

    The audio is decoded in full (at its own rate, no resampling) so that truncated or corrupt data is found here,
    not in the middle of a training run.
    """
    from codec.audio import audio_info, load_audio

    if cand.audio is None:
        return f"{cand.id}: transcript without audio"
    if cand.text is None:
        return f"{cand.id}: audio without transcript ({cand.audio})"
    text = " ".join(cand.text.split())
    if not text:
        return f"{cand.id}: empty transcript ({cand.audio})"
    try:
        info = audio_info(cand.audio)
        if info.frames == 0:
            return f"{cand.id}: empty audio (0 samples) ({cand.audio})"
        wav = load_audio(cand.audio, sample_rate=info.sample_rate)
    except (FileNotFoundError, ValueError) as exc:
        return f"{cand.id}: {exc}"
    if not bool(wav.abs().max() > 0):
        return f"{cand.id}: silent audio (all samples are zero) ({cand.audio})"
    return Utterance(
        id=cand.id,
        audio=str(cand.audio.resolve()),
        text=text,
        speaker=cand.speaker,
        duration=round(wav.shape[-1] / info.sample_rate, 4),
        sample_rate=info.sample_rate,
    )


def _pool_map(items: Sequence[Candidate], workers: int, desc: str) -> list[Utterance | str]:
    from tqdm import tqdm

    if workers <= 1 or len(items) < 2:
        return [check_candidate(c) for c in tqdm(items, desc=desc, unit="file", leave=False)]
    # spawn, not fork: the parent may hold torch/OpenMP threads, and forking those can deadlock the children.
    ctx = multiprocessing.get_context("spawn")
    chunk = max(1, min(64, len(items) // (workers * 8)))
    with ctx.Pool(workers) as pool:
        it = pool.imap(check_candidate, items, chunksize=chunk)
        return list(tqdm(it, total=len(items), desc=desc, unit="file", leave=False))


def done_marker(out_dir: Path, part: str) -> Path:
    """The marker whose presence means ``part`` is complete."""
    return out_dir / f".{part}.done"


def prepare_parts(
    parts: Mapping[str, Iterable[Candidate]],
    out_dir: str | os.PathLike,
    *,
    source: str,
    workers: int = 2,
    force: bool = False,
    extra_problems: Mapping[str, Sequence[str]] | None = None,
) -> list[PartResult]:
    """Check the candidates of each part and write its manifest, report and ``.done`` marker.

    Args:
        parts: part name → candidates (a part name becomes the file name ``<part>.jsonl``).
        out_dir: output directory (created).
        source: corpus name, recorded in the marker.
        workers: checking processes (1 runs inline).
        force: redo parts whose marker exists.
        extra_problems: part name → problems the scanner found itself (listed in that part's report).

    Raises:
        ValueError: no part has any candidate (the source tree is not in the expected layout).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra_problems = extra_problems or {}
    results = []
    for name, cands in parts.items():
        marker = done_marker(out, name)
        manifest = out / f"{name}.jsonl"
        if marker.is_file() and manifest.is_file() and not force:
            info = json.loads(marker.read_text(encoding="utf-8"))
            results.append(PartResult(name, manifest, info["kept"], info["rejected"], info["hours"], skipped=True))
            continue
        items = sorted(cands, key=lambda c: c.id)
        checked = _pool_map(items, workers, desc=f"{source}/{name}")
        utts = [r for r in checked if isinstance(r, Utterance)]
        problems = list(extra_problems.get(name, ())) + [r for r in checked if isinstance(r, str)]
        ids_seen: set[str] = set()
        unique = []
        for u in utts:
            if u.id in ids_seen:
                problems.append(f"{u.id}: duplicate utterance id ({u.audio})")
                continue
            ids_seen.add(u.id)
            unique.append(u)
        invalid = validate(unique)
        assert not invalid, invalid[:5]
        write_manifest(manifest, unique)
        header = f"# {source}/{name}: {len(unique)} utterances kept, {len(problems)} files skipped\n"
        write_text_atomic(out / f"{name}.report.txt", header + "".join(p + "\n" for p in problems))
        hours = round(sum(u.duration for u in unique) / 3600, 4)
        write_json_atomic(marker, {"source": source, "kept": len(unique), "rejected": len(problems), "hours": hours})
        results.append(PartResult(name, manifest, len(unique), len(problems), hours, problems=problems))
    if not results:
        raise ValueError(f"no {source} data found under the source directory: nothing to prepare")
    return results


def audio_files(root: Path) -> list[Path]:
    """Every audio file under ``root`` (recursively), sorted."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def read_text(path: Path) -> str:
    """A transcript file's text with whitespace collapsed (undecodable bytes replaced, never fatal)."""
    return " ".join(path.read_text(encoding="utf-8", errors="replace").split())
