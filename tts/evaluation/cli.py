"""Command line of the TTS evaluation: ``ucodec eval tts | tts-texts | tts-align | tts-oracle`` and
``ucodec bench tts``.

The verbs join the shared ``eval`` and ``bench`` tables (:func:`codec.cli.subcommand_table`) next to the codec's.
Heavy imports (torch, the model, the metrics) happen inside the handlers, so ``ucodec --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from codec.cli import subcommand_table
from codec.evaluation.cli import add_common_options, add_manifest_arguments, render_command, set_threads
from tts.cli import add_sampling_arguments, apply_decode_levels

MODEL_HELP = "TTS release directory (or name) for tts.TTS.from_pretrained"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval tts``, ``eval tts-texts``, ``eval tts-align``, ``eval tts-oracle`` and ``bench tts`` to the
    ``ucodec`` parser."""
    what = subcommand_table(subparsers, "eval")
    p = what.add_parser(
        "tts",
        help="synthesize a manifest's lines with same-speaker prompts; report WER, SIM, DNSMOS, RTF",
        description="Zero-shot TTS evaluation: each line is read in the voice of another utterance of its speaker.",
    )
    out = "output directory (report.md, metrics.jsonl, histograms.png)"
    add_manifest_arguments(p, model=MODEL_HELP, out=out, limit="evaluate only the first N lines")
    add_common_options(p, "wer,sim,dnsmos")
    p.add_argument("--speaker-refs", type=int, default=5, help="utterances per speaker centroid (default 5)")
    p.add_argument("--max-prompt-seconds", type=float, default=10.0, help="cut prompts to this length (default 10)")
    p.add_argument("--latency-utterances", type=int, default=5, help="lines with first-chunk latency (default 5)")
    p.add_argument("--no-ground-truth", action="store_true", help="do not score the real recordings")
    p.add_argument("--seed", type=int, default=0, help="sampling seed passed to the synthesizer (default 0)")
    add_sampling_arguments(p)
    p.set_defaults(func=run_eval_tts, command_parser=p)

    p = what.add_parser(
        "tts-texts",
        help="synthesize new sentences without a voice prompt (the default voice); report Whisper WER/CER",
        description="Each line of a text file is synthesized once per seed in the model's own voice (no prompt) "
        "and transcribed by Whisper tiny.en: what a new user hears first. tts/evaluation/texts.py.",
    )
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument(
        "--texts",
        default=str(DEFAULT_TEXTS),
        help="UTF-8 text file, one sentence a line ('#' starts a comment) (default: 20 everyday sentences in no "
        "corpus, tts/evaluation/new_sentences.txt)",
    )
    p.add_argument("--out", required=True, help="output directory (report.md, metrics.jsonl)")
    p.add_argument("--seeds", default="0", help="comma list of sampling seeds, one synthesis each (default 0)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_sampling_arguments(p)
    p.set_defaults(func=run_eval_tts_texts, command_parser=p)

    p = what.add_parser(
        "tts-align",
        help="does the TTS model read? score how its attention follows the text (teacher-forced)",
        description="Per layer and head of the global model: how the attention of each frame over the text moves "
        "with the frame (corr, lag), how sharp it is (peak) and how much goes to text (mass). "
        "tts/evaluation/alignment.py.",
    )
    add_recordings_arguments(p, "output directory (report.md, attention.png)")
    p.add_argument("--limit", type=int, default=20, help="utterances to probe (default 20)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=run_eval_tts_align, command_parser=p)

    p = what.add_parser(
        "tts-oracle",
        help="which RVQ layers keep the TTS model from reading? WER with the recording's first K layers forced",
        description="Per test line, synthesize with the first K RVQ layers of every frame taken from the real "
        "recording's codes and the rest sampled, at the recording's length; report Whisper WER/CER per K "
        "(K = all layers is the codec's own resynthesis). tts/evaluation/oracle.py.",
    )
    add_recordings_arguments(p, "output directory (report.md)")
    p.add_argument("--layers", default="0,1,2,4,8,32", help="forced layer counts K (default 0,1,2,4,8,32)")
    p.add_argument("--limit", type=int, default=20, help="test lines (default 20)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of the free layers (default 0)")
    p.add_argument("--no-ground-truth", action="store_true", help="do not score the recordings themselves")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--word-times",
        nargs="+",
        metavar="JSONL",
        help="for a model with aligned text: word times of the lines (ucodec align); its word pointer then follows "
        "the recording instead of the model",
    )
    add_sampling_arguments(p)
    p.set_defaults(func=run_eval_tts_oracle, command_parser=p)

    bench = subcommand_table(subparsers, "bench").add_parser(
        "tts", help="TTS generation speed: 5 Hz global-local vs 50 Hz global-local vs flat AR"
    )
    bench.description = "Generation speed of the three LM layouts (same code, same widths, random weights)."
    add_bench_arguments(bench)
    bench.set_defaults(func=run_bench_tts, command_parser=bench)


def add_recordings_arguments(p: argparse.ArgumentParser, out_help: str) -> None:
    """``--model``, ``--manifest`` (recordings with their transcripts) and ``--out`` of the teacher-forced verbs."""
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--manifest", required=True, help="JSONL manifest of recordings with their transcripts")
    p.add_argument("--out", required=True, help=out_help)


DEFAULT_BENCH_CONFIG = "configs/tts/small.yaml"
DEFAULT_TEXTS = Path(__file__).resolve().parent / "new_sentences.txt"
DEFAULT_BENCH_CODEC = "configs/codec/small.yaml"


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``ucodec bench tts`` (defaults reproduce docs/benchmarks.md)."""
    p.add_argument("--config", default=DEFAULT_BENCH_CONFIG, help=f"base TTS config (default {DEFAULT_BENCH_CONFIG})")
    p.add_argument(
        "--codec",
        default=DEFAULT_BENCH_CODEC,
        help="codec config .yaml (random weights) or release for "
        f"the streaming-decode cost, or 'none' (default {DEFAULT_BENCH_CODEC})",
    )
    p.add_argument(
        "--layouts",
        default="a,b,c",
        help="comma list of a (5 Hz x 32), b (50 Hz x 3), c (flat), aG (a with G layers a local step, e.g. "
        "a1,a2) and fK (a modelling only the codec's first K levels, e.g. f4) (default a,b,c)",
    )
    p.add_argument("--batches", default="1,4", help="batch sizes (default 1,4)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio generated per sequence (default 10)")
    p.add_argument("--text-symbols", type=int, default=150, help="text prefix length (default 150)")
    p.add_argument("--prompt-seconds", type=float, default=3.0, help="voice prompt in the prefix (default 3)")
    p.add_argument("--repeats", type=int, default=3, help="timed interleaved rounds; the median is reported (3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    p.add_argument(
        "--backbone",
        action="store_true",
        help="also time a global decode step of our Transformer vs transformers' LlamaModel",
    )
    p.add_argument("--doc", default="docs/benchmarks.md", help="markdown file to update, '-' for none")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_tts(model: str):
    """``tts.pipeline.TTS.from_pretrained(model)``: the synthesizer every TTS evaluation verb scores."""
    from tts.pipeline import TTS

    return TTS.from_pretrained(model)


def run_eval_tts(args: argparse.Namespace) -> int:
    """Handler of ``ucodec eval tts``."""
    from codec.evaluation.scoring import parse_metrics
    from tts.evaluation.evaluate import TTS_METRICS, TtsEvalOptions, evaluate_tts

    set_threads(args.threads)
    metrics = TTS_METRICS if args.metrics.strip() == "all" else parse_metrics(args.metrics)
    unusable = [m for m in metrics if m not in TTS_METRICS]
    if unusable:
        raise ValueError(
            f"--metrics {unusable} compare against a reference recording, which eval tts does not have; "
            f"choose from {list(TTS_METRICS)}"
        )
    options = TtsEvalOptions(
        limit=args.limit,
        metrics=metrics,
        speaker_refs=args.speaker_refs,
        max_prompt_seconds=args.max_prompt_seconds,
        latency_utterances=args.latency_utterances,
        ground_truth=not args.no_ground_truth,
        seed=args.seed,
        sampling=tuple(
            (name, getattr(args, name)) for name in ("temperature", "top_k", "top_p") if getattr(args, name) is not None
        ),
        progress=not args.no_progress,
    )
    synthesizer = load_tts(args.model)
    apply_decode_levels(synthesizer, args.decode_levels)
    result = evaluate_tts(
        synthesizer, args.manifest, args.out, options, model_label=str(args.model), command=render_command(args)
    )
    from tts.evaluation.report import results_table

    print(results_table(result))
    print(f"wrote {args.out}/report.md")
    return 0


def run_eval_tts_texts(args: argparse.Namespace) -> int:
    """Handler of ``ucodec eval tts-texts``."""
    from tts.evaluation.texts import corpus_rates, evaluate_texts, read_texts, write_texts_report

    set_threads(args.threads)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise ValueError(f"--seeds must be a comma list of integers, got {args.seeds!r}") from None
    texts = read_texts(args.texts)
    sampling = {n: getattr(args, n) for n in ("temperature", "top_k", "top_p") if getattr(args, n) is not None}
    synthesizer = load_tts(args.model)
    apply_decode_levels(synthesizer, args.decode_levels)
    records = evaluate_texts(synthesizer, texts, seeds, sampling, progress=not args.no_progress)
    path = write_texts_report(records, args.out, str(args.model), str(args.texts), render_command(args))
    wer, cer = corpus_rates(records)
    print(f"{len(records)} syntheses: WER {100 * wer:.1f} %, CER {100 * cer:.1f} %; wrote {path}")
    return 0


def run_eval_tts_align(args: argparse.Namespace) -> int:
    """Handler of ``ucodec eval tts-align``."""
    import torch

    from codec.atomic import write_text_atomic
    from codec.audio import load_audio
    from codec.evaluation.plots import plot_attention
    from codec.manifest import read_manifest

    set_threads(args.threads)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    utterances = read_manifest(args.manifest)[: args.limit]
    synthesizer = load_tts(args.model)
    from tts.evaluation.alignment import probe, report, text_attention

    items = []
    for u in utterances:
        wav = load_audio(u.audio, synthesizer.sample_rate)  # [1, T]; read_manifest resolved the path
        with torch.inference_mode():
            codes = synthesizer.codec.encode(wav[None])[0]  # [Q, F]
        items.append((synthesizer.frontend.encode(u.text), codes))
    scores = probe(synthesizer.model, items)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "report.md", report(scores, str(args.model), render_command(args)))
    layer, head = scores.best_head()
    maps = text_attention(synthesizer.model, *items[0])[layer, head]  # [F, L]
    panel = f"{utterances[0].id}: layer {layer} head {head} (best corr)"
    plot_attention(out / "attention.png", {panel: (maps / maps.sum(-1, keepdim=True).clamp_min(1e-12)).numpy()})
    best = (layer, head)
    print(
        f"best head: layer {layer} head {head}: corr {scores.corr[best]:.2f}, lag {scores.lag[best]:.3f}, "
        f"peak {scores.peak[best]:.2f} ({scores.utterances} utterances)"
    )
    print(f"wrote {out}/report.md")
    return 0


def run_eval_tts_oracle(args: argparse.Namespace) -> int:
    """Handler of ``ucodec eval tts-oracle``."""
    from codec.atomic import write_text_atomic
    from codec.evaluation.scoring import Scorer

    set_threads(args.threads)
    synthesizer = load_tts(args.model)
    apply_decode_levels(synthesizer, args.decode_levels)
    from tts.evaluation.oracle import parse_layers, report, sweep
    from tts.sampling import SamplingParams

    q = synthesizer.config.num_codebooks
    depths = parse_layers(args.layers, q)
    params = SamplingParams.create(q, synthesizer.config.sampling, args.temperature, args.top_k, args.top_p)
    times = None
    if args.word_times:
        from tts.aligned_text import load_word_times

        times = load_word_times(args.word_times)[0]
    scorer = Scorer(("wer",))
    scorer.load()
    rows, real, lines = sweep(
        synthesizer,
        args.manifest,
        depths,
        scorer,
        params,
        limit=args.limit,
        seed=args.seed,
        recordings=not args.no_ground_truth,
        progress=not args.no_progress,
        word_times=times,
    )
    text = report(rows, real, lines, str(args.model), render_command(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "report.md", text)
    print(text, end="")
    print(f"wrote {out}/report.md")
    return 0


def run_bench_tts(args: argparse.Namespace) -> int:
    """Handler of ``ucodec bench tts``."""
    from tts.evaluation.bench_report import run_bench

    return run_bench(args)
