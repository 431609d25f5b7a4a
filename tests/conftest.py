"""Shared fixtures: tiny codec configs and releases, short test waves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import Codec, CodecConfig

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "codec" / "tiny.yaml"

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models only lose from a second thread on a busy 2-core machine (threads wait on each other).

    Modules that want it say ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(*overrides: str) -> CodecConfig:
    return CodecConfig.load(TINY, list(overrides))


def tiny_seanet_config(*overrides: str) -> CodecConfig:
    """A few-thousand-parameter SEANet codec with the paper's hop of 3200 (ratios 8*8*5*5*2)."""
    base = [
        "encoder=seanet",
        "decoder=seanet",
        "norm=weight_norm",
        "seanet.n_filters=2",
        "seanet.kernel_size=3",
    ]
    return CodecConfig.load(TINY, base + list(overrides))


def speechlike(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A deterministic voiced-looking test signal in [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / sample_rate) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_codec() -> Codec:
    torch.manual_seed(0)
    return Codec(tiny_config()).eval()


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory, tiny_codec) -> Path:
    out = tmp_path_factory.mktemp("release") / "tiny"
    tiny_codec.save_pretrained(out)
    return out


@pytest.fixture()
def wav_1s(tmp_path) -> Path:
    path = tmp_path / "one_second.wav"
    sf.write(path, speechlike(1.0), 16000)
    return path


def pytest_sessionfinish(session, exitstatus):
    """An empty collection is a broken suite, not a pass: turn pytest's exit 5 into a failure with a reason."""
    if session.testscollected == 0:
        print("\nerror: no tests were collected; the suite is broken (wrong path, or a collection filter)")
        session.exitstatus = 1


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_release) -> Path:
    """A tiny TTS token store (tests/tts_runs.py)."""
    from tests.tts_runs import make_store

    return make_store(tmp_path_factory, tiny_release)


@pytest.fixture(scope="module")
def straight(store, tiny_release, tmp_path_factory):
    """A 4-step TTS run on ``store`` (tests/tts_runs.py): its trainer, ``.exp`` the experiment directory."""
    from tests.tts_runs import run_straight

    return run_straight(store, tiny_release, tmp_path_factory)
