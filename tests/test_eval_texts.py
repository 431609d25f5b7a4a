"""``ucodec eval tts-texts`` (``tts/evaluation/texts.py``): new sentences, no voice prompt, Whisper WER.

A stand-in synthesizer and a stand-in recognizer keep this fast and deterministic; the real Whisper path is the one
``eval tts`` already tests (tests/test_metrics.py).
"""

from __future__ import annotations

import json

import pytest
import torch

from tts.evaluation.cli import DEFAULT_TEXTS
from tts.evaluation.texts import corpus_rates, evaluate_texts, read_texts, write_texts_report
from ucodec.cli import main


class SilentSynth:
    """Stand-in TTS: 1 s of quiet noise per call, and it records what it was asked."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def synthesize(self, text, prompt_wav=None, prompt_text=None, **kwargs):
        self.calls.append({"text": text, "prompt_wav": prompt_wav, "prompt_text": prompt_text, **kwargs})
        return 0.01 * torch.randn(1, self.sample_rate, generator=torch.Generator().manual_seed(kwargs["seed"]))


class EchoFirstWords:
    """Stand-in recognizer: 'hears' the first two words of the last text the synthesizer was given."""

    def __init__(self, synth: SilentSynth) -> None:
        self.synth = synth

    def transcribe(self, wav, sample_rate=16000) -> str:
        assert wav.shape[-1] == sample_rate
        return " ".join(self.synth.calls[-1]["text"].split()[:2])


@pytest.fixture()
def stand_ins(monkeypatch):
    synth = SilentSynth()
    monkeypatch.setattr("tts.evaluation.cli.load_tts", lambda model: synth)
    echo = EchoFirstWords(synth)
    monkeypatch.setattr("codec.evaluation.metrics.get_asr", lambda threads=0: echo)
    monkeypatch.setattr("codec.evaluation.asr.get_asr", lambda threads=0: echo)  # Scorer.load's check
    return synth


def test_read_texts_skips_blank_lines_and_comments(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("# a comment\n\n  Hello there.  \n   # indented comment\nSecond line\n", encoding="utf-8")
    assert read_texts(path) == ["Hello there.", "Second line"]


@pytest.mark.parametrize(
    "content, message",
    [(b"# only a comment\n\n", "no sentence in it"), (b"caf\xe9\n", "not UTF-8 text")],
)
def test_read_texts_refuses_files_without_sentences(tmp_path, content, message):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_texts(path)
    with pytest.raises(FileNotFoundError, match="no such text file"):
        read_texts(tmp_path / "missing.txt")


def test_the_default_texts_are_twenty_new_sentences():
    texts = read_texts(DEFAULT_TEXTS)
    assert len(texts) == 20 and len(set(texts)) == 20
    assert all(t[-1] in ".?!" for t in texts)


def test_every_text_and_seed_is_synthesized_without_a_prompt(stand_ins):
    records = evaluate_texts(stand_ins, ["one two three four", "five six"], seeds=[3, 4], progress=False)
    assert [(r.index, r.seed) for r in records] == [(0, 3), (0, 4), (1, 3), (1, 4)]
    assert all(c["prompt_wav"] is None and c["prompt_text"] is None for c in stand_ins.calls)
    assert [r.scores.word_errors for r in records] == [2, 2, 0, 0]  # "one two" heard for four words: two deletions
    wer, cer = corpus_rates(records)
    assert wer == pytest.approx(4 / 12)
    assert 0 < cer < 1 and all(r.duration == pytest.approx(1.0) for r in records)


def test_eval_tts_texts_cli_writes_the_report(stand_ins, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("Good morning | everyone.\nThank you.\n", encoding="utf-8")
    out = tmp_path / "out"
    argv = ["eval", "tts-texts", "--model", "m", "--texts", str(texts), "--out", str(out), "--seeds", "0,1"]
    assert main([*argv, "--temperature", "0.5", "--no-progress"]) == 0
    assert stand_ins.calls[0] == {"text": "Good morning | everyone.", "prompt_wav": None, "prompt_text": None,
                                  "seed": 0, "temperature": 0.5}  # fmt: skip
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and lines[0]["transcript"] == "Good morning"
    report = (out / "report.md").read_text()
    assert "2 lines × seeds 0, 1 = 4 syntheses" in report
    assert "Good morning \\| everyone." in report  # a pipe in a text does not break the table
    assert "--seeds 0,1 --no-progress --temperature 0.5" in report
    assert "4 syntheses: WER" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [(["--texts", "missing.txt"], "no such text file"), (["--seeds", "1,x"], "--seeds must be a comma list")],
)
def test_eval_tts_texts_bad_input_is_one_line_and_writes_nothing(stand_ins, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(["eval", "tts-texts", "--model", "m", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and stand_ins.calls == []


def test_write_texts_report_is_complete_or_absent(tmp_path, stand_ins):
    records = evaluate_texts(stand_ins, ["a b"], seeds=[0], progress=False)
    path = write_texts_report(records, tmp_path / "r", "m", "t.txt")
    assert path.read_text().startswith("# TTS on new texts, no voice prompt: m")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["metrics.jsonl", "report.md"]
