"""Export a token store to the authors' flat HY layout, and import such files back into a store.

The authors' tooling keeps one ``.pt`` per utterance holding the 1-D frame-major token tensor of ``HY_Tokenizer``
(value ``q * codebook_size + code``, int16 for 32x256; see :mod:`codec.compat.hy_tokenizer`). An export folder is::

    hy.json          the codec identity and the layout, so an import can check it
    index.jsonl      {"id", "file", "speaker", "text", "n_frames", "duration"} per utterance, store order
    tokens/<id>.pt   torch.save of the flat int16 tensor (ids with characters unsafe in file names get a hashed name)

Import reads such a folder, or any folder of ``.pt``/``.npy`` flat-token files (id = path without suffix; text and
speaker joined from an optional manifest), validates every tensor with :func:`codec.compat.hy_tokenizer.unflatten_codes`
(bad files are reported, not fatal) and writes a normal store. Flat tokens do not say which codec made them, so the
import names the codec explicitly. Export then import reproduces every id, text, speaker, duration and code exactly
(shard boundaries differ only where the original store had failed utterances, which held manifest slots).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codec.atomic import atomic_path, write_json_atomic, write_text_atomic
from codec.store.format import CodecIdentity, IndexEntry

HY_FORMAT = "ucodec-hy-export"
TOKEN_SUFFIXES = (".pt", ".npy")


@dataclass
class HyResult:
    """Outcome of an export or import."""

    out: Path
    num_written: int
    failures: list  # import: codec.store.format.Failure per unreadable or malformed file; export: always empty


def safe_file_name(utt_id: str) -> str:
    """A file stem for ``utt_id``: the id itself when it is a plain name, else a sanitised name plus a hash."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", utt_id)
    if clean == utt_id and not utt_id.startswith("."):
        return utt_id
    return f"{clean.lstrip('.')}-{hashlib.sha1(utt_id.encode()).hexdigest()[:8]}"


def export_hy(store_dir: str | os.PathLike, out_dir: str | os.PathLike, codec: Any = None) -> HyResult:
    """Write every utterance of a store as a flat HY token file.

    Args:
        store_dir: a finished token store.
        out_dir: destination folder (created; existing files of the same names are replaced atomically).
        codec: optional codec to check the store against (refused when different).
    """
    import torch

    from codec.compat.hy_tokenizer import flatten_codes
    from codec.store.reader import TokenStore

    store = TokenStore(store_dir, codec=codec)
    out = Path(out_dir)
    (out / "tokens").mkdir(parents=True, exist_ok=True)
    lines = []
    for entry, codes in store:
        name = f"tokens/{safe_file_name(entry.id)}.pt"
        with atomic_path(out / name) as tmp:
            torch.save(flatten_codes(codes, store.codebook_size).clone(), tmp)
        row = {"id": entry.id, "file": name, "speaker": entry.speaker, "text": entry.text}
        row.update(n_frames=entry.n_frames, duration=entry.duration)
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    layout = "frame-major, value = q * codebook_size + code"
    write_json_atomic(out / "hy.json", {"format": HY_FORMAT, "layout": layout, "codec": asdict(store.info.codec)})
    write_text_atomic(out / "index.jsonl", "".join(lines))
    return HyResult(out=out, num_written=len(lines), failures=[])


def _items_from(src: Path, manifest: str | os.PathLike | None) -> list[dict[str, Any]]:
    """Work items ``{"id", "file", "speaker", "text", "duration" | None}`` in a deterministic order."""
    if (src / "index.jsonl").is_file():
        with open(src / "index.jsonl", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        return [{**r, "file": str(src / r["file"])} for r in rows]
    files = sorted(p for p in src.rglob("*") if p.suffix in TOKEN_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"{src}: no index.jsonl and no {'/'.join(TOKEN_SUFFIXES)} token files")
    meta: dict[str, Any] = {}
    if manifest is not None:
        from codec.manifest import read_manifest

        meta = {u.id: u for u in read_manifest(manifest)}
    items = []
    for p in files:
        utt_id = p.relative_to(src).with_suffix("").as_posix()
        u = meta.get(utt_id)
        items.append(
            {
                "id": utt_id,
                "file": str(p),
                "speaker": u.speaker if u else "",
                "text": u.text if u else "",
                "duration": None,
            }
        )
    return items


def _load_flat(path: str) -> Any:
    import numpy as np
    import torch

    if path.endswith(".npy"):
        return torch.from_numpy(np.load(path, allow_pickle=False))
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"{path}: expected a token tensor, found {type(obj).__name__}")
    return obj


def import_hy(
    src_dir: str | os.PathLike,
    model: Any,
    out: str | os.PathLike,
    manifest: str | os.PathLike | None = None,
    shard_size: int | None = None,
) -> HyResult:
    """Build a token store from flat HY token files.

    Args:
        src_dir: an export folder (``index.jsonl`` + files) or any folder of ``.pt``/``.npy`` flat-token files.
        model: the codec that made the tokens: release directory, shipped name or ``Codec``.
        out: new store directory (an unfinished import into it is resumed).
        manifest: for a plain folder, where ids (= file paths without suffix) find their text and speaker.
        shard_size: utterances per shard (default as ``ucodec tokenize``).

    Raises:
        FileNotFoundError, ValueError: no token files, or ``hy.json`` names another codec than ``model``.
    """
    from codec.compat.hy_tokenizer import unflatten_codes
    from codec.model import Codec
    from codec.store.format import Failure, ShardRecord, write_shard
    from codec.store.writer import DEFAULT_SHARD_SIZE, finalize, make_info, open_or_create, store_lock

    src = Path(src_dir)
    if not src.is_dir():
        raise FileNotFoundError(f"HY token folder not found: {src}")
    codec = model if isinstance(model, Codec) else Codec.from_pretrained(model)
    ident = CodecIdentity.of(codec)
    if (src / "hy.json").is_file():
        theirs = json.loads((src / "hy.json").read_text(encoding="utf-8")).get("codec", {})
        if theirs.get("release_id") not in (None, ident.release_id):
            raise ValueError(
                f"{src}: tokens were exported from a store of codec {theirs.get('release_id')}, not "
                f"{ident.describe()}; import them with that codec"
            )
    items = _items_from(src, manifest)
    listing = json.dumps([[i["id"], i["file"]] for i in items]).encode()
    size = shard_size or DEFAULT_SHARD_SIZE
    info = make_info(codec, len(items), size, hashlib.sha256(listing).hexdigest(), str(src.resolve()))
    root = Path(out)
    q, k = ident.num_codebooks, ident.codebook_size
    with store_lock(root):
        open_or_create(root, info)
        for shard in range(info.num_shards):
            if ShardRecord.read(root, shard) is not None:
                continue
            codes, entries, failures, offset = [], [], [], 0
            for it in items[shard * size : (shard + 1) * size]:
                try:
                    grid = unflatten_codes(_load_flat(it["file"]), q, k)  # [Q, F]
                except Exception as exc:  # a bad file is a report line
                    failures.append(Failure(id=it["id"], audio=it["file"], error=str(exc) or type(exc).__name__))
                    continue
                n = grid.shape[1]
                duration = it.get("duration")
                duration = round(n / ident.frame_rate, 4) if duration is None else float(duration)
                entries.append(IndexEntry(it["id"], it["speaker"], it["text"], n, shard, offset, duration))
                codes.append(grid)
                offset += n
            write_shard(root, shard, codes, entries, failures, info)
        stored, failures = finalize(root, info)
    return HyResult(out=root, num_written=stored, failures=failures)
