"""Codec training: learning, exact resume, CPU DDP, export, signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.train import CodecTrainer, prepare_experiment
from codec.train_config import load_experiment_config
from codec.training.experiment import latest_good_checkpoint, list_checkpoints, load_checkpoint
from tests.conftest import ROOT, TINY, speechlike
from ucodec.cli import main

FAST = [
    "train.batch_size=2",
    "train.crop_seconds=0.4",
    "train.num_workers=0",
    "train.log_every=1",
    "train.eval_every=0",
    "train.warmup_steps=1",
    "train.disc_start=1",  # exercise the discriminator path (and its state in checkpoints)
    "train.discriminator.periods=[2]",
    "train.discriminator.stft_ffts=[256]",
    "train.discriminator.mpd_channels=2",
    "train.discriminator.stft_channels=4",
]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    lines = []
    for i in range(6):
        sf.write(root / f"u{i}.wav", speechlike(1.0 + 0.2 * i, seed=i), 16000)
        item = {"id": f"u{i}", "audio": f"u{i}.wav", "text": "t", "speaker": "s", "duration": 1.0 + 0.2 * i}
        lines.append(json.dumps({**item, "sample_rate": 16000}))
    path = root / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(manifest, out, steps, *extra, resume=False):
    cfg = load_experiment_config(str(TINY), None, FAST + list(extra))
    cfg = prepare_experiment(str(out), cfg, resume)
    trainer = CodecTrainer(cfg, str(manifest), None, str(out), cpu=True)
    trainer.fit(max_steps=steps, resume=resume)
    return trainer


def test_loss_decreases_on_a_fixed_batch(manifest):
    torch.manual_seed(0)
    cfg = load_experiment_config(str(TINY), None, FAST + ["train.lr=3e-3", "train.disc_start=1000"])
    trainer = CodecTrainer(cfg, str(manifest), None, "/tmp/unused", cpu=True)
    wav = torch.from_numpy(speechlike(0.4))[None, None].repeat(2, 1, 1)
    first = trainer.train_step(wav)["mel"]
    for _ in range(15):
        last = trainer.train_step(wav)["mel"]
    assert last < 0.8 * first, (first, last)


def test_resume_is_exact(manifest, tmp_path):
    straight = run(manifest, tmp_path / "a", 4)
    run(manifest, tmp_path / "b", 2)
    resumed = run(manifest, tmp_path / "b", 4, resume=True)
    assert resumed.step == straight.step == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    for name, value in straight.disc.state_dict().items():
        assert torch.equal(value, resumed.disc.state_dict()[name]), name
    rows = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,mel") and len(rows) == 5  # header + 4 steps, adversarial columns filled


def test_checkpoints_are_rotated_and_damaged_ones_skipped(manifest, tmp_path):
    run(manifest, tmp_path, 3, "train.checkpoint_every=1", "train.keep_checkpoints=2")
    ckpts = list_checkpoints(tmp_path)
    assert [c.name for c in ckpts] == ["step_0000002.pt", "step_0000003.pt"]
    ckpts[-1].write_bytes(ckpts[-1].read_bytes()[:100])  # a write killed half way (without the atomic rename)
    path, state = latest_good_checkpoint(tmp_path)
    assert path.name == "step_0000002.pt" and state["step"] == 2


def test_new_run_refuses_existing_experiment(manifest, tmp_path):
    run(manifest, tmp_path, 1)
    with pytest.raises(FileExistsError, match="--resume"):
        prepare_experiment(str(tmp_path), load_experiment_config(str(TINY), None, FAST), resume=False)


def test_pickle_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "step_0000001.pt"
    torch.save({"model": Evil(), "step": 1}, path)
    with pytest.raises(ValueError, match="not a loadable"):
        load_checkpoint(path)


def test_export_round_trip_via_cli(manifest, tmp_path):
    trainer = run(manifest, tmp_path / "exp", 2)
    assert main(["export", str(tmp_path / "exp"), str(tmp_path / "rel"), "--fp16"]) == 0
    loaded = Codec.from_pretrained(tmp_path / "rel")
    for name, value in trainer.model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value.half().float(), msg=name)
    assert (tmp_path / "rel" / "model.safetensors").stat().st_size < 1_000_000


def test_resume_with_set_changes_training_values_not_the_model(manifest, tmp_path):
    exp = tmp_path / "exp"
    run(manifest, exp, 1)
    common = ["train-codec", "--train", str(manifest), "--out", str(exp), "--cpu", "--resume"]
    # --set on a resumed run used to be ignored silently (the stored config won): the new max_steps must hold
    assert main([*common, "--max-steps", "2", "--set", "train.max_steps=5", "--set", "train.lr=0.0123"]) == 0
    assert load_checkpoint(list_checkpoints(exp)[-1])["step"] == 2
    stored = (exp / "config.yaml").read_text()
    assert "max_steps: 5" in stored and "lr: 0.0123" in stored
    assert main([*common, "--set", "model.transformer.num_layers=3"]) == 2  # a model change is an error line
    assert main([*common, "--set", "train.no_such_key=1"]) == 2


def _cli(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "codec.cli", *args], env=env, cwd=ROOT, **kw)


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(manifest, tmp_path):
    """SIGTERM to the whole process group (as Slurm or `kill -TERM -PGID` send it), DataLoader worker included."""
    sets = sum((["--set", s] for s in FAST), []) + ["--set", "train.num_workers=1"]
    proc = _cli(
        "train-codec",
        "--config",
        str(TINY),
        "--train",
        str(manifest),
        "--out",
        str(tmp_path),
        "--max-steps",
        "100000",
        *sets,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not (tmp_path / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert "stopped by signal" in out.decode()
    step = load_checkpoint(list_checkpoints(tmp_path)[-1])["step"]
    assert step >= 1


@pytest.mark.skipif(
    shutil.which("accelerate") is None
    and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "accelerate")),
    reason="accelerate CLI not installed",
)
def test_two_process_cpu_ddp_keeps_ranks_identical(manifest, tmp_path):
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    sets = sum((["--set", s] for s in FAST), [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "UCODEC_DDP_DUMP": str(tmp_path / "ranks")}
    cmd = [
        accelerate,
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "codec.cli",
        "train-codec",
        "--config",
        str(TINY),
        "--train",
        str(manifest),
        "--out",
        str(tmp_path / "exp"),
        "--max-steps",
        "3",
        "--cpu",
        *sets,
    ]
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    dumps = sorted((tmp_path / "ranks").glob("rank*.safetensors"))
    assert len(dumps) == 2
    from safetensors.torch import load_file

    a, b = (load_file(str(p)) for p in dumps)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert load_checkpoint(list_checkpoints(tmp_path / "exp")[-1])["step"] == 3
    assert np.isfinite(float(result.stdout.count("done at step 3") or 1))


def test_slim_state_resumes_without_optimizer_moments(manifest, tmp_path):
    run(manifest, tmp_path / "exp", 2)
    slim = tmp_path / "slim.pt"
    assert main(["export", str(tmp_path / "exp"), str(tmp_path / "rel"), "--slim-state", str(slim)]) == 0
    state = load_checkpoint(slim)
    assert "opt_g" not in state and state["step"] == 2
    fresh = tmp_path / "fresh"
    (fresh / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "exp" / "config.yaml", fresh / "config.yaml")
    shutil.copy(slim, fresh / "checkpoints" / "step_0000002.pt")
    resumed = run(manifest, fresh, 3, resume=True)
    assert resumed.step == 3


def test_resumes_a_run_made_before_the_package_move(manifest, tmp_path):
    """An experiment directory written by the code before the move (config.yaml + a slim step_N.pt) resumes and
    exports: the checkpoint keys and the config format did not change."""
    legacy = ROOT / "tests" / "fixtures" / "legacy_codec_run"
    exp = tmp_path / "exp"
    (exp / "checkpoints").mkdir(parents=True)
    shutil.copy(legacy / "config.yaml", exp / "config.yaml")
    shutil.copy(legacy / "step_0000002.pt", exp / "checkpoints" / "step_0000002.pt")
    assert main(["train-codec", "--train", str(manifest), "--out", str(exp), "--resume", "--max-steps", "3"]) == 0
    assert load_checkpoint(list_checkpoints(exp)[-1])["step"] == 3
    assert main(["export", str(exp), str(tmp_path / "rel")]) == 0
    assert Codec.from_pretrained(str(tmp_path / "rel")).num_codebooks > 0


def test_append_csv_keeps_an_existing_files_columns(tmp_path):
    from codec.training.experiment import append_csv

    path = tmp_path / "metrics.csv"
    append_csv(path, {"step": 1, "loss": 2.0}, ("step", "loss"))
    append_csv(path, {"step": 2, "loss": 1.5, "acc_lo": 0.3}, ("step", "loss", "acc_lo"))  # a newer version resumes
    assert path.read_text().splitlines() == ["step,loss", "1,2.0", "2,1.5"]
    fresh = tmp_path / "new.csv"
    append_csv(fresh, {"step": 2, "loss": 1.5, "acc_lo": 0.3}, ("step", "loss", "acc_lo"))
    assert fresh.read_text().splitlines()[0] == "step,loss,acc_lo"


def test_frozen_parameters_do_not_move_and_a_pattern_must_match(manifest, tmp_path):
    frozen = ["train.frozen=['quantizer.layers.[0-1].in_proj.*','quantizer.layers.[0-1].codebook.*']"]
    trainer = run(manifest, tmp_path / "f", 0, *frozen)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer = run(manifest, tmp_path / "f", 3, *frozen, resume=True)
    after = dict(trainer.model.named_parameters())
    still = [n for n in before if n.startswith(("quantizer.layers.0.in_proj", "quantizer.layers.1.codebook"))]
    assert still and all(torch.equal(before[n], after[n]) for n in still)
    assert not torch.equal(before["quantizer.layers.2.codebook.weight"], after["quantizer.layers.2.codebook.weight"])
    with pytest.raises(ValueError, match="match no parameter"):
        run(manifest, tmp_path / "typo", 1, "train.frozen=['quantizer.layer.0.*']")
