"""``ucodec tokenize | store-info``: token stores from the command line.

``tokenize`` encodes a manifest into a store (resumable: run the same command again after an interruption);
``store-info`` prints what a store holds. Failures of single files never fail the command: they are counted, the
first ones printed (:func:`print_failures`), and all of them listed in the store's ``report.json``. The HY export
and import of a store are the authors' format's verbs (:mod:`codec.compat.cli`).
"""

from __future__ import annotations

import argparse
import sys

SHOW_FAILURES = 5


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``tokenize`` and ``store-info`` to the ``ucodec`` parser."""
    from codec.store.writer import DEFAULT_SHARD_SIZE

    p = sub.add_parser("tokenize", help="encode a manifest into a token store", description=_tokenize.__doc__)
    p.add_argument("--model", default="default", help="codec release directory or shipped name (default: %(default)s)")
    p.add_argument("--manifest", required=True, help="JSONL manifest (id, audio, text, speaker, duration, sample_rate)")
    p.add_argument("--out", required=True, help="store directory (an unfinished store there is resumed)")
    p.add_argument("--num-workers", type=int, default=None, help="processes (default: 1 on CPU, one per GPU)")
    p.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="utterances per shard (%(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="torch threads per worker (%(default)s)")
    p.add_argument("--chunk-seconds", type=float, default=None, help="stream files longer than this (default: 60)")
    p.add_argument("--batch-seconds", type=float, default=None, help="padded audio per batch (60 CPU, 600 GPU)")
    p.add_argument("--retry-failed", action="store_true", help="redo shards that recorded failures")
    p.add_argument("--max-shards", type=int, default=None, help="stop after this many shards (resume later)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_tokenize)

    p = sub.add_parser("store-info", help="describe a token store", description=_info.__doc__)
    p.add_argument("store", help="token store directory")
    p.set_defaults(func=_info)


def print_failures(failures: list, report: str) -> None:
    """Print the first failures of a run on stderr and where the full list is."""
    for f in failures[:SHOW_FAILURES]:
        print(f"  failed {f.id}: {f.error}", file=sys.stderr)
    if len(failures) > SHOW_FAILURES:
        print(f"  ... {len(failures) - SHOW_FAILURES} more", file=sys.stderr)
    if failures:
        print(f"  all failures: {report}", file=sys.stderr)


def _tokenize(args: argparse.Namespace) -> int:
    """Encode every utterance of a manifest with a codec into a sharded, resumable token store."""
    from codec.store.encode import limit_primitive_cache
    from codec.store.format import REPORT_NAME
    from codec.store.writer import tokenize

    limit_primitive_cache()  # this process is ours: keep its memory flat (codec.store.encode)

    res = tokenize(
        args.model,
        args.manifest,
        args.out,
        num_workers=args.num_workers,
        shard_size=args.shard_size,
        device=args.device,
        threads_per_worker=args.threads_per_worker,
        chunk_seconds=args.chunk_seconds,
        batch_seconds=args.batch_seconds,
        retry_failed=args.retry_failed,
        max_shards=args.max_shards,
        progress=not args.no_progress,
    )
    state = (
        "complete"
        if res.complete
        else f"unfinished ({res.num_shards - res.shards_skipped - res.shards_written} shards left)"
    )
    print(
        f"{res.out}: {state}; {res.num_stored} stored, {res.num_failed} failed of {res.num_utterances}; this run "
        f"wrote {res.shards_written} shard(s), skipped {res.shards_skipped}, {res.audio_seconds:.1f} s of audio in "
        f"{res.wall_seconds:.1f} s (x{res.real_time_factor:.0f} real time)"
    )
    print_failures(res.failures, str(res.out / REPORT_NAME))
    if res.failures:
        print("  fix the files and run again with --retry-failed to add them", file=sys.stderr)
    if res.complete and res.num_stored == 0:
        print("error: no utterance could be tokenized (wrong audio paths?)", file=sys.stderr)
        return 1
    return 0


def _info(args: argparse.Namespace) -> int:
    """Describe a token store: its codec, size and speakers."""
    from codec.store.reader import TokenStore

    store = TokenStore(args.store)
    info = store.info
    hours = store.total_seconds / 3600
    print(f"store      {store.root}")
    print(f"codec      {info.codec.describe()}")
    print(f"utterances {len(store)} stored of {info.num_utterances} ({hours:.2f} h), {info.num_shards} shards")
    print(f"speakers   {len(store.speakers())}")
    print(f"source     {info.source}")
    return 0
