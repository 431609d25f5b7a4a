"""Speech manifests: JSONL files with one utterance a line.

A line is ``{"id", "audio", "text", "speaker", "duration", "sample_rate"}`` (docs/design.md). Every corpus preparer
writes this format and every dataset reads it, so the helpers here are the one place that knows it: read, write
(atomically), validate, filter by duration, split by speaker and merge.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from codec.atomic import write_text_atomic

FIELDS = ("id", "audio", "text", "speaker", "duration", "sample_rate")


@dataclass(frozen=True)
class Utterance:
    """One line of a manifest."""

    id: str  # unique within a manifest; preparers use the corpus' own utterance id
    audio: str  # path of the audio file (absolute, or relative to the manifest's directory)
    text: str  # transcript, as the corpus gives it (normalised text where the corpus has both)
    speaker: str  # speaker (or synthetic voice identity) id
    duration: float  # seconds
    sample_rate: int  # sample rate of the file on disk (loaders resample to the model rate)

    @classmethod
    def from_dict(cls, obj: dict, where: str = "manifest line") -> Utterance:
        """Build from a parsed JSON object, checking keys and types.

        Raises:
            ValueError: a key is missing or unknown, or a value has the wrong type.
        """
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        missing = [k for k in FIELDS if k not in obj]
        unknown = [k for k in obj if k not in FIELDS]
        if missing or unknown:
            raise ValueError(f"{where}: missing keys {missing}, unknown keys {unknown}; a line has keys {list(FIELDS)}")
        try:
            return cls(
                id=_as_str(obj["id"], "id"),
                audio=_as_str(obj["audio"], "audio"),
                text=_as_str(obj["text"], "text"),
                speaker=_as_str(obj["speaker"], "speaker"),
                duration=float(obj["duration"]),
                sample_rate=int(obj["sample_rate"]),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None

    def to_dict(self) -> dict:
        """The JSON object of this line, keys in the canonical order."""
        return asdict(self)


def _as_str(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{key!r} must be a string, got {type(value).__name__}")
    return value


def read_manifest(path: str | os.PathLike, resolve: bool = True) -> list[Utterance]:
    """Read a JSONL manifest (blank lines are ignored).

    Args:
        path: the ``.jsonl`` file.
        resolve: turn relative audio paths into absolute paths under the manifest's directory (so a corpus
            directory can be moved or read from any working directory); ``False`` returns them as stored.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is not JSON or not a manifest entry (the message names the file and line number).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"manifest not found: {p}")
    out = []
    with open(p, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{lineno}: not JSON ({exc.msg})") from None
            utt = Utterance.from_dict(obj, f"{p}:{lineno}")
            if resolve and not Path(utt.audio).is_absolute():
                utt = replace(utt, audio=str(p.parent.absolute() / utt.audio))
            out.append(utt)
    return out


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance]) -> Path:
    """Write ``utterances`` as JSONL to ``path`` atomically (readers never see a partial manifest)."""
    lines = [json.dumps(u.to_dict(), ensure_ascii=False) + "\n" for u in utterances]
    write_text_atomic(path, "".join(lines))
    return Path(path)


def resolve_audio(utt: Utterance, manifest_path: str | os.PathLike) -> Path:
    """The audio path of ``utt``; relative paths are taken relative to the manifest's directory."""
    p = Path(utt.audio)
    return p if p.is_absolute() else Path(manifest_path).parent / p


def validate(
    utterances: Sequence[Utterance], manifest_path: str | os.PathLike | None = None, check_audio: bool = False
) -> list[str]:
    """Check a manifest and return the problems found (an empty list means valid).

    Checks: unique non-empty ids, non-empty text and speaker, positive finite duration, positive sample rate, and
    (with ``check_audio``) that every audio file exists and its header agrees with the duration and sample rate.

    Args:
        utterances: the entries.
        manifest_path: where the manifest lives; needed to resolve relative audio paths when ``check_audio``.
        check_audio: also read each file's header.
    """
    from codec.audio import audio_info

    problems: list[str] = []
    seen: set[str] = set()
    for u in utterances:
        if not u.id:
            problems.append("an entry has an empty id")
        elif u.id in seen:
            problems.append(f"{u.id}: duplicate id")
        seen.add(u.id)
        if not u.text.strip():
            problems.append(f"{u.id}: empty text")
        if not u.speaker:
            problems.append(f"{u.id}: empty speaker")
        if not (u.duration > 0 and u.duration < float("inf")):
            problems.append(f"{u.id}: duration must be positive, got {u.duration}")
        if u.sample_rate <= 0:
            problems.append(f"{u.id}: sample_rate must be positive, got {u.sample_rate}")
        if check_audio:
            path = resolve_audio(u, manifest_path or ".")
            try:
                info = audio_info(path)
            except (FileNotFoundError, ValueError) as exc:
                problems.append(f"{u.id}: {exc}")
                continue
            if info.sample_rate != u.sample_rate:
                problems.append(f"{u.id}: sample_rate {u.sample_rate} but the file has {info.sample_rate}")
            if abs(info.duration - u.duration) > 0.01:
                problems.append(f"{u.id}: duration {u.duration:.3f} s but the file lasts {info.duration:.3f} s")
    return problems


def filter_by_duration(
    utterances: Iterable[Utterance], min_seconds: float = 0.0, max_seconds: float = float("inf")
) -> list[Utterance]:
    """Keep the utterances with ``min_seconds <= duration <= max_seconds``."""
    if min_seconds > max_seconds:
        raise ValueError(f"min_seconds ({min_seconds}) must not exceed max_seconds ({max_seconds})")
    return [u for u in utterances if min_seconds <= u.duration <= max_seconds]


def speakers(utterances: Iterable[Utterance]) -> list[str]:
    """Sorted distinct speaker ids."""
    return sorted({u.speaker for u in utterances})


def split_by_speaker(
    utterances: Sequence[Utterance], held_out: int | Sequence[str], seed: int = 0
) -> tuple[list[Utterance], list[Utterance]]:
    """Split into (kept, held-out) so that no speaker appears on both sides.

    Args:
        utterances: the entries.
        held_out: a number of speakers to draw at random (seeded), or the explicit speaker ids to hold out.
        seed: seed of the draw when ``held_out`` is a number.

    Raises:
        ValueError: more speakers requested than exist, or an explicit speaker is not in the manifest.
    """
    names = speakers(utterances)
    if isinstance(held_out, int):
        if not 0 <= held_out <= len(names):
            raise ValueError(f"cannot hold out {held_out} speakers: the manifest has {len(names)}")
        chosen = set(random.Random(seed).sample(names, held_out))
    else:
        chosen = set(held_out)
        unknown = sorted(chosen - set(names))
        if unknown:
            raise ValueError(f"speakers {unknown} are not in the manifest (it has {len(names)} speakers)")
    kept = [u for u in utterances if u.speaker not in chosen]
    rest = [u for u in utterances if u.speaker in chosen]
    return kept, rest


def merge(*manifests: Iterable[Utterance]) -> list[Utterance]:
    """Concatenate manifests, keeping the order.

    Raises:
        ValueError: the same id appears twice with different content (an identical duplicate is kept once).
    """
    out: list[Utterance] = []
    by_id: dict[str, Utterance] = {}
    for manifest in manifests:
        for u in manifest:
            if u.id in by_id:
                if by_id[u.id] != u:
                    raise ValueError(
                        f"cannot merge: id {u.id!r} names two different utterances "
                        "(give one corpus an id prefix first: ucodec prepare filter ... --id-prefix)"
                    )
                continue
            by_id[u.id] = u
            out.append(u)
    return out


def text_key(text: str) -> str:
    """The form in which two transcripts count as the same sentence: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def without_texts(utterances: Iterable[Utterance], texts: Iterable[str]) -> list[Utterance]:
    """Drop the utterances whose transcript is one of ``texts`` (compared by :func:`text_key`).

    Keeps another corpus' dev/test sentences out of a training list, whoever reads them.
    """
    banned = {text_key(t) for t in texts}
    return [u for u in utterances if text_key(u.text) not in banned]


def with_id_prefix(utterances: Iterable[Utterance], prefix: str) -> list[Utterance]:
    """Prefix every id, so that two corpora whose ids collide (e.g. two synthetic seeds) can be merged."""
    return [replace(u, id=prefix + u.id) for u in utterances]


def total_hours(utterances: Iterable[Utterance]) -> float:
    """Summed duration in hours."""
    return sum(u.duration for u in utterances) / 3600.0


assert tuple(f.name for f in fields(Utterance)) == FIELDS, "FIELDS must follow the dataclass"
