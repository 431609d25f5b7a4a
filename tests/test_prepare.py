"""Corpus preparers on tiny fake trees of every layout, each with a few bad files that must be reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codec.manifest import read_manifest, validate
from recipes.prepare import SOURCES, prepare


def _wav(path: Path, seconds: float = 0.25, rate: int = 16000, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format=fmt)
    return path


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x00\x01garbage that is not a wave file")


def _libritts(root: Path) -> dict:
    for subset, spk in (("train-clean-100", "19"), ("dev-clean", "84")):
        d = root / subset / spk / "198"
        for i in range(3):
            stem = f"{spk}_198_000000_00000{i}"
            _wav(d / f"{stem}.wav", rate=24000)
            _text(d / f"{stem}.normalized.txt", f"Normalized text {i}.")
            _text(d / f"{stem}.original.txt", f"Original TEXT {i}!")
    d = root / "train-clean-100" / "19" / "198"
    _wav(d / "19_198_000000_000009.wav", rate=24000)  # audio without transcript
    _text(d / "19_198_000000_000008.original.txt", "Only the original.")  # transcript without audio
    _wav(d / "19_198_000000_000007.wav", rate=24000)
    _text(d / "19_198_000000_000007.original.txt", "Fallback to original.")
    return {"train-clean-100": (4, 2), "dev-clean": (3, 0)}


def _librispeech(root: Path) -> dict:
    d = root / "dev-clean" / "1272" / "128104"
    lines = []
    for i in range(3):
        _wav(d / f"1272-128104-000{i}.flac", fmt="FLAC")
        lines.append(f"1272-128104-000{i} MISTER QUILTER IS THE APOSTLE {i}")
    lines.append("1272-128104-0009 A LINE WITHOUT AUDIO")
    _text(d / "1272-128104.trans.txt", "\n".join(lines) + "\n")
    _corrupt(d / "1272-128104-0005.flac")
    return {"dev-clean": (3, 2)}


def _ljspeech(root: Path) -> dict:
    rows = ["LJ001-0001|Printing, in 1 sense|Printing, in one sense", "LJ001-0002|In being comparatively modern.|"]
    rows.append('LJ001-0003|He said "no"|He said "no"')
    rows.append("LJ001-0004|no audio for this one|no audio for this one")
    _text(root / "metadata.csv", "\n".join(rows) + "\n")
    for i in (1, 2, 3):
        _wav(root / "wavs" / f"LJ001-000{i}.wav", rate=22050)
    sf.write(root / "wavs" / "LJ001-0005.wav", np.zeros(0, np.float32), 22050)  # empty audio, no transcript
    return {"ljspeech": (3, 2)}


def _vctk(root: Path) -> dict:
    for spk in ("p225", "p226"):
        for i in (1, 2):
            _wav(root / "wav48_silence_trimmed" / spk / f"{spk}_00{i}_mic1.flac", rate=48000, fmt="FLAC")
            _wav(root / "wav48_silence_trimmed" / spk / f"{spk}_00{i}_mic2.flac", rate=48000, fmt="FLAC")
            _text(root / "txt" / spk / f"{spk}_00{i}.txt", f"Please call Stella {i}.\n")
    _wav(root / "wav48_silence_trimmed" / "p315" / "p315_001_mic1.flac", rate=48000, fmt="FLAC")  # no txt
    return {"vctk": (4, 1)}


def _folder(root: Path) -> dict:
    for spk in ("alice", "bob"):
        for i in range(2):
            _wav(root / "group" / spk / f"take.{i}.wav")
            _text(root / "group" / spk / f"take.{i}.txt", f"Hello from {spk}, take {i}.")
    _text(root / "group" / "bob" / "empty.txt", "   \n")
    _wav(root / "group" / "bob" / "empty.wav")  # empty transcript
    _corrupt(root / "group" / "alice" / "broken.wav")
    _text(root / "group" / "alice" / "broken.txt", "This file is broken.")
    sf.write(root / "group" / "alice" / "silent.wav", np.zeros(800, np.float32), 16000)
    _text(root / "group" / "alice" / "silent.txt", "Nothing to hear.")
    return {"manifest": (4, 3)}


LAYOUTS = {"libritts": _libritts, "libritts-r": _libritts, "librispeech": _librispeech, "ljspeech": _ljspeech}
LAYOUTS |= {"vctk": _vctk, "folder": _folder}


def test_every_source_has_a_layout_test():
    assert set(LAYOUTS) == set(SOURCES)


@pytest.mark.parametrize("source", sorted(LAYOUTS))
def test_preparer_writes_valid_manifests_and_reports_bad_files(tmp_path, source):
    expected = LAYOUTS[source](tmp_path / "src")
    results = prepare(source, tmp_path / "src", tmp_path / "out", workers=1)
    assert {r.name: (r.kept, r.rejected) for r in results} == expected
    for r in results:
        utts = read_manifest(r.manifest)
        assert len(utts) == r.kept
        assert validate(utts, r.manifest, check_audio=True) == []
        assert all(Path(u.audio).is_absolute() and u.text and u.speaker for u in utts)
        report = (tmp_path / "out" / f"{r.name}.report.txt").read_text(encoding="utf-8").splitlines()
        assert report[0].startswith(f"# {source}/{r.name}: {r.kept} utterances kept, {r.rejected} files skipped")
        assert len(report) == 1 + r.rejected
        assert json.loads((tmp_path / "out" / f".{r.name}.done").read_text())["kept"] == r.kept


def test_transcript_choices(tmp_path):
    _libritts(tmp_path / "tts")
    prepare("libritts", tmp_path / "tts", tmp_path / "o1", workers=1)
    by_id = {u.id: u for u in read_manifest(tmp_path / "o1" / "train-clean-100.jsonl")}
    assert by_id["19_198_000000_000000"].text == "Normalized text 0."
    assert by_id["19_198_000000_000007"].text == "Fallback to original."
    assert by_id["19_198_000000_000000"].sample_rate == 24000
    assert by_id["19_198_000000_000000"].duration == pytest.approx(0.25)
    _ljspeech(tmp_path / "lj")
    prepare("ljspeech", tmp_path / "lj", tmp_path / "o2", workers=1)
    lj = {u.id: u.text for u in read_manifest(tmp_path / "o2" / "ljspeech.jsonl")}
    assert lj == {"LJ001-0001": "Printing, in one sense", "LJ001-0002": "In being comparatively modern.",
                  "LJ001-0003": 'He said "no"'}  # fmt: skip
    _folder(tmp_path / "f")
    prepare("folder", tmp_path / "f", tmp_path / "o3", workers=1)
    ids = {u.id: u.speaker for u in read_manifest(tmp_path / "o3" / "manifest.jsonl")}
    assert ids["group-alice-take.0"] == "alice" and ids["group-bob-take.1"] == "bob"


def test_vctk_mic_and_old_release(tmp_path):
    _vctk(tmp_path / "new")
    (r,) = prepare("vctk", tmp_path / "new", tmp_path / "o", workers=1, mic="mic2")
    assert all(u.audio.endswith("_mic2.flac") for u in read_manifest(r.manifest))
    old = tmp_path / "old"
    _wav(old / "wav48" / "p225" / "p225_001.wav", rate=48000)
    _text(old / "txt" / "p225" / "p225_001.txt", "Please call Stella.")
    (r,) = prepare("vctk", old, tmp_path / "o-old", workers=1)
    assert r.kept == 1 and r.rejected == 0
    with pytest.raises(ValueError, match="mic3"):
        prepare("vctk", old, tmp_path / "o-bad", mic="mic3")


def test_done_markers_make_reruns_no_ops_and_force_redoes(tmp_path):
    _librispeech(tmp_path / "src")
    (first,) = prepare("librispeech", tmp_path / "src", tmp_path / "out", workers=2)  # the real process pool
    assert not first.skipped and first.kept == 3
    manifest_bytes = first.manifest.read_bytes()
    _wav(tmp_path / "src" / "dev-clean" / "1272" / "128104" / "1272-128104-0009.flac", fmt="FLAC")
    (again,) = prepare("librispeech", tmp_path / "src", tmp_path / "out")
    assert again.skipped and again.kept == 3 and first.manifest.read_bytes() == manifest_bytes
    (forced,) = prepare("librispeech", tmp_path / "src", tmp_path / "out", workers=1, force=True)
    assert not forced.skipped and forced.kept == 4


def test_user_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus 'timit'"):
        prepare("timit", tmp_path, tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="source directory not found"):
        prepare("folder", tmp_path / "missing", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no librispeech files found"):
        prepare("librispeech", tmp_path / "empty", tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="metadata.csv"):
        prepare("ljspeech", tmp_path / "empty", tmp_path / "o")


def test_cli_prepare(tmp_path, capsys):
    import argparse

    from recipes.cli import register

    _folder(tmp_path / "src")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["prepare", "folder", str(tmp_path / "src"), str(tmp_path / "out"), "--workers", "1"])
    assert args.func(args) == 0
    assert "4 utterances" in capsys.readouterr().out
    assert (tmp_path / "out" / "manifest.jsonl").is_file()
