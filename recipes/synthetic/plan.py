"""Who reads what: the deterministic plan of the synthetic corpus, and its speaker-disjoint splits.

The plan depends only on the seed, the requested hours, the kept identities and their speaking rates (measured on
fixed probe sentences, and the engines are deterministic), so the same seed gives the same corpus on any machine.
Sentences are drawn without replacement from the seeded shuffle of all text, so no two utterances share a text and
another seed reads other sentences. Each identity gets hours in proportion to its weight; the test-unseen speakers
(at least four, drawn with the seed) get a smaller share, since they only serve as zero-shot prompts and targets.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from codec.manifest import Utterance
from recipes.synthetic.texts import Sentence
from recipes.synthetic.voices import Identity

# Fixed probe sentences (independent of the seed and of the text packages): speaking rate and identity centroids.
PROBE_TEXTS = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background, and then hang it on the wall beside the window.",
    "It is easy to tell the depth of a well when the water is still and the light falls straight down.",
    "These days a chicken leg is a rare dish, yet the old farmer kept a dozen hens behind his barn "
    "and fed them every morning before the sun came up over the hills.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch, and a cup of it cools a hot afternoon in the garden.",
)
UNIT_SIZE = 25  # sentences per work unit: small enough for a smooth progress bar and cheap resumption
UNSEEN_WEIGHT = 0.3  # share of a test-unseen speaker relative to a seen one
HOURS_MARGIN = 1.03  # plan a little more than asked: some renders fall outside the duration window


@dataclass(frozen=True)
class Rate:
    """Linear duration model of one identity: ``seconds = offset + per_char * len(text)``."""

    offset: float  # seconds of leading/trailing silence and onset
    per_char: float  # seconds per character of text

    def seconds(self, text: str) -> float:
        """Predicted duration of ``text``."""
        return self.offset + self.per_char * len(text)


def fit_rate(lengths: Sequence[int], durations: Sequence[float]) -> Rate:
    """Least-squares fit of duration against text length (offset clamped to >= 0)."""
    x = np.asarray(lengths, dtype=float)
    y = np.asarray(durations, dtype=float)
    if len(x) >= 2 and np.ptp(x) > 0:
        slope, offset = np.polyfit(x, y, 1)
        if offset >= 0 and slope > 0:
            return Rate(float(offset), float(slope))
    return Rate(0.0, float(y.sum() / max(x.sum(), 1.0)))


@dataclass(frozen=True)
class Assignment:
    """The sentences one identity reads."""

    identity: Identity
    unseen: bool  # held out for the test-unseen split
    sentences: tuple[tuple[str, str], ...]  # (utterance id, text)

    def units(self, size: int = UNIT_SIZE) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        """(unit name, items) chunks of this assignment."""
        return [
            (f"{self.identity.name}-{k // size:04d}", self.sentences[k : k + size])
            for k in range(0, len(self.sentences), size)
        ]


def choose_unseen(names: Sequence[str], seed: int, minimum: int = 4, fraction: float = 0.12) -> list[str]:
    """The test-unseen speakers: ``max(minimum, round(fraction * N))`` names drawn with ``seed``.

    Raises:
        ValueError: fewer than ``minimum + 2`` identities (the seen splits would be too thin).
    """
    if len(names) < minimum + 2:
        raise ValueError(f"only {len(names)} distinct identities; need at least {minimum + 2} ({minimum} unseen)")
    count = max(minimum, round(fraction * len(names)))
    return sorted(random.Random(f"unseen:{seed}").sample(sorted(names), count))


def make_plan(
    identities: Sequence[Identity],
    rates: Mapping[str, Rate],
    sentences: Sequence[Sentence],
    hours: float,
    seed: int,
    unseen: Sequence[str],
    window: tuple[float, float] = (1.5, 15.0),
) -> list[Assignment]:
    """Assign sentences to identities until each has its share of ``hours`` (predicted).

    Raises:
        ValueError: the text runs out before the hours are covered.
    """
    order = list(range(len(sentences)))
    random.Random(f"text:{seed}").shuffle(order)
    used = [False] * len(sentences)
    weights = {i.name: i.weight * (UNSEEN_WEIGHT if i.name in unseen else 1.0) for i in identities}
    target = hours * 3600.0 * HOURS_MARGIN
    # keep predictions away from the window's edges so that rate noise does not push renders outside it
    lo, hi = window[0] + 0.5, window[1] - 1.5
    plan = []
    cursor = 0
    for ident in identities:
        quota = target * weights[ident.name] / sum(weights.values())
        rate, got, taken = rates[ident.name], 0.0, []
        k = cursor
        while got < quota:
            while k < len(order) and used[order[k]]:
                k += 1
            if k >= len(order):
                raise ValueError(f"ran out of text after {len(taken)} sentences for {ident.name}; ask fewer --hours")
            idx = order[k]
            k += 1
            seconds = rate.seconds(sentences[idx].text)
            if lo <= seconds <= hi:
                used[idx] = True
                taken.append((f"{ident.name}_{len(taken):05d}", sentences[idx].text))
                got += seconds
        while cursor < len(order) and used[order[cursor]]:
            cursor += 1
        plan.append(Assignment(ident, ident.name in unseen, tuple(taken)))
    return plan


@dataclass(frozen=True)
class Splits:
    """The four manifests of the corpus."""

    train: list[Utterance]
    dev: list[Utterance]
    test_seen: list[Utterance]
    test_unseen: list[Utterance]

    def items(self) -> list[tuple[str, list[Utterance]]]:
        """(file stem, utterances) pairs in a fixed order."""
        return [
            ("train", self.train),
            ("dev", self.dev),
            ("test-seen", self.test_seen),
            ("test-unseen", self.test_unseen),
        ]


def split(utterances: Sequence[Utterance], unseen: Sequence[str], seed: int, fraction: float = 0.025) -> Splits:
    """Speaker-disjoint test-unseen; per seen speaker a seeded ``fraction`` (at least 3) each for dev and test-seen."""
    unseen_set = set(unseen)
    by_speaker: dict[str, list[Utterance]] = {}
    for u in sorted(utterances, key=lambda u: u.id):
        by_speaker.setdefault(u.speaker, []).append(u)
    train, dev, test_seen, test_unseen = [], [], [], []
    for speaker in sorted(by_speaker):
        utts = by_speaker[speaker]
        if speaker in unseen_set:
            test_unseen += utts
            continue
        shuffled = list(utts)
        random.Random(f"split:{seed}:{speaker}").shuffle(shuffled)
        n = max(3, math.ceil(fraction * len(utts))) if len(utts) >= 10 else 0
        dev_ids = {u.id for u in shuffled[:n]}
        test_ids = {u.id for u in shuffled[n : 2 * n]}
        for u in utts:  # keep id order inside each split
            (dev if u.id in dev_ids else test_seen if u.id in test_ids else train).append(u)
    return Splits(train, dev, test_seen, test_unseen)
