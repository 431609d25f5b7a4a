"""Every codec CLI verb on a 1-second wav, and the one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codec.cli import main


def test_encode_decode_default_layout(tmp_path, tiny_release, wav_1s, capsys):
    codes = tmp_path / "c.safetensors"
    assert main(["encode", str(wav_1s), str(codes), "--model", str(tiny_release)]) == 0
    out = tmp_path / "y.wav"
    assert main(["decode", str(codes), str(out), "--model", str(tiny_release)]) == 0
    import soundfile as sf

    y, sr = sf.read(out)
    assert sr == 16000 and len(y) == 5 * 3200
    assert "5 frames x 32 codebooks" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_hy_layout_files(tmp_path, tiny_release, wav_1s, suffix):
    path = tmp_path / f"t{suffix}"
    assert main(["encode", str(wav_1s), str(path), "--model", str(tiny_release), "--format", "hy"]) == 0
    flat = np.load(path) if suffix == ".npy" else torch.load(path, weights_only=True).numpy()
    assert flat.dtype == np.int16 and flat.shape == (160,)
    assert main(["decode", str(path), str(tmp_path / "y.flac"), "--model", str(tiny_release)]) == 0


def test_num_codebooks_prefix(tmp_path, tiny_release, wav_1s):
    path = tmp_path / "c8.safetensors"
    assert main(["encode", str(wav_1s), str(path), "--model", str(tiny_release), "--num-codebooks", "8"]) == 0
    from safetensors.torch import load_file

    assert load_file(str(path))["codes"].shape == (8, 5)
    assert main(["decode", str(path), str(tmp_path / "y.wav"), "--model", str(tiny_release)]) == 0


def test_info_on_release_and_config(tiny_release, capsys):
    assert main(["info", str(tiny_release)]) == 0
    assert main(["info", "configs/codec/paper.yaml"]) == 0
    out = capsys.readouterr().out
    assert "154,074,562" in out and "1280 bps" in out


def _bad(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    return err


def test_bad_inputs_give_one_line_and_no_output(tmp_path, tiny_release, wav_1s, capsys):
    m = ["--model", str(tiny_release)]
    out = tmp_path / "o.safetensors"
    assert "not found" in _bad(["encode", str(tmp_path / "missing.wav"), str(out), *m], capsys)
    text = tmp_path / "text.wav"
    text.write_text("not audio")
    assert "text.wav" in _bad(["encode", str(text), str(out), *m], capsys)
    assert "unsupported" in _bad(["encode", str(wav_1s), str(tmp_path / "o.txt"), *m], capsys)
    assert "num_codebooks" in _bad(["encode", str(wav_1s), str(out), *m, "--num-codebooks", "40"], capsys)
    assert "model" in _bad(["encode", str(wav_1s), str(out), "--model", str(tmp_path / "nomodel")], capsys)
    bad_tokens = tmp_path / "bad.npy"
    np.save(bad_tokens, np.arange(33, dtype=np.int16))
    assert "multiple" in _bad(["decode", str(bad_tokens), str(tmp_path / "y.wav"), *m], capsys)
    np.save(bad_tokens, np.full(32, 9000, dtype=np.int16))
    assert "layer 0" in _bad(["decode", str(bad_tokens), str(tmp_path / "y.wav"), *m], capsys)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 20)
    assert "unreadable" in _bad(["decode", str(corrupt), str(tmp_path / "y.wav"), *m], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.npy",
        "corrupt.safetensors",
        "one_second.wav",
        "text.wav",
    ]


def test_pickle_payload_in_pt_tokens_is_refused(tmp_path, tiny_release, capsys):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save(Evil(), path)
    assert "unreadable" in _bad(["decode", str(path), str(tmp_path / "y.wav"), "--model", str(tiny_release)], capsys)
    assert not (tmp_path / "pwned").exists()


def test_corrupt_release_is_a_clear_error(tmp_path, tiny_release, wav_1s, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_release, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    assert "SHA-256" in _bad(["encode", str(wav_1s), str(tmp_path / "o.safetensors"), "--model", str(broken)], capsys)


def test_help_everywhere(capsys):
    for verb in ["encode", "decode", "info", "train-codec", "export", "plot"]:
        with pytest.raises(SystemExit) as exc:
            main([verb, "--help"])
        assert exc.value.code == 0
    assert "encode" in capsys.readouterr().out


def test_plot_curves_leave_out_columns_that_are_never_finite(tmp_path):
    """A TTS model of 4 levels logs NaN for the level bands it does not have: they get no curve."""
    from codec.cli_train import read_curves

    (tmp_path / "metrics.csv").write_text("step,loss,loss_mid,lr\n10,4.0,nan,\n20,3.5,nan,0.001\n")
    (tmp_path / "eval.csv").write_text("step,dev_loss,dev_acc_hi\n20,3.9,inf\n")
    curves = read_curves(tmp_path)
    assert sorted(curves) == ["eval/dev_loss", "metrics/loss", "metrics/lr"]
    assert curves["metrics/loss"] == ([10.0, 20.0], [4.0, 3.5]) and curves["metrics/lr"] == ([20.0], [0.001])
