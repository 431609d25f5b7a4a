"""Content supervision of the first RVQ levels: heads, losses, the content store, training, alignment, the probe."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import Codec
from codec.config import ContentConfig
from codec.content.phonemes import CTC_SYMBOLS
from codec.content.store import ContentStore, build_content_store
from codec.nn.content import BLANK, ctc_loss, distill_loss, error_rate, greedy_decode
from tests.conftest import TINY, speechlike, tiny_config
from ucodec.cli import main

SYMBOLS = json.dumps(list(CTC_SYMBOLS), ensure_ascii=False)
CONTENT = ["content.levels=4", f"content.symbols={SYMBOLS}", "content.teacher_dim=384", "content.ctc_channels=16"]
TEXTS = ["Hello there.", "The cat sat on the mat.", "One two three four.", "A quick brown fox jumps."]


def espeak_or_skip():
    from codec.content.phonemes import espeak_backend

    try:
        espeak_backend("en-us")
    except ValueError as exc:
        pytest.skip(str(exc))


class FakeTeacher:
    """Stands in for Whisper at 50 Hz: teacher step j of an utterance is (j, mean |x| of its 320 samples, 0, ...)."""

    def __init__(self, hop_length: int, threads: int = 1) -> None:
        self.hop = hop_length

    def features(self, wavs):
        out = []
        for w in wavs:
            steps = math.ceil(len(w) / self.hop) * self.hop // 320
            f = np.zeros((steps, 384), dtype=np.float32)
            f[:, 0] = np.arange(steps)
            f[:, 1] = [np.abs(w[i * 320 : (i + 1) * 320]).mean() if i * 320 < len(w) else 0 for i in range(steps)]
            out.append(f)
        return out


@pytest.fixture()
def corpus(tmp_path):
    lines = []
    for i, text in enumerate(TEXTS):
        seconds = 0.8 + 0.5 * i
        sf.write(tmp_path / f"u{i}.wav", speechlike(seconds, seed=i), 16000)
        item = {"id": f"u{i}", "audio": f"u{i}.wav", "text": text, "speaker": "s", "duration": seconds}
        lines.append(json.dumps({**item, "sample_rate": 16000}))
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def store(tmp_path, corpus, monkeypatch):
    espeak_or_skip()
    monkeypatch.setattr("codec.content.store.WhisperTeacher", FakeTeacher)
    out = tmp_path / "content"
    build_content_store(corpus, out, shard_size=3, progress=False)
    return out


def test_config_checks():
    assert not ContentConfig().enabled
    with pytest.raises(ValueError, match="needs a CTC head"):
        ContentConfig(levels=4)
    with pytest.raises(ValueError, match="odd"):
        ContentConfig(levels=1, teacher_dim=8, ctc_kernel=4)
    with pytest.raises(ValueError, match="exceeds"):
        tiny_config("content.levels=33", "content.teacher_dim=8")


def test_prefix_is_the_sum_of_the_first_levels():
    codec = Codec(tiny_config(*CONTENT)).eval()
    wav = torch.from_numpy(speechlike(1.2)).float()[None, None]
    with torch.inference_mode():
        out = codec(wav)
        expected = codec.quantizer.decode(codec.encode(wav)[:, :4])
    assert out.prefix.shape == expected.shape and torch.allclose(out.prefix, expected, atol=1e-5)
    with torch.inference_mode():
        assert Codec(tiny_config())(wav).prefix is None  # no heads, nothing extra computed


def test_content_losses_reach_the_encoder():
    codec = Codec(tiny_config(*CONTENT)).train()
    wav = torch.from_numpy(speechlike(1.0)).float()[None, None].repeat(2, 1, 1)
    out = codec(wav)
    lp = codec.content.ctc(out.prefix)
    assert lp.shape == (2, 5 * 8, len(CTC_SYMBOLS) + 1)
    frames = torch.tensor([5, 5])
    loss = ctc_loss(lp, [torch.tensor([3, 4, 5]), torch.tensor([], dtype=torch.long)], frames, 8)
    teacher = torch.randn(2, 5, 384)
    loss = loss + distill_loss(codec.content.teacher_prediction(out.prefix), teacher, torch.tensor([5, 0]))
    loss.backward()
    grad = codec.encoder_transformer.parameters().__next__().grad
    assert torch.isfinite(loss) and loss > 0 and grad is not None and grad.abs().sum() > 0
    empty = ctc_loss(lp.detach(), [torch.tensor([], dtype=torch.long)] * 2, frames, 8)
    assert empty.item() == 0.0


def test_greedy_decode_and_error_rate():
    lp = torch.full((1, 7, 4), -10.0)
    for t, s in enumerate([1, 1, BLANK, 1, 2, 2, BLANK]):
        lp[0, t, s] = 0.0
    assert greedy_decode(lp) == [[1, 1, 2]]
    assert greedy_decode(lp, torch.tensor([2])) == [[1]]
    assert error_rate([[1, 2]], [[1, 2, 3]]) == pytest.approx(1 / 3)


def test_whisper_teacher_gives_50_hz_features_of_whole_frames():
    pytest.importorskip("faster_whisper")
    from codec.content.store import WhisperTeacher

    teacher = WhisperTeacher(3200)
    wav = speechlike(1.3).astype(np.float32)
    (feats,) = teacher.features([wav])
    assert feats.shape == (70, 384) and np.isfinite(feats).all()
    with pytest.raises(ValueError, match="at most 30 s"):
        teacher.features([np.zeros(31 * 16000, dtype=np.float32)])


def test_content_store_builds_resumes_and_reads(store, corpus, tmp_path, monkeypatch):
    cs = ContentStore(store)
    assert cs.info.symbols == CTC_SYMBOLS and cs.info.teacher_dim == 384 and cs.info.num_shards == 2
    assert all(cs.phonemes[f"u{i}"] for i in range(4))
    t = cs.teacher("u3")
    assert cs.info.teacher_per_frame == 10
    assert t.shape == (math.ceil(2.3 * 5) * 10, 384) and t[:, 0].tolist() == list(range(t.shape[0]))
    shard = store / "teacher" / "shard-00001.safetensors"
    before = shard.stat().st_mtime_ns
    shard0 = store / "teacher" / "shard-00000.safetensors"
    shard0.unlink()  # an interrupted build: the rerun redoes only the missing shard
    build_content_store(corpus, store, shard_size=3, progress=False)
    assert shard0.is_file() and shard.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="another manifest or plan"):
        build_content_store(corpus, store, shard_size=2, progress=False)


@pytest.mark.parametrize("subframes", [1, 2, 10])
def test_crops_pool_the_teacher_to_the_asked_subframes(store, corpus, subframes):
    from codec.crops import CropDataset, read_manifest_entries

    entries = read_manifest_entries(str(corpus))
    ds = CropDataset(
        entries, 16000, 3 * 3200, content=ContentStore(store), hop_length=3200, teacher_subframes=subframes
    )
    item = ds[(3, 7)]  # u3: 2.3 s = 12 frames, so the 3-frame crop starts on a frame boundary inside it
    group = 10 // subframes  # stored steps per pooled vector; stored step j carries j in dimension 0
    start = item["teacher"][0, 0].item() - (group - 1) / 2  # the crop's first stored step
    assert start % 10 == 0 and item["teacher_frames"] == 3 * subframes
    expected = [start + k * group + (group - 1) / 2 for k in range(3 * subframes)]
    assert item["teacher"][:, 0].tolist() == pytest.approx(expected)
    with pytest.raises(ValueError, match="do not pool"):
        CropDataset(entries, 16000, 3 * 3200, content=ContentStore(store), hop_length=3200, teacher_subframes=3)


def test_subframe_heads_predict_the_teacher_steps():
    codec = Codec(tiny_config(*CONTENT, "content.teacher_subframes=10", "content.head_layers=1")).train()
    out = codec.quantizer(codec.encode_latent(torch.randn(2, 1, 6400)), prefix_layers=4)
    pred = codec.content.teacher_prediction(out.prefix)
    assert pred.shape == (2, out.prefix.shape[-1] * 10, 384)
    assert codec.content.ctc(out.prefix).shape[1] == out.prefix.shape[-1] * codec.config.content.ctc_upsample
    pred.pow(2).mean().backward()
    assert next(codec.encoder.parameters()).grad.abs().sum() > 0


def test_content_store_cli_bad_inputs(tmp_path, capsys):
    assert main(["content-store", str(tmp_path / "none.jsonl"), str(tmp_path / "out")]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "out").exists()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    bad = tmp_path / "m.jsonl"
    bad.write_text(
        '{"id": "a", "audio": "a.wav", "text": "hi", "speaker": "s", "duration": 1.0, "sample_rate": 16000}\n'
    )
    assert main(["content-store", str(bad), str(tmp_path / "junk"), "--no-teacher"]) == 2
    assert "not a content store" in capsys.readouterr().err


@pytest.mark.parametrize("heads", [[], ["content.teacher_subframes=10", "content.head_layers=1"]])
def test_training_with_content_heads(store, corpus, tmp_path, heads):
    from codec.train import CodecTrainer, prepare_experiment
    from codec.train_config import load_experiment_config

    sets = [f"model.{c}" for c in CONTENT + heads] + [
        "train.batch_size=2",
        "train.crop_seconds=1.2",
        "train.num_workers=0",
        "train.log_every=1",
        "train.eval_every=0",
        "train.warmup_steps=1",
        "train.loss_weights.ctc=1.0",
        "train.loss_weights.distill=1.0",
    ]
    cfg = load_experiment_config(str(TINY), None, sets)
    with pytest.raises(ValueError, match="pass --content"):
        CodecTrainer(prepare_experiment(str(tmp_path / "x"), cfg, False), str(corpus), None, str(tmp_path / "x"), True)
    out = tmp_path / "exp"
    cfg = load_experiment_config(str(TINY), None, sets + ["train.eval_every=2", "train.eval_depths=[4]"])
    trainer = CodecTrainer(
        prepare_experiment(str(out), cfg, False), str(corpus), str(corpus), str(out), True, str(store)
    )
    trainer.fit(max_steps=4, resume=False)
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 4 and all(math.isfinite(float(r["distill"])) for r in rows)
    assert any(float(r["ctc"]) > 0 for r in rows)  # the utterances up to 1.2 s fit whole: CTC targets
    evals = list(csv.DictReader((out / "eval.csv").open()))
    assert len(evals) == 2 and all(float(r["mel_distance_4"]) > 0 for r in evals)
    plain = load_experiment_config(str(TINY), None, sets[len(CONTENT + heads) :])
    with pytest.raises(ValueError, match="no content heads"):
        CodecTrainer(plain, str(corpus), None, str(tmp_path / "y"), True, str(store))
    # every content weight 0 (a decoder-only fine-tune): the heads need no store, and none is read
    unweighted = [s.replace("=1.0", "=0") for s in sets]
    cfg = load_experiment_config(str(TINY), None, unweighted)
    assert (
        CodecTrainer(
            prepare_experiment(str(tmp_path / "z"), cfg, False), str(corpus), None, str(tmp_path / "z"), True
        ).content
        is None
    )


def test_init_from_copies_shared_weights(tiny_release, tmp_path):
    from codec.content.train import init_weights_from

    model = Codec(tiny_config(*CONTENT))
    msg = init_weights_from(model, None, tiny_release)
    ref = Codec.from_pretrained(tiny_release)
    assert torch.equal(next(model.encoder.parameters()), next(ref.encoder.parameters()))
    assert "content.ctc" in msg and "content.distill" in msg
    with pytest.raises(FileNotFoundError):
        init_weights_from(model, None, tmp_path / "nothing")


def test_align_gives_ordered_word_times(corpus, capsys, tmp_path, tiny_release):
    espeak_or_skip()
    from codec.content.aligner import align_one
    from codec.content.phonemes import phonemize_words

    torch.manual_seed(0)
    codec = Codec(tiny_config(*CONTENT)).eval()
    wav = torch.from_numpy(speechlike(2.3, seed=3)).float()[None]
    words = phonemize_words([TEXTS[3]])[0]
    got = align_one(codec, wav, words, "u3")
    assert [w["word"] for w in got.words] == TEXTS[3].split()
    starts = [w["start"] for w in got.words]
    assert starts == sorted(starts) and all(w["start"] < w["end"] <= 2.3 + 1e-6 for w in got.words)
    with pytest.raises(ValueError, match="more than the aligner.s 4 steps"):
        align_one(codec, wav[:, :1600], words, "short")
    release = codec.save_pretrained(tmp_path / "rel")
    assert main(["align", str(corpus), str(tmp_path / "a.jsonl"), "--model", str(release), "--no-progress"]) == 0
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) >= 3 and all(json.loads(x)["words"] for x in lines)
    capsys.readouterr()
    assert main(["align", str(corpus), str(tmp_path / "b.jsonl"), "--model", str(tiny_release)]) == 2
    assert "no phoneme CTC head" in capsys.readouterr().err and not (tmp_path / "b.jsonl").exists()
    lost = tmp_path / "lost.jsonl"  # audio that is not there (a relative path read from elsewhere): no empty output
    lost.write_text(
        json.dumps(
            {"id": "x", "audio": "wavs/none.wav", "text": "a b", "speaker": "s", "duration": 1.0, "sample_rate": 16000}
        )
        + "\n"
    )
    assert main(["align", str(lost), str(tmp_path / "c.jsonl"), "--model", str(release), "--no-progress"]) == 2
    assert "no utterance could be aligned" in capsys.readouterr().err and not (tmp_path / "c.jsonl").exists()


def test_probe_scores_any_codec(corpus):
    espeak_or_skip()
    from codec.evaluation.content import ProbeProtocol, content_scores
    from codec.manifest import read_manifest

    utts = read_manifest(corpus)
    codec = Codec(tiny_config(*CONTENT)).eval()
    got = content_scores(codec, utts, utts, ProbeProtocol(levels=(1, 4), steps=3), progress=False)
    assert set(got["probe_per"]) == {1, 4} and got["levels"] == 4
    assert all(0 <= v for v in [got["head_per"], *got["probe_per"].values()])
    plain = content_scores(Codec(tiny_config()).eval(), utts, utts, ProbeProtocol(levels=(1,), steps=2), False)
    assert plain["head_per"] is None and 1 in plain["probe_per"]


def test_split_quantizer_restarts_the_residual_and_decodes_as_a_sum():
    torch.manual_seed(0)
    codec = Codec(tiny_config("quantizer.split_levels=2")).eval()
    q = codec.quantizer
    z = codec.encode_latent(torch.randn(1, 1, 6400))
    codes = q.encode(z)
    # level 2 quantizes the latent itself, as level 0 of a stack of its own would
    first = q.layers[2].lookup(q.layers[2].in_proj(z.transpose(1, 2)))
    assert torch.equal(codes[:, 2], first)
    out = q(z)
    assert torch.equal(out.codes, codes)
    assert torch.allclose(out.quantized, q.decode(codes), atol=1e-5)
    plain = Codec(tiny_config()).eval()
    plain.load_state_dict(codec.state_dict())
    assert not torch.equal(plain.quantizer.encode(z)[:, 2], codes[:, 2])  # the one-stack quantizer differs
    with pytest.raises(ValueError, match="split_levels"):
        tiny_config(f"quantizer.split_levels={codec.num_codebooks}")


def test_init_from_a_one_stack_codec_shifts_its_levels_behind_the_split(tiny_release):
    from codec.content.train import init_weights_from

    model = Codec(tiny_config("quantizer.split_levels=2"))
    msg = init_weights_from(model, None, tiny_release)
    ref = Codec.from_pretrained(tiny_release).eval()
    assert "split" in msg
    assert torch.equal(model.quantizer.layers[2].codebook.weight, ref.quantizer.layers[0].codebook.weight)
    model.eval()
    wav = torch.randn(1, 1, 6400)
    z = ref.encode_latent(wav)
    n = model.num_codebooks - 2
    # the new first stack adds nothing yet: all levels decode like the source's first Q - 2
    assert torch.allclose(
        model.quantizer.decode(model.quantizer.encode(z)), ref.quantizer.decode(ref.quantizer.encode(z, n)), atol=1e-5
    )


def test_a_detached_ctc_head_learns_without_shaping_the_codec():
    from codec.content.train import content_losses

    codec = Codec(tiny_config(*CONTENT, "content.ctc_detach=true")).train()
    out = codec.quantizer(codec.encode_latent(torch.randn(1, 1, 6400)), prefix_layers=4)
    f = out.prefix.shape[-1]
    batch = {"phonemes": [torch.tensor([3, 5, 7])], "frames": torch.tensor([f])}
    no_teacher = {"teacher": torch.zeros(1, f, 384), "teacher_frames": torch.tensor([0])}
    content_losses(codec.content, out.prefix, {**batch, **no_teacher})["ctc"].backward()
    assert next(codec.content.ctc.parameters()).grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in codec.encoder.parameters())


def test_whisper_word_times_follow_the_transcript():
    from codec.content.word_times import transfer_times

    words = ["The", "cat,", "sat", "on", "mats."]
    heard = [
        ("the", 0.1, 0.3),
        ("cat", 0.3, 0.6),
        ("sad", 0.6, 0.9),
        ("on", 1.0, 1.1),
        ("the", 1.1, 1.2),
        ("mats", 1.2, 1.6),
    ]
    timed, matched = transfer_times(words, heard, 2.0)
    assert [w["word"] for w in timed] == words and matched == pytest.approx(4 / 5)
    assert timed[1] == {"word": "cat,", "start": 0.3, "end": 0.6}  # equal words keep Whisper's times
    assert (timed[2]["start"], timed[2]["end"]) == (0.6, 0.9)  # a misrecognised word takes its stand-in's span
    assert (timed[4]["start"], timed[4]["end"]) == (1.2, 1.6)  # the inserted "the" is dropped
    missed, matched = transfer_times(["one", "two", "three", "four"], [("one", 0.0, 0.4), ("four", 1.2, 1.5)], 2.0)
    assert [(w["start"], w["end"]) for w in missed[1:3]] == [(0.4, 0.8), (0.8, 1.2)]  # the gap is shared
    silent, matched = transfer_times(["a", "b"], [], 1.0)
    assert [(w["start"], w["end"]) for w in silent] == [(0.0, 0.5), (0.5, 1.0)] and matched == 0
    starts = [w["start"] for w in transfer_times(words, list(reversed(heard)), 2.0)[0]]
    assert starts == sorted(starts)  # never goes back in time


def test_align_with_whisper_on_real_speech(corpus, tmp_path):
    pytest.importorskip("faster_whisper")
    from codec.content.word_times import align_manifest_whisper

    out = tmp_path / "words.jsonl"
    done, failures = align_manifest_whisper(corpus, out, progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert done == len(rows) == 4 and not failures
    for row, text in zip(rows, TEXTS, strict=True):
        assert [w["word"] for w in row["words"]] == text.split() and 0 <= row["matched"] <= 1
        assert all(0 <= w["start"] <= w["end"] <= 0.8 + 0.5 * 3 + 0.01 for w in row["words"])
    assert main(["align", str(tmp_path / "none.jsonl"), str(tmp_path / "x.jsonl"), "--whisper"]) == 2
    assert not (tmp_path / "x.jsonl").exists()
    assert main(["align", str(corpus), str(tmp_path / "y.jsonl"), "--whisper", "--threads", "-1"]) == 2
    one = tmp_path / "one.jsonl"  # one thread, as for parallel parts: the same words
    assert main(["align", str(corpus), str(one), "--whisper", "--threads", "1", "--no-progress"]) == 0
    assert [json.loads(x)["words"] for x in one.read_text().splitlines()] == [r["words"] for r in rows]


def test_tangent_prefix_gradient_leaves_the_norm_of_e_alone():
    torch.manual_seed(0)
    codec = Codec(tiny_config(*CONTENT)).train()
    q = codec.quantizer
    z = torch.randn(2, codec.config.dimension, 5)
    grads, seen = {}, []

    def keep(module, inputs, output):
        output.retain_grad()
        seen.append(output)

    for tangent in (False, True):
        seen.clear()
        hook = q.layers[0].in_proj.register_forward_hook(keep)
        out = q(z, num_codebooks=q.cfg.num_codebooks, prefix_layers=1, prefix_tangent=tangent)
        hook.remove()
        out.prefix.pow(2).sum().backward()
        e = seen[0]
        grads[tangent] = (e.grad * e).sum(-1)  # radial component of level 1's gradient (times |e|)
        q.zero_grad()
        assert torch.allclose(out.prefix, q(z, num_codebooks=q.cfg.num_codebooks, prefix_layers=1).prefix)
    assert grads[False].abs().max() > 1e-3 and grads[True].abs().max() < 1e-4


def test_an_interrupted_align_resumes_from_its_partial_lines(tmp_path):
    from codec.content.aligner import ResumableLines

    out = tmp_path / "words.jsonl"
    first = ResumableLines(out, {"a", "b", "c"})
    first.add(json.dumps({"id": "a", "words": []}) + "\n")
    first._fh.write('{"id": "b", "wor')  # killed mid-line
    first._fh.flush()
    assert not out.exists() and (tmp_path / "words.jsonl.partial").exists()
    again = ResumableLines(out, {"a", "b"})  # the cut line is dropped, "a" is kept and not redone
    assert again.done == {"a"}
    again.add(json.dumps({"id": "b", "words": []}) + "\n")
    assert again.finish() == 2
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["a", "b"]
    assert not (tmp_path / "words.jsonl.partial").exists()
    assert ResumableLines(tmp_path / "none.jsonl", {"x"}).finish() == 0 and not (tmp_path / "none.jsonl").exists()
