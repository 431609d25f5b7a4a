"""The teacher-forced layer sweep (``tts/evaluation/oracle.py``, ``ucodec eval tts-oracle``): forced layers are copied
and condition the sampled ones, the sweep scores what it says it scores, and the command runs end to end."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from codec import Codec
from codec.audio import load_audio
from codec.manifest import read_manifest
from tts import TTS
from tts.config import TTSConfig
from tts.evaluation.oracle import OracleRow, forced_generate, parse_layers, report, sweep
from tts.sampling import SamplingParams
from ucodec.cli import main

MANIFEST = Path(__file__).resolve().parent / "fixtures" / "eval" / "manifest.jsonl"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_tts(tiny_release) -> TTS:
    torch.manual_seed(0)
    return TTS.from_config(TTSConfig.load("configs/tts/tiny.yaml"), Codec.from_pretrained(tiny_release))


def params(tts: TTS) -> SamplingParams:
    return SamplingParams.create(tts.config.num_codebooks, tts.config.sampling)


def test_forced_layers_are_copied_and_steer_the_sampled_ones(tiny_tts):
    cfg = tiny_tts.config
    q, v, frames = cfg.num_codebooks, cfg.codebook_size, 6
    ids = tiny_tts.frontend.encode("hello there")
    torch.manual_seed(1)
    truth = torch.randint(0, v, (q, frames))
    prompt = torch.randint(0, v, (q, 4))
    free = forced_generate(tiny_tts.model, ids, prompt, truth[:0], frames, params(tiny_tts), seed=3)
    assert free.shape == (q, frames) and int(free.min()) >= 0 and int(free.max()) < v  # never END: fixed length
    one = forced_generate(tiny_tts.model, ids, prompt, truth[:1], frames, params(tiny_tts), seed=3)
    assert torch.equal(one[0], truth[0])
    other = truth.clone()
    other[0] = (truth[0] + 1) % v
    steered = forced_generate(tiny_tts.model, ids, prompt, other[:1], frames, params(tiny_tts), seed=3)
    assert not torch.equal(steered[1:], one[1:])  # same noise, another layer 0: the local model reads it
    again = forced_generate(tiny_tts.model, ids, prompt, truth[:1], frames, params(tiny_tts), seed=3)
    assert torch.equal(again, one)
    assert torch.equal(forced_generate(tiny_tts.model, ids, None, truth, frames, params(tiny_tts)), truth)
    with pytest.raises(ValueError, match="do not fit"):
        forced_generate(tiny_tts.model, ids, None, truth[:2, :3], frames, params(tiny_tts))
    with pytest.raises(ValueError, match="do not fit"):
        forced_generate(
            tiny_tts.model, ids, None, torch.zeros(q + 1, frames, dtype=torch.long), frames, params(tiny_tts)
        )


def test_parse_layers_sorts_dedups_and_refuses_bad_depths():
    assert parse_layers("4, 0,1,4", 32) == (0, 1, 4)
    assert parse_layers("32", 32) == (32,)
    with pytest.raises(ValueError, match="outside 0..8"):
        parse_layers("0,9", 8)
    with pytest.raises(ValueError, match="not an integer"):
        parse_layers("0,one", 8)
    with pytest.raises(ValueError, match="at least one"):
        parse_layers(" , ", 8)


class CountingScorer:
    """Stand-in ASR: one word error per call, and it keeps every signal it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, str]] = []

    def score(self, wav, rate, text=None):
        self.calls.append((wav, text))
        return SimpleNamespace(word_errors=1, words=4, char_errors=2, chars=10)


def test_sweep_scores_the_recording_its_resynthesis_and_each_depth(tiny_tts):
    q = tiny_tts.config.num_codebooks
    scorer = CountingScorer()
    rows, real, lines = sweep(tiny_tts, MANIFEST, (0, 1, q), scorer, params(tiny_tts), limit=2, progress=False)
    assert lines == 2 and [r.forced_layers for r in rows] == [0, 1, q]
    assert (real.words, real.word_errors) == (8, 2) and all((r.words, r.char_errors) == (8, 4) for r in rows)
    assert len(scorer.calls) == 2 * 4  # per line: the recording, then K = 0, 1, Q
    first = load_audio(str(MANIFEST.parent / "a1.flac"), tiny_tts.sample_rate)
    assert torch.equal(scorer.calls[0][0], first)
    with torch.inference_mode():
        resynthesis = tiny_tts.codec.decode(tiny_tts.codec.encode(first[None]))[0]
    assert torch.allclose(scorer.calls[3][0], resynthesis)  # K = Q is the codec's own resynthesis
    assert all(wav.shape == resynthesis.shape for wav, _ in scorer.calls[1:4])  # the recording's length
    assert [text for _, text in scorer.calls[::4]] == [u.text for u in read_manifest(MANIFEST)[:2]]
    _, none, _ = sweep(tiny_tts, MANIFEST, (0,), scorer, params(tiny_tts), limit=1, recordings=False, progress=False)
    assert none is None
    with pytest.raises(ValueError, match="--limit must be >= 1"):
        sweep(tiny_tts, MANIFEST, (0,), scorer, params(tiny_tts), limit=0, progress=False)


def test_report_lists_the_recordings_then_each_depth():
    rows = [OracleRow(0, 9, 10, 40, 50), OracleRow(32, 5, 10, 20, 50)]
    text = report(rows, OracleRow(-1, 2, 10, 5, 50), 3, "m", "ucodec eval tts-oracle ...")
    table = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert table == ["| the recordings | 20.0 % | 10.0 % |", "| 0 | 90.0 % | 80.0 % |", "| 32 | 50.0 % | 40.0 % |"]


def test_eval_tts_oracle_cli_writes_a_report(tiny_tts, tmp_path, capsys):
    pytest.importorskip("faster_whisper", reason="needs the [eval] extra: pip install -e '.[eval]'")
    release = tiny_tts.save_pretrained(tmp_path / "tiny-tts")
    out = tmp_path / "oracle"
    argv = ["eval", "tts-oracle", "--model", str(release), "--manifest", str(MANIFEST), "--out", str(out)]
    q = tiny_tts.config.num_codebooks
    assert main([*argv, "--limit", "1", "--layers", f"0,{q}", "--threads", "1", "--no-progress"]) == 0
    report_md = (out / "report.md").read_text()
    assert "| the recordings |" in report_md and f"| {q} |" in report_md and "| 0 |" in report_md
    assert "Lines: 1" in report_md
    capsys.readouterr()
    assert main([*argv, "--layers", "99"]) == 2
    assert "outside 0.." in capsys.readouterr().err
