"""Figures of the evaluation reports: spectrograms of originals against outputs, and metric histograms.

matplotlib (``[eval]`` extra) is imported inside the functions with the non-interactive Agg backend, so building a
report never needs a display and importing this module costs nothing. PNGs are written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from codec.atomic import atomic_path
from codec.evaluation.extras import require

SPEC_N_FFT = 512  # 32 ms at 16 kHz: the usual wide-band speech spectrogram
SPEC_HOP = 128
SPEC_FLOOR_DB = -100.0


@dataclass
class SpectrogramRow:
    """One utterance in a spectrogram grid: the original and the signals to compare with it."""

    title: str  # row label, usually the utterance id
    original: torch.Tensor  # [1, T] or [T]
    outputs: Mapping[str, torch.Tensor] = field(default_factory=dict)  # column label -> [1, T] / [T]


def _pyplot():
    matplotlib = require("matplotlib", "eval", "Report plots (matplotlib)")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def spectrogram_db(wav: torch.Tensor, n_fft: int = SPEC_N_FFT, hop: int = SPEC_HOP) -> np.ndarray:
    """Power spectrogram in dB, ``[n_fft // 2 + 1, frames]``, of a mono ``[1, T]`` / ``[T]`` signal."""
    x = wav.detach().float().cpu().reshape(-1)
    if x.numel() < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.numel()))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs().pow(2)
    return (10 * torch.log10(spec.clamp_min(10 ** (SPEC_FLOOR_DB / 10)))).numpy()


def _finish(plt, fig, path: str | os.PathLike) -> Path:
    """Lay out ``fig``, write it atomically as PNG and close it (also when writing fails)."""
    fig.tight_layout()
    try:
        p = Path(path)
        with atomic_path(p) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        return p
    finally:
        plt.close(fig)


def _label(ax, title: str, xlabel: str, ylabel: str) -> None:
    """Small-print title and axis labels of one image panel."""
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)


def plot_spectrograms(path: str | os.PathLike, rows: Sequence[SpectrogramRow], sample_rate: int) -> Path:
    """Write a grid of spectrograms: one row per utterance, the original first, then each output.

    Args:
        path: PNG to write.
        rows: utterances to show (keep it to a few: each row is one figure line).
        sample_rate: rate of all signals (sets the frequency and time axes).

    Raises:
        ValueError: ``rows`` is empty.
    """
    if not rows:
        raise ValueError("plot_spectrograms needs at least one row")
    plt = _pyplot()
    ncols = 1 + max(len(r.outputs) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(4 * ncols, 2.6 * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        panels = [("original", row.original), *row.outputs.items()]
        for j in range(ncols):
            ax = axes[i][j]
            if j >= len(panels):
                ax.axis("off")
                continue
            label, wav = panels[j]
            spec = spectrogram_db(wav)
            top = float(spec.max())
            duration = wav.shape[-1] / sample_rate
            ax.imshow(
                spec,
                origin="lower",
                aspect="auto",
                cmap="magma",
                vmin=top - 80,
                vmax=top,
                extent=(0.0, duration, 0.0, sample_rate / 2000),
            )
            _label(ax, f"{row.title} · {label}", "s", "kHz")
    return _finish(plt, fig, path)


def plot_histograms(
    path: str | os.PathLike, metrics: Mapping[str, Mapping[str, Sequence[float]]], bins: int = 20
) -> Path:
    """Write one histogram panel per metric, with one overlaid series per system.

    Args:
        path: PNG to write.
        metrics: metric name -> system name (e.g. ``"original"``, ``"32 cb"``) -> per-utterance values; nan values
            are dropped, and metrics without any finite value are left out.
        bins: histogram bins per panel.

    Raises:
        ValueError: no metric has a finite value.
    """
    panels = {
        name: {system: [v for v in values if math.isfinite(v)] for system, values in series.items()}
        for name, series in metrics.items()
    }
    panels = {name: {s: v for s, v in series.items() if v} for name, series in panels.items()}
    panels = {name: series for name, series in panels.items() if series}
    if not panels:
        raise ValueError("plot_histograms: no finite metric values to plot")
    plt = _pyplot()
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for k, (name, series) in enumerate(panels.items()):
        ax = axes[k // ncols][k % ncols]
        low = min(min(v) for v in series.values())
        high = max(max(v) for v in series.values())
        edges = np.linspace(low, high if high > low else low + 1e-6, bins + 1)
        for system, values in series.items():
            ax.hist(values, bins=edges, alpha=0.55, label=f"{system} (n={len(values)})")
        ax.set_title(name, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7)
    for k in range(len(panels), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    return _finish(plt, fig, path)


def plot_attention(path: str | os.PathLike, panels: Mapping[str, np.ndarray]) -> Path:
    """Write attention maps side by side, frames on x and text symbols on y (``ucodec eval tts-align``).

    Args:
        path: PNG to write.
        panels: title -> attention ``[F, L]`` (one head, one utterance).

    Raises:
        ValueError: no panel.
    """
    if not panels:
        raise ValueError("plot_attention: no attention map to plot")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (title, att) in zip(axes[0], panels.items(), strict=True):
        ax.imshow(np.asarray(att).T, aspect="auto", origin="lower", interpolation="nearest", cmap="magma")
        _label(ax, title, "frame (5 Hz)", "text symbol")
    return _finish(plt, fig, path)
