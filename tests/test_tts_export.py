"""``ucodec export-tts``: the release of a TTS run (round trip, a bundled decoder-only fine-tune of its codec, the
slim state, the release's own voice)."""

from __future__ import annotations

import shutil

import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.training.experiment import load_checkpoint
from tests.conftest import speechlike
from tests.tts_runs import run
from tts import TTS

pytestmark = pytest.mark.usefixtures("one_thread")


def test_export_round_trip(straight, tiny_release, tmp_path, capsys):
    from ucodec.cli import main

    assert main(["export-tts", str(straight.exp), str(tmp_path / "rel")]) == 0
    assert "exported step 4" in capsys.readouterr().out
    loaded = TTS.from_pretrained(tmp_path / "rel")
    mine = straight.acc.unwrap_model(straight.model).state_dict()
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in mine.items())
    assert loaded.codec_release_id == Codec.from_pretrained(tiny_release).release_id
    wav = loaded.synthesize("hello", max_seconds=1.0, seed=0)
    assert wav.dim() == 2 and wav.shape[0] == 1


def test_export_bundles_a_codec_with_the_same_tokens_only(straight, tiny_release, tmp_path, capsys):
    """``export-tts --codec``: a decoder-only fine-tune of the run's codec is bundled (its own release id); a codec
    that makes other tokens is refused with one line, exit 2, nothing written."""
    from ucodec.cli import main

    tuned = Codec.from_pretrained(tiny_release)
    with torch.no_grad():
        for p in tuned.decoder.parameters():
            p.mul_(1.1)
    tuned.save_pretrained(tmp_path / "dec")
    argv = ["export-tts", str(straight.exp), str(tmp_path / "rel"), "--codec", str(tmp_path / "dec")]
    assert main([*argv, "--decode-levels", "2"]) == 0
    bundled = TTS.from_pretrained(tmp_path / "rel")
    assert bundled.config.decode_levels == bundled.decode_levels == 2
    assert bundled.codec_release_id == Codec.from_pretrained(tmp_path / "dec").release_id
    assert bundled.codec_release_id != Codec.from_pretrained(tiny_release).release_id
    with torch.no_grad():
        for p in tuned.quantizer.parameters():
            p.mul_(1.1)
    tuned.save_pretrained(tmp_path / "enc")
    capsys.readouterr()
    assert main(["export-tts", str(straight.exp), str(tmp_path / "bad"), "--codec", str(tmp_path / "enc")]) == 2
    err = capsys.readouterr().err
    assert "makes other tokens" in err and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()


def test_slim_state_resumes_without_optimizer_moments(straight, store, tiny_release, tmp_path, capsys):
    """The state committed between sessions: fp16 weights, no AdamW moments, ``--resume`` continues from it."""
    from ucodec.cli import main

    slim = tmp_path / "slim.pt"
    assert main(["export-tts", str(straight.exp), str(tmp_path / "rel"), "--slim-state", str(slim)]) == 0
    state = load_checkpoint(slim)
    assert "opt" not in state and state["step"] == 4
    assert all(t.dtype != torch.float32 for t in state["model"].values())
    fresh = tmp_path / "fresh"
    (fresh / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "frontend.json"):
        shutil.copy(straight.exp / name, fresh / name)
    shutil.copy(slim, fresh / "checkpoints" / "step_0000004.pt")
    resumed = run(store, tiny_release, fresh, 5, resume=True)
    assert resumed.step == 5 and "AdamW moments restart" in capsys.readouterr().out


def test_export_stores_the_voice_and_refuses_a_bad_one(straight, tmp_path, capsys):
    from ucodec.cli import main

    wav = tmp_path / "voice.wav"
    sf.write(wav, speechlike(5.0), 16000)
    assert main(["export-tts", str(straight.exp), str(tmp_path / "rel"), "--voice", str(wav)]) == 0
    loaded = TTS.from_pretrained(tmp_path / "rel")
    cut = loaded.config.sampling.prompt_seconds  # cut like a prompt without transcript
    assert loaded.voice.shape == (32, round(cut * 5)) and loaded.voice_source == "voice.wav"
    capsys.readouterr()
    for bad in (tmp_path / "missing.wav", tmp_path / "empty.wav"):
        if bad.name == "empty.wav":
            sf.write(bad, speechlike(0.0), 16000)
        assert main(["export-tts", str(straight.exp), str(tmp_path / "bad"), "--voice", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert not (tmp_path / "bad").exists()
