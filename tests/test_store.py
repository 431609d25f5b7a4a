"""Token store: exact round trip, exact chunked encoding, kill-and-resume byte identity, failures, codec refusal,
reader (random access, speakers, buckets, Dataset), HY export/import, and the CLI on a 1-second wav."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.audio import load_audio
from codec.chunked_encode import StreamingEncoder, encode_file
from codec.compat.hy_store import export_hy, import_hy
from codec.compat.hy_tokenizer import flatten_codes
from codec.manifest import Utterance, write_manifest
from codec.store.format import INDEX_NAME, REPORT_NAME, read_info
from codec.store.reader import DurationBucketSampler, TokenDataset, TokenStore, collate_tokens
from codec.store.writer import tokenize
from tests.conftest import ROOT, speechlike, tiny_config, tiny_seanet_config
from ucodec.cli import main

DURATIONS = [0.3, 1.0, 1.7, 0.65, 2.4, 1.25, 0.9]  # seconds; none a multiple of the 0.2 s hop


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: one thread avoids OpenMP contention (10x slower otherwise)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """7 good utterances of 2 speakers, plus a corrupt file in the middle; returns the manifest path."""
    root = tmp_path_factory.mktemp("corpus")
    utts = []
    for i, sec in enumerate(DURATIONS):
        sf.write(root / f"u{i}.wav", speechlike(sec, seed=i), 16000)
        utts.append(Utterance(f"u{i}", f"u{i}.wav", f"sentence number {i}.", f"spk{i % 2}", sec, 16000))
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    utts.insert(3, Utterance("broken", "broken.wav", "broken", "spk0", 1.0, 16000))
    return write_manifest(root / "manifest.jsonl", utts)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of a store (relative path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_round_trip_is_exact(tiny_release, corpus, tmp_path):
    # Files over 1 s are streamed in 1 s chunks, the others batched: both must equal a lone whole-file encode.
    res = tokenize(tiny_release, corpus, tmp_path / "s", shard_size=3, chunk_seconds=1.0, progress=False)
    assert res.complete and res.num_stored == len(DURATIONS) and res.num_failed == 1
    codec = Codec.from_pretrained(tiny_release)
    store = TokenStore(tmp_path / "s", codec=codec)
    assert [e.id for e in store.entries] == [f"u{i}" for i in range(len(DURATIONS))]  # manifest order
    for i, sec in enumerate(DURATIONS):
        wav = load_audio(corpus.parent / f"u{i}.wav")
        expected = codec.encode(wav[None])[0]
        got = store.codes(f"u{i}")
        assert got.dtype == torch.long and torch.equal(got, expected)
        e = store.entry(f"u{i}")
        assert e.n_frames == math.ceil(wav.shape[-1] / codec.hop_length)
        assert (e.text, e.speaker) == (f"sentence number {i}.", f"spk{i % 2}")
        assert e.duration == pytest.approx(sec, abs=1e-3)
    info = read_info(tmp_path / "s")
    assert info.codec.release_id == codec.release_id and info.dtype == "int16"
    assert (info.codec.num_codebooks, info.codec.codebook_size, info.codec.frame_rate) == (32, 256, 5.0)


@pytest.mark.parametrize("make_config", [tiny_config, tiny_seanet_config], ids=["mel", "seanet"])
def test_chunked_encoding_equals_whole_file(make_config, tmp_path):
    torch.manual_seed(0)
    codec = Codec(make_config()).eval()
    path = tmp_path / "long.wav"
    sf.write(path, speechlike(3.3, seed=5), 16000)
    whole = codec.encode(load_audio(path)[None])[0]
    for chunk_seconds in (0.2, 0.7, 60.0):  # one hop, an odd multiple, a single chunk
        enc = encode_file(codec, path, chunk_seconds=chunk_seconds)
        assert enc.num_samples == int(3.3 * 16000)
        assert torch.equal(enc.codes, whole), chunk_seconds
    wav = load_audio(path)
    with StreamingEncoder(codec) as streamer:  # arbitrary chunk sizes, then an explicit flush
        parts = [streamer.feed(wav[:, s : s + 777]) for s in range(0, wav.shape[-1], 777)] + [streamer.flush()]
    assert torch.equal(torch.cat(parts, dim=-1), whole)


def test_kill_and_resume_gives_identical_store(tiny_release, corpus, tmp_path):
    clean = tmp_path / "clean"
    tokenize(tiny_release, corpus, clean, shard_size=2, progress=False)
    resumed = tmp_path / "resumed"
    first = tokenize(tiny_release, corpus, resumed, shard_size=2, max_shards=1, progress=False)
    assert not first.complete and first.shards_written == 1 and not (resumed / INDEX_NAME).exists()
    with pytest.raises(ValueError, match="unfinished token store"):
        TokenStore(resumed)
    # A kill between a shard's codes and its record, and a kill in the middle of an atomic write.
    shards = resumed / "shards"
    (shards / "00001.safetensors").write_bytes((clean / "shards" / "00001.safetensors").read_bytes()[:50])
    (shards / ".00002.safetensors.x1y2.safetensors.tmp").write_bytes(b"partial")
    second = tokenize(tiny_release, corpus, resumed, shard_size=2, max_shards=2, progress=False)
    assert second.shards_skipped == 1 and second.shards_written == 2
    last = tokenize(tiny_release, corpus, resumed, shard_size=2, progress=False)
    assert last.complete and last.shards_written == 1
    assert snapshot(resumed) == snapshot(clean)
    # Re-running a finished store is a no-op: nothing is rewritten.
    mtimes = {p: p.stat().st_mtime_ns for p in resumed.rglob("*")}
    again = tokenize(tiny_release, corpus, resumed, shard_size=2, progress=False)
    assert again.complete and again.shards_written == 0 and again.num_stored == len(DURATIONS)
    assert {p: p.stat().st_mtime_ns for p in resumed.rglob("*")} == mtimes


def test_sigkilled_multiprocess_run_resumes_to_identical_store(tiny_release, corpus, tmp_path):
    clean = tmp_path / "clean"
    tokenize(tiny_release, corpus, clean, shard_size=1, progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "codec.cli", "tokenize", "--model", str(tiny_release), "--manifest", str(corpus)]
    cmd += ["--out", str(out), "--shard-size", "1", "--num-workers", "2", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "shards").glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the job and its workers, mid-run
        proc.wait()
    assert list((out / "shards").glob("*.json")), proc.stderr.read().decode()
    res = tokenize(tiny_release, corpus, out, shard_size=1, progress=False)
    assert res.complete
    assert snapshot(out) == snapshot(clean)


def test_corrupt_file_is_reported_and_skipped_then_retried(tiny_release, corpus, tmp_path):
    res = tokenize(tiny_release, corpus, tmp_path / "s", shard_size=4, progress=False)
    assert [f.id for f in res.failures] == ["broken"] and "broken.wav" in res.failures[0].error
    report = json.loads((tmp_path / "s" / REPORT_NAME).read_text())
    assert report["num_failed"] == 1 and report["failures"][0]["id"] == "broken"
    assert "broken" not in TokenStore(tmp_path / "s") and "u3" in TokenStore(tmp_path / "s")
    # After the file is fixed, --retry-failed redoes only that shard.
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    for p in corpus.parent.iterdir():
        (fixed / p.name).write_bytes(p.read_bytes())
    sf.write(fixed / "broken.wav", speechlike(0.5), 16000)
    shutil.copytree(tmp_path / "s", tmp_path / "s2")
    manifest = fixed / "manifest.jsonl"  # same text, so the same plan; its relative paths now reach the fixed file
    again = tokenize(tiny_release, manifest, tmp_path / "s2", shard_size=4, retry_failed=True, progress=False)
    assert again.shards_written == 1 and again.num_failed == 0 and "broken" in TokenStore(tmp_path / "s2")


def test_other_codec_is_refused(tiny_release, corpus, tmp_path):
    tokenize(tiny_release, corpus, tmp_path / "s", shard_size=8, progress=False)
    torch.manual_seed(123)
    other = Codec(tiny_config()).eval()
    other_dir = other.save_pretrained(tmp_path / "other")
    for make in (lambda: TokenStore(tmp_path / "s", codec=other), lambda: TokenDataset(tmp_path / "s", codec=other)):
        with pytest.raises(ValueError, match="made with codec .* re-tokenize"):
            make()
    with pytest.raises(ValueError, match="made with codec"):
        tokenize(other_dir, corpus, tmp_path / "s", shard_size=8, progress=False)
    with pytest.raises(ValueError, match="another manifest or shard size"):
        tokenize(tiny_release, corpus, tmp_path / "s", shard_size=3, progress=False)
    TokenStore(tmp_path / "s", codec=Codec.from_pretrained(tiny_release))  # the right codec is accepted


def test_reader_speakers_dataset_and_buckets(tiny_release, corpus, tmp_path):
    tokenize(tiny_release, corpus, tmp_path / "s", shard_size=3, progress=False)
    store = TokenStore(tmp_path / "s")
    assert store.speakers() == ["spk0", "spk1"]
    spk1 = [e.id for e, codes in store.iter_speaker("spk1")]
    assert spk1 == ["u1", "u3", "u5"]
    with pytest.raises(KeyError, match="not in the token store"):
        store.codes("nope")
    ds = TokenDataset(store, num_codebooks=8)
    text, codes, speaker = ds[2]
    assert (text, speaker, codes.shape) == ("sentence number 2.", "spk0", (8, store.entries[2].n_frames))
    assert torch.equal(codes, store.codes("u2")[:8])
    assert len(TokenDataset(store, speakers=["spk1"], max_frames=6)) == 2
    sampler = DurationBucketSampler(ds.lengths, max_frames=20, num_buckets=2, seed=3)
    batches = sampler.batches()
    assert sorted(i for b in batches for i in b) == list(range(len(ds)))
    assert all(len(b) * max(ds.lengths[i] for i in b) <= 20 or len(b) == 1 for b in batches)
    assert batches == DurationBucketSampler(ds.lengths, max_frames=20, num_buckets=2, seed=3).batches()
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate_tokens)
    batch = next(iter(loader))
    assert batch.codes.shape == (len(batch.texts), 8, int(batch.lengths.max()))


def test_hy_export_import_round_trip(tiny_release, corpus, tmp_path):
    tokenize(tiny_release, corpus, tmp_path / "s", shard_size=3, progress=False)
    res = export_hy(tmp_path / "s", tmp_path / "hy")
    assert res.num_written == len(DURATIONS)
    store = TokenStore(tmp_path / "s")
    flat = torch.load(tmp_path / "hy" / "tokens" / "u4.pt", weights_only=True)
    assert flat.dtype == torch.int16 and flat.dim() == 1
    assert torch.equal(flat, flatten_codes(store.codes("u4"), 256))
    back = import_hy(tmp_path / "hy", tiny_release, tmp_path / "back", shard_size=3)
    assert back.num_written == len(DURATIONS) and not back.failures
    again = TokenStore(tmp_path / "back", codec=Codec.from_pretrained(tiny_release))
    fields = [(e.id, e.speaker, e.text, e.n_frames, e.duration) for e in store.entries]
    assert [(e.id, e.speaker, e.text, e.n_frames, e.duration) for e in again.entries] == fields
    assert all(torch.equal(again.codes(e.id), store.codes(e.id)) for e in store.entries)
    # A plain folder of authors' files: ids from file names, malformed tensors reported and skipped.
    plain = tmp_path / "plain"
    plain.mkdir()
    torch.save(flat, plain / "a.pt")
    torch.save(flat[:-1], plain / "b.pt")  # length not a multiple of Q
    got = import_hy(plain, tiny_release, tmp_path / "plain_store")
    assert [f.id for f in got.failures] == ["b"] and "multiple of num_codebooks" in got.failures[0].error
    assert torch.equal(TokenStore(tmp_path / "plain_store").codes("a"), store.codes("u4"))


def test_cli_tokenize_export_import_info(tiny_release, wav_1s, tmp_path, capsys):
    manifest = write_manifest(tmp_path / "m.jsonl", [Utterance("one", str(wav_1s), "hello.", "s", 1.0, 16000)])
    store = tmp_path / "store"
    assert main(["tokenize", "--model", str(tiny_release), "--manifest", str(manifest), "--out", str(store)]) == 0
    assert "1 stored, 0 failed of 1" in capsys.readouterr().out
    assert TokenStore(store).codes("one").shape == (32, 5)
    assert main(["export-hy", str(store), str(tmp_path / "hy")]) == 0
    assert main(["import-hy", str(tmp_path / "hy"), "--model", str(tiny_release), "--out", str(tmp_path / "b")]) == 0
    assert main(["store-info", str(tmp_path / "b")]) == 0
    assert "1 stored of 1" in capsys.readouterr().out
    assert main(["tokenize", "--model", str(tiny_release), "--manifest", "missing.jsonl", "--out", str(store)]) == 2
    assert "manifest not found" in capsys.readouterr().err
