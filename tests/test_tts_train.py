"""TTS training: prompts and batches, learning, exact resume, CPU DDP, codec refusal, the fine-tune recipe (export:
test_tts_export)."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from codec import Codec
from codec.store.reader import TokenStore
from codec.store.writer import tokenize
from codec.training.experiment import list_checkpoints, load_checkpoint
from tests.conftest import ROOT, tiny_config
from tests.tts_runs import FAST, TINY_TTS, experiment, run, write_folder
from tts import TTS
from tts.batch import collate
from tts.config import TTSConfig
from tts.train import TTSTrainer, prepare_tts_experiment
from tts.train_config import PromptConfig, load_tts_experiment
from tts.train_data import StepBatchSampler, TTSTrainData, encode_texts

pytestmark = pytest.mark.usefixtures("one_thread")


def test_prompts_come_from_another_utterance_of_the_speaker(store):
    data_store = TokenStore(store)
    from tts.frontend import TextFrontend

    frontend = TextFrontend(TTSConfig.load(TINY_TTS).frontend)
    ids = encode_texts(frontend, [e.text for e in data_store.entries])
    space = frontend.ids[" "]
    data = TTSTrainData(data_store, ids, PromptConfig(p_none=0.2, p_transcript=0.5), space_id=space)
    kinds = set()
    for seed in range(40):
        item, again = data[(0, (seed,))], data[(0, (seed,))]
        assert item.text_ids == again.text_ids and (item.prompt_codes is None) == (again.prompt_codes is None)
        own = ids[data.entries[0].text]
        assert list(item.text_ids[-len(own) :]) == own
        if item.prompt_codes is None:
            kinds.add("none")
            continue
        sources = [data_store.read(e) for e in data.pool[data.entries[0].speaker] if e.id != data.entries[0].id]
        width = item.prompt_codes.shape[1]
        assert any(
            torch.equal(item.prompt_codes, s[:, k : k + width]) for s in sources for k in range(s.shape[1] - width + 1)
        )
        kinds.add("transcript" if len(item.text_ids) > len(own) else "crop")
        assert item.target_text_length == len(own)  # where the target text starts (aligned positions read it)
        bound = data.lengths[0]
        assert 2 + len(item.text_ids) + width + item.target_codes.shape[1] <= bound
    assert kinds == {"none", "transcript", "crop"}


def test_sampler_is_position_addressed_and_splits_ranks():
    lengths = list(np.random.default_rng(0).integers(5, 40, size=50))
    full = StepBatchSampler(lengths, 120, seed=3)
    it = iter(full)
    first = [next(it) for _ in range(30)]
    later = iter(StepBatchSampler(lengths, 120, seed=3, start_step=17))
    assert [next(later) for _ in range(13)] == first[17:]
    assert all(max(lengths[i] for i, _ in b) * len(b) <= 120 or len(b) == 1 for b in first)
    r0, r1 = (StepBatchSampler(lengths, 120, seed=3, rank=r, world_size=2) for r in (0, 1))
    b0, b1 = next(iter(r0)), next(iter(r1))
    assert not {i for i, _ in b0} & {i for i, _ in b1}


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(store, tiny_release, tmp_path):
    cfg = prepare_tts_experiment(str(tmp_path), experiment(tiny_release), resume=False)
    trainer = TTSTrainer(cfg, str(store), None, str(tmp_path), cpu=True)
    batch = collate([trainer.data[(i, (0,))] for i in range(4)], cfg.model.end_id)
    first = trainer.train_step(batch)["loss"]
    for _ in range(12):
        last = trainer.train_step(batch)["loss"]
    assert last < 0.8 * first, (first, last)


def test_resume_is_exact(store, tiny_release, straight, tmp_path):
    run(store, tiny_release, tmp_path, 2)
    resumed = run(store, tiny_release, tmp_path, 4, resume=True)
    assert resumed.step == straight.step == 4
    a, b = straight.acc.unwrap_model(straight.model).state_dict(), resumed.acc.unwrap_model(resumed.model).state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,speech,text") and len(rows) == 5
    losses = [r.split(",")[1] for r in rows[1:]]
    assert losses == [r.split(",")[1] for r in (straight.exp / "metrics.csv").read_text().splitlines()[1:]]
    assert load_checkpoint(list_checkpoints(tmp_path)[-1])["step"] == 4


def test_dev_loss_and_samples_are_recorded(straight):
    rows = (straight.exp / "eval.csv").read_text().splitlines()
    bands = ",".join(f"dev_{k}_{b}" for k in ("loss", "acc") for b in ("lo", "mid", "hi"))
    head = "step,dev_loss,dev_speech,dev_layer0,dev_acc0,samples_wer,samples_end,"
    assert rows[0] == head + bands + ",dev_advance,dev_acc_adv"  # the aligned-text columns stay blank here
    assert all(r.endswith(",,") for r in rows[1:])
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    assert all(float(r.split(",")[1]) > 0 for r in rows[1:])
    for row in csv.DictReader((straight.exp / "eval.csv").open()):  # the bands cut the layers into three parts
        assert float(row["dev_loss_lo"]) > 0 and 0 <= float(row["dev_acc_lo"]) <= 1
    train_rows = list(csv.DictReader((straight.exp / "metrics.csv").open()))
    assert all(float(r["loss_lo"]) > 0 and 0 <= float(r["acc_hi"]) <= 1 for r in train_rows)
    for step in (2, 4):
        assert len(list((straight.exp / "samples" / f"step_{step:07d}").glob("*.wav"))) == 1


def test_first_row_after_a_resume_between_two_rows_is_a_mean_of_its_own_steps(store, tiny_release, straight, tmp_path):
    """Stopped at step 3 with rows every 2 steps, the resumed run's row 4 holds step 4 alone: its mean must be step
    4's loss (the straight run logs every step), not half of it."""
    run(store, tiny_release, tmp_path, 3, "train.log_every=2")
    run(store, tiny_release, tmp_path, 4, "train.log_every=2", resume=True)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    single = [r for r in (straight.exp / "metrics.csv").read_text().splitlines() if r.startswith("4,")][0]
    assert float(rows[2].split(",")[1]) == pytest.approx(float(single.split(",")[1]), rel=1e-5)


@pytest.mark.parametrize("slim", [False, True], ids=["full", "slim"])
def test_resume_takes_the_new_peak_rate_of_set_train_lr(straight, store, tmp_path, slim):
    """``--resume --set train.lr=...`` must change the rate from the first resumed step on (the stored scheduler
    state used to bring the old peak back); a slim state (fresh optimizer) must not restart at step 0's rate."""
    from codec.training.experiment import lr_lambda, stored_config_with_overrides, write_slim_state
    from tts.train_config import TTSExperimentConfig

    exp = tmp_path / "exp"
    shutil.copytree(straight.exp, exp)
    ckpt = list_checkpoints(exp)[-1]
    if slim:
        write_slim_state(load_checkpoint(ckpt), ckpt, optimizers=("opt",), weights=("model",))
    cfg = stored_config_with_overrides(exp, ["train.lr=1e-3"], TTSExperimentConfig)
    trainer = TTSTrainer(prepare_tts_experiment(str(exp), cfg, resume=True), str(store), None, str(exp), cpu=True)
    trainer.load_state_dict(load_checkpoint(ckpt))
    t = cfg.train
    expected = 1e-3 * lr_lambda(4, t.warmup_steps, t.max_steps, t.lr_min_ratio)
    assert [g["lr"] for g in trainer.opt.param_groups] == pytest.approx([expected] * 2, rel=1e-9)
    assert trainer.sched.get_last_lr() == pytest.approx([expected] * 2, rel=1e-9)


def test_store_of_another_codec_is_refused(store, tmp_path):
    torch.manual_seed(7)
    other = Codec(tiny_config()).save_pretrained(tmp_path / "other_codec")
    cfg = prepare_tts_experiment(str(tmp_path / "exp"), experiment(other), resume=False)
    with pytest.raises(ValueError, match="made with codec"):
        TTSTrainer(cfg, str(store), None, str(tmp_path / "exp"), cpu=True)


def test_a_refused_start_leaves_the_experiment_directory_as_it_was(store, tmp_path, capsys):
    """A store of another codec is refused before any step: no new config.yaml (or directory) is left behind, and
    what was in an existing directory stays."""
    from ucodec.cli import main

    torch.manual_seed(7)
    other = Codec(tiny_config()).save_pretrained(tmp_path / "other_codec")
    sets = sum((["--set", s] for s in FAST), [])
    new_dir, old_dir = tmp_path / "new_exp", tmp_path / "old_exp"
    old_dir.mkdir()
    (old_dir / "notes.txt").write_text("mine")
    for exp in (new_dir, old_dir):
        argv = ["train-tts", "--config", TINY_TTS, "--codec", str(other), "--store", str(store), "--out", str(exp)]
        assert main([*argv, *sets]) != 0
        assert "made with codec" in capsys.readouterr().err
    assert not new_dir.exists()
    assert sorted(p.name for p in old_dir.iterdir()) == ["notes.txt"]


def test_init_from_a_release_of_another_codec_warm_starts(straight, store, tmp_path, capsys):
    """``--init-from REL --codec NEW``: the release's weights and frontend carry over, the run trains on NEW's codes."""
    from ucodec.cli import main

    assert main(["export-tts", str(straight.exp), str(tmp_path / "rel")]) == 0
    torch.manual_seed(7)
    other = Codec(tiny_config()).save_pretrained(tmp_path / "other_codec")
    tokenize(other, store.parent / "manifest.jsonl", tmp_path / "tokens", progress=False)
    cfg = load_tts_experiment(None, None, [*FAST, f"train.codec={other}"], init_from=str(tmp_path / "rel"))
    cfg = prepare_tts_experiment(str(tmp_path / "exp"), cfg, resume=False)
    trainer = TTSTrainer(cfg, str(tmp_path / "tokens"), None, str(tmp_path / "exp"), cpu=True)
    assert "its speech-token embeddings and heads will be relearned" in capsys.readouterr().out
    base = TTS.from_pretrained(tmp_path / "rel").model.state_dict()
    mine = trainer.acc.unwrap_model(trainer.model).state_dict()
    assert all(torch.equal(base[k], v) for k, v in mine.items())
    assert trainer.codec.release_id == Codec.from_pretrained(other).release_id
    trainer.fit(max_steps=1)
    assert trainer.step == 1


@pytest.mark.parametrize("how", ["two layers a step", "relearn"])
def test_init_from_relearns_the_local_model(straight, store, tiny_release, tmp_path, capsys, how):
    """A warm start into two layers a local step (or with ``train.relearn``) keeps everything but ``local.``."""
    from ucodec.cli import main

    assert main(["export-tts", str(straight.exp), str(tmp_path / "rel")]) == 0
    extra = ["model.local_levels_per_step=2"] if how != "relearn" else ['train.relearn=["local."]']
    cfg = load_tts_experiment(None, None, [*FAST, *extra], init_from=str(tmp_path / "rel"))
    cfg = prepare_tts_experiment(str(tmp_path / "exp"), cfg, resume=False)
    torch.manual_seed(3)
    trainer = TTSTrainer(cfg, str(store), None, str(tmp_path / "exp"), cpu=True)
    assert ("its local model is relearned" in capsys.readouterr().out) == (how != "relearn")
    base = TTS.from_pretrained(tmp_path / "rel").model.state_dict()
    mine = trainer.acc.unwrap_model(trainer.model).state_dict()
    kept = [k for k in mine if not k.startswith("local.")]
    assert kept and all(torch.equal(base[k], mine[k]) for k in kept)
    assert not torch.equal(base["local.in_proj.weight"], mine["local.in_proj.weight"])
    trainer.fit(max_steps=1)
    assert trainer.step == 1


def test_two_process_cpu_ddp_keeps_ranks_identical(store, tiny_release, tmp_path):
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    if not os.path.exists(accelerate):
        pytest.skip("accelerate CLI not installed")
    sets = sum((["--set", s] for s in FAST), [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "UCODEC_DDP_DUMP": str(tmp_path / "ranks")}
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
           "no", "--dynamo_backend", "no", "-m", "ucodec", "train-tts", "--config", TINY_TTS, "--codec",
           str(tiny_release), "--store", str(store), "--out", str(tmp_path / "exp"), "--max-steps", "2", "--cpu",
           *sets]  # fmt: skip
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    from safetensors.torch import load_file

    a, b = (load_file(str(p)) for p in sorted((tmp_path / "ranks").glob("rank*.safetensors")))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(list_checkpoints(tmp_path / "exp")[-1])["step"] == 2


def test_finetune_recipe_runs_end_to_end(straight, tmp_path, capsys):
    from recipes.finetune.run import main as finetune
    from ucodec.cli import main

    assert main(["export-tts", str(straight.exp), str(tmp_path / "base")]) == 0
    write_folder(tmp_path / "voice", {"me": [0, 1, 2]})  # a flat folder: voice/me/{0,1,2}.wav + .txt
    base = ["--base", str(tmp_path / "base"), "--steps", "2", "--workers", "1"]
    args = [str(tmp_path / "voice" / "me"), str(tmp_path / "out"), *base]
    assert finetune([*args, "--set", "train.max_tokens=120"]) == 0
    out = capsys.readouterr().out
    assert "less than" in out  # 3.6 s of audio is far below the recommended amount
    tuned = TTS.from_pretrained(tmp_path / "out" / "model")
    assert tuned.codec_release_id == TTS.from_pretrained(tmp_path / "base").codec_release_id
    assert load_checkpoint(list_checkpoints(tmp_path / "out" / "exp")[-1])["step"] == 2
    weights = tmp_path / "out" / "model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert finetune(args) == 0  # every stage is done: a second run changes nothing
    assert weights.stat().st_mtime_ns == stamp and "already at step 2" in capsys.readouterr().out


def test_finetune_recipe_needs_two_utterances(tmp_path, capsys):
    from recipes.finetune.run import main as finetune

    write_folder(tmp_path / "voice", {"me": [0]})
    code = finetune([str(tmp_path / "voice" / "me"), str(tmp_path / "out"), "--base", str(tmp_path), "--workers", "1"])
    assert code == 2 and "at least 2" in capsys.readouterr().err


def llama_named(state: dict, cfg) -> dict:
    """Our global-model tensors under a Llama/Qwen checkpoint's names (what a text-LLM directory holds)."""
    out, hd = {}, cfg.head_dim
    for i in range(cfg.num_layers):
        src, dst = f"layers.{i}.", f"model.layers.{i}."
        q, k, v = state[src + "attn.qkv.weight"].split([cfg.num_heads * hd, cfg.kv_heads * hd, cfg.kv_heads * hd])
        gate, up = state[src + "gate_up.weight"].chunk(2)
        names = {"self_attn.q_proj": q, "self_attn.k_proj": k, "self_attn.v_proj": v, "mlp.gate_proj": gate}
        names.update({"mlp.up_proj": up, "mlp.down_proj": state[src + "down.weight"]})
        names.update({"self_attn.o_proj": state[src + "attn.out.weight"]})
        names.update({"input_layernorm": state[src + "attn_norm.weight"]})
        names.update({"post_attention_layernorm": state[src + "mlp_norm.weight"]})
        out.update({f"{dst}{name}.weight": t.clone() for name, t in names.items()})
        out[dst + "self_attn.q_proj.bias"] = torch.zeros(cfg.num_heads * hd)  # Qwen-style: dropped with a warning
    out["model.norm.weight"] = state["norm.weight"].clone()
    out["model.embed_tokens.weight"] = torch.zeros(10, cfg.d_model)
    out["lm_head.weight"] = torch.zeros(10, cfg.d_model)
    return out


def test_global_model_warm_start_from_a_llama_directory(tmp_path):
    from safetensors.torch import save_file

    from tts.model import TTSModel
    from tts.train import warm_start_global

    cfg = TTSConfig.load(TINY_TTS)
    torch.manual_seed(1)
    source = TTSModel(cfg).global_model.state_dict()
    save_file(llama_named(source, cfg.global_model), str(tmp_path / "model.safetensors"))
    torch.manual_seed(2)
    model = TTSModel(cfg)
    with pytest.warns(UserWarning, match="biases"):
        unused = warm_start_global(model, tmp_path)
    assert all(torch.equal(model.global_model.state_dict()[k], v) for k, v in source.items())
    assert {"lm_head.weight", "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias"} <= set(unused)
    with pytest.raises(ValueError, match="shapes differ"):
        warm_start_global(TTSModel(TTSConfig.load(TINY_TTS, ["global_model.dim_feedforward=32"])), tmp_path)


def test_sigterm_saves_a_checkpoint_and_stops(store, tiny_release, tmp_path, capsys):
    cfg = prepare_tts_experiment(str(tmp_path), experiment(tiny_release), resume=False)
    trainer = TTSTrainer(cfg, str(store), None, str(tmp_path), cpu=True)
    step = trainer.train_step

    def step_then_signal(batch):
        logs = step(batch)
        if trainer.step == 1:  # the signal arrives during the second step
            os.kill(os.getpid(), signal.SIGTERM)
        return logs

    trainer.train_step = step_then_signal
    before = signal.getsignal(signal.SIGTERM)
    assert trainer.fit(max_steps=50) == 2
    assert "stopped by signal at step 2" in capsys.readouterr().out
    assert load_checkpoint(list_checkpoints(tmp_path)[-1])["step"] == 2
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is restored
