"""Text frontend: English normalisation, sentence splitting, phonemes/chars/sentencepiece ids, unknown symbols."""

from __future__ import annotations

import shutil
import warnings

import pytest

from tts.config import FrontendConfig, TTSConfig, per_layer
from tts.frontend import SPECIALS, TextFrontend, espeak_backend
from tts.normalize import (
    complete_parts,
    normalize_text,
    number_to_words,
    ordinal_to_words,
    split_sentences,
    take_complete_sentences,
    year_to_words,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I have 3 cats.", "I have three cats."),
        (
            "It has 1,234,567 rows.",
            "It has one million two hundred thirty-four thousand five hundred sixty-seven rows.",
        ),
        ("Pi is 3.14", "Pi is three point one four"),
        (
            "She came 1st, he came 22nd and I was 103rd.",
            "She came first, he came twenty-second and I was one hundred third.",
        ),
        ("It costs $3.50.", "It costs three dollars and fifty cents."),
        ("It costs $1.", "It costs one dollar."),
        ("A £5 note and €0.01", "A five pounds note and one cent"),
        ("Worth $2.5 million", "Worth two point five million dollars"),
        ("About 50% agree", "About fifty percent agree"),
        (
            "Born in 1999, moved in 2005, back in 2024.",
            "Born in nineteen ninety-nine, moved in two thousand five, back in twenty twenty-four.",
        ),
        ("The 1990s were fun", "The nineteen nineties were fun"),
        ("Meet at 3:30 or 10:05 or 4:00.", "Meet at three thirty or ten oh five or four o'clock."),
        ("Dr. Smith met Mr. Jones vs. Mrs. Brown.", "Doctor Smith met Mister Jones versus Missus Brown."),
        ("Apples, pears, etc. are fruit, e.g. these", "Apples, pears, et cetera are fruit, for example these"),
        ("Room No. 7, it is -5 degrees", "Room number seven, it is minus five degrees"),
        ("Pages 5-10 & more", "Pages five to ten and more"),
        ("Agent 007", "Agent zero zero seven"),
        ("“Quoted” — dash…", '"Quoted", dash...'),
    ],
)
def test_normalize_english(text, expected):
    assert normalize_text(text) == expected


def test_number_words_edges():
    assert number_to_words(0) == "zero"
    assert number_to_words(100) == "one hundred"
    assert number_to_words(1001) == "one thousand one"
    assert number_to_words(10**6) == "one million"
    assert number_to_words(-42) == "minus forty-two"
    assert number_to_words(10**15) == "one " + "zero " * 14 + "zero"
    assert ordinal_to_words(12) == "twelfth" and ordinal_to_words(40) == "fortieth"
    assert year_to_words(1900) == "nineteen hundred" and year_to_words(1905) == "nineteen oh five"


def test_split_sentences_respects_abbreviations_and_length():
    text = "Hello there. Mr. Smith is here! 12 dogs ran. J. R. R. Tolkien wrote it. I said no. Call No. 5 now."
    assert split_sentences(text) == [
        "Hello there.",
        "Mister Smith is here!",
        "twelve dogs ran.",
        "J. R. R. Tolkien wrote it.",
        "I said no.",
        "Call number five now.",
    ]
    long = "one, two, three; " * 30 + "done."
    pieces = split_sentences(long, max_chars=40)
    assert len(pieces) > 5 and all(len(p) <= 40 for p in pieces)
    assert " ".join(pieces) == normalize_text(long)


def test_char_frontend_ids_and_specials():
    fe = TextFrontend(FrontendConfig(kind="char"))
    assert tuple(fe.symbols[:3]) == SPECIALS
    ids = fe.encode("Hi, 2 cats!")
    assert min(ids) >= len(SPECIALS)
    assert fe.decode(ids) == "hi, two cats!"
    assert fe.encode_batch(["Hi, 2 cats!", "ok"]) == [ids, fe.encode("ok")]


def test_unknown_characters_are_dropped_with_a_warning():
    fe = TextFrontend(FrontendConfig(kind="char"))
    with pytest.warns(UserWarning, match="☃"):
        ids = fe.encode("snow ☃ man")
    assert fe.decode(ids) == "snow man"
    with warnings.catch_warnings():  # reported once, then silent
        warnings.simplefilter("error")
        fe.encode("more ☃")


@pytest.mark.parametrize("text", ["", "   ", "...", "☃☃", "!?"])
def test_empty_after_normalisation_is_a_clear_error(text):
    fe = TextFrontend(FrontendConfig(kind="char"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="empty after normalisation"):
            fe.encode(text)
        with pytest.raises(ValueError, match="empty after normalisation"):
            fe.split(text)


@needs_espeak
def test_phoneme_frontend_ipa_stress_punctuation():
    fe = TextFrontend(FrontendConfig(kind="phoneme"))
    ids = fe.encode("Hello, world! Is it 5?")
    text = fe.decode(ids)
    assert "ˈ" in text  # stress marks
    assert "," in text and "!" in text and text.endswith("?")  # punctuation kept as prosody symbols
    assert "f" in text and "v" in text  # "five" was normalised and phonemized
    assert fe.encode_batch(["Hello, world! Is it 5?", "Yes."]) == [ids, fe.encode("Yes.")]
    assert espeak_backend("en-us") is espeak_backend("en-us")  # one backend, reused


@needs_espeak
def test_phoneme_frontend_drops_non_latin_script():
    fe = TextFrontend(FrontendConfig(kind="phoneme"))
    with pytest.warns(UserWarning, match="你"):
        ids = fe.encode("Hello 你好 there")
    assert fe.decode(ids) == fe.decode(fe.encode("Hello there"))


def test_sentencepiece_train_save_load(tmp_path):
    corpus = ["the cat sat on the mat", "a dog ran far away", "hello world again and again"] * 10
    cfg = FrontendConfig(kind="sentencepiece", sentencepiece_vocab_size=40)
    fe = TextFrontend.train_sentencepiece(corpus, cfg)
    assert tuple(fe.symbols[:3]) == SPECIALS and fe.vocab_size <= 40 + len(SPECIALS)
    ids = fe.encode("the cat ran")
    fe.save(tmp_path)
    loaded = TextFrontend.load(tmp_path, cfg)
    assert loaded.symbols == fe.symbols and loaded.encode("the cat ran") == ids
    with pytest.warns(UserWarning):
        fe.encode("the ☃ cat")


def test_frontend_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="frontend.json"):
        TextFrontend.load(tmp_path, FrontendConfig(kind="char"))
    TextFrontend(FrontendConfig(kind="char")).save(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        TextFrontend.load(tmp_path, FrontendConfig(kind="phoneme"))
    assert (
        TextFrontend.load(tmp_path, FrontendConfig(kind="char")).symbols
        == TextFrontend(FrontendConfig(kind="char")).symbols
    )


def test_configs_load_strictly(tmp_path):
    for name in ("tiny", "small"):
        cfg = TTSConfig.load(f"configs/tts/{name}.yaml")
        assert cfg.num_codebooks == 32 and cfg.codebook_size == 256 and cfg.end_id == 256
    cfg = TTSConfig.load("configs/tts/tiny.yaml", ["sampling.top_k=[50, 20]", "global_model.num_layers=3"])
    assert cfg.sampling.top_k == (50, 20) and cfg.global_model.num_layers == 3
    with pytest.raises(ValueError, match="unknown key"):
        TTSConfig.load("configs/tts/tiny.yaml", ["global_model.depth=3"])
    assert per_layer((50, 20), 4, "top_k") == (50, 20, 20, 20)
    with pytest.raises(ValueError):
        per_layer((1, 2, 3), 2, "top_k")


def test_bundled_espeak_is_used_when_the_system_has_none(monkeypatch):
    """``pip install`` alone is enough: without a system espeak-ng, the espeakng-loader wheel's library is used."""
    pytest.importorskip("espeakng_loader")
    import espeakng_loader
    from phonemizer.backend.espeak import wrapper

    import codec.content.phonemes as frontend

    monkeypatch.setattr(frontend, "_BACKENDS", {})
    monkeypatch.setattr(wrapper, "_find_library", lambda name: None)  # as on a machine without the package
    monkeypatch.delenv("PHONEMIZER_ESPEAK_LIBRARY", raising=False)
    monkeypatch.setattr(wrapper.EspeakWrapper, "_ESPEAK_LIBRARY", None)
    monkeypatch.setattr(wrapper.EspeakWrapper, "_ESPEAK_DATA_PATH", None)
    try:
        backend = frontend.espeak_backend("en-us")
        assert str(wrapper.EspeakWrapper.library()) == str(espeakng_loader.get_library_path())
        assert "ˈ" in backend.phonemize(["Hello there."])[0]
    finally:  # later tests use the system library again (monkeypatch restores the class attributes)
        frontend._BACKENDS.clear()


def test_streamed_text_is_cut_at_complete_sentences_only():
    assert take_complete_sentences("Dr. Smith is here. He") == ("Dr. Smith is here.", "He")
    assert take_complete_sentences("It costs 5 dollars. ") == ("", "It costs 5 dollars. ")  # the next has not begun
    assert take_complete_sentences("No. 5 is mine") == ("", "No. 5 is mine")
    text = "Mr. Brown met J. Smith. They talked! Was it 12 pm? Yes. The end"
    parts = list(complete_parts(text[i : i + 3] for i in range(0, len(text), 3)))
    assert len(parts) > 1 and parts[-1] == "The end"
    assert [s for p in parts for s in split_sentences(p)] == split_sentences(text)
