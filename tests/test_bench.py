"""``ucodec bench codec``: interleaved timing, peers, subprocess probes, the benchmarks document."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codec.evaluation.bench import SpeedResult, time_interleaved
from codec.evaluation.peers import Contestant, bench_signal
from codec.evaluation.report import section_markers, update_markdown_section
from ucodec.cli import main

TINY_YAML = Path(__file__).resolve().parent.parent / "configs" / "codec" / "tiny.yaml"
BENCH_EXTRA = "needs the [bench] extra: pip install -e '.[bench]'"


def recording_contestant(name: str, log: list[str]) -> Contestant:
    """A contestant whose encode/decode only record that they ran (identity codec)."""

    def encode(wav):
        log.append(name)
        return wav

    return Contestant(
        name=name,
        kind="ours",
        sample_rate=8000,
        bitrate=1.0,
        num_parameters=0,
        encode=encode,
        decode=lambda codes: codes,
        spec=name,
    )


def test_time_interleaved_rotates_the_order_and_discards_warmup():
    log: list[str] = []
    contestants = [recording_contestant(n, log) for n in "abc"]
    results = time_interleaved(contestants, seconds=0.1, repeats=3, warmup=2, progress=False)
    rounds = [log[i : i + 3] for i in range(0, len(log), 3)]
    assert rounds == [list("abc"), list("bca"), list("cab"), list("abc"), list("bca")]
    assert [r.name for r in results] == list("abc")
    for r in results:
        assert len(r.rounds) == 3 and r.total_s == sorted(r.rounds)[1]  # median of the timed rounds
        assert r.seconds == 0.1 and r.rtf == pytest.approx(r.total_s / 0.1)


def test_time_interleaved_rejects_bad_counts():
    with pytest.raises(ValueError, match="repeats"):
        time_interleaved([recording_contestant("a", [])], repeats=0, progress=False)


def test_speed_result_ratios():
    r = SpeedResult("x", "ours", "x", 16000, 1280.0, 1, True, 10.0, 0.1, 0.3, 0.5, (0.5,))
    assert r.rtf == 0.05 and r.realtime == 20.0


def test_bench_signal_is_deterministic_and_in_range():
    a, b = bench_signal(1.0, 24000), bench_signal(1.0, 24000)
    assert a.shape == (1, 1, 24000) and torch.equal(a, b)
    assert a.abs().max() <= 1.0 and 0.01 < a.std() < 0.5


def test_update_markdown_section_keeps_the_rest_of_the_file(tmp_path):
    doc = tmp_path / "benchmarks.md"
    update_markdown_section(doc, "bench codec", "codec v1")
    update_markdown_section(doc, "bench tts", "tts v1")
    text = doc.read_text()
    doc.write_text(text + "\nA hand-written note.\n")
    update_markdown_section(doc, "bench codec", "codec v2")
    text = doc.read_text()
    begin, end = section_markers("bench codec")
    assert text.startswith("# Benchmarks\n")
    assert text.count(begin) == 1 and text.count(end) == 1
    assert "codec v2" in text and "codec v1" not in text and "tts v1" in text and "A hand-written note." in text
    assert text.index("codec v2") < text.index("tts v1")  # replaced in place, not appended


def test_snac_and_encodec_peers_match_their_published_sizes():
    pytest.importorskip("snac", reason=BENCH_EXTRA)
    pytest.importorskip("encodec", reason=BENCH_EXTRA)
    from codec.evaluation.peers import build_encodec, build_snac

    snac = build_snac()
    assert snac.num_parameters == pytest.approx(19.8e6, rel=0.01) and snac.bitrate == pytest.approx(984, abs=1)
    encodec = build_encodec()
    assert encodec.num_parameters == pytest.approx(14.85e6, rel=0.01) and encodec.bitrate == 1500.0
    for peer in (snac, encodec):
        wav = bench_signal(0.2, peer.sample_rate)
        with torch.inference_mode():
            out = peer.decode(peer.encode(wav))
        assert out.shape[:2] == (1, 1) and out.shape[-1] >= wav.shape[-1] and torch.isfinite(out).all()


def test_bench_codec_end_to_end_writes_the_document(tmp_path, capsys):
    pytest.importorskip("encodec", reason=BENCH_EXTRA)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nIntro kept.\n")
    # Peak RSS per model is tested on its own below: every probe subprocess pays for importing torch.
    args = ["bench", "codec", "--models", str(TINY_YAML), "--doc", str(doc)]
    args += "--peers encodec --seconds 0.5 --repeats 1 --warmup 0 --no-memory --no-progress".split()
    args += "--long-seconds 4 --chunk-seconds 1.6".split()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ucodec-tiny" in out and "EnCodec 24 kHz" in out and "as fast as EnCodec 24 kHz" in out
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nIntro kept.\n")
    assert f"ucodec bench codec --models {TINY_YAML} --peers encodec --seconds 0.5 --repeats 1 --warmup 0" in text
    assert "| vs EnCodec 24 kHz |" in text and "Goal (≥ 3× EnCodec" in text
    assert "shared with a background training run" in text and "cores usable" in text
    long_rows = [line for line in text.splitlines() if line.startswith("| ucodec-tiny | 4 s | 1.6 s |")]
    assert len(long_rows) == 1, text  # the 4 s file streamed in 1.6 s chunks
    speed_rows = [line for line in text.splitlines() if line.startswith("| EnCodec 24 kHz | 14.9 M | 24 kHz |")]
    assert len(speed_rows) == 1 and speed_rows[0].endswith("| 1.00× (1.00×) |")


def test_memory_probe_runs_in_a_fresh_process():
    from codec.evaluation.bench import probe_memory

    # The parent holds a large buffer; a probe that inherited the parent's peak (ru_maxrss) would report it.
    ballast = torch.ones(200 * 2**20 // 4)
    result = probe_memory(str(TINY_YAML), seconds=1.0, threads=1)
    del ballast
    assert 50 < result.baseline_mb <= result.peak_mb < 1500
    assert 0 <= result.model_mb < 300  # a 0.2 M-parameter model on 1 s of audio


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--peers", "dac"], "unknown ['dac']"),
        (["--models", "configs/codec/nope.yaml"], "codec config not found"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--long-models", "some"], "--long-models"),
    ],
)
def test_bench_codec_user_errors(capsys, extra, message):
    assert main(["bench", "codec", "--doc", "-", "--no-progress", *extra]) == 2
    assert message in capsys.readouterr().err
