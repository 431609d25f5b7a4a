"""The global-local LM: batch layout, training loss, masks, and cached inference == the full forward."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.testing import assert_close

from tts.batch import TTSItem, build_prefix, collate, item_positions
from tts.config import BOS_ID, IGNORE_INDEX, PAD_ID, SEP_ID, TTSConfig
from tts.model import TTSModel
from tts.transformer import KVCache, StepDecoder, Transformer

Q, V = 32, 256


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models only lose from a second thread on a busy 2-core machine (threads wait on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(*overrides: str) -> TTSConfig:
    return TTSConfig.load("configs/tts/tiny.yaml", list(overrides))


@pytest.fixture(scope="module")
def model() -> TTSModel:
    torch.manual_seed(0)
    return TTSModel(tiny_config()).eval()


def codes(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (Q, frames), generator=torch.Generator().manual_seed(seed))


def test_collate_layout_and_targets():
    prompt, target = codes(3, 1), codes(4, 2)
    batch = collate([([7, 8], prompt, target), ([9], None, codes(2, 3))], end_id=V)
    assert batch.lengths.tolist() == [2 + 2 + 3 + 4, 1 + 2 + 2]
    assert batch.tokens[0, :4].tolist() == [BOS_ID, 7, 8, SEP_ID] and batch.tokens[1, 5:].eq(PAD_ID).all()
    assert batch.is_frame[0].tolist() == [False] * 4 + [True] * 7
    assert torch.equal(batch.codes[0, :, 4:7], prompt) and torch.equal(batch.codes[0, :, 7:11], target)
    assert batch.text_targets[0, :3].tolist() == [7, 8, SEP_ID] and batch.text_targets[0, 3:].eq(IGNORE_INDEX).all()
    # position p predicts frame p + 1: the last prompt frame (6) predicts the first target frame; prompt frames
    # themselves are never targets; the last target frame predicts END (layer 0 only)
    st = batch.speech_targets[0]
    assert st[:, :6].eq(IGNORE_INDEX).all()
    assert torch.equal(st[:, 6:10], target)
    assert st[0, 10] == V and st[1:, 10].eq(IGNORE_INDEX).all()
    # without a prompt, SEP predicts the first target frame
    assert torch.equal(batch.speech_targets[1, :, 2:4], batch.codes[1, :, 3:5])
    with pytest.raises(ValueError, match="Q=32"):
        collate([([1], None, codes(2)), ([1], None, torch.zeros(4, 2, dtype=torch.long))], end_id=V)


def test_aligned_positions_lay_frames_on_the_text_axis():
    """One position per token by default; with a stride, target frame j sits at the target text's first symbol
    + stride * j, a transcribed prompt's frames before it (over its transcript), the text keeps 0 .. n + 1."""
    prompt, target = codes(2, 1), codes(3, 2)
    plain = collate([TTSItem([7, 8, 9, 10], prompt, target, target_text_length=2)], end_id=V)
    assert plain.positions[0].tolist() == list(range(4 + 2 + 5))
    aligned = collate([TTSItem([7, 8, 9, 10], prompt, target, target_text_length=2)], end_id=V, frame_stride=2.5)
    # BOS 0, text 1..4 (transcript 1-2, target text 3-4), SEP 5; target text starts at 3
    assert aligned.positions[0].tolist() == [0, 1, 2, 3, 4, 5, 3 - 5.0, 3 - 2.5, 3, 5.5, 8]
    assert item_positions(4, 2, 2, 5, 2.5).tolist() == aligned.positions[0].tolist()
    # inference: the same prefix positions, and the next frame where the teacher-forced target frame 0 is
    prefix = build_prefix([[7, 8, 9, 10]], [prompt], Q, [2], frame_stride=2.5)
    assert prefix.positions[0].tolist() == aligned.positions[0, :8].tolist()
    assert prefix.next_positions.tolist() == [3.0] and prefix.frame_step == 2.5
    legacy = build_prefix([[7, 8, 9, 10]], [prompt], Q, [2])
    assert legacy.next_positions.tolist() == [8] and legacy.frame_step == 1
    with pytest.raises(ValueError, match="frame_position_stride"):
        dataclasses.replace(TTSConfig.load("configs/tts/tiny.yaml"), frame_position_stride=-1.0)


def test_forward_loss_and_gradients():
    torch.manual_seed(0)
    model = TTSModel(tiny_config())
    batch = collate([([5, 6, 7], codes(2, 1), codes(5, 2)), ([8, 9], None, codes(3, 3))], end_id=V)
    out = model(batch)
    supervised = (5 + 1) + (3 + 1)  # every target frame, plus END after the last one
    assert out.logits.shape == (supervised, Q, V + 1) and out.targets.shape == (supervised, Q)
    assert abs(out.speech_loss.item() - math.log(V + 1)) < 0.2  # untrained: near uniform
    assert torch.isinf(out.logits[:, 1:, V]).all()  # only layer 0 can say END
    assert_close(out.loss, out.speech_loss + 0.1 * out.text_loss)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    no_text = TTSModel(tiny_config("text_loss_weight=0.0"))
    assert no_text(batch).text_loss.item() == 0.0
    summed = TTSModel(tiny_config("frame_embedding=sum"))
    assert torch.isfinite(summed(batch).loss)


def test_first_layer_loss_weight_counts_layer_zero_more():
    torch.manual_seed(0)
    plain = TTSModel(tiny_config())
    torch.manual_seed(0)
    heavy = TTSModel(tiny_config("first_layer_loss_weight=4.0"))
    batch = collate([([5, 6, 7], codes(2, 1), codes(5, 2)), ([8, 9], None, codes(3, 3))], end_id=V)
    a, b = plain(batch), heavy(batch)
    assert_close(a.speech_loss, b.speech_loss)  # the reported loss stays the plain mean over all tokens
    per_layer, counts = b.layer_loss, (b.targets != IGNORE_INDEX).sum(0).float()
    weights = torch.ones(Q)
    weights[0] = 4.0
    expected = (per_layer * counts * weights).sum() / (counts * weights).sum()
    assert_close(b.loss, expected + 0.1 * b.text_loss)
    assert not torch.allclose(a.loss, b.loss)
    with pytest.raises(ValueError, match="first_layer_loss_weight"):
        tiny_config("first_layer_loss_weight=0")


def test_content_levels_weigh_their_loss_and_band_the_metrics():
    torch.manual_seed(0)
    model = TTSModel(tiny_config("content_levels=2", "content_loss_weight=3.0", "first_layer_loss_weight=2.0"))
    cfg = model.config
    assert cfg.level_weights == (6.0, 3.0) + (1.0,) * (Q - 2)
    assert cfg.level_bands["lo"] == (0, 2) and cfg.level_bands["mid"][0] == 2
    batch = collate([([5, 6, 7], codes(2, 1), codes(5, 2)), ([8, 9], None, codes(3, 3))], end_id=V)
    out = model(batch)
    counts = (out.targets != IGNORE_INDEX).sum(0).float()
    weights = torch.tensor(cfg.level_weights)
    expected = (out.layer_loss * counts * weights).sum() / (counts * weights).sum()
    assert_close(out.loss, expected + 0.1 * out.text_loss)
    assert torch.equal(out.layer_count, counts)
    hits = ((out.logits.argmax(-1) == out.targets) & (out.targets != IGNORE_INDEX)).sum(0).float()
    assert torch.equal(out.layer_hits, hits)
    with pytest.raises(ValueError, match="content_levels"):
        tiny_config(f"content_levels={Q + 1}")
    with pytest.raises(ValueError, match="content_loss_weight"):
        tiny_config("content_levels=1", "content_loss_weight=0")


def test_cache_mask_directly():
    valid = torch.tensor([[False, True, True, True], [True, True, True, True]])
    mask = Transformer._cache_mask(valid, start=0, s=4, device=valid.device)[:, 0]
    assert mask[1].tolist() == torch.ones(4, 4).tril().bool().tolist()  # causal: no position sees the future
    assert mask[0, 0].tolist() == [True, False, False, False]  # a padding query sees only itself (no NaN row)
    assert mask[0, 2].tolist() == [False, True, True, False]  # real queries never see padding or the future
    step = Transformer._cache_mask(valid, start=3, s=1, device=valid.device)[:, 0, 0]
    assert step.tolist() == [[False, True, True, True], [True, True, True, True]]


def test_global_model_is_causal(model):
    batch = collate([([5, 6], codes(2, 1), codes(5, 2))], end_id=V)
    hidden = model(batch).hidden
    batch.codes[0, :, 7] = (batch.codes[0, :, 7] + 1) % V  # change frame at position 7
    changed = model(batch).hidden
    assert_close(changed[:, :7], hidden[:, :7], rtol=0, atol=0)
    assert not torch.allclose(changed[:, 7:], hidden[:, 7:])


def test_local_model_sees_only_lower_layers(model):
    hidden = torch.randn(3, 32)
    frame = codes(3).T.contiguous()  # [N=3, Q]
    logits = model.local(hidden, frame)
    frame[:, 10] = (frame[:, 10] + 1) % V  # code of layer 10 is the input of position 11
    changed = model.local(hidden, frame)
    assert_close(changed[:, :11], logits[:, :11], rtol=0, atol=0)
    assert not torch.allclose(changed[:, 11:], logits[:, 11:])


def test_global_cache_equals_full_forward(model):
    torch.manual_seed(1)
    x = torch.randn(2, 12, 32)
    full = model.global_model(x)
    cache = KVCache.allocate(model.config.global_model, 2, 16)
    parts = [model.global_model(x[:, :7], cache=cache, start=0)]
    for t in range(7, 12):
        parts.append(model.global_model(x[:, t : t + 1], cache=cache, start=t))
    assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)


def test_left_padded_prefill_equals_unpadded(model):
    long_ids, short_ids = [5, 6, 7, 8, 9], [10, 11]
    prefix = build_prefix([long_ids, short_ids], [codes(2, 1), codes(3, 2)], Q)
    cache = KVCache.allocate(model.config.global_model, 2, prefix.tokens.shape[1], padded=True)
    x = model.embed(prefix.tokens, prefix.codes, prefix.is_frame)
    batched = model.global_model(x, positions=prefix.positions, cache=cache, valid=prefix.valid)
    for row, (ids, c) in enumerate([(long_ids, codes(2, 1)), (short_ids, codes(3, 2))]):
        alone = build_prefix([ids], [c], Q)
        y = model.global_model(model.embed(alone.tokens, alone.codes, alone.is_frame))
        assert_close(batched[row, -y.shape[1] :], y[0], rtol=1e-5, atol=1e-5)


def test_local_cache_equals_full_forward(model):
    hidden = torch.randn(2, 32)
    frame = codes(2).T.contiguous()  # [2, Q]
    full = model.local(hidden, frame)
    cache = KVCache.allocate(model.config.local_model, 2, Q)
    fast = StepDecoder(model.local.transformer, KVCache.allocate(model.config.local_model, 2, Q))
    base = model.local.frame_inputs(hidden)
    for q in range(Q):
        x = model.local.step_input(base, q, frame[:, q - 1] if q else None)  # [2, D]
        for h in (model.local.transformer(x[:, None], cache=cache, start=q)[:, 0], fast.step(x, q)):
            logits = model.local.step_logits(h, q)
            assert_close(logits, full[:, q, : logits.shape[-1]], rtol=1e-5, atol=1e-5)


def grouped_model(g: int) -> TTSModel:
    """The tiny model predicting ``g`` layers a local step, its in-step code table randomised (it starts at 0)."""
    torch.manual_seed(0)
    net = TTSModel(tiny_config(f"local_levels_per_step={g}")).eval()
    torch.nn.init.normal_(net.local.intra_emb.weight, std=0.5)
    return net


@pytest.mark.parametrize("g", [2, 4])
def test_grouped_local_model_steps_equal_full_forward(g):
    net = grouped_model(g)
    local = net.local
    assert local.steps == Q // g and local.pos_emb.shape[0] == Q // g
    hidden = torch.randn(2, 32)
    frame = codes(2).T.contiguous()  # [2, Q]
    full = local(hidden, frame)
    fast = StepDecoder(local.transformer, KVCache.allocate(net.config.local_model, 2, local.steps))
    base = local.frame_inputs(hidden)
    for p in range(local.steps):
        h = fast.step(local.step_input(base, p, frame[:, (p - 1) * g : p * g] if p else None), p)
        for q in range(p * g, (p + 1) * g):
            if q > p * g:
                h = local.intra_step(h, frame[:, q - 1], q)
            logits = local.step_logits(h, q)
            assert_close(logits, full[:, q, : logits.shape[-1]], rtol=1e-5, atol=1e-5)


def test_grouped_local_model_sees_the_codes_before_each_layer():
    net, hidden = grouped_model(2), torch.randn(3, 32)
    frame = codes(3).T.contiguous()
    logits = net.local(hidden, frame)
    frame[:, 10] = (frame[:, 10] + 1) % V  # layer 10 opens step 5; layer 11 reads it inside the step
    changed = net.local(hidden, frame)
    assert_close(changed[:, :11], logits[:, :11], rtol=0, atol=0)
    assert not torch.allclose(changed[:, 11], logits[:, 11]) and not torch.allclose(changed[:, 12:], logits[:, 12:])
    frame[:, 11] = (frame[:, 11] + 1) % V  # the last layer of a step only reaches the next steps
    again = net.local(hidden, frame)
    assert_close(again[:, :12], changed[:, :12], rtol=0, atol=0)


def test_grouped_training_pass_and_validation():
    net = grouped_model(2).train()
    batch = collate([([5, 6], codes(2, 1), codes(4, 2))], end_id=V)
    out = net(batch)
    assert out.logits.shape[1:] == (Q, V + 1) and torch.isfinite(out.loss)
    out.loss.backward()
    assert net.local.intra_emb.weight.grad.abs().sum() > 0
    assert TTSModel(tiny_config()).local.intra_emb is None  # one layer a step: no in-step table
    with pytest.raises(ValueError, match="local_levels_per_step"):
        tiny_config("local_levels_per_step=3")  # 32 layers do not split into steps of 3


def test_step_decoder_equals_cached_forward_with_padding(model):
    prefix = build_prefix([[5, 6, 7, 8, 9], [10, 11]], [codes(2, 1), codes(3, 2)], Q)
    cfg = model.config.global_model
    x = model.embed(prefix.tokens, prefix.codes, prefix.is_frame)
    s = x.shape[1]
    caches = [KVCache.allocate(cfg, 2, s + 3, padded=True) for _ in range(2)]
    for cache in caches:
        model.global_model(x, positions=prefix.positions, cache=cache, valid=prefix.valid)
    fast = StepDecoder(model.global_model, caches[1])
    positions = torch.tensor(prefix.lengths)
    for t in range(3):
        step = torch.randn(2, cfg.d_model)
        slow = model.global_model(step[:, None], positions=(positions + t)[:, None], cache=caches[0], start=s + t)
        assert_close(fast.step(step, s + t, positions + t), slow[:, 0], rtol=1e-5, atol=1e-5)


def test_llama_weights_give_the_same_function():
    from transformers import LlamaModel

    from tts.llama import llama_config, native_state_from_llama

    cfg = tiny_config().global_model
    torch.manual_seed(0)
    llama = LlamaModel(llama_config(cfg)).eval()
    ours = Transformer(cfg).eval()
    ours.load_state_dict(native_state_from_llama(llama.state_dict(), cfg.num_layers))
    x = torch.randn(2, 9, cfg.d_model)
    with torch.no_grad():
        assert_close(ours(x), llama(inputs_embeds=x).last_hidden_state, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="missing"):
        native_state_from_llama({"norm.weight": torch.ones(1)}, 1)
