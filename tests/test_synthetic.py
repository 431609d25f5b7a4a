"""The synthetic corpus recipe: text, plan, identity filter, and an end-to-end build with espeak-ng voices only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from codec.audio import audio_info
from codec.manifest import Utterance, read_manifest, validate
from recipes.synthetic.identity import prune_duplicates, select_distinct
from recipes.synthetic.plan import Rate, choose_unseen, fit_rate, make_plan, split
from recipes.synthetic.texts import Sentence, chunk, normalize
from recipes.synthetic.voices import CANDIDATES, Identity, candidates

ESPEAK_VOICES = ("espeak-en-us", "espeak-en-us-f3", "espeak-en-us-f5", "espeak-en-us-klatt", "espeak-en-us-storm")
ESPEAK_VOICES += ("espeak-en-us-high",)
SPLITS = ("train", "dev", "test-seen", "test-unseen")


def test_normalize_and_chunk():
    assert normalize("And the LORD said -- unto Moses") == "And the Lord said, unto Moses."
    assert normalize("Call 555-1234 now") is None  # digits would be read differently by each engine
    assert normalize("  ") is None
    words = " ".join(f"w{i}," for i in range(70)).replace("w", "word")
    pieces = chunk("Short one. " + words.replace("1", "x").replace("2", "y"))
    assert all(4 <= len(p.split()) <= 34 for p in pieces)
    assert chunk("Too short.") == []


def test_fit_rate_recovers_a_line():
    rate = fit_rate([10, 50, 100], [1.2, 3.6, 6.6])
    assert rate.offset == pytest.approx(0.6) and rate.per_char == pytest.approx(0.06)
    assert fit_rate([40, 40], [2.0, 2.0]).seconds("x" * 40) == pytest.approx(2.0)


def _idents(n: int) -> list[Identity]:
    return [Identity(f"v{i}", "espeak", "en-us", weight=0.5 if i == 0 else 1.0) for i in range(n)]


def test_plan_is_seeded_disjoint_and_weighted():
    sentences = [Sentence(f"Sentence number {'x' * (i % 50)} {i}.", "t") for i in range(5000)]
    idents = _idents(8)
    rates = {i.name: Rate(0.3, 0.06) for i in idents}
    unseen = choose_unseen([i.name for i in idents], seed=3)
    assert len(unseen) == 4 and unseen == choose_unseen([i.name for i in idents], seed=3)
    plan = make_plan(idents, rates, sentences, hours=0.5, seed=3, unseen=unseen)
    again = make_plan(idents, rates, sentences, hours=0.5, seed=3, unseen=unseen)
    other = make_plan(idents, rates, sentences, hours=0.5, seed=4, unseen=unseen)
    assert plan == again
    texts = [t for a in plan for _, t in a.sentences]
    assert len(texts) == len(set(texts)), "a sentence was read twice"
    assert set(texts) != {t for a in other for _, t in a.sentences}
    predicted = {a.identity.name: sum(rates["v0"].seconds(t) for _, t in a.sentences) for a in plan}
    assert sum(predicted.values()) >= 0.5 * 3600
    seen_v1 = next(a for a in plan if not a.unseen and a.identity.name != "v0").identity.name
    if "v0" not in unseen:
        assert predicted["v0"] == pytest.approx(predicted[seen_v1] / 2, rel=0.1)
    with pytest.raises(ValueError, match="ran out of text"):
        make_plan(idents, rates, sentences[:10], hours=1, seed=0, unseen=unseen)
    with pytest.raises(ValueError, match="need at least 6"):
        choose_unseen(["a", "b", "c"], seed=0)


def test_split_is_speaker_disjoint():
    utts = [Utterance(f"s{i % 7}_{i:04d}", "a.wav", "t", f"s{i % 7}", 2.0, 16000) for i in range(700)]
    s = split(utts, ["s0", "s1", "s2", "s3"], seed=0)
    spk = {name: {u.speaker for u in part} for name, part in s.items()}
    assert spk["test-unseen"] == {"s0", "s1", "s2", "s3"}
    assert spk["train"] == spk["dev"] == spk["test-seen"] == {"s4", "s5", "s6"}
    assert sum(len(p) for _, p in s.items()) == 700
    assert {u.id for u in s.dev}.isdisjoint({u.id for u in s.test_seen})
    assert s == split(list(reversed(utts)), ["s0", "s1", "s2", "s3"], seed=0)


def test_identity_filters():
    e = np.eye(4)
    cents = {"a": e[0], "b": (e[0] + 0.1 * e[1]) / np.linalg.norm(e[0] + 0.1 * e[1]), "c": e[2], "d": e[3]}
    sel = select_distinct(["a", "b", "c", "missing", "d"], cents, threshold=0.85)
    assert sel.kept == ["a", "c", "d"]
    assert sel.dropped["b"][0] == "a" and sel.dropped["b"][1] > 0.99
    assert "missing" in sel.dropped
    dropped = prune_duplicates(["a", "b", "c", "d"], cents, 0.85, hours={"a": 0.1, "b": 0.2})
    assert list(dropped) == ["a"] and dropped["a"][0] == "b"  # the one with fewer hours goes


def test_candidates_filter():
    assert len({c.name for c in CANDIDATES}) >= 40
    assert [c.name for c in candidates(("hibari",), ("hibari-heart",))] == ["hibari-heart"]
    with pytest.raises(ValueError, match="unknown engines"):
        candidates(("nope",))
    with pytest.raises(ValueError, match="unknown identities"):
        candidates(None, ("nobody",))


needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None or shutil.which("bible") is None,
    reason="the synthetic recipe needs espeak-ng, sox and bible-kjv: bash recipes/synthetic/install.sh",
)


def _build(out: Path, seed: int = 0) -> dict:
    from recipes.synthetic.build import SyntheticConfig, build_synthetic

    cfg = SyntheticConfig(hours=0.02, seed=seed, workers=1, voices=ESPEAK_VOICES, identity_check=False)
    return build_synthetic(out, cfg)


def _manifests(out: Path) -> dict[str, bytes]:
    return {name: (out / f"{name}.jsonl").read_bytes() for name in (*SPLITS, "all")}


@needs_espeak
def test_espeak_corpus_end_to_end(tmp_path):
    out = tmp_path / "synth"
    rep = _build(out)
    assert rep["hours"] >= 0.02 and rep["speakers"] == len(ESPEAK_VOICES)
    parts = {name: read_manifest(out / f"{name}.jsonl") for name in SPLITS}
    unseen = {u.speaker for u in parts["test-unseen"]}
    assert len(unseen) >= 4 and unseen.isdisjoint({u.speaker for u in parts["train"]})
    everything = read_manifest(out / "all.jsonl")
    assert sorted(u.id for u in everything) == sorted(u.id for p in parts.values() for u in p)
    assert validate(everything, out / "all.jsonl", check_audio=True) == []
    for u in everything:
        info = audio_info(u.audio)
        assert (info.sample_rate, info.channels) == (16000, 1) and 1.5 <= info.duration <= 15.0
    assert (out / "corpus.md").is_file() and (out / "corpus.png").stat().st_size > 10_000

    # a finished corpus: a rerun touches nothing
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    _build(out)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before

    # "killed" mid-synthesis: units and manifests gone, a wav gone, a stale temporary left behind
    manifests = _manifests(out)
    for p in [*out.glob("*.jsonl"), out / ".manifests.done", out / ".synthesize.done", out / ".verify.done"]:
        p.unlink()
    for unit in sorted((out / "units").glob("*.json"))[::2]:
        unit.unlink()
    victim = out / everything[0].audio.split(str(out) + "/", 1)[1]
    victim.unlink()
    stale = victim.parent / f".{victim.name}.abc123.wav.tmp"
    stale.write_bytes(b"RIFF half a file")
    _build(out)
    assert _manifests(out) == manifests and victim.is_file() and not stale.exists()

    # same seed elsewhere: identical manifests; another seed: other sentences; a mismatched rerun is refused
    _build(tmp_path / "again")
    assert _manifests(tmp_path / "again") == manifests
    _build(tmp_path / "seed1", seed=1)
    texts0 = {u.text for u in everything}
    texts1 = {u.text for u in read_manifest(tmp_path / "seed1" / "all.jsonl")}
    assert not texts0 & texts1
    (tmp_path / "seed1" / ".manifests.done").unlink()
    with pytest.raises(ValueError, match="planned with --seed 1"):
        _build(tmp_path / "seed1", seed=2)
    assert json.loads((out / "report.json").read_text())["seed"] == 0


def test_cli_synthetic_user_errors(tmp_path):
    import argparse

    from recipes.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["prepare", "synthetic", str(tmp_path / "s"), "--hours", "0"])
    with pytest.raises(ValueError, match="--hours must be positive"):
        args.func(args)
    args = parser.parse_args(["prepare", "synthetic", str(tmp_path / "s"), "--hours", "1", "--engines", "sam"])
    with pytest.raises(ValueError, match="unknown engines"):
        args.func(args)


def test_options_are_checked_before_programs(tmp_path, monkeypatch):
    """A machine without the engines (no sox, no bible-kjv) still gets the option errors first, then a clear
    FileNotFoundError naming what to install, and no output directory."""
    from recipes.synthetic import engines
    from recipes.synthetic.build import SyntheticConfig, build_synthetic

    monkeypatch.setattr(engines.shutil, "which", lambda exe: None)
    out = tmp_path / "s"
    bad = [
        (SyntheticConfig(hours=0), "--hours must be positive"),
        (SyntheticConfig(hours=1, engines=("sam",)), "unknown engines"),
        (SyntheticConfig(hours=1, voices=("nobody",)), "unknown identities"),
        (SyntheticConfig(hours=1, min_seconds=5, max_seconds=2), "min_seconds < max_seconds"),
    ]
    for cfg, message in bad:
        with pytest.raises(ValueError, match=message):
            build_synthetic(out, cfg)
    with pytest.raises(FileNotFoundError, match=r"sox \(apt-get install sox\).*bible \(apt-get install bible-kjv\)"):
        build_synthetic(out, SyntheticConfig(hours=1))
    assert not out.exists()
