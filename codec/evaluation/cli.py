"""Command line of the codec's evaluation toolkit: ``ucodec eval codec`` and ``ucodec bench codec``.

``eval`` and ``bench`` are shared tables (:func:`codec.cli.subcommand_table`): the TTS package adds ``eval tts``,
``eval tts-align``, ``eval tts-oracle`` and ``bench tts`` to them (:mod:`tts.evaluation.cli`). The helpers that
every evaluation verb uses (:func:`add_manifest_arguments`, :func:`add_common_options`, :func:`set_threads`,
:func:`render_command`) live here.

Heavy imports (torch models, metrics, peers) happen inside the handlers, so ``ucodec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os

from codec.cli import subcommand_table


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval codec`` and ``bench codec`` to the ``ucodec`` parser."""
    what = subcommand_table(subparsers, "eval")
    p = what.add_parser(
        "codec",
        help="resynthesize a manifest and report PESQ, STOI, mel distance, WER, SIM, DNSMOS",
        description="Encode/decode every utterance of a manifest and score the resynthesis against the original.",
    )
    add_manifest_arguments(
        p,
        model="codec release directory, registered name, or a config .yaml (random weights: checks the pipeline only)",
        out="output directory (report.md, metrics.jsonl, PNGs, audio/)",
        limit="evaluate only the first N utterances",
    )
    p.add_argument("--num-codebooks", help="RVQ depths to evaluate, e.g. 8,16,32 (default: full depth)")
    add_common_options(p, "pesq,stoi,mel,wer,sim,dnsmos")
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

    p = subcommand_table(subparsers, "bench").add_parser(
        "codec",
        help="encode+decode speed and memory of our codec configs vs EnCodec and SNAC",
        description="CPU real-time factor (interleaved, median of N), peak RSS and long-file throughput.",
    )
    from codec.evaluation.bench_cli import add_bench_codec_arguments, run_bench_codec

    add_bench_codec_arguments(p)
    p.set_defaults(func=run_bench_codec, command_parser=p)


def add_manifest_arguments(p: argparse.ArgumentParser, model: str, out: str, limit: str) -> None:
    """``--model``, ``--manifest`` (a JSONL test manifest), ``--out`` and ``--limit`` of an eval verb; the
    arguments are their help texts."""
    p.add_argument("--model", required=True, help=model)
    p.add_argument("--manifest", required=True, help="JSONL test manifest")
    p.add_argument("--out", required=True, help=out)
    p.add_argument("--limit", type=int, help=limit)


def add_common_options(p: argparse.ArgumentParser, metrics: str) -> None:
    """``--metrics`` (``metrics``: the comma list offered), ``--threads`` and ``--no-progress``."""
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
        if isinstance(action, argparse._StoreTrueAction):
            words.append(flag)
        elif isinstance(value, list):  # nargs="+": one word per value
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def set_threads(n: int | None) -> None:
    """``torch.set_num_threads(n)`` unless ``n`` is None.

    Raises:
        ValueError: ``n`` < 1.
    """
    if n is not None:
        if n < 1:
            raise ValueError(f"--threads must be >= 1, got {n}")
        import torch

        torch.set_num_threads(n)


def run_eval_codec(args: argparse.Namespace) -> int:
    """Handler of ``ucodec eval codec``."""
    from codec.evaluation.codec_eval import CodecEvalOptions, evaluate_codec, load_codec, parse_depths
    from codec.evaluation.scoring import parse_metrics

    set_threads(args.threads)
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
