"""``ucodec prepare``: corpus manifests from the standard corpora, and the offline synthetic corpus.

``ucodec prepare SOURCE SRC_DIR OUT_DIR`` for SOURCE in libritts, libritts-r, librispeech, ljspeech, vctk, folder;
``ucodec prepare synthetic OUT_DIR --hours H [--seed S]``. Heavy imports happen inside the handlers so that
``ucodec --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codec.manifest import Utterance

LAYOUTS = {
    "libritts": "ROOT/<subset>/<speaker>/<chapter>/<id>.wav + <id>.normalized.txt (ROOT or one subset)",
    "libritts-r": "same layout as libritts (LibriTTS_R)",
    "librispeech": "ROOT/<subset>/<speaker>/<chapter>/<id>.flac + <speaker>-<chapter>.trans.txt",
    "ljspeech": "ROOT/metadata.csv (ID|text|normalized) + ROOT/wavs/<ID>.wav",
    "vctk": "ROOT/wav48_silence_trimmed/<spk>/<id>_mic1.flac (0.92) or ROOT/wav48/<spk>/<id>.wav, + ROOT/txt/",
    "folder": "ROOT/.../<speaker>/<name>.wav|.flac + <name>.txt beside it (speaker = parent folder)",
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _run_corpus(args: argparse.Namespace) -> int:
    from recipes.prepare import prepare

    results = prepare(args.source, args.src_dir, args.out_dir, workers=args.workers, force=args.force, mic=args.mic)
    for r in results:
        state = "already done" if r.skipped else "written"
        print(
            f"{r.manifest}: {r.kept} utterances, {r.hours:.2f} h, {r.rejected} bad files listed in "
            f"{r.manifest.with_suffix('.report.txt').name} ({state})"
        )
    return 0


def _run_synthetic(args: argparse.Namespace) -> int:
    from recipes.synthetic.build import SyntheticConfig, build_synthetic

    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip()) if args.engines else None
    voices = tuple(v.strip() for v in args.voices.split(",") if v.strip()) if args.voices else None
    cfg = SyntheticConfig(
        hours=args.hours,
        seed=args.seed,
        workers=args.workers,
        engines=engines,
        voices=voices,
        identity_check=args.identity_check == "resemblyzer",
        report=args.report,
        asr_samples=args.asr_samples,
    )
    rep = build_synthetic(args.out_dir, cfg)
    splits = ", ".join(f"{k} {v['hours']:.2f} h" for k, v in rep["splits"].items())
    print(
        f"{args.out_dir}: {rep['hours']:.2f} h, {rep['utterances']} utterances, {rep['speakers']} speakers "
        f"({splits}); report: {args.out_dir}/corpus.md"
    )
    return 0


def _write_relative(out: Path, utterances: list[Utterance]) -> None:
    """Write a manifest whose audio paths are relative to its own folder (so the corpus folder can be moved)."""
    import os
    from dataclasses import replace

    from codec.manifest import write_manifest

    folder = out.parent.absolute()
    write_manifest(out, [replace(u, audio=os.path.relpath(u.audio, folder)) for u in utterances])


def _run_merge(args: argparse.Namespace) -> int:

    from codec.manifest import merge, read_manifest, total_hours

    out = Path(args.out)
    if out.resolve() in {Path(m).resolve() for m in args.manifests}:
        raise ValueError(f"{out} is also an input; write the merged manifest to a new file")
    merged = merge(*(read_manifest(m) for m in args.manifests))
    _write_relative(out, merged)
    print(f"{out}: {len(merged)} utterances, {total_hours(merged):.2f} h from {len(args.manifests)} manifests")
    return 0


def _run_filter(args: argparse.Namespace) -> int:
    import re

    from codec.manifest import filter_by_duration, read_manifest, total_hours, with_id_prefix, without_texts

    src, out = Path(args.manifest), Path(args.out)
    if out.resolve() == src.resolve():
        raise ValueError(f"{out} is the input; write the filtered manifest to a new file")
    try:
        exclude = re.compile(args.exclude_speakers) if args.exclude_speakers else None
    except re.error as exc:
        raise ValueError(f"--exclude-speakers {args.exclude_speakers!r} is not a regular expression ({exc})") from None
    utts = read_manifest(src)
    kept = filter_by_duration(utts, args.min_seconds, args.max_seconds)
    if exclude is not None:
        kept = [u for u in kept if not exclude.search(u.speaker)]
    if args.exclude_speakers_of:
        banned = {u.speaker for m in args.exclude_speakers_of for u in read_manifest(m, resolve=False)}
        kept = [u for u in kept if u.speaker not in banned]
    if args.exclude_texts:
        kept = without_texts(kept, (u.text for m in args.exclude_texts for u in read_manifest(m, resolve=False)))
    if args.per_speaker is not None:
        counts: dict[str, int] = {}
        subset = []
        for u in kept:  # the first N of each speaker, in manifest order
            counts[u.speaker] = counts.get(u.speaker, 0) + 1
            if counts[u.speaker] <= args.per_speaker:
                subset.append(u)
        kept = subset
    if args.id_prefix:
        kept = with_id_prefix(kept, args.id_prefix)
    _write_relative(out, kept)
    dropped = sorted({u.speaker for u in utts} - {u.speaker for u in kept})
    print(
        f"{out}: kept {len(kept)} of {len(utts)} utterances ({total_hours(kept):.2f} h); "
        f"speakers dropped entirely: {', '.join(dropped) or 'none'}"
    )
    return 0


RECIPE_COMMANDS = ("recipes.cli",)  # prepare: what the ucodec program (ucodec.cli) takes from the recipes


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prepare`` command and its per-source subcommands."""
    parser = subparsers.add_parser(
        "prepare",
        help="write JSONL manifests for a speech corpus, or build the offline synthetic corpus",
        description="Write JSONL manifests ({id, audio, text, speaker, duration, sample_rate}) for a corpus. "
        "Idempotent: finished parts have .done markers and are skipped; bad files are listed in a report.",
    )
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name, layout in LAYOUTS.items():
        sp = sources.add_parser(name, help=f"{name}: {layout}", description=f"Layout: {layout}")
        sp.add_argument("src_dir", metavar="SRC_DIR", help="the corpus as extracted")
        sp.add_argument("out_dir", metavar="OUT_DIR", help="where <part>.jsonl and <part>.report.txt go")
        sp.add_argument("--workers", type=_positive_int, default=2, help="checking processes (default 2)")
        sp.add_argument("--force", action="store_true", help="redo parts that have a .done marker")
        if name == "vctk":
            sp.add_argument("--mic", choices=("mic1", "mic2"), default="mic1", help="VCTK 0.92 microphone")
        sp.set_defaults(func=_run_corpus, mic="mic1")
    syn = sources.add_parser(
        "synthetic",
        help="build the offline multi-speaker corpus from local TTS engines",
        description="Offline multi-speaker English corpus from espeak-ng/MBROLA, flite, festival, piper and hibari "
        "voices reading public-domain text. Install the engines first: bash recipes/synthetic/install.sh",
    )
    syn.add_argument("out_dir", metavar="OUT_DIR", help="corpus directory (wavs/, train/dev/test-*.jsonl, report)")
    syn.add_argument("--hours", type=float, required=True, help="hours of audio to produce (all splits)")
    syn.add_argument("--seed", type=int, default=0, help="chooses the sentences and the unseen speakers")
    syn.add_argument("--workers", type=_positive_int, default=2, help="rendering processes (default 2)")
    syn.add_argument("--engines", default=None, help="comma-separated subset of espeak,flite,festival,piper,hibari")
    syn.add_argument("--voices", default=None, help="comma-separated candidate identities (names as in the report)")
    syn.add_argument(
        "--identity-check",
        choices=("resemblyzer", "none"),
        default="resemblyzer",
        help="drop near-duplicate identities by speaker-embedding cosine (default resemblyzer)",
    )
    syn.add_argument(
        "--asr-samples",
        type=int,
        default=0,
        help="Whisper tiny.en WER per speaker on N utterances in the report (needs the [eval] extra; default 0: off)",
    )
    syn.add_argument("--report", default=None, help="also write the markdown report here, e.g. docs/corpus.md")
    syn.set_defaults(func=_run_synthetic)
    mrg = sources.add_parser(
        "merge",
        help="concatenate manifests into one (e.g. several LibriTTS training subsets)",
        description="Concatenate JSONL manifests, dropping identical duplicates; an id naming two different "
        "utterances is an error. Audio paths are rewritten relative to the output's folder.",
    )
    mrg.add_argument("out", metavar="OUT.jsonl", help="merged manifest to write (atomically)")
    mrg.add_argument("manifests", metavar="IN.jsonl", nargs="+", help="manifests to merge, in order")
    mrg.set_defaults(func=_run_merge)
    flt = sources.add_parser(
        "filter",
        help="keep a subset of a manifest: duration window, speakers, texts of other manifests",
        description="Write a subset of a manifest, e.g. a TTS training list without hard-to-understand "
        "voices: ucodec prepare filter data/synth/train.jsonl data/synth/train-tts.jsonl --exclude-speakers '^mbrola-'",
    )
    flt.add_argument("manifest", metavar="IN.jsonl", help="manifest to filter")
    flt.add_argument("out", metavar="OUT.jsonl", help="filtered manifest (audio paths relative to its folder)")
    flt.add_argument("--min-seconds", type=float, default=0.0, help="shortest kept utterance (default 0)")
    flt.add_argument("--max-seconds", type=float, default=float("inf"), help="longest kept utterance (default: any)")
    flt.add_argument("--exclude-speakers", default=None, metavar="REGEX", help="drop speakers whose id matches")
    flt.add_argument(
        "--per-speaker",
        type=_positive_int,
        default=None,
        metavar="N",
        help="keep the first N utterances of each speaker",
    )
    flt.add_argument(
        "--exclude-speakers-of",
        action="append",
        default=[],
        metavar="M.jsonl",
        help="drop the speakers of this manifest (repeatable), e.g. another corpus' test-unseen voices",
    )
    flt.add_argument(
        "--exclude-texts",
        action="append",
        default=[],
        metavar="M.jsonl",
        help="drop utterances whose transcript appears in this manifest (repeatable), e.g. another corpus' "
        "dev/test sentences before merging it into a training list",
    )
    flt.add_argument(
        "--id-prefix",
        default="",
        metavar="PREFIX",
        help="prefix every kept id, so that corpora with colliding ids (two synthetic seeds) can be merged",
    )
    flt.set_defaults(func=_run_filter)
