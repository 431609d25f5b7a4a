"""Audio loading and saving: formats, rates, channels and every bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.audio import (
    TruncatedAudioWarning,
    audio_info,
    iter_audio_chunks,
    load_audio,
    save_audio,
    wav_frames_promised,
)
from tests.conftest import speechlike


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_rate_is_resampled(tmp_path, rate):
    path = tmp_path / "x.wav"
    sf.write(path, speechlike(0.5, rate), rate)
    wav = load_audio(path, 16000)
    assert wav.shape == (1, 8000) and wav.dtype == torch.float32


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_downmixed(tmp_path, channels):
    x = np.stack([speechlike(0.25, seed=i) for i in range(channels)], axis=1)
    path = tmp_path / "multi.wav"
    sf.write(path, x, 16000)
    wav = load_audio(path)
    np.testing.assert_allclose(wav[0].numpy(), x.mean(axis=1), atol=1e-4)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_sample_formats(tmp_path, subtype):
    path = tmp_path / "f.wav"
    sf.write(path, speechlike(0.2), 16000, subtype=subtype)
    assert load_audio(path).shape == (1, 3200)


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_compressed_formats(tmp_path, fmt):
    path = tmp_path / f"x.{fmt}"
    sf.write(path, speechlike(0.3), 16000)
    assert load_audio(path).shape[-1] == 4800


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")


def test_text_named_wav(tmp_path):
    path = tmp_path / "fake.wav"
    path.write_text("hello, I am not audio")
    with pytest.raises(ValueError, match="fake.wav"):
        load_audio(path)


def test_empty_and_truncated(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="empty"):
        load_audio(empty)
    good = tmp_path / "good.wav"
    sf.write(good, speechlike(1.0), 16000)
    trunc = tmp_path / "trunc.wav"
    trunc.write_bytes(good.read_bytes()[:30])
    with pytest.raises(ValueError, match="trunc.wav"):
        load_audio(trunc)


def test_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    x = speechlike(0.1)
    x[10] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="NaN"):
        load_audio(path)


def test_too_many_channels(tmp_path):
    path = tmp_path / "many.wav"
    sf.write(path, np.zeros((100, 10), dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="channel"):
        load_audio(path)


def test_max_seconds_guard(tmp_path, wav_1s):
    with pytest.raises(ValueError, match="limit"):
        load_audio(wav_1s, max_seconds=0.5)


def test_save_is_atomic_and_round_trips(tmp_path):
    wav = torch.from_numpy(speechlike(0.5))[None]
    out = save_audio(tmp_path / "o.wav", wav)
    back = load_audio(out)
    torch.testing.assert_close(back, wav, atol=1e-4, rtol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.wav"]  # no temp file left behind
    with pytest.raises(ValueError, match="NaN"):
        save_audio(tmp_path / "bad.wav", torch.full((1, 10), float("nan")))
    with pytest.raises(ValueError, match="format"):
        save_audio(tmp_path / "bad.mp4", wav)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.wav"]


def test_atomic_outputs_get_the_permissions_of_an_ordinary_write(tmp_path):
    """A new file gets the mode of a plain write (0o666 less the umask, not mkstemp's owner-only 0o600); a replaced
    file keeps its own mode."""
    import os
    import stat

    from codec.atomic import write_text_atomic

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    out = save_audio(tmp_path / "o.wav", torch.from_numpy(speechlike(0.2))[None])
    write_text_atomic(tmp_path / "a.txt", "x")
    assert mode(out) == mode(plain) and mode(tmp_path / "a.txt") == mode(plain)
    os.chmod(tmp_path / "a.txt", 0o640)
    write_text_atomic(tmp_path / "a.txt", "y")
    assert mode(tmp_path / "a.txt") == 0o640


@pytest.mark.parametrize("rate", [16000, 44100])
def test_chunked_reading_matches_whole_file(tmp_path, rate):
    path = tmp_path / "long.wav"
    sf.write(path, speechlike(3.3, rate), rate)
    whole = load_audio(path)
    chunks = list(iter_audio_chunks(path, chunk_seconds=1.0))
    assert len(chunks) == 4
    joined = torch.cat(chunks, dim=-1)
    assert abs(joined.shape[-1] - whole.shape[-1]) <= 1
    n = min(joined.shape[-1], whole.shape[-1])
    torch.testing.assert_close(joined[..., :n], whole[..., :n], atol=2e-3, rtol=0)
    assert audio_info(path).channels == 1


def test_truncated_wav_warns_with_both_lengths(tmp_path):
    """A WAV cut mid-data (its header promises 16000 samples) loads what is there and says so."""
    good = tmp_path / "good.wav"
    sf.write(good, speechlike(1.0), 16000, subtype="PCM_16")  # 44-byte header + 2 bytes per sample
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[: 44 + 2 * 6000])
    assert wav_frames_promised(cut) == (16000, 6000)
    with pytest.warns(TruncatedAudioWarning, match=r"cut\.wav.*promises 16000 samples.*holds 6000"):
        wav = load_audio(cut)
    assert wav.shape == (1, 6000)
    with pytest.warns(TruncatedAudioWarning, match="holds 6000"):
        chunks = list(iter_audio_chunks(cut, chunk_seconds=0.25))
    assert sum(c.shape[1] for c in chunks) == 6000


def test_complete_files_do_not_warn(tmp_path):
    path = tmp_path / "whole.wav"
    sf.write(path, speechlike(0.5), 16000, subtype="PCM_24")
    assert wav_frames_promised(path) == (8000, 8000)
    flac = tmp_path / "whole.flac"
    sf.write(flac, speechlike(0.5), 16000)
    assert wav_frames_promised(flac) is None  # not a WAV: libsndfile checks its own frames
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedAudioWarning)
        load_audio(path)
        load_audio(flac)
