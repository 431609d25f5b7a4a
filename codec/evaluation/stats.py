"""Summary statistics for evaluation reports: mean ± 95 % confidence interval, median, count.

The interval is the Student-t interval of the mean (``t_{0.975, n-1} * s / sqrt(n)``), the usual choice for a
per-utterance metric averaged over a test set. Values that could not be computed (``nan``: PESQ on silence, a
metric that was switched off) are left out and counted, so a report can say "n = 48 of 50".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# Two-sided 95 % Student-t critical values for small degrees of freedom; larger ones use the Cornish-Fisher
# expansion below, which is within 1e-3 of the exact value from df = 30 on.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
         29: 2.045}  # fmt: skip
_Z975 = 1.959963984540054


def t_critical_95(df: int) -> float:
    """Two-sided 95 % critical value of Student's t with ``df`` degrees of freedom (``df >= 1``)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df in _T975:
        return _T975[df]
    z = _Z975
    # Cornish-Fisher expansion of the t quantile in powers of 1/df.
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


@dataclass(frozen=True)
class Summary:
    """Mean ± 95 % CI of one metric over a set of utterances."""

    mean: float  # nan when no value was finite
    ci95: float  # half-width of the 95 % interval; nan when fewer than two values
    median: float
    std: float  # sample standard deviation (ddof = 1); nan when fewer than two values
    n: int  # finite values used
    missing: int  # nan/inf values left out

    def format(self, digits: int = 3) -> str:
        """``"3.512 ± 0.041"``, ``"3.512"`` (one value) or ``"–"`` (none)."""
        if self.n == 0:
            return "–"
        if math.isnan(self.ci95):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.ci95:.{digits}f}"


def summarize(values: Iterable[float | None]) -> Summary:
    """Summarise ``values``; ``None``/nan/inf entries are counted as missing."""
    finite: list[float] = []
    missing = 0
    for v in values:
        if v is None or not math.isfinite(v):
            missing += 1
        else:
            finite.append(float(v))
    n = len(finite)
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, math.nan, 0, missing)
    mean = math.fsum(finite) / n
    ordered = sorted(finite)
    median = ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
    if n < 2:
        return Summary(mean, math.nan, median, math.nan, n, missing)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    return Summary(mean, t_critical_95(n - 1) * std / math.sqrt(n), median, std, n, missing)


def bootstrap_rate_ci(pairs: list[tuple[int, int]], resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of a corpus-level rate ``sum(errors) / sum(lengths)`` over utterances.

    Args:
        pairs: ``(errors, reference length)`` per utterance.
        resamples: bootstrap draws (utterances resampled with replacement; fixed ``seed``, so reports repeat).

    Returns:
        ``(low, high)``; ``(nan, nan)`` for fewer than two utterances.
    """
    import random

    if len(pairs) < 2:
        return math.nan, math.nan
    rng = random.Random(seed)
    rates = []
    for _ in range(resamples):
        draw = [pairs[rng.randrange(len(pairs))] for _ in pairs]
        total = sum(n for _, n in draw)
        rates.append(sum(e for e, _ in draw) / total if total else math.nan)
    rates = sorted(r for r in rates if math.isfinite(r))
    if not rates:
        return math.nan, math.nan
    return rates[int(0.025 * (len(rates) - 1))], rates[int(0.975 * (len(rates) - 1))]
