"""A TTS model of the codec's first levels only (``model.num_codebooks`` below the codec's): a warm start from a
model of all levels keeps exactly what those levels read and predict, training reads the first levels of a full
store, and the facade feeds the LM the first levels of a full-depth prompt and decodes what it generates."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.testing import assert_close

from codec import Codec
from tests.conftest import speechlike
from tests.tts_runs import FAST
from tts import TTS
from tts.batch import build_prefix
from tts.config import TTSConfig
from tts.model import TTSModel, keep_first_levels
from tts.train import TTSTrainer, prepare_tts_experiment
from tts.train_config import load_tts_experiment

pytestmark = pytest.mark.usefixtures("one_thread")


def first_levels_config(levels: int = 4) -> TTSConfig:
    return dataclasses.replace(TTSConfig.load("configs/tts/tiny.yaml"), num_codebooks=levels, decode_levels=0)


def test_keep_first_levels_predicts_the_first_levels_exactly_as_the_full_model():
    torch.manual_seed(0)
    full_cfg = dataclasses.replace(TTSConfig.load("configs/tts/tiny.yaml"), local_levels_per_step=2)
    full = TTSModel(full_cfg).eval()
    small = TTSModel(dataclasses.replace(full_cfg, num_codebooks=4)).eval()
    small.load_state_dict(keep_first_levels(full.state_dict(), small))  # strict: every tensor fits
    hidden = torch.randn(5, full_cfg.global_model.d_model)
    codes = torch.randint(0, full_cfg.codebook_size, (5, full_cfg.num_codebooks))
    with torch.no_grad():
        want = full.local(hidden, codes)[:, :4]
        got = small.local(hidden, codes[:, :4])
    assert got.shape == (5, 4, full_cfg.head_vocab)
    assert_close(got, want)
    # the frame embedding reads the same first-level codes through the same weights
    w = full_cfg.code_embedding_dim
    assert torch.equal(small.frame_emb.proj.weight, full.frame_emb.proj.weight[:, : 4 * w])


def test_keep_first_levels_refuses_a_model_of_fewer_levels():
    small = TTSModel(first_levels_config(4))
    full = TTSModel(TTSConfig.load("configs/tts/tiny.yaml"))
    with pytest.raises(ValueError, match="fewer levels"):
        keep_first_levels(small.state_dict(), full)


def test_a_prompt_of_all_levels_gives_the_model_its_first_ones():
    prompt = torch.randint(0, 256, (32, 7))
    prefix = build_prefix([[5, 6, 7]], [prompt], 4)
    assert prefix.codes.shape[1] == 4
    assert torch.equal(prefix.codes[0, :, prefix.is_frame[0]], prompt[:4])
    with pytest.raises(ValueError, match=r"prompt_codes must be \[Q=4"):
        build_prefix([[5]], [torch.zeros(2, 3, dtype=torch.long)], 4)


def test_a_first_levels_model_speaks_with_a_deeper_codec_and_round_trips(tiny_release, tmp_path):
    torch.manual_seed(0)
    codec = Codec.from_pretrained(tiny_release)
    tts = TTS.from_config(first_levels_config(4), codec)
    prompt = torch.from_numpy(speechlike(1.5, seed=3))[None]
    wav = tts.synthesize("hello there", prompt, max_seconds=2.0, seed=1)
    assert wav.shape[0] == 1 and wav.shape[1] > 0 and torch.isfinite(wav).all()
    loaded = TTS.from_pretrained(tts.save_pretrained(tmp_path / "rel"))
    assert loaded.config.num_codebooks == 4
    assert torch.equal(loaded.synthesize("hello there", prompt, max_seconds=2.0, seed=1), wav)
    chunks = list(loaded.stream("hello there", prompt, max_seconds=2.0, seed=1))
    assert_close(torch.cat(chunks, dim=1), wav, atol=1e-4, rtol=0)


def test_a_model_of_more_levels_than_the_codec_is_refused(tiny_release):
    cfg = dataclasses.replace(TTSConfig.load("configs/tts/tiny.yaml"), num_codebooks=64)
    with pytest.raises(ValueError, match="num_codebooks"):
        TTS.from_config(cfg, Codec.from_pretrained(tiny_release))


def test_training_from_a_full_release_reads_the_first_levels(straight, store, tmp_path, capsys):
    """``--init-from`` a model of all 32 levels with ``model.num_codebooks=4``: the cut weights carry over and
    every batch holds the store's first 4 levels."""
    from ucodec.cli import main

    assert main(["export-tts", str(straight.exp), str(tmp_path / "rel")]) == 0
    extra = ["model.num_codebooks=4", "model.sampling.temperature=[0.0]"]
    cfg = load_tts_experiment(None, None, [*FAST, *extra], init_from=str(tmp_path / "rel"))
    cfg = prepare_tts_experiment(str(tmp_path / "exp"), cfg, resume=False)
    trainer = TTSTrainer(cfg, str(store), None, str(tmp_path / "exp"), cpu=True)
    assert "models 32 levels, this model the first 4" in capsys.readouterr().out
    full = TTS.from_pretrained(tmp_path / "rel").model
    mine = trainer.acc.unwrap_model(trainer.model)
    assert mine.state_dict().keys() == full.state_dict().keys()
    assert torch.equal(mine.local.head, full.local.head[:4])
    assert torch.equal(mine.global_model.layers[0].attn.qkv.weight, full.global_model.layers[0].attn.qkv.weight)
    item = trainer.data[(0, (1, 2))]
    assert item.target_codes.shape[0] == 4
    assert item.prompt_codes is None or item.prompt_codes.shape[0] == 4
    trainer.fit(max_steps=1)
    assert trainer.step == 1


def test_the_oracle_sweep_of_a_first_levels_model_forces_and_decodes_its_levels(tiny_release):
    """``eval tts-oracle`` on a model of 4 levels: K = 4 is the codec's decode of the recording's first 4 levels."""
    from codec.audio import load_audio
    from tests.test_tts_oracle import MANIFEST, CountingScorer
    from tts.evaluation.oracle import sweep
    from tts.sampling import SamplingParams

    torch.manual_seed(0)
    tts = TTS.from_config(first_levels_config(4), Codec.from_pretrained(tiny_release))
    scorer = CountingScorer()
    params = SamplingParams.create(4, tts.config.sampling)
    rows, _, lines = sweep(tts, MANIFEST, (0, 4), scorer, params, limit=1, progress=False)
    assert lines == 1 and [r.forced_layers for r in rows] == [0, 4]
    first = load_audio(str(MANIFEST.parent / "a1.flac"), tts.sample_rate)
    with torch.inference_mode():
        want = tts.codec.decode(tts.codec.encode(first[None])[:, :4])[0]
    assert torch.allclose(scorer.calls[2][0], want)
