"""The text-to-frame alignment probe (``tts/evaluation/alignment.py``, ``ucodec eval tts-align``): exact scores on
hand-built attention maps, the hooks on a tiny model, and the command once end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from codec import Codec
from tts import TTS
from tts.config import TTSConfig
from tts.evaluation.alignment import probe, score_attention, text_attention
from tts.transformer import Attention
from ucodec.cli import main

MANIFEST = Path(__file__).resolve().parent / "fixtures" / "eval" / "manifest.jsonl"

pytestmark = pytest.mark.usefixtures("one_thread")


def maps(rows: list[list[float]]) -> torch.Tensor:
    """One layer, one head: ``[1, 1, F, L]``."""
    return torch.tensor(rows, dtype=torch.float64)[None, None]


def test_a_diagonal_head_scores_as_aligned_and_a_stuck_one_does_not():
    frames, symbols = 6, 12
    diagonal = torch.zeros(frames, symbols)
    for f in range(frames):  # 2 symbols a frame, the first one taken
        diagonal[f, 2 * f] = 1.0
    scores = score_attention(maps(diagonal.tolist()))
    assert scores["corr"][0, 0] == pytest.approx(1.0)
    assert scores["peak"][0, 0] == pytest.approx(1.0) and scores["mass"][0, 0] == pytest.approx(1.0)
    # argmax 2f over 12 symbols vs frame f over 6: relative (2f + 0.5) / 12 against (f + 0.5) / 6, 1/24 apart
    assert scores["lag"][0, 0] == pytest.approx(1 / 24)

    stuck = torch.zeros(frames, symbols)
    stuck[:, 5] = 0.5  # half of the attention on one symbol, the rest elsewhere (not text)
    scores = score_attention(maps(stuck.tolist()))
    assert scores["corr"][0, 0] == 0.0  # the argmax does not move
    assert scores["mass"][0, 0] == pytest.approx(0.5) and scores["peak"][0, 0] == pytest.approx(1.0)
    assert scores["lag"][0, 0] == pytest.approx(np.mean(np.abs(5.5 / 12 - (np.arange(6) + 0.5) / 6)))

    uniform = score_attention(maps(torch.full((frames, symbols), 1 / symbols).tolist()))
    assert uniform["peak"][0, 0] == pytest.approx(1 / symbols)


@pytest.fixture(scope="module")
def tiny_tts(tiny_release) -> TTS:
    torch.manual_seed(0)
    return TTS.from_config(TTSConfig.load("configs/tts/tiny.yaml"), Codec.from_pretrained(tiny_release))


def test_text_attention_covers_every_layer_and_head_and_removes_its_hooks(tiny_tts):
    model = tiny_tts.model
    ids = tiny_tts.frontend.encode("hello there")
    codes = torch.randint(0, model.config.codebook_size, (model.config.num_codebooks, 7))
    att = text_attention(model, ids, codes)
    g = model.config.global_model
    assert att.shape == (g.num_layers, g.num_heads, 7, len(ids))
    assert bool((att >= 0).all()) and bool((att.sum(-1) <= 1 + 1e-5).all())
    assert all(not m._forward_hooks for m in model.modules() if isinstance(m, Attention))
    scores = probe(model, [(ids, codes), (ids, codes[:, :5])])
    assert scores.utterances == 2 and scores.corr.shape == (g.num_layers, g.num_heads)
    layer, head = scores.best_head()
    assert scores.corr[layer, head] == np.nanmax(scores.corr)
    with pytest.raises(ValueError, match="at least one"):
        probe(model, [])


def test_eval_tts_align_cli_writes_a_report_and_a_figure(tiny_tts, tmp_path, capsys):
    release = tiny_tts.save_pretrained(tmp_path / "tiny-tts")
    out = tmp_path / "align"
    argv = ["eval", "tts-align", "--model", str(release), "--manifest", str(MANIFEST), "--out", str(out)]
    assert main([*argv, "--limit", "2", "--threads", "1"]) == 0
    assert "best head: layer" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "## corr" in report and "2 utterances" in report
    assert (out / "attention.png").stat().st_size > 0
    assert main([*argv, "--limit", "0"]) == 2
    assert "--limit must be >= 1" in capsys.readouterr().err
