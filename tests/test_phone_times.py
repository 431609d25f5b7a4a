"""Timed phonemes from word alignments, the per-sub-frame labels cut from them, and the linear frame classifier."""

from __future__ import annotations

import csv
import json

import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.config import ContentConfig
from codec.content.phone_times import IGNORE, PHONE_TIMES_NAME, spread_phones, subframe_labels
from codec.content.phonemes import CTC_SYMBOLS
from codec.content.store import ContentStore, build_content_store
from codec.nn.content import frame_label_loss
from tests.conftest import TINY, speechlike, tiny_config
from ucodec.cli import main

SYMBOLS = json.dumps(list(CTC_SYMBOLS), ensure_ascii=False)
CONTENT = ["content.levels=4", f"content.symbols={SYMBOLS}", "content.ctc_channels=16", "content.frame_labels=true"]
TEXTS = ["Hello there.", "The cat sat.", "One two three four five six."]


@pytest.fixture()
def corpus(tmp_path):
    lines = []
    for i, text in enumerate(TEXTS):
        seconds = 1.0 + 0.6 * i
        sf.write(tmp_path / f"u{i}.wav", speechlike(seconds, seed=i), 16000)
        item = {"id": f"u{i}", "audio": f"u{i}.wav", "text": text, "speaker": "s", "duration": seconds}
        lines.append(json.dumps({**item, "sample_rate": 16000}))
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def store(tmp_path, corpus):
    from codec.content.phonemes import espeak_backend

    try:
        espeak_backend("en-us")
    except ValueError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "content"
    build_content_store(corpus, out, teacher=False, progress=False)
    return out


def word_times(text: str, start: float, step: float) -> list[dict]:
    return [{"word": w, "start": start + k * step, "end": start + (k + 1) * step} for k, w in enumerate(text.split())]


@pytest.fixture()
def alignments(tmp_path):
    rows = [{"id": f"u{i}", "words": word_times(t, 0.2, 0.25), "phones": []} for i, t in enumerate(TEXTS[:2])]
    rows.append({"id": "elsewhere", "words": word_times("Not here.", 0.0, 0.3), "phones": []})
    path = tmp_path / "words.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_spread_phones_shares_each_word_span_evenly():
    words = [
        {"word": "a", "start": 0.0, "end": 0.3},
        {"word": "-", "start": 0.3, "end": 0.4},
        {"word": "b", "start": 0.5, "end": 0.7},
    ]
    got = spread_phones(words, [[1, 2, 3], [], [4, 5]])
    assert got == [[1, 0.0, 0.1], [2, 0.1, 0.2], [3, 0.2, 0.3], [4, 0.5, 0.6], [5, 0.6, 0.7]]
    with pytest.raises(ValueError):
        spread_phones(words, [[1]])


def test_subframe_labels_take_the_phone_under_each_centre():
    phones = [[7, 0.1, 0.2], [8, 0.2, 0.25], [9, 0.4, 0.5]]
    got = subframe_labels(phones, first=0, count=24, valid=20, subframe_seconds=0.025)
    # centres 0.0125, 0.0375, ...: 0.1125-0.1875 -> 7, 0.2125-0.2375 -> 8, a gap (silence, 0), 0.4125-0.4875 -> 9
    expected = [0] * 4 + [7] * 4 + [8] * 2 + [0] * 6 + [9] * 4 + [IGNORE] * 4
    assert got.tolist() == expected
    assert subframe_labels(phones, first=8, count=4, valid=4, subframe_seconds=0.025).tolist() == [8, 8, 0, 0]
    assert subframe_labels([], first=0, count=3, valid=2, subframe_seconds=0.025).tolist() == [0, 0, IGNORE]


def test_content_times_writes_labels_for_the_stores_utterances(store, alignments, capsys):
    assert main(["content-times", str(store), str(alignments)]) == 0
    printed = capsys.readouterr().out
    assert "phone times of 2 utterances" in printed and "(1 skipped)" in printed
    times = ContentStore(store).phone_times
    assert set(times) == {"u0", "u1"}
    for utt, text in (("u0", TEXTS[0]), ("u1", TEXTS[1])):
        phones = times[utt]
        assert phones and all(0 < p[0] <= len(CTC_SYMBOLS) for p in phones)
        assert phones[0][1] == pytest.approx(0.2) and phones[-1][2] == pytest.approx(0.2 + 0.25 * len(text.split()))
        assert all(a[2] == pytest.approx(b[1]) for a, b in zip(phones, phones[1:], strict=False))  # words are adjacent
    joined = [p[0] for p in times["u1"]]
    assert joined == ContentStore(store).phonemes["u1"]  # the same phonemes as the CTC targets, now timed


def test_content_times_bad_inputs_write_nothing(store, alignments, tmp_path, capsys):
    out = store / PHONE_TIMES_NAME
    cases = [
        [str(store), str(tmp_path / "missing.jsonl")],
        [str(tmp_path), str(alignments)],  # not a store
        [str(store), str(alignments), "--min-matched", "2"],
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "u0", "words": [{"word": "x"}]}\n')
    cases.append([str(store), str(bad)])
    bad_phones = tmp_path / "bad-phones.jsonl"
    bad_phones.write_text(json.dumps({"id": "u0", "words": [], "phones": [{"start": 0.1}]}) + "\n")
    cases.append([str(store), str(bad_phones)])
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text(json.dumps({"id": "nope", "words": []}) + "\n")
    cases.append([str(store), str(elsewhere)])
    for args in cases:
        assert main(["content-times", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error:") and "Traceback" not in err
        assert not out.exists()


def test_crops_carry_subframe_labels(store, alignments, corpus):
    from codec.crops import CropDataset, collate_content, read_manifest_entries

    main(["content-times", str(store), str(alignments)])
    cs = ContentStore(store)
    entries = read_manifest_entries(str(corpus))
    ds = CropDataset(entries, 16000, 4 * 3200, content=cs, hop_length=3200, label_subframes=8)
    timed = ds[(1, 3)]  # u1: 1.6 s = 8 frames; a 4-frame crop
    assert timed["labels"].shape == (32,)
    offsets = [subframe_labels(cs.phone_times["u1"], f * 8, 32, 32, 3200 / 8 / 16000) for f in range(5)]
    assert any(torch.equal(timed["labels"], o) for o in offsets)
    untimed = ds[(2, 3)]  # u2 has no times: nothing to learn from
    assert (untimed["labels"] == IGNORE).all()
    batch = collate_content([timed, untimed])
    assert batch["labels"].shape == (2, 32)


def test_frame_classifier_is_linear_and_its_loss_reaches_the_encoder():
    with pytest.raises(ValueError, match="frame_labels needs"):
        ContentConfig(levels=4, teacher_dim=8, frame_labels=True)
    codec = Codec(tiny_config(*CONTENT)).train()
    assert isinstance(codec.content.frames.proj, torch.nn.Linear)
    out = codec.quantizer(codec.encode_latent(torch.randn(2, 1, 6400)), prefix_layers=4)
    logits = codec.content.frames(out.prefix)
    frames = out.prefix.shape[-1]
    assert logits.shape == (2, frames * 8, len(CTC_SYMBOLS) + 1)
    labels = torch.full((2, frames * 8), IGNORE)
    assert frame_label_loss(logits, labels).item() == 0.0
    labels[0, :5] = torch.tensor([0, 3, 3, 9, 0])
    loss = frame_label_loss(logits, labels)
    expected = torch.nn.functional.cross_entropy(logits[0, :5], labels[0, :5])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert next(codec.encoder.parameters()).grad.abs().sum() > 0


def test_training_with_the_frame_classifier(store, alignments, corpus, tmp_path):
    from codec.train import CodecTrainer, prepare_experiment
    from codec.train_config import load_experiment_config

    sets = [f"model.{c}" for c in CONTENT] + [
        "train.batch_size=2",
        "train.crop_seconds=1.2",
        "train.num_workers=0",
        "train.log_every=1",
        "train.eval_every=0",
        "train.warmup_steps=1",
        "train.loss_weights.phones=5.0",
    ]
    cfg = load_experiment_config(str(TINY), None, sets)
    with pytest.raises(ValueError, match="content-times"):
        CodecTrainer(cfg, str(corpus), None, str(tmp_path / "x"), True, str(store))
    main(["content-times", str(store), str(alignments)])
    out = tmp_path / "exp"
    trainer = CodecTrainer(prepare_experiment(str(out), cfg, False), str(corpus), None, str(out), True, str(store))
    trainer.fit(max_steps=6, resume=False)
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 6 and any(float(r["phones"]) > 0 for r in rows)
    off = load_experiment_config(str(TINY), None, [s for s in sets if "frame_labels" not in s])
    with pytest.raises(ValueError, match="frame classifier"):
        CodecTrainer(off, str(corpus), None, str(tmp_path / "y"), True, str(store))


def test_the_probe_report_reads_the_frame_classifier(store, corpus):
    from codec.evaluation.content import ProbeProtocol, content_scores
    from codec.manifest import read_manifest

    utts = read_manifest(corpus)
    codec = Codec(tiny_config(*CONTENT)).eval()
    with torch.no_grad():  # a classifier that always says "no phone": every reference phoneme is deleted
        codec.content.frames.proj.weight.zero_()
        codec.content.frames.proj.bias.zero_()
        codec.content.frames.proj.bias[:: codec.content.frames.classes] = 1.0
    got = content_scores(codec, utts, utts, ProbeProtocol(levels=(4,), steps=2), progress=False)
    assert got["frames_per"] == 1.0 and got["levels"] == 4 and got["head_per"] is not None


def test_timed_phones_last_until_the_next_one_starts():
    from codec.content.phone_times import timed_phones

    phones = [
        {"symbol": "h", "start": 0.10, "end": 0.12},
        {"symbol": "ˈ", "start": 0.13, "end": 0.14},  # not a CTC symbol: dropped
        {"symbol": "a", "start": 0.16, "end": 0.18},
        {"symbol": "t", "start": 0.90, "end": 0.92},  # after a pause
    ]
    ids = {s: i + 1 for i, s in enumerate(CTC_SYMBOLS)}
    got = timed_phones(phones, CTC_SYMBOLS, max_seconds=0.2)
    assert got == [[ids["h"], 0.1, 0.16], [ids["a"], 0.16, 0.36], [ids["t"], 0.9, 0.92]]


def test_phone_model_trains_saves_loads_and_aligns(store, corpus, tmp_path, capsys):
    from codec.content.aligner import align_one
    from codec.content.phone_model import load_phone_model
    from codec.content.phonemes import phonemize_words

    out = tmp_path / "pm"
    assert main(["train-phone-model", str(corpus), str(store), str(out), "--steps", "3", "--no-progress"]) == 0
    assert "dev PER" in capsys.readouterr().out
    model = load_phone_model(out)
    wav = torch.from_numpy(speechlike(1.3, seed=5)).float()[None]
    lp = model(wav)
    assert lp.shape == (1, model.steps(torch.tensor([wav.shape[-1]])).item(), len(CTC_SYMBOLS) + 1)
    assert torch.allclose(load_phone_model(out)(wav), lp)  # saved and loaded: the same function
    words = phonemize_words(["Hello there."])[0]
    got = align_one(model, wav, words, "x")
    starts = [p["start"] for p in got.phones]
    assert len(got.phones) == sum(len(ids) for _, ids in words) and starts == sorted(starts)
    assert all(round(s / 0.02, 6).is_integer() for s in starts)  # 20 ms steps
    assert main(["align", str(corpus), str(tmp_path / "a.jsonl"), "--phone-model", str(out), "--no-progress"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(line["phones"] and line["words"] for line in lines)
    # content-times takes the aligner's own phones, not an even spread over the words
    assert main(["content-times", str(store), str(tmp_path / "a.jsonl")]) == 0
    times = ContentStore(store).phone_times["u0"]
    assert [p[1] for p in times] == [p["start"] for p in lines[0]["phones"] if p["symbol"] in CTC_SYMBOLS]


def test_phone_model_bad_inputs(store, corpus, tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "phone_model.json").write_text("{}")
    (tmp_path / "junk" / "phone_model.safetensors").write_bytes(b"x")
    runs = [
        ["align", str(corpus), str(tmp_path / "a.jsonl"), "--phone-model", str(tmp_path / "none")],
        ["align", str(corpus), str(tmp_path / "a.jsonl"), "--phone-model", str(tmp_path / "junk")],
        ["align", str(corpus), str(tmp_path / "a.jsonl"), "--phone-model", str(tmp_path / "junk"), "--whisper"],
        ["train-phone-model", str(corpus), str(tmp_path / "nostore"), str(tmp_path / "pm")],
        ["train-phone-model", str(corpus), str(store), str(tmp_path / "pm"), "--steps", "0"],
        ["train-phone-model", str(corpus), str(store), str(tmp_path / "pm"), "--lr", "-1"],
    ]
    for args in runs:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error:") and "Traceback" not in err
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "pm").exists()
