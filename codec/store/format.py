"""The on-disk layout of a token store, shared by its writer, reader and the HY export/import.

A store is a directory::

    store.json              StoreInfo: the codec release that made the codes, Q, codebook size, rates, dtype,
                            shard size and the manifest's fingerprint (written first; a resumed run must match it)
    shards/00000.safetensors  "codes" [Q, sum of F] int16 (int32 for codebooks > 32767): the utterances of shard 0,
                            concatenated along frames in manifest order
    shards/00000.json       the shard's record: its index entries and failures (written after the codes; its
                            presence marks the shard done)
    report.json             totals and every failure (id, audio, error)
    index.jsonl             one IndexEntry a line, all shards in manifest order (written last: marks completion)

Shard ``k`` holds manifest entries ``[k * shard_size, (k + 1) * shard_size)`` whatever the number of processes or
the order in which shards finish, so an interrupted and resumed run writes the same bytes as a single clean run.
No file holds a timestamp or a timing for the same reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from codec.atomic import safetensors_save_atomic, write_json_atomic

STORE_FORMAT = "ucodec-token-store"
STORE_VERSION = 1
INFO_NAME = "store.json"
INDEX_NAME = "index.jsonl"
REPORT_NAME = "report.json"
SHARD_DIR = "shards"
CODES_KEY = "codes"


def shard_codes_path(root: str | os.PathLike, shard: int) -> Path:
    return Path(root) / SHARD_DIR / f"{shard:05d}.safetensors"


def shard_record_path(root: str | os.PathLike, shard: int) -> Path:
    return Path(root) / SHARD_DIR / f"{shard:05d}.json"


def store_dtype_name(num_codebooks: int, codebook_size: int) -> str:
    """Codes are stored unoffset (0..K-1); int16 holds them when ``K <= 32767``."""
    del num_codebooks  # the grid stores per-layer codes, so only K matters (unlike the flat HY layout)
    return "int16" if codebook_size <= 32767 else "int32"


@dataclass(frozen=True)
class CodecIdentity:
    """What a store records about the codec that made it; a model trained on it must use the same one."""

    release_id: str  # Codec.release_id: the weights' hash for a release (config hash for an unsaved model)
    name: str  # the config's name, for messages only
    num_codebooks: int
    codebook_size: int
    frame_rate: float
    sample_rate: int
    hop_length: int

    @classmethod
    def of(cls, codec: Any) -> CodecIdentity:
        """The identity of a :class:`codec.model.Codec`."""
        return cls(
            release_id=codec.release_id,
            name=str(getattr(codec.config, "name", "")),
            num_codebooks=codec.num_codebooks,
            codebook_size=codec.codebook_size,
            frame_rate=float(codec.frame_rate),
            sample_rate=codec.sample_rate,
            hop_length=codec.hop_length,
        )

    def describe(self) -> str:
        shape = f"{self.num_codebooks}x{self.codebook_size} @ {self.frame_rate:g} Hz"
        return f"{self.release_id} ({self.name or 'unnamed'}, {shape})"


@dataclass(frozen=True)
class StoreInfo:
    """Contents of ``store.json``."""

    codec: CodecIdentity
    dtype: str  # "int16" or "int32"
    shard_size: int  # manifest entries per shard
    num_shards: int
    num_utterances: int  # manifest entries (stored + failed)
    manifest_sha256: str  # fingerprint of the manifest the shards were planned from ("" for imports)
    source: str  # manifest path or imported folder, for provenance only

    def to_dict(self) -> dict[str, Any]:
        return {"format": STORE_FORMAT, "format_version": STORE_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str) -> StoreInfo:
        if not isinstance(obj, dict) or obj.get("format") != STORE_FORMAT:
            raise ValueError(f"{where}: not a ucodec token store description")
        if obj.get("format_version") != STORE_VERSION:
            raise ValueError(
                f"{where}: store format_version {obj.get('format_version')!r} is not supported (expects "
                f"{STORE_VERSION}); re-tokenize the corpus"
            )
        try:
            body = {f.name: obj[f.name] for f in fields(cls)}
            body["codec"] = CodecIdentity(**body["codec"])
            return cls(**body)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{where}: malformed store description ({exc})") from None


def read_info(root: str | os.PathLike) -> StoreInfo:
    """Read ``store.json``.

    Raises:
        FileNotFoundError: ``root`` is not a token store.
        ValueError: the file is not a store description of this version.
    """
    path = Path(root) / INFO_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{root}: not a token store ({INFO_NAME} missing)")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    return StoreInfo.from_dict(obj, str(path))


@dataclass(frozen=True)
class IndexEntry:
    """One stored utterance (a line of ``index.jsonl``)."""

    id: str
    speaker: str
    text: str
    n_frames: int  # F of its codes [Q, F]
    shard: int
    offset: int  # first frame of the utterance in its shard's codes tensor
    duration: float  # seconds of audio encoded (before padding to the hop)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str) -> IndexEntry:
        try:
            return cls(**{f.name: obj[f.name] for f in fields(cls)})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{where}: malformed index entry ({exc})") from None


def expected_release_id(expected: Any) -> str:
    """A release id from a ``Codec``, a :class:`CodecIdentity`, or the id string itself."""
    if isinstance(expected, CodecIdentity):
        return expected.release_id
    if isinstance(expected, str):
        return expected
    release_id = getattr(expected, "release_id", None)
    if not isinstance(release_id, str):
        raise TypeError(f"expected a Codec, CodecIdentity or release id string, got {type(expected).__name__}")
    return release_id


def check_codec(info: StoreInfo, expected: Any, where: str) -> None:
    """Refuse a store whose codes were made by another codec than ``expected``.

    Raises:
        ValueError: naming both codecs and how to fix it.
    """
    want = expected_release_id(expected)
    if info.codec.release_id != want:
        raise ValueError(
            f"{where}: token store was made with codec {info.codec.describe()}, but this model uses codec {want}; "
            "codes of different codecs are not interchangeable — re-tokenize the corpus with `ucodec tokenize "
            "--model <that codec>`"
        )


@dataclass(frozen=True)
class Failure:
    """An utterance that could not be tokenized."""

    id: str
    audio: str
    error: str


@dataclass
class ShardRecord:
    """Contents of ``shards/NNNNN.json``: what shard ``shard`` holds and what it could not."""

    shard: int
    entries: list[IndexEntry]
    failures: list[Failure]

    def to_dict(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "entries": [asdict(e) for e in self.entries],
            "failures": [asdict(f) for f in self.failures],
        }

    @classmethod
    def read(cls, root: str | os.PathLike, shard: int) -> ShardRecord | None:
        """The record of a finished shard, or ``None`` when the shard is not (completely) written."""
        path = shard_record_path(root, shard)
        if not (path.is_file() and shard_codes_path(root, shard).is_file()):
            return None
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                shard=int(obj["shard"]),
                entries=[IndexEntry.from_dict(e, str(path)) for e in obj["entries"]],
                failures=[Failure(**f) for f in obj["failures"]],
            )
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
            return None  # unreadable record: redo the shard


def write_shard(
    root: Path, shard: int, codes: list, entries: list[IndexEntry], failures: list[Failure], info: StoreInfo
) -> None:
    """Write one shard atomically: codes ``[Q, sum F]`` (entries' ``offset``/``n_frames`` index into it), then the
    record. Shared by :func:`codec.store.writer.tokenize` and the HY import."""
    import torch

    dtype = getattr(torch, info.dtype)
    q = info.codec.num_codebooks
    grid = torch.cat([c.to(dtype) for c in codes], dim=1) if codes else torch.zeros(q, 0, dtype=dtype)
    assert grid.shape[0] == q and grid.shape[1] == sum(e.n_frames for e in entries), grid.shape
    # One metadata key only: safetensors serialises its metadata map in a per-process hash order, and a shard's bytes
    # must not depend on the process that wrote it.
    meta = {STORE_FORMAT: json.dumps({"codec": info.codec.release_id, "shard": shard}, sort_keys=True)}
    safetensors_save_atomic({CODES_KEY: grid}, shard_codes_path(root, shard), metadata=meta)
    write_json_atomic(shard_record_path(root, shard), ShardRecord(shard, entries, failures).to_dict())
