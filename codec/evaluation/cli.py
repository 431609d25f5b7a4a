"""Command line of the evaluation toolkit: ``ucodec eval codec|tts|tts-align|tts-oracle``, ``ucodec bench codec``.

``codec.cli`` imports this module and calls :func:`register`. The ``bench`` command is shared: this module adds
``bench codec``, and the TTS package adds ``bench tts`` through :func:`bench_subparsers`, which returns the
``bench`` sub-command table whether or not it exists yet (so registration order does not matter)::

    from codec.evaluation.cli import bench_subparsers
    p = bench_subparsers(subparsers).add_parser("tts", help="...")
    p.set_defaults(func=run_bench_tts)

Heavy imports (torch models, metrics, peers) happen inside the handlers, so ``ucodec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os

from codec.cli import add_sampling_arguments

BENCH_ATTR = "_ucodec_bench_subparsers"


def bench_subparsers(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The sub-command table of ``ucodec bench``, creating the ``bench`` parser on first use.

    Args:
        subparsers: the top-level ``ucodec`` sub-command table (what ``register`` receives).
    """
    parser = subparsers.choices.get("bench")
    if parser is None:
        parser = subparsers.add_parser(
            "bench", help="speed benchmarks against peer models", description="Speed benchmarks (CPU, offline)."
        )
        table = parser.add_subparsers(dest="bench_command", metavar="WHAT")
        setattr(parser, BENCH_ATTR, table)
        parser.set_defaults(func=lambda args, p=parser: _help(p))
    return getattr(parser, BENCH_ATTR)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval {codec,tts,tts-align,tts-oracle}`` and ``bench codec`` to the ``ucodec`` parser."""
    evaluation = subparsers.add_parser(
        "eval", help="evaluate a codec or a TTS model on a test manifest", description="Offline evaluation."
    )
    evaluation.set_defaults(func=lambda args: _help(evaluation))
    what = evaluation.add_subparsers(dest="eval_command", metavar="WHAT")

    p = what.add_parser(
        "codec",
        help="resynthesize a manifest and report PESQ, STOI, mel distance, WER, SIM, DNSMOS",
        description="Encode/decode every utterance of a manifest and score the resynthesis against the original.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="codec release directory, registered name, or a config .yaml (random weights: checks the pipeline only)",
    )
    p.add_argument("--manifest", required=True, help="JSONL test manifest")
    p.add_argument("--out", required=True, help="output directory (report.md, metrics.jsonl, PNGs, audio/)")
    p.add_argument("--limit", type=int, help="evaluate only the first N utterances")
    p.add_argument("--num-codebooks", help="RVQ depths to evaluate, e.g. 8,16,32 (default: full depth)")
    _common_options(p, "pesq,stoi,mel,wer,sim,dnsmos")
    p.add_argument("--plot-utterances", type=int, default=3, help="rows of the spectrogram figure (default 3)")
    p.add_argument("--save-audio", type=int, default=3, help="utterances whose resyntheses are saved (default 3)")
    p.add_argument("--device", default="cpu", help="torch device of the codec (default cpu)")
    p.add_argument(
        "--probe-train",
        metavar="MANIFEST",
        help="also report phoneme error rates of the first levels: the codec's CTC head and a fixed-protocol probe "
        "trained on this manifest's first 600 utterances (needs espeak-ng)",
    )
    p.set_defaults(func=run_eval_codec, command_parser=p)

    p = what.add_parser(
        "tts",
        help="synthesize a manifest's lines with same-speaker prompts; report WER, SIM, DNSMOS, RTF",
        description="Zero-shot TTS evaluation: each line is read in the voice of another utterance of its speaker.",
    )
    p.add_argument("--model", required=True, help="TTS release directory (or name) for tts.TTS.from_pretrained")
    p.add_argument("--manifest", required=True, help="JSONL test manifest")
    p.add_argument("--out", required=True, help="output directory (report.md, metrics.jsonl, histograms.png)")
    p.add_argument("--limit", type=int, help="evaluate only the first N lines")
    _common_options(p, "wer,sim,dnsmos")
    p.add_argument("--speaker-refs", type=int, default=5, help="utterances per speaker centroid (default 5)")
    p.add_argument("--max-prompt-seconds", type=float, default=10.0, help="cut prompts to this length (default 10)")
    p.add_argument("--latency-utterances", type=int, default=5, help="lines with first-chunk latency (default 5)")
    p.add_argument("--no-ground-truth", action="store_true", help="do not score the real recordings")
    p.add_argument("--seed", type=int, default=0, help="sampling seed passed to the synthesizer (default 0)")
    add_sampling_arguments(p)
    p.set_defaults(func=run_eval_tts, command_parser=p)

    p = what.add_parser(
        "tts-align",
        help="does the TTS model read? score how its attention follows the text (teacher-forced)",
        description="Per layer and head of the global model: how the attention of each frame over the text moves "
        "with the frame (corr, lag), how sharp it is (peak) and how much goes to text (mass). tts/alignment.py.",
    )
    p.add_argument("--model", required=True, help="TTS release directory (or name) for tts.TTS.from_pretrained")
    p.add_argument("--manifest", required=True, help="JSONL manifest of recordings with their transcripts")
    p.add_argument("--out", required=True, help="output directory (report.md, attention.png)")
    p.add_argument("--limit", type=int, default=20, help="utterances to probe (default 20)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=run_eval_tts_align, command_parser=p)

    p = what.add_parser(
        "tts-oracle",
        help="which RVQ layers keep the TTS model from reading? WER with the recording's first K layers forced",
        description="Per test line, synthesize with the first K RVQ layers of every frame taken from the real "
        "recording's codes and the rest sampled, at the recording's length; report Whisper WER/CER per K "
        "(K = all layers is the codec's own resynthesis). tts/oracle.py.",
    )
    p.add_argument("--model", required=True, help="TTS release directory (or name) for tts.TTS.from_pretrained")
    p.add_argument("--manifest", required=True, help="JSONL manifest of recordings with their transcripts")
    p.add_argument("--out", required=True, help="output directory (report.md)")
    p.add_argument("--layers", default="0,1,2,4,8,32", help="forced layer counts K (default 0,1,2,4,8,32)")
    p.add_argument("--limit", type=int, default=20, help="test lines (default 20)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of the free layers (default 0)")
    p.add_argument("--no-ground-truth", action="store_true", help="do not score the recordings themselves")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_sampling_arguments(p)
    p.set_defaults(func=run_eval_tts_oracle, command_parser=p)

    p = bench_subparsers(subparsers).add_parser(
        "codec",
        help="encode+decode speed and memory of our codec configs vs EnCodec and SNAC",
        description="CPU real-time factor (interleaved, median of N), peak RSS and long-file throughput.",
    )
    from codec.evaluation.bench_cli import add_bench_codec_arguments, run_bench_codec

    add_bench_codec_arguments(p)
    p.set_defaults(func=run_bench_codec, command_parser=p)


def _common_options(p: argparse.ArgumentParser, metrics: str) -> None:
    p.add_argument("--metrics", default="all", help=f"comma list of {metrics}, or none (default all)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def render_command(args: argparse.Namespace) -> str:
    """The command line equivalent to ``args`` (options that differ from their defaults), for report headers."""
    import shlex

    parser: argparse.ArgumentParser = args.command_parser
    words = parser.prog.split()
    words[0] = "ucodec"
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "command_parser"):
            continue
        value = getattr(args, action.dest, None)
        if value is None or value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(value, tuple):  # a per-layer option is written back as it was typed
            value = ",".join(str(v) for v in value)
        words += [flag] if isinstance(action, argparse._StoreTrueAction) else [flag, str(value)]
    return shlex.join(words)


def _threads(n: int | None) -> None:
    if n is not None:
        if n < 1:
            raise ValueError(f"--threads must be >= 1, got {n}")
        import torch

        torch.set_num_threads(n)


def run_eval_codec(args: argparse.Namespace) -> int:
    """Handler of ``ucodec eval codec``."""
    from codec.evaluation.codec_eval import CodecEvalOptions, evaluate_codec, load_codec, parse_depths
    from codec.evaluation.scoring import parse_metrics

    _threads(args.threads)
    metrics = parse_metrics(args.metrics)
    codec, random_init = load_codec(args.model, device=args.device)
    options = CodecEvalOptions(
        num_codebooks=parse_depths(args.num_codebooks, codec.num_codebooks),
        limit=args.limit,
        metrics=metrics,
        plot_utterances=args.plot_utterances,
        save_audio=args.save_audio,
        device=args.device,
        progress=not args.no_progress,
        probe_train=args.probe_train,
    )
    if args.probe_train and not os.path.isfile(args.probe_train):
        raise FileNotFoundError(f"--probe-train: manifest not found: {args.probe_train}")
    result = evaluate_codec(
        codec,
        args.manifest,
        args.out,
        options,
        model_label=str(args.model),
        random_init=random_init,
        command=render_command(args),
    )
    from codec.evaluation.codec_report import results_table

    print(results_table(result))
    print(f"wrote {args.out}/report.md")
    return 0


def load_tts(model: str):
    """``tts.TTS.from_pretrained(model)``, or a clear error when the TTS package is not available.

    Raises:
        ValueError: the ``tts`` package has no ``TTS`` facade in this installation.
    """
    try:
        from tts import TTS
    except ImportError as exc:
        raise ValueError(f"eval tts needs the TTS model class tts.TTS, which is not available here ({exc})") from None
    return TTS.from_pretrained(model)


def run_eval_tts(args: argparse.Namespace) -> int:
    """Handler of ``ucodec eval tts``."""
    from codec.evaluation.scoring import parse_metrics
    from codec.evaluation.tts_eval import TTS_METRICS, TtsEvalOptions, evaluate_tts

    _threads(args.threads)
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
    result = evaluate_tts(
        synthesizer, args.manifest, args.out, options, model_label=str(args.model), command=render_command(args)
    )
    from codec.evaluation.tts_report import results_table

    print(results_table(result))
    print(f"wrote {args.out}/report.md")
    return 0


def run_eval_tts_align(args: argparse.Namespace) -> int:
    """Handler of ``ucodec eval tts-align``."""
    from pathlib import Path

    import torch

    from codec.atomic import write_text_atomic
    from codec.audio import load_audio
    from codec.evaluation.plots import plot_attention
    from codec.manifest import read_manifest

    _threads(args.threads)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    utterances = read_manifest(args.manifest)[: args.limit]
    synthesizer = load_tts(args.model)
    from tts.alignment import probe, report, text_attention

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
    from pathlib import Path

    from codec.atomic import write_text_atomic
    from codec.evaluation.scoring import Scorer

    _threads(args.threads)
    synthesizer = load_tts(args.model)
    from tts.oracle import parse_layers, report, sweep
    from tts.sampling import SamplingParams

    q = synthesizer.config.num_codebooks
    depths = parse_layers(args.layers, q)
    params = SamplingParams.create(q, synthesizer.config.sampling, args.temperature, args.top_k, args.top_p)
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
    )
    text = report(rows, real, lines, str(args.model), render_command(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "report.md", text)
    print(text, end="")
    print(f"wrote {out}/report.md")
    return 0
