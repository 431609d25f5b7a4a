"""Sampling and the generation loop: seeded sampling, cached generation == the full forward, batch == per item,
END per sequence, length limits, repetition/silence guards, and no host syncs inside the frame loop."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch
from torch.testing import assert_close

from tts.batch import TTSItem, build_prefix, collate
from tts.config import SamplingConfig, TTSConfig
from tts.generate import generate, generate_frames, length_limits
from tts.model import TTSModel
from tts.sampling import NoiseSource, SamplingParams, filter_logits, sample

Q, V = 32, 256


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> TTSModel:
    torch.manual_seed(0)
    return TTSModel(TTSConfig.load("configs/tts/tiny.yaml")).eval()


def codes(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (Q, frames), generator=torch.Generator().manual_seed(seed))


def bias_logits(model: TTSModel, monkeypatch, token, layers: str = "first", amount: float = 50.0) -> None:
    """Make ``token`` (an int, or ``frame index -> int``) the overwhelming choice of layer 0 or of every layer."""
    original = model.local.step_logits
    frame = [-1]

    def biased(h, q):
        logits = original(h, q)
        frame[0] += q == 0
        if q == 0 or layers == "all":
            logits = logits.clone()
            logits[:, token(frame[0]) if callable(token) else token] += amount
        return logits

    monkeypatch.setattr(model.local, "step_logits", biased)


def test_sampling_basics():
    logits = torch.randn(3, 20)
    gumbel = NoiseSource([1, 2, 3]).gumbel(20)
    assert torch.equal(sample(logits, 0.0, 0, 1.0, None), logits.argmax(-1))
    assert torch.equal(sample(logits, 1.0, 1, 1.0, gumbel), logits.argmax(-1))  # top-1 is greedy
    assert torch.equal(sample(logits, 1.0, 0, 1e-6, gumbel), logits.argmax(-1))  # tiny nucleus is greedy
    kept = filter_logits(logits, 5, 1.0).isfinite().sum(-1)
    assert kept.tolist() == [5, 5, 5]
    nucleus = filter_logits(torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])), 0, 0.7)
    assert nucleus.isfinite().tolist() == [[True, True, False, False]]  # 0.5 + 0.3 covers 0.7
    a, b = NoiseSource([7, 8]).gumbel(5), NoiseSource([9, 8]).gumbel(5)
    assert torch.equal(a[1], b[1]) and not torch.equal(a[0], b[0])  # a sequence's noise depends on its seed only


def test_gumbel_sampling_matches_the_distribution():
    probs = torch.tensor([0.6, 0.3, 0.1])
    noise = NoiseSource([0]).gumbel(2000, 3)[0]  # 2000 draws of one sequence's noise
    draws = sample(probs.log().expand(2000, 3), 1.0, 0, 1.0, noise)
    freq = torch.bincount(draws, minlength=3).float() / 2000
    assert_close(freq, probs, atol=0.04, rtol=0)


def test_sampling_params_per_layer_and_validation():
    p = SamplingParams.create(4, SamplingConfig(), temperature=[1.0, 0.5], top_k=[50, 20], top_p=0.9)
    assert p.temperature == (1.0, 0.5, 0.5, 0.5) and p.top_k == (50, 20, 20, 20) and p.top_p == (0.9,) * 4
    for bad in ({"temperature": -1.0}, {"top_k": -2}, {"top_p": 0.0}, {"top_p": 1.5}, {"top_k": [1, 2, 3, 4, 5]}):
        with pytest.raises(ValueError):
            SamplingParams.create(4, SamplingConfig(), **bad)


def test_length_limits():
    cfg = SamplingConfig(min_frames_per_symbol=0.1, max_frames_per_symbol=0.5, max_frames_margin=2, max_seconds=4.0)
    low, high = length_limits([10, 100, 0], cfg, frame_rate=5.0)
    assert low == [1, 10, 0] and high == [7, 20, 2]  # 20 = 4 s * 5 Hz cap


@pytest.fixture(scope="module")
def aligned() -> TTSModel:
    """The tiny model with aligned RoPE positions (frames 2.5 text symbols apart)."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(TTSConfig.load("configs/tts/tiny.yaml"), frame_position_stride=2.5)
    return TTSModel(cfg).eval()


@pytest.fixture(scope="module")
def grouped() -> TTSModel:
    """The tiny model predicting two layers a local step (its in-step code table randomised: it starts at 0)."""
    torch.manual_seed(0)
    net = TTSModel(TTSConfig.load("configs/tts/tiny.yaml", ["local_levels_per_step=2"])).eval()
    torch.nn.init.normal_(net.local.intra_emb.weight, std=0.5)
    return net


@pytest.mark.parametrize("kind", ["plain", "aligned", "aligned+transcript", "grouped"])
def test_cached_generation_equals_full_forward_greedy(model, aligned, grouped, kind):
    net = {"plain": model, "grouped": grouped}.get(kind, aligned)
    stride = net.config.frame_position_stride
    text, prompt = [5, 6, 7, 8], codes(3, 1)
    target_text = 2 if kind.endswith("transcript") else len(text)  # the first two symbols: the prompt's transcript
    prefix = build_prefix([text], [prompt], Q, [target_text], frame_stride=stride)
    out = generate(net, prefix, SamplingParams.greedy(Q), [0], [3], [6])
    frames = out.codes[0, :, : out.lengths[0]]
    item = TTSItem(text, prompt, frames, target_text_length=target_text)
    logits = net(collate([item], end_id=V, frame_stride=stride)).logits  # [F + 1, Q, V + 1]
    greedy = logits[: out.lengths[0]].argmax(-1).T  # teacher-forced argmax of every generated frame
    assert torch.equal(greedy, frames)
    if out.reasons[0] == "end":
        assert logits[-1, 0].argmax() == V


@pytest.mark.parametrize("kind", ["plain", "aligned", "grouped"])
def test_batch_equals_per_item_with_the_same_seeds(model, aligned, grouped, monkeypatch, kind):
    net = {"plain": model, "grouped": grouped}.get(kind, aligned)
    bias_logits(net, monkeypatch, V, amount=4.0)  # END likely but not certain: sequences end at different times
    texts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
    prompts = [codes(2, 1), None, codes(4, 2)]
    targets, stride = [3, 2, 3], net.config.frame_position_stride  # the first item has a 2-symbol transcript
    params = SamplingParams.create(Q, SamplingConfig(), temperature=1.0, top_k=[30, 10], top_p=0.9)
    seeds, low, high = [11, 22, 33], [1, 2, 0], [9, 7, 8]
    batched = generate(net, build_prefix(texts, prompts, Q, targets, stride), params, seeds, low, high)
    for i in range(3):
        prefix = build_prefix([texts[i]], [prompts[i]], Q, [targets[i]], stride)
        alone = generate(net, prefix, params, [seeds[i]], [low[i]], [high[i]])
        assert alone.lengths[0] == batched.lengths[i] and alone.reasons[0] == batched.reasons[i]
        n = alone.lengths[0]
        assert torch.equal(batched.codes[i, :, :n], alone.codes[0, :, :n])
        assert batched.codes[i, :, n:].eq(0).all()


def test_end_stops_each_sequence(model, monkeypatch):
    bias_logits(model, monkeypatch, V)  # END wins as soon as it is allowed
    prefix = build_prefix([[5, 6], [7, 8, 9]], [None, None], Q)
    params = SamplingParams.create(Q, SamplingConfig())
    chunks = list(generate_frames(model, prefix, params, [0, 1], [3, 6], [20, 20], chunk_frames=4))
    assert chunks[-1].lengths == [3, 6] and chunks[-1].reasons == ["end", "end"]
    assert len(chunks) == 2  # stopped at the first END check after both ended, not at max_frames = 20
    assert chunks[0].lengths == [3, None]  # a sequence's END is known while the other still runs


def test_max_length_when_end_never_comes(model, monkeypatch):
    bias_logits(model, monkeypatch, V, amount=-1e4)
    out = generate(model, build_prefix([[5, 6]], [None], Q), SamplingParams.create(Q), [0], [0], [5])
    assert out.lengths == [5] and out.reasons == ["max_length"] and out.codes.shape == (1, Q, 5)


def test_repetition_and_silence_guards(model, monkeypatch):
    bias_logits(model, monkeypatch, 3, layers="all")  # every layer always picks code 3: a stuck model
    cfg = dataclasses.replace(SamplingConfig(), max_repeat_frames=4, max_silence_frames=0)
    prefix = build_prefix([[5, 6]], [None], Q)
    out = generate(model, prefix, SamplingParams.greedy(Q), [0], [0], [12], guard=cfg)
    assert out.reasons == ["repetition"] and out.lengths == [1]  # the repeated tail is trimmed to one frame
    cfg = dataclasses.replace(SamplingConfig(), max_repeat_frames=0, max_silence_frames=3)
    silence = torch.full((Q,), 3)
    out = generate(model, prefix, SamplingParams.greedy(Q), [0], [0], [8], guard=cfg, silence_codes=silence)
    assert out.reasons == ["max_length"]  # silence before any speech does not stop generation


def test_silence_after_speech_stops(model, monkeypatch):
    bias_logits(model, monkeypatch, lambda frame: 9 if frame < 2 else 3, layers="all")
    cfg = dataclasses.replace(SamplingConfig(), max_repeat_frames=0, max_silence_frames=3)
    prefix = build_prefix([[5, 6]], [None], Q)
    out = generate(
        model, prefix, SamplingParams.greedy(Q), [0], [0], [12], guard=cfg, silence_codes=torch.full((Q,), 3)
    )
    assert out.reasons == ["silence"] and out.lengths == [3]  # two spoken frames + one silent frame kept
    assert out.codes[0, :, :2].eq(9).all() and out.codes[0, :, 2].eq(3).all()


def test_no_host_sync_inside_the_frame_loop(model, monkeypatch):
    calls = {"sync": 0, "tolist": 0}
    original_tolist = torch.Tensor.tolist

    def counting(name):
        def sync(self, *args, **kwargs):
            calls["sync"] += 1
            raise AssertionError(f"host sync via Tensor.{name} inside generation")

        return sync

    def tolist(self):
        calls["tolist"] += 1
        return original_tolist(self)

    prefix = build_prefix([[5, 6, 7], [8]], [codes(2), None], Q)
    params = SamplingParams.create(Q)
    with monkeypatch.context() as m:
        for name in ("__bool__", "item", "__int__", "__float__", "__index__"):
            m.setattr(torch.Tensor, name, counting(name))
        m.setattr(torch.Tensor, "tolist", tolist)
        chunks = list(generate_frames(model, prefix, params, [0, 1], [12, 12], [12, 12], chunk_frames=4))
    assert len(chunks) == 3 and calls == {"sync": 0, "tolist": 2 * 3}  # lengths + reasons, once per chunk


@pytest.mark.skipif(not os.environ.get("UCODEC_SLOW_TESTS"), reason="torch.compile takes minutes on 2 cores")
def test_compiled_steps_match_eager(model):
    prefix = build_prefix([[5, 6, 7]], [codes(2)], Q)
    eager = generate(model, prefix, SamplingParams.greedy(Q), [0], [4], [4])
    compiled = generate(model, prefix, SamplingParams.greedy(Q), [0], [4], [4], compile=True)
    assert torch.equal(eager.codes, compiled.codes)
