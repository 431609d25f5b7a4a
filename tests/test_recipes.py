"""End-to-end recipes (recipes/codec_recipe.py, recipes/stages.py) and ``ucodec prepare merge``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.manifest import read_manifest
from recipes.codec_recipe import main as codec_recipe
from ucodec.cli import main as ucodec

ROOT = Path(__file__).resolve().parent.parent


def _fake_libritts(root: Path, seconds: float = 1.5) -> None:
    """A LibriTTS-shaped tree: two training subsets, dev-clean and test-clean, 24 kHz wavs with transcripts."""
    rng = np.random.default_rng(0)
    for subset, spk in (
        ("train-clean-100", "19"),
        ("train-clean-360", "26"),
        ("dev-clean", "84"),
        ("test-clean", "61"),
    ):
        chapter = root / subset / spk / "198"
        chapter.mkdir(parents=True)
        for i in range(3):
            stem = f"{spk}_198_000000_00000{i}"
            sf.write(
                chapter / f"{stem}.wav", (0.1 * rng.standard_normal(int(seconds * 24000))).astype(np.float32), 24000
            )
            (chapter / f"{stem}.normalized.txt").write_text(f"Sentence number {i}.", encoding="utf-8")


def test_dry_run_prints_every_stage_and_touches_nothing(tmp_path, capsys):
    data, exp = tmp_path / "synth", tmp_path / "exp"
    code = codec_recipe(
        ["synthetic", "--data", str(data), "--exp", str(exp), "--model", str(tmp_path / "m"), "--dry-run"]
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("--- stage")]
    names = [line.split("(")[1].split(")")[0] for line in lines]
    assert names == ["prepare", "content", "train", "export", "eval"]
    assert "ucodec prepare synthetic" in lines[0] and "--hours 10" in lines[0]
    assert f"ucodec content-store {data}/train.jsonl {data}/content-train" in lines[1]
    assert "--config configs/codec/small.yaml" in lines[2] and "--resume" not in lines[2]
    assert f"--content {data}/content-train" in lines[2]  # small.yaml has content heads
    assert "--num-codebooks 1,2,4,8,16,32" in lines[4] and "test-unseen.jsonl" in lines[4]
    assert f"--probe-train {data}/train.jsonl" in lines[4]
    assert not data.exists() and not exp.exists()


def test_multi_process_training_goes_through_accelerate(tmp_path, capsys):
    code = codec_recipe(
        ["libritts", str(tmp_path / "src"), "--data", str(tmp_path / "d"), "--num-processes", "4", "--dry-run"]
    )
    out = capsys.readouterr().out
    assert code == 0
    train = next(line for line in out.splitlines() if "(train)" in line)
    assert "accelerate.commands.launch --multi_gpu --num_processes 4 -m ucodec train-codec" in train
    assert "--cpu" not in train.split("-m ucodec")[0]  # accelerate's --cpu would silently run one process
    prepare = next(line for line in out.splitlines() if "(prepare)" in line)
    assert "prepare merge" in prepare and "train-other-500.jsonl" in prepare


def test_bad_stage_range_is_a_clear_error(tmp_path, capsys):
    assert codec_recipe(["synthetic", "--data", str(tmp_path), "--stage", "3", "--stop-stage", "9"]) == 2
    assert "stages are numbered 1..5" in capsys.readouterr().err


def test_libritts_recipe_runs_on_a_fake_tree_and_resumes(tmp_path, capsys):
    """prepare (per-subset manifests + merged train.jsonl) → 2 tiny training steps → export; a re-run skips work."""
    src, data, exp, model = tmp_path / "LibriTTS", tmp_path / "data", tmp_path / "exp", tmp_path / "model"
    _fake_libritts(src)
    args = ["libritts", str(src), "--data", str(data), "--exp", str(exp), "--model", str(model)]
    args += ["--train-parts", "train-clean-100,train-clean-360", "--workers", "1"]
    args += [
        "--config",
        str(ROOT / "configs/codec/tiny.yaml"),
        "--train-config",
        str(ROOT / "configs/codec/train_cpu.yaml"),
    ]
    args += ["--max-steps", "2", "--set", "train.batch_size=2", "--set", "train.crop_seconds=1.0"]
    args += ["--set", "train.eval_every=0", "--set", "train.num_workers=0", "--set", "train.warmup_steps=1"]
    assert codec_recipe([*args, "--stop-stage", "4"]) == 0
    train = read_manifest(data / "train.jsonl")
    assert {u.speaker for u in train} == {"19", "26"} and len(train) == 6
    assert all(Path(u.audio).is_file() for u in train)
    assert json.loads((model / "config.json").read_text())["kind"] == "codec"
    assert (exp / ".exported").read_text().split() == ["2", str(model)]
    capsys.readouterr()

    assert codec_recipe([*args, "--stage", "2", "--stop-stage", "5", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "(content): already done" in out and "--content" not in out  # tiny.yaml has no content heads
    assert "(train): " in out and "--resume" in out  # training would continue from step 2, not restart
    assert "(export): already done" in out
    assert "test-clean.jsonl" in out


def test_prepare_merge_writes_relative_paths_and_refuses_conflicts(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    (corpus / "wavs").mkdir(parents=True)
    rows = []
    for i in range(3):
        sf.write(corpus / "wavs" / f"u{i}.wav", np.zeros(1600, np.float32), 16000)
        rows.append(
            {
                "id": f"u{i}",
                "audio": f"wavs/u{i}.wav",
                "text": "hi",
                "speaker": "s",
                "duration": 0.1,
                "sample_rate": 16000,
            }
        )
    (corpus / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    (corpus / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[1:]))  # u1 in both: kept once
    out = tmp_path / "merged" / "all.jsonl"
    out.parent.mkdir()
    assert ucodec(["prepare", "merge", str(out), str(corpus / "a.jsonl"), str(corpus / "b.jsonl")]) == 0
    merged = read_manifest(out, resolve=False)
    assert [u.id for u in merged] == ["u0", "u1", "u2"]
    assert all(not os.path.isabs(u.audio) for u in merged)
    assert all(Path(u.audio).is_file() for u in read_manifest(out))

    rows[1]["text"] = "something else"
    (corpus / "c.jsonl").write_text(json.dumps(rows[1]) + "\n")
    before = out.read_bytes()
    assert ucodec(["prepare", "merge", str(out), str(corpus / "a.jsonl"), str(corpus / "c.jsonl")]) == 2
    assert "names two different utterances" in capsys.readouterr().err
    assert out.read_bytes() == before  # a failed merge leaves the old output untouched
    assert ucodec(["prepare", "merge", str(corpus / "a.jsonl"), str(corpus / "a.jsonl")]) == 2


def test_shell_wrappers_forward_to_the_recipe(tmp_path):
    for script, extra in (("recipes/synthetic/run_codec.sh", []), ("recipes/libritts/run_codec.sh", [str(tmp_path)])):
        proc = subprocess.run(
            ["bash", str(ROOT / script), *extra, "--dry-run", "--data", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHON": sys.executable},
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count("--- stage") == 5


def test_prepare_filter_drops_speakers_and_durations(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    (corpus / "wavs").mkdir(parents=True)
    rows = [
        {
            "id": f"{spk}-{i}",
            "audio": f"wavs/{spk}-{i}.wav",
            "text": "hi",
            "speaker": spk,
            "duration": dur,
            "sample_rate": 16000,
        }
        for spk in ("flite-awb", "mbrola-de1-en")
        for i, dur in enumerate((1.0, 3.0, 30.0))
    ]
    (corpus / "all.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "elsewhere" / "kept.jsonl"
    out.parent.mkdir()
    args = ["prepare", "filter", str(corpus / "all.jsonl"), str(out), "--exclude-speakers", "^mbrola-"]
    assert ucodec([*args, "--min-seconds", "2", "--max-seconds", "20"]) == 0
    assert "speakers dropped entirely: mbrola-de1-en" in capsys.readouterr().out
    kept = read_manifest(out)
    assert [u.id for u in kept] == ["flite-awb-1"]
    assert Path(kept[0].audio).resolve() == (corpus / "wavs" / "flite-awb-1.wav").resolve()  # still the same audio
    assert ucodec([*args[:4], "--per-speaker", "1"]) == 0
    assert [u.id for u in read_manifest(out)] == ["flite-awb-0", "mbrola-de1-en-0"]
    assert ucodec([*args[:4], "--exclude-speakers", "(["]) == 2
    assert "not a regular expression" in capsys.readouterr().err


def test_prepare_filter_keeps_test_sentences_out_and_prefixes_ids(tmp_path, capsys):
    """Two seeds of one corpus: drop the sentences of the other's test split, prefix the ids, then merge cleanly."""
    rows = [
        {"id": f"a_{i}", "audio": f"a{i}.wav", "text": t, "speaker": "a", "duration": 1.0, "sample_rate": 16000}
        for i, t in enumerate(("Hello there.", "A new line.", "Kept too."))
    ]
    (tmp_path / "seed1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    test = [{**rows[0], "text": "  HELLO   there. "}]  # the same sentence, other case and spacing
    (tmp_path / "test.jsonl").write_text(json.dumps(test[0]) + "\n")
    (tmp_path / "seed0.jsonl").write_text(json.dumps(rows[1]) + "\n")  # a_1 again, and the same text: no conflict
    out = tmp_path / "extra.jsonl"
    args = [
        "prepare",
        "filter",
        str(tmp_path / "seed1.jsonl"),
        str(out),
        "--exclude-texts",
        str(tmp_path / "test.jsonl"),
    ]
    assert ucodec([*args, "--id-prefix", "s1-"]) == 0
    assert [(u.id, u.text) for u in read_manifest(out)] == [("s1-a_1", "A new line."), ("s1-a_2", "Kept too.")]
    merged = tmp_path / "train.jsonl"
    assert ucodec(["prepare", "merge", str(merged), str(tmp_path / "seed0.jsonl"), str(out)]) == 0
    assert [u.id for u in read_manifest(merged)] == ["a_1", "s1-a_1", "s1-a_2"]
    assert ucodec([*args, "--exclude-speakers-of", str(tmp_path / "seed0.jsonl")]) == 0  # speaker "a" is there
    assert read_manifest(out) == []
    assert ucodec([*args, "--exclude-texts", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err


def test_tts_recipe_dry_run(tmp_path, capsys):
    from recipes.tts_recipe import main as tts_recipe

    exp = tmp_path / "exp"
    assert tts_recipe(["--data", str(tmp_path / "synth"), "--exp", str(exp), "--dry-run", "--eval-limit", "5"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("--- stage")]
    assert [line.split("(")[1].split(")")[0] for line in lines] == ["filter", "tokenize", "train", "export", "eval"]
    assert (
        lines[0].count("prepare filter") == 4
        and "--per-speaker 20" in lines[0]
        and "mbrola-(af|de|fr|hu|nl|pl|sw)" in lines[0]
    )
    assert "--codec models/ucodec-5hz-small" in lines[2] and "--config configs/tts/small.yaml" in lines[2]
    assert "test-seen-tts.jsonl" in lines[4] and "test-unseen-tts.jsonl" in lines[4] and "--limit 5" in lines[4]
    assert not exp.exists()

    extra = tmp_path / "synth-s1"
    args = ["--data", str(tmp_path / "synth"), "--extra-data", str(extra), "--dry-run", "--stop-stage", "1"]
    assert tts_recipe(args) == 0
    steps = capsys.readouterr().out.split(" && ")
    extra_filter = next(s for s in steps if str(extra / "all.jsonl") in s)
    for held_out in ("dev", "test-seen", "test-unseen"):  # the main corpus' held-out sentences stay out of training
        assert f"--exclude-texts {tmp_path / 'synth' / held_out}.jsonl" in extra_filter
    assert f"--exclude-speakers-of {tmp_path / 'synth' / 'test-unseen.jsonl'}" in extra_filter
    merge = next(s for s in steps if "prepare merge" in s)
    assert merge.split()[3:] == [
        str(tmp_path / "synth" / "train-tts.jsonl"),
        str(tmp_path / "synth" / "train-base-tts.jsonl"),
        str(extra / "extra-tts.jsonl"),
    ]
