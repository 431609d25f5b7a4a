"""Pictures for the demo's codec tab: the token grid and original-vs-reconstructed spectrograms.

Figures are drawn with matplotlib's object API on an Agg canvas (never ``pyplot``: its global figure registry is
not safe across the server's worker threads) and returned as RGB arrays, which ``gr.Image`` shows as they are.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SPEC_FFT = 512  # 32 ms windows at 16 kHz: formants and harmonics both visible
SPEC_HOP = 160  # 10 ms
FLOOR_DB = -80.0  # spectrogram colour range below the loudest bin
DPI = 100


def _to_rgb(fig: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # [H, W, 3] uint8


def token_grid(codes: torch.Tensor, codebook_size: int, frame_rate: float) -> np.ndarray:
    """codes ``[Q, F]`` → an RGB image ``[H, W, 3]``: layer on the y axis, time on the x axis, code as colour."""
    q, f = codes.shape
    fig = Figure(figsize=(10, 3.2), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    seconds = f / frame_rate
    image = ax.imshow(
        codes.cpu().numpy(),
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        cmap="viridis",
        vmin=0,
        vmax=codebook_size - 1,
        extent=(0.0, seconds, -0.5, q - 0.5),
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("RVQ layer")
    ax.set_title(f"{q} layers x {f} frames = {q * f} tokens ({frame_rate:g} frames/s)")
    fig.colorbar(image, ax=ax, label="code", pad=0.01)
    return _to_rgb(fig)


def log_spectrogram(wav: torch.Tensor) -> np.ndarray:
    """``[1, T]`` or ``[T]`` → dB magnitudes ``[SPEC_FFT // 2 + 1, frames]`` relative to 1.0."""
    x = wav.reshape(-1).float()
    if x.numel() < SPEC_FFT:
        x = torch.nn.functional.pad(x, (0, SPEC_FFT - x.numel()))
    spec = torch.stft(x, SPEC_FFT, SPEC_HOP, window=torch.hann_window(SPEC_FFT), return_complex=True).abs()
    return (20.0 * torch.log10(spec.clamp_min(1e-5))).numpy()


def spectrograms(original: torch.Tensor, reconstructed: torch.Tensor, sample_rate: int) -> np.ndarray:
    """Two stacked spectrograms on one colour scale (so loudness differences show) → RGB ``[H, W, 3]``."""
    specs = [log_spectrogram(original), log_spectrogram(reconstructed)]
    top = max(float(s.max()) for s in specs)
    fig = Figure(figsize=(10, 5.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    for ax, spec, title in zip(axes, specs, ("original", "reconstructed"), strict=True):
        seconds = spec.shape[1] * SPEC_HOP / sample_rate
        image = ax.imshow(
            spec,
            aspect="auto",
            origin="lower",
            cmap="magma",
            vmin=top + FLOOR_DB,
            vmax=top,
            extent=(0.0, seconds, 0.0, sample_rate / 2000.0),
        )
        ax.set_title(title)
        ax.set_ylabel("kHz")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(image, ax=axes, label="dB", pad=0.01)
    return _to_rgb(fig)
