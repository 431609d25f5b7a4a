"""Frame-aligned text: word pointers from word times, batches, the model's pointer inputs, generation, training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from codec.store.reader import TokenStore
from tests.tts_runs import TINY_TTS, experiment
from tts import TTS
from tts.aligned_text import (
    FrameTextLayout,
    frame_pointers,
    frame_text_targets,
    frontend_word_starts,
    group_starts,
    load_word_times,
    word_groups,
)
from tts.batch import TTSItem, build_prefix, collate
from tts.config import IGNORE_INDEX, TTSConfig
from tts.generate import PointerState, generate
from tts.model import TTSModel
from tts.sampling import NoiseSource, SamplingParams
from tts.train import TTSTrainer, prepare_tts_experiment

pytestmark = pytest.mark.usefixtures("one_thread")

SPACE = 3


def test_words_are_runs_between_spaces():
    assert word_groups([5, 6, SPACE, 7, SPACE, SPACE, 8], SPACE) == [0, 0, -1, 1, -1, -1, 2]
    assert word_groups([5, 6, 7], None) == [0, 0, 0]
    assert word_groups([SPACE, 5], SPACE) == [-1, 0]


def test_group_starts_map_transcript_words_onto_frontend_words():
    assert group_starts(3, [0.1, 0.5, 0.9]) == [0.1, 0.5, 0.9]
    # "in 1990" -> five frontend words: the second transcript word's time is spread over the extra ones
    starts = group_starts(4, [0.0, 1.0])
    assert starts[0] == 0.0 and starts == sorted(starts) and starts[-1] <= 1.0
    assert group_starts(2, [0.0, 0.4, 0.8]) == [0.0, pytest.approx(0.6)]
    assert group_starts(2, []) == [0.0, 0.0] and group_starts(0, [0.3]) == []


def test_frontend_words_take_the_times_of_the_transcript_words_they_speak():
    # "of the house" phonemized as two words: ʌvðə (4 symbols) and hˈaʊs (5): the clitic pair starts at "of"
    ids = [10, 11, 12, 13, SPACE, 14, 15, 16, 17, 18]
    assert frontend_word_starts(ids, SPACE, "of the house", [0.1, 0.2, 0.4]) == [0.1, 0.4]
    # a number read out as two words ("in 1990 now": ɪn nˈaɪntiːn nˈaɪnti nˈaʊ): both start where the number does
    ids = [10] * 2 + [SPACE] + [11] * 9 + [SPACE] + [12] * 7 + [SPACE] + [13] * 4
    assert frontend_word_starts(ids, SPACE, "in 1990 now", [0.0, 0.3, 1.5]) == [0.0, 0.3, 0.3, 1.5]
    # equal counts map one to one; a transcript that does not match its times falls back to spreading by count
    assert frontend_word_starts([10, SPACE, 11], SPACE, "a b", [0.0, 0.5]) == [0.0, 0.5]
    assert frontend_word_starts([10, SPACE, 11], SPACE, "a b c", [0.0, 0.5]) == [0.0, 0.5]


def test_pointer_is_the_last_word_started_before_the_frame_ends():
    # frames of 0.2 s: words start at 0.05, 0.30, 0.35, 1.0
    starts = [0.05, 0.30, 0.35, 1.0]
    assert frame_pointers(starts, 6, 5.0) == [0, 2, 2, 2, 2, 3]
    pointers, advances = frame_text_targets(starts, 6, 5.0, classes=2)
    assert pointers == [0, 2, 2, 2, 2, 3, 3]  # + the END position on the last word
    assert advances == [0, 1, 0, 0, 0, 1, 0]  # 2 words at once is "1 or more" with two classes
    _, advances = frame_text_targets(starts, 6, 5.0, classes=4)
    assert advances[1] == 2
    # an alignment whose last word starts after the audio: the END position still reaches it
    pointers, advances = frame_text_targets([0.0, 5.0], 2, 5.0, classes=4)
    assert pointers == [0, 0, 1] and advances == [0, 0, 1]


def test_word_times_files_are_read_and_filtered(tmp_path):
    path = tmp_path / "words.jsonl"
    lines = [
        {"id": "a", "words": [{"word": "x", "start": 0.1, "end": 0.2}], "matched": 1.0},
        {"id": "b", "words": [{"word": "y", "start": 0.0, "end": 0.3}], "matched": 0.2},
        {"id": "c", "words": [{"word": "z", "start": 0.5, "end": 0.6}], "phones": []},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    times, dropped = load_word_times([path], min_matched=0.5)
    assert times == {"a": [0.1], "c": [0.5]} and dropped == 1
    with pytest.raises(FileNotFoundError, match="ucodec align"):
        load_word_times([tmp_path / "missing.jsonl"])
    path.write_text('{"id": "a"}\n')
    with pytest.raises(ValueError, match="words.jsonl:1"):
        load_word_times([path])


def item(words: int, frames: int, head: list[int] = (), starts=None, q: int = 32) -> TTSItem:
    own = []
    for w in range(words):
        own += ([SPACE] if w else []) + [10 + w, 20 + w]
    codes = torch.randint(0, 256, (q, frames))
    return TTSItem(list(head) + own, None, codes, len(own), starts)


def test_collate_puts_each_frame_s_word_where_the_frame_is_predicted():
    layout = FrameTextLayout(SPACE, 5.0, 4)
    a = item(3, 5, head=[40, 41, SPACE], starts=[0.0, 0.25, 0.65])
    b = item(2, 3)  # no word times: no pointer, no advance loss
    batch = collate([a, b], end_id=256, layout=layout)
    n_text = len(a.text_ids) + 2
    # the prompt transcript (3 ids after BOS) has no word; the target text's words are 0, 0, -, 1, 1, -, 2, 2
    assert batch.word_of_token[0, 1 : n_text - 1].tolist() == [-1, -1, -1, 0, 0, -1, 1, 1, -1, 2, 2]
    # SEP predicts frame 0 ... the last frame predicts END (pointer stays on the last word)
    assert batch.next_word[0, n_text - 1 : n_text + 5].tolist() == [0, 1, 1, 2, 2, 2]
    assert batch.next_advance[0, n_text - 1 : n_text + 5].tolist() == [0, 1, 0, 1, 0, 0]
    assert (batch.next_word[0, : n_text - 1] == -1).all() and (batch.next_word[0, n_text + 5 :] == -1).all()
    assert (batch.next_word[1] == -1).all() and (batch.next_advance[1] == IGNORE_INDEX).all()
    plain = collate([a, b], end_id=256)
    assert plain.next_word is None and torch.equal(plain.speech_targets, batch.speech_targets)


def tiny(aligned: bool) -> TTSModel:
    cfg = TTSConfig.load(TINY_TTS)
    return TTSModel(TTSConfig(**{**cfg.__dict__, "aligned_text": aligned}))


def test_a_plain_model_warm_starts_into_aligned_text_unchanged():
    torch.manual_seed(0)
    plain, aligned = tiny(False), tiny(True)
    missing, unexpected = aligned.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("pointer.") for k in missing)
    layout = FrameTextLayout(SPACE, 5.0, 4)
    batch = collate([item(3, 6, starts=[0.0, 0.3, 0.7]), item(2, 4, starts=[0.1, 0.5])], 256, layout=layout)
    out_plain, out_aligned = plain(batch), aligned(batch)
    assert torch.allclose(out_plain.speech_loss, out_aligned.speech_loss)  # zero-initialised projections
    assert out_plain.advance_loss is None and out_aligned.advance_loss > 0
    assert int(out_aligned.advance_count) == 6 + 1 + 4 + 1  # every target frame and both END positions
    out_aligned.loss.backward()
    assert aligned.pointer.to_global.weight.grad.abs().sum() > 0  # the new inputs start learning at once
    assert aligned.pointer.head.weight.grad.abs().sum() > 0


def test_the_pointer_only_moves_forward_and_gates_end():
    torch.manual_seed(0)
    model = tiny(True).eval()
    prefix = build_prefix([item(3, 1).text_ids], [None], 32, aligned_text=True, space_id=SPACE)
    assert prefix.num_words == [3]
    state = PointerState(model, prefix, NoiseSource([0]))
    hidden = torch.randn(1, 32)
    with torch.no_grad():
        model.pointer.head.bias.copy_(torch.tensor([-50.0, 50.0, -50.0, -50.0]))  # always one word on
        seen = []
        for _ in range(4):
            state.advance(hidden)
            seen.append(int(state.pointer))
    assert seen == [1, 2, 2, 2] and bool(state.at_end)


def test_end_waits_for_the_pointer_to_reach_the_last_word():
    torch.manual_seed(0)
    model = tiny(True).eval()
    step_logits = model.local.step_logits

    def always_end(h: torch.Tensor, q: int) -> torch.Tensor:  # layer 0 wants END at every frame
        logits = step_logits(h, q)
        if q == 0:
            logits = logits.clone()
            logits[:, model.config.end_id] = 1e4
        return logits

    model.local.step_logits = always_end
    text = item(3, 1).text_ids
    prefix = build_prefix([text], [None], 32, aligned_text=True, space_id=SPACE)
    params = SamplingParams.create(32, model.config.sampling)
    with torch.no_grad():
        model.pointer.head.bias.copy_(torch.tensor([50.0, -50.0, -50.0, -50.0]))  # never moves
    out = generate(model, prefix, params, [0], [0], [12])
    assert out.reasons == ["max_length"] and out.lengths == [12]
    with torch.no_grad():
        model.pointer.head.bias.copy_(torch.tensor([-50.0, 50.0, -50.0, -50.0]))  # one word per frame
    out = generate(model, prefix, params, [0], [0], [12])
    assert out.reasons == ["end"] and out.lengths == [1]  # frame 0 on word 1, frame 1 on word 2 says END
    with pytest.raises(ValueError, match="aligned_text=True"):
        generate(model, build_prefix([text], [None], 32), params, [0], [0], [4])


def word_times_file(store_dir: Path, out: Path) -> Path:
    """Evenly spread word times for every utterance of a token store (what ``ucodec align`` writes)."""
    lines = []
    for e in TokenStore(store_dir).entries:
        words = e.text.split()
        step = e.duration / len(words)
        spans = [{"word": w, "start": round(k * step, 3), "end": round((k + 1) * step, 3)} for k, w in enumerate(words)]
        lines.append(json.dumps({"id": e.id, "words": spans, "matched": 1.0}))
    out.write_text("\n".join(lines) + "\n")
    return out


def test_training_with_aligned_text_logs_the_advance_and_ships(store, tiny_release, tmp_path):  # noqa: F811
    times = word_times_file(store, tmp_path / "words.jsonl")
    extra = ["model.aligned_text=true", f"train.word_times=[{json.dumps(str(times))}]", "train.eval_every=2"]
    cfg = prepare_tts_experiment(str(tmp_path / "exp"), experiment(tiny_release, *extra), resume=False)
    trainer = TTSTrainer(cfg, str(store), str(store), str(tmp_path / "exp"), cpu=True)
    assert trainer.fit(max_steps=2) == 2
    rows = list(csv.DictReader(open(tmp_path / "exp" / "metrics.csv")))
    assert all(float(r["advance"]) > 0 and 0 <= float(r["acc_adv"]) <= 1 for r in rows)
    dev = list(csv.DictReader(open(tmp_path / "exp" / "eval.csv")))
    assert float(dev[-1]["dev_advance"]) > 0
    from ucodec.cli import main

    assert main(["export-tts", str(tmp_path / "exp"), str(tmp_path / "rel")]) == 0
    tts = TTS.from_pretrained(tmp_path / "rel")
    assert tts.config.aligned_text and tts.model.pointer is not None
    wav = tts.synthesize("hello there", max_seconds=2.0, seed=1)
    assert wav.dim() == 2 and torch.isfinite(wav).all()


def test_word_times_restrict_a_plain_run_to_the_timed_utterances(store, tiny_release, tmp_path):  # noqa: F811
    times = word_times_file(store, tmp_path / "words.jsonl")
    kept = [json.loads(x) for x in times.read_text().splitlines()][:5]
    times.write_text("".join(json.dumps(x) + "\n" for x in kept))
    extra = [f"train.word_times=[{json.dumps(str(times))}]"]
    cfg = prepare_tts_experiment(str(tmp_path / "exp"), experiment(tiny_release, *extra), resume=False)
    with pytest.warns(UserWarning, match="3 of 8 utterances have no word times"):
        trainer = TTSTrainer(cfg, str(store), None, str(tmp_path / "exp"), cpu=True)
    assert sorted(e.id for e in trainer.data.entries) == sorted(x["id"] for x in kept)
    assert trainer.fit(max_steps=1) == 1


def test_aligned_text_without_word_times_is_a_clear_error(store, tiny_release, tmp_path, capsys):  # noqa: F811
    cfg = prepare_tts_experiment(str(tmp_path / "a"), experiment(tiny_release, "model.aligned_text=true"), False)
    with pytest.raises(ValueError, match="train.word_times"):
        TTSTrainer(cfg, str(store), None, str(tmp_path / "a"), cpu=True)
    from ucodec.cli import main

    args = ["train-tts", "--config", TINY_TTS, "--store", str(store), "--out", str(tmp_path / "b")]
    assert main([*args, "--word-times", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl: no such word-times file" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_the_oracle_moves_the_pointer_too():
    from tts.evaluation.oracle import forced_generate

    torch.manual_seed(0)
    model = tiny(True).eval()
    forced = torch.randint(0, 256, (4, 6))
    params = SamplingParams.create(32, model.config.sampling)
    out = forced_generate(model, item(3, 1).text_ids, None, forced, 6, params, seed=0, space_id=SPACE)
    assert out.shape == (32, 6) and torch.equal(out[:4], forced)


def test_the_oracle_can_hold_the_pointer_at_the_recording_s_words():
    from tts.evaluation.oracle import forced_generate

    torch.manual_seed(0)
    model = tiny(True).eval()
    seen = []
    model.pointer.to_local.register_forward_hook(lambda _m, args, _out: seen.append(args[0].clone()))  # word vectors
    with torch.no_grad():
        model.pointer.head.bias.copy_(torch.tensor([50.0, -50.0, -50.0, -50.0]))  # left alone it never moves
    params = SamplingParams.create(32, model.config.sampling)
    text = item(3, 1).text_ids
    forced_generate(model, text, None, torch.zeros(0, 4, dtype=torch.long), 4, params, space_id=SPACE)
    assert all(torch.equal(w, seen[0]) for w in seen)  # the model's own pointer stayed on word 0
    seen.clear()
    pointers = ([0, 1, 1, 2], [0, 1, 0, 1])
    forced_generate(
        model, text, None, torch.zeros(0, 4, dtype=torch.long), 4, params, space_id=SPACE, pointers=pointers
    )
    assert torch.equal(seen[1], seen[2]) and not torch.equal(seen[0], seen[1]) and not torch.equal(seen[2], seen[3])
