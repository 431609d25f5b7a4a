"""How distinct the synthetic speakers are: speaker-embedding centroids and a greedy near-duplicate filter.

A speaker's centroid is the normalised mean of the ``resemblyzer`` d-vectors (256-d, GE2E speaker encoder, weights
shipped in the wheel, so it works offline) of a few of its utterances. Two identities whose centroids have cosine
similarity at or above the threshold sound like one speaker to the encoder, and only the first (in order of
preference) is kept. ``resemblyzer`` imports ``pkg_resources``, so it needs ``setuptools<81``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INSTALL_HINT = "pip install resemblyzer 'setuptools<81' (or run with --identity-check none)"


@dataclass(frozen=True)
class Selection:
    """Result of :func:`select_distinct`."""

    kept: list[str]  # identities kept, in order of preference
    dropped: dict[str, tuple[str, float]]  # dropped identity -> (the kept identity it duplicates, their cosine)


def _encoder():  # noqa: ANN202 - resemblyzer.VoiceEncoder, imported lazily
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pkg_resources deprecation noise from resemblyzer's import
            from resemblyzer import VoiceEncoder
    except ImportError as exc:  # resemblyzer itself, or pkg_resources from setuptools>=81
        raise FileNotFoundError(f"the speaker encoder is not installed ({exc}): {INSTALL_HINT}") from None
    return VoiceEncoder("cpu", verbose=False)


def _init_worker() -> None:
    import torch

    # one thread: on a shared 2-core machine torch's default pool makes the LSTM up to 30x slower (threads spin)
    torch.set_num_threads(1)


def _group_centroid(task: tuple[str, Sequence[Path]]) -> tuple[str, np.ndarray | None]:
    import warnings

    import torch

    from codec.audio import load_audio

    name, paths = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources deprecation noise from resemblyzer's import
        from resemblyzer import preprocess_wav

        encoder = _cached_encoder()
    embs = []
    with torch.inference_mode():
        for path in paths:
            wav = preprocess_wav(load_audio(path, 16000)[0].numpy(), source_sr=16000)
            if len(wav) >= 1600:  # under 0.1 s of speech after silence trimming carries no identity
                embs.append(encoder.embed_utterance(wav))
    if not embs:
        return name, None
    mean = np.mean(embs, axis=0)
    return name, mean / np.linalg.norm(mean)


_ENCODER = []


def _cached_encoder():  # noqa: ANN202
    if not _ENCODER:
        _ENCODER.append(_encoder())
    return _ENCODER[0]


def centroids(groups: Mapping[str, Sequence[Path]], workers: int = 1) -> dict[str, np.ndarray]:
    """Unit-norm centroid ``[256]`` of each group of 16 kHz wav files (groups without usable audio are left out).

    Args:
        groups: name -> wav files.
        workers: processes; each loads the encoder once (about 2 s, plus librosa's first import).
    """
    _encoder()  # fail early, in the parent, with the install hint
    tasks = list(groups.items())
    if workers <= 1:
        import torch

        threads = torch.get_num_threads()
        _init_worker()
        try:
            results = [_group_centroid(t) for t in tasks]
        finally:
            torch.set_num_threads(threads)
    else:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            results = pool.map(_group_centroid, tasks, chunksize=1)
    return {name: c for name, c in results if c is not None}


def cosine_matrix(cents: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """``[N, N]`` cosine similarities between the centroids of ``names``."""
    mat = np.stack([cents[n] for n in names])
    return mat @ mat.T


def select_distinct(names: Sequence[str], cents: Mapping[str, np.ndarray], threshold: float) -> Selection:
    """Greedy filter: walk ``names`` in order, keep one whose cosine to every kept identity is below ``threshold``.

    Names without a centroid are dropped (they produced no usable audio).
    """
    kept: list[str] = []
    dropped: dict[str, tuple[str, float]] = {}
    for name in names:
        if name not in cents:
            dropped[name] = ("", float("nan"))
            continue
        sims = [(float(cents[name] @ cents[k]), k) for k in kept]
        best = max(sims, default=(-1.0, ""))
        if best[0] >= threshold:
            dropped[name] = (best[1], round(best[0], 4))
        else:
            kept.append(name)
    return Selection(kept, dropped)


def prune_duplicates(
    names: Sequence[str], cents: Mapping[str, np.ndarray], threshold: float, hours: Mapping[str, float]
) -> dict[str, tuple[str, float]]:
    """After the corpus is built: the identities to drop so that every remaining pair is below ``threshold``.

    The pair with the highest similarity is resolved first, dropping the identity with fewer hours (ties: the later
    name); repeated until no pair is at or above the threshold. Returns dropped -> (its twin, cosine).
    """
    alive = [n for n in names if n in cents]
    dropped: dict[str, tuple[str, float]] = {}
    while len(alive) > 1:
        sim = cosine_matrix(cents, alive)
        np.fill_diagonal(sim, -1.0)
        i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[i, j] < threshold:
            break
        a, b = alive[i], alive[j]
        loser, twin = (a, b) if (hours.get(a, 0.0), -i) < (hours.get(b, 0.0), -j) else (b, a)
        dropped[loser] = (twin, round(float(sim[i, j]), 4))
        alive.remove(loser)
    return dropped
