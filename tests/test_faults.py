"""Faults: a training run SIGKILLed in the middle of a checkpoint write, and a full disk.

- kill -9 during a checkpoint write (codec and TTS training): the run is a real ``ucodec`` subprocess whose
  ``torch.save`` writes half of its second checkpoint and then waits to be killed. The half-written temporary file
  never replaces a checkpoint; the last good one loads; ``--resume`` removes the leftover and continues.
- kill -9 of tokenization midway, and its resume to a byte-identical store, is covered by
  ``tests/test_store.py::test_sigkilled_multiprocess_run_resumes_to_identical_store`` (and the in-process
  ``test_kill_and_resume_gives_identical_store``); not repeated here.
- disk full: the writer underneath :mod:`codec.atomic` fails with ``ENOSPC`` after writing part of the file. Every
  CLI verb answers with one line and exit code 2, the previous file is intact, and no temporary file is left.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from codec.training.experiment import list_checkpoints, load_checkpoint
from tests.conftest import ROOT, TINY, speechlike
from tests.test_train_codec import FAST as CODEC_FAST
from tests.test_train_codec import manifest  # noqa: F401 - fixture
from tests.tts_runs import FAST as TTS_FAST
from tests.tts_runs import TINY_TTS
from ucodec.cli import main

# Runs `ucodec ARGS` with a torch.save that writes half of the N-th file, announces it, and hangs until killed.
HANGING_SAVE = """
import os, sys, time
from pathlib import Path
import torch
real_save, calls = torch.save, [0]
def save(obj, f, *args, **kwargs):
    calls[0] += 1
    real_save(obj, f, *args, **kwargs)
    if calls[0] == int(os.environ["HANG_AT"]):
        data = Path(f).read_bytes()
        Path(f).write_bytes(data[: len(data) // 2])
        Path(os.environ["HANG_MARK"]).write_text(str(f))
        time.sleep(600)
torch.save = save
from ucodec.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def kill_during_second_checkpoint(args: list[str], tmp: Path) -> Path:
    """Run ``ucodec ARGS`` until its second ``torch.save`` is half written, SIGKILL it; return the temp path."""
    mark = tmp / "hanging"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HANG_AT": "2", "HANG_MARK": str(mark)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HANGING_SAVE, *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while not mark.exists():
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the run never reached its second checkpoint"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return Path(mark.read_text())


def check_killed_run(exp: Path, partial: Path) -> None:
    """Only the first checkpoint exists and loads; the half-written second one is a dot-temp file beside it."""
    assert partial.exists() and partial.name.startswith(".step_0000002.pt.")  # never renamed over a checkpoint
    assert [c.name for c in list_checkpoints(exp)] == ["step_0000001.pt"]
    assert load_checkpoint(list_checkpoints(exp)[0])["step"] == 1


def check_resumed(exp: Path, capsys) -> None:
    assert "resumed from" in capsys.readouterr().out
    assert [c.name for c in list_checkpoints(exp)][-1] == "step_0000003.pt"
    assert load_checkpoint(list_checkpoints(exp)[-1])["step"] == 3
    assert not list((exp / "checkpoints").glob(".*.tmp")), "the killed write's temp file is left behind"


def test_codec_training_killed_during_a_checkpoint_write_resumes(manifest, tmp_path, capsys):  # noqa: F811
    exp = tmp_path / "exp"
    common = ["--train", str(manifest), "--out", str(exp), "--cpu"]
    fast = _sets([*CODEC_FAST, "train.checkpoint_every=1"])
    partial = kill_during_second_checkpoint(["train-codec", "--config", str(TINY), *common, *fast], tmp_path)
    check_killed_run(exp, partial)
    assert main(["train-codec", *common, "--resume", "--max-steps", "3"]) == 0
    check_resumed(exp, capsys)


def test_tts_training_killed_during_a_checkpoint_write_resumes(store, tiny_release, tmp_path, capsys):  # noqa: F811
    exp = tmp_path / "exp"
    common = ["--store", str(store), "--out", str(exp), "--cpu"]
    fast = _sets([*TTS_FAST, "train.checkpoint_every=1", f"train.codec={tiny_release}"])
    partial = kill_during_second_checkpoint(["train-tts", "--config", TINY_TTS, *common, *fast], tmp_path)
    check_killed_run(exp, partial)
    assert main(["train-tts", *common, "--resume", "--max-steps", "3"]) == 0
    check_resumed(exp, capsys)


# ------------------------------------------------------------------------------------------------ disk full


def _disk_full_after_half(write):
    """Wrap a writer ``write(obj, path, ...)``: it writes half the file, then fails like a full disk."""

    def failing(obj, path, *args, **kwargs):
        write(obj, path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    return failing


def _one_line_disk_full(code: int, capsys) -> None:
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # training also draws progress bars
    assert code == 2 and len(errors) == 1 and err.endswith(errors[0]) and "No space left on device" in errors[0], err
    assert "Traceback" not in err


def _no_temp_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")], sorted(folder.rglob("*"))


@pytest.fixture()
def wav(tmp_path) -> Path:
    path = tmp_path / "in.wav"
    sf.write(path, speechlike(1.0), 16000)
    return path


def test_disk_full_while_encoding_keeps_the_previous_codes(tiny_release, wav, tmp_path, monkeypatch, capsys):
    import safetensors.torch

    out = tmp_path / "codes.safetensors"
    assert main(["encode", str(wav), str(out), "--model", str(tiny_release)]) == 0
    before = out.read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file", _disk_full_after_half(safetensors.torch.save_file))
    _one_line_disk_full(main(["encode", str(wav), str(out), "--model", str(tiny_release)]), capsys)
    assert out.read_bytes() == before
    _no_temp_files(tmp_path)


def test_disk_full_while_decoding_keeps_the_previous_audio(tiny_release, wav, tmp_path, monkeypatch, capsys):
    codes, out = tmp_path / "codes.safetensors", tmp_path / "out.wav"
    assert main(["encode", str(wav), str(codes), "--model", str(tiny_release)]) == 0
    assert main(["decode", str(codes), str(out), "--model", str(tiny_release)]) == 0
    before = out.read_bytes()
    real_write = sf.SoundFile.write

    def write(self, data):
        real_write(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)

    monkeypatch.setattr(sf.SoundFile, "write", write)
    _one_line_disk_full(main(["decode", str(codes), str(out), "--model", str(tiny_release)]), capsys)
    assert out.read_bytes() == before
    _no_temp_files(tmp_path)


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(manifest, tmp_path, monkeypatch, capsys):  # noqa: F811
    exp = tmp_path / "exp"
    args = ["train-codec", "--config", str(TINY), "--train", str(manifest), "--out", str(exp), "--cpu"]
    args += _sets([*CODEC_FAST, "train.checkpoint_every=1"])
    assert main([*args, "--max-steps", "1"]) == 0
    first = list_checkpoints(exp)[0]
    before = first.read_bytes()
    monkeypatch.setattr(torch, "save", _disk_full_after_half(torch.save))
    _one_line_disk_full(main(["train-codec", "--train", str(manifest), "--out", str(exp), "--resume", "--cpu"]), capsys)
    assert [c.name for c in list_checkpoints(exp)] == [first.name] and first.read_bytes() == before
    _no_temp_files(exp)
