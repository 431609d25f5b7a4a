"""The manifest library: JSONL round trip, validation, duration filter, speaker split, merge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codec.manifest import (
    Utterance,
    filter_by_duration,
    merge,
    read_manifest,
    resolve_audio,
    speakers,
    split_by_speaker,
    total_hours,
    validate,
    with_id_prefix,
    without_texts,
    write_manifest,
)


def _utt(i: int, speaker: str = "s1", duration: float = 2.0, **kw) -> Utterance:
    base = dict(id=f"u{i}", audio=f"/x/u{i}.wav", text=f"text {i}", speaker=speaker, duration=duration)
    return Utterance(**{**base, "sample_rate": 16000, **kw})


def test_round_trip_is_exact_and_ordered(tmp_path):
    utts = [_utt(i, speaker=f"s{i % 3}", duration=1.0 + i / 7, text=f"héllo “{i}”") for i in range(10)]
    path = write_manifest(tmp_path / "m.jsonl", utts)
    assert read_manifest(path) == utts
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert list(first) == ["id", "audio", "text", "speaker", "duration", "sample_rate"]
    assert not list(tmp_path.glob(".*tmp")), "atomic write left a temporary file"


def test_relative_audio_is_resolved_against_the_manifest(tmp_path, monkeypatch):
    write_manifest(tmp_path / "sub" / "m.jsonl", [_utt(0, audio="wavs/a.wav")])
    (utt,) = read_manifest(tmp_path / "sub" / "m.jsonl")
    assert utt.audio == str(tmp_path / "sub" / "wavs" / "a.wav")
    (raw,) = read_manifest(tmp_path / "sub" / "m.jsonl", resolve=False)
    assert raw.audio == "wavs/a.wav"
    assert resolve_audio(raw, tmp_path / "sub" / "m.jsonl") == tmp_path / "sub" / "wavs" / "a.wav"
    monkeypatch.chdir(tmp_path)  # a relative manifest path still yields absolute audio paths
    (rel,) = read_manifest(Path("sub") / "m.jsonl")
    assert rel.audio == str(tmp_path / "sub" / "wavs" / "a.wav")
    assert validate([rel], Path("sub") / "m.jsonl", check_audio=True) == [f"u0: audio file not found: {rel.audio}"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ('{"id": "a"}', "missing keys"),
        ('{"id": "a", "audio": "x", "text": "t", "speaker": "s", "duration": 1, "sample_rate": 1, "x": 1}', "unknown"),
        ('{"id": 3, "audio": "x", "text": "t", "speaker": "s", "duration": 1, "sample_rate": 1}', "'id' must be"),
        ('{"id": "a", "audio": "x", "text": "t", "speaker": "s", "duration": "long", "sample_rate": 1}', "float"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_utt(0).to_dict()) + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message) as err:
        read_manifest(path)
    assert f"{path}:3" in str(err.value)


def test_missing_manifest_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_manifest(tmp_path / "nope.jsonl")


def test_validate_reports_every_problem():
    utts = [_utt(0), _utt(0), _utt(1, text="  "), _utt(2, speaker=""), _utt(3, duration=0.0), _utt(4, sample_rate=0)]
    problems = validate(utts)
    assert problems == [
        "u0: duplicate id",
        "u1: empty text",
        "u2: empty speaker",
        "u3: duration must be positive, got 0.0",
        "u4: sample_rate must be positive, got 0",
    ]
    assert validate([_utt(0), _utt(1)]) == []


def test_validate_checks_audio_headers(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(8000, np.float32), 16000)
    good = _utt(0, audio="a.wav", duration=0.5)
    wrong = _utt(1, audio="a.wav", duration=0.9, sample_rate=24000)
    missing = _utt(2, audio="gone.wav", duration=0.5)
    problems = validate([good, wrong, missing], tmp_path / "m.jsonl", check_audio=True)
    assert len(problems) == 3
    assert "sample_rate 24000 but the file has 16000" in problems[0]
    assert "duration 0.900 s but the file lasts 0.500 s" in problems[1]
    assert "gone.wav" in problems[2]


def test_filter_by_duration_is_inclusive():
    utts = [_utt(i, duration=d) for i, d in enumerate([0.5, 1.5, 7.0, 15.0, 20.0])]
    assert [u.duration for u in filter_by_duration(utts, 1.5, 15.0)] == [1.5, 7.0, 15.0]
    with pytest.raises(ValueError, match="must not exceed"):
        filter_by_duration(utts, 3, 2)


def test_split_by_speaker_is_disjoint_and_seeded():
    utts = [_utt(i, speaker=f"s{i % 6}") for i in range(60)]
    kept, held = split_by_speaker(utts, 2, seed=1)
    assert len(speakers(held)) == 2 and not set(speakers(held)) & set(speakers(kept))
    assert len(kept) + len(held) == 60
    assert split_by_speaker(utts, 2, seed=1) == (kept, held)
    kept2, held2 = split_by_speaker(utts, ["s0", "s5"])
    assert speakers(held2) == ["s0", "s5"] and len(held2) == 20
    with pytest.raises(ValueError, match="cannot hold out 7"):
        split_by_speaker(utts, 7)
    with pytest.raises(ValueError, match="nobody"):
        split_by_speaker(utts, ["nobody"])


def test_merge_dedups_identical_and_refuses_conflicts():
    a = [_utt(0), _utt(1)]
    b = [_utt(1), _utt(2)]
    assert [u.id for u in merge(a, b)] == ["u0", "u1", "u2"]
    with pytest.raises(ValueError, match="'u1' names two different"):
        merge(a, [_utt(1, text="other")])
    assert total_hours(merge(a, b)) == pytest.approx(6.0 / 3600)
    with pytest.raises(ValueError, match="--id-prefix"):  # the message says how to merge two colliding corpora
        merge(a, [_utt(1, text="other")])
    assert [u.id for u in merge(a, with_id_prefix([_utt(1, text="other")], "b-"))] == ["u0", "u1", "b-u1"]


def test_without_texts_compares_case_and_space_insensitively():
    utts = [_utt(0, text="The End."), _utt(1, text="the  end. "), _utt(2, text="The end!")]
    assert [u.id for u in without_texts(utts, ["THE END."])] == ["u2"]
    assert without_texts(utts, []) == utts
