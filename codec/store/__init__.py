"""The token store: a manifest encoded into sharded, resumable, byte-reproducible codec tokens.

- :mod:`codec.store.format`: the on-disk layout and its record types (a leaf: the other modules import it);
- :mod:`codec.store.writer`: ``tokenize`` (plan, lock, resume, finalize);
- :mod:`codec.store.encode` / :mod:`codec.store.workers`: encoding a shard, in this process or a pool;
- :mod:`codec.store.reader`: :class:`~codec.store.reader.TokenStore` and the training-side dataset and sampler;
- :mod:`codec.store.cli`: ``ucodec tokenize`` and ``store-info``; :mod:`codec.store.bench`: the tokenizer benchmark.

Imports point one way: ``cli -> writer -> workers -> encode -> format``; nothing imports back up. The HY export
and import of a store belong to the authors' format (:mod:`codec.compat.hy_store`). docs/token_store.md has the
user's view.
"""
