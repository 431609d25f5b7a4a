"""``ucodec convert-original | export-hy | import-hy``: the verbs of the authors' formats.

``convert-original`` turns the authors' ``generator-*.pt`` into a ucodec release directory::

    ucodec convert-original generator-650000.pt models/ucodec-original --config config.json5 --fp16

``export-hy`` writes a token store as the authors' flat per-utterance ``.pt`` files and ``import-hy`` reads such
files back into a store (:mod:`codec.compat.hy_store`).
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``convert-original``, ``export-hy`` and ``import-hy`` to the ``ucodec`` parser."""
    from codec.store.writer import DEFAULT_SHARD_SIZE

    p = sub.add_parser(
        "convert-original",
        help="convert the authors' generator checkpoint into a ucodec release",
        description=_convert.__doc__,
    )
    p.add_argument("checkpoint", metavar="CKPT", help="the authors' generator checkpoint (generator-*.pt)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="release directory to write")
    p.add_argument(
        "--config",
        metavar="CFG",
        default=None,
        help="their json5 config (or a ucodec YAML/JSON config); without it the architecture is inferred from shapes",
    )
    p.add_argument(
        "--num-heads",
        type=int,
        default=None,
        help="attention heads (not stored in the weights; default: the config's value, else 8 with a warning)",
    )
    p.add_argument("--fp16", action="store_true", help="store the weights in float16 (half the size)")
    p.add_argument("--overwrite", action="store_true", help="replace a release already in OUT_DIR")
    p.set_defaults(func=_convert)

    p = sub.add_parser("export-hy", help="write a token store as flat HY .pt files", description=_export.__doc__)
    p.add_argument("store", help="token store directory")
    p.add_argument("out", help="destination folder (hy.json, index.jsonl, tokens/*.pt)")
    p.set_defaults(func=_export)

    p = sub.add_parser("import-hy", help="build a token store from flat HY token files", description=_import.__doc__)
    p.add_argument("src", help="folder written by export-hy, or any folder of flat-token .pt/.npy files")
    p.add_argument("--model", default="default", help="the codec that made the tokens (default: %(default)s)")
    p.add_argument("--out", required=True, help="new store directory")
    p.add_argument("--manifest", default=None, help="text/speaker for a plain folder (ids = file paths sans suffix)")
    p.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="utterances per shard (%(default)s)")
    p.set_defaults(func=_import)


def _convert(args: argparse.Namespace) -> int:
    """Convert the authors' generator checkpoint (+ optional json5 config) into a release directory: tensors are
    renamed onto our seanet codec, weight norm is folded, and every tensor must be used."""
    import warnings

    import torch

    from codec.compat.config import OriginalConfigWarning
    from codec.compat.convert import convert_original

    if args.num_heads is not None and args.num_heads < 1:
        raise ValueError(f"--num-heads must be a positive integer, got {args.num_heads}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OriginalConfigWarning)  # reported below from the result, as one line each
        result = convert_original(
            args.checkpoint,
            args.out_dir,
            config=args.config,
            num_heads=args.num_heads,
            dtype=torch.float16 if args.fp16 else None,
            overwrite=args.overwrite,
        )
    for key, value in result.assumed.items():
        hint = " (set with --num-heads)" if key == "transformer.num_heads" else ""
        print(f"warning: {key}={value} assumed, not stored in the checkpoint{hint}", file=sys.stderr)
    if result.assumed:
        print("warning: pass the authors' json5 config with --config to use their exact values", file=sys.stderr)
    cfg = result.config
    print(
        f"wrote {result.path}: {result.num_tensors} tensors ({result.num_folded} weight-norm pairs folded); "
        f"{cfg.num_codebooks}x{cfg.codebook_size} RVQ at {cfg.frame_rate:g} Hz, hop {cfg.hop_length}, "
        f"{cfg.bitrate:g} bps"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    """Write every utterance of a token store as the authors' flat int16 token tensor (one .pt each)."""
    from codec.compat.hy_store import export_hy

    res = export_hy(args.store, args.out)
    print(f"{res.out}: wrote {res.num_written} token files")
    return 0


def _import(args: argparse.Namespace) -> int:
    """Build a token store from flat HY token files (validated; malformed files are reported and skipped)."""
    from codec.compat.hy_store import import_hy
    from codec.store.cli import print_failures
    from codec.store.format import REPORT_NAME

    res = import_hy(args.src, args.model, args.out, manifest=args.manifest, shard_size=args.shard_size)
    print(f"{res.out}: imported {res.num_written} utterances, {len(res.failures)} failed")
    print_failures(res.failures, str(res.out / REPORT_NAME))
    return 0
