"""The demo's *Codec* tab: audio → tokens → audio with 8, 16 or 32 RVQ layers, with pictures and the codes.

The codes are offered for download in the authors' flat HY layout (``codec/compat/hy_tokenizer.py``): one 1-D
frame-major tensor saved with ``torch.save``, the same as a file of ``ucodec export-hy``, so
``HY_Tokenizer.detokenize`` of a codec with the same layers reads it back.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from codec.atomic import torch_save_atomic
from codec.audio import load_audio
from codec.compat.hy_tokenizer import flatten_codes
from codec.model import Codec
from demo.plots import spectrograms, token_grid

MAX_CODEC_SECONDS = 60.0  # longer uploads are refused: encoding is linear in length, and the pictures get unreadable
LAYER_CHOICES = (8, 16, 32)
DOWNLOAD_MAX_AGE = 3600.0  # seconds a codes file stays on disk for its download link


@dataclass(frozen=True)
class RoundTrip:
    """The result of one encode/decode round trip."""

    original: torch.Tensor  # [1, T] float at the codec rate
    reconstructed: torch.Tensor  # [1, T] float (the decoder's F * hop samples cut to T)
    codes: torch.Tensor  # [Q', F] long, the layers used
    bitrate: float  # bits per second for Q' layers
    seconds: float  # wall time of encode + decode


def layer_choices(codec: Codec) -> list[int]:
    """The offered layer counts this codec supports (all of its layers when it has fewer than 8)."""
    choices = [q for q in LAYER_CHOICES if q <= codec.num_codebooks]
    return choices or [codec.num_codebooks]


@torch.inference_mode()
def round_trip(codec: Codec, audio_path: str | None, layers: int) -> RoundTrip:
    """Encode ``audio_path`` with the first ``layers`` RVQ layers and decode it again.

    Raises:
        ValueError: no audio, unreadable or empty audio, longer than ``MAX_CODEC_SECONDS``, or a layer count the
            codec does not have.
    """
    if not audio_path:
        raise ValueError("upload or record some audio first")
    layers = int(layers)
    if not 1 <= layers <= codec.num_codebooks:
        raise ValueError(f"layers must be in 1..{codec.num_codebooks}, got {layers}")
    wav = load_audio(audio_path, codec.sample_rate, max_seconds=MAX_CODEC_SECONDS)
    if not torch.isfinite(wav).all():
        raise ValueError("the audio contains NaN or Inf samples")
    start = time.perf_counter()
    full = codec.encode(wav[None].to(codec.device))  # [1, Q, F]; a voice-conditioned codec takes the voice from it
    codes = full[0, :layers].cpu()  # [Q', F]
    out = codec.decode(codes[None].to(codec.device), reference=full)[0].float().cpu()[..., : wav.shape[-1]]  # [1, T]
    bitrate = layers * math.log2(codec.codebook_size) * codec.frame_rate
    return RoundTrip(wav, out, codes, bitrate, time.perf_counter() - start)


def save_codes(codes: torch.Tensor, codebook_size: int, root: Path) -> Path:
    """Write ``codes [Q, F]`` in the flat HY layout to a fresh folder under ``root``; prune folders older than
    ``DOWNLOAD_MAX_AGE`` (downloads are one-off: gradio copies the file to its own cache when it is returned)."""
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        if old.is_dir() and now - old.stat().st_mtime > DOWNLOAD_MAX_AGE:
            shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(dir=root))
    q, f = codes.shape
    path = folder / f"codes_hy_{q}x{codebook_size}_{f}frames.pt"
    torch_save_atomic(flatten_codes(codes, codebook_size), path)
    return path


def _pcm16(wav: torch.Tensor) -> np.ndarray:
    """``[1, T]`` float → int16 samples (gradio would peak-normalise floats, hiding level differences)."""
    return (wav.reshape(-1).clamp(-1.0, 1.0).numpy() * 32767.0).round().astype(np.int16)


def summary(result: RoundTrip, codec: Codec) -> str:
    """Markdown facts about a round trip."""
    q, f = result.codes.shape
    seconds = result.original.shape[-1] / codec.sample_rate
    rtf = result.seconds / seconds if seconds else float("nan")
    return (
        f"**{q * f} tokens** ({q} layers x {f} frames) for {seconds:.2f} s of audio · "
        f"**{result.bitrate:g} bit/s** ({q} x log2({codec.codebook_size}) x {codec.frame_rate:g} Hz) · "
        f"encode + decode {result.seconds * 1e3:.0f} ms (RTF {rtf:.3f})"
    )


def build_codec_tab(codec: Codec, downloads: Path, concurrency_id: str) -> None:
    """Add the tab's components and events to the enclosing ``gr.Blocks`` (call inside ``with gr.Tab(...)``).

    Args:
        codec: the codec to demonstrate.
        downloads: folder for the codes files.
        concurrency_id: the queue slot shared with every other event that runs a model.
    """
    choices = layer_choices(codec)
    gr.Markdown(
        f"Encode speech into {codec.frame_rate:g} Hz tokens and decode it back with `{codec.config.name}`. "
        f"Fewer RVQ layers = fewer bits. Audio up to {MAX_CODEC_SECONDS:g} s, any sample rate."
    )
    with gr.Row():
        with gr.Column():
            audio_in = gr.Audio(label="Input audio", sources=["upload", "microphone"], type="filepath")
            layers = gr.Radio(
                [str(q) for q in choices], value=str(choices[-1]), label="RVQ layers (bitrate)", type="value"
            )
            run = gr.Button("Encode and decode", variant="primary")
        with gr.Column():
            audio_out = gr.Audio(label="Reconstructed", type="numpy", interactive=False)
            stats = gr.Markdown()
            codes_file = gr.File(label="Codes (flat HY layout, torch.save)", interactive=False)
    grid = gr.Image(label="Token grid", type="numpy", format="png", interactive=False)
    spec = gr.Image(label="Spectrograms: original vs reconstructed", type="numpy", format="png", interactive=False)

    def on_run(path: str | None, q: str):
        try:
            result = round_trip(codec, path, int(q))
        except (ValueError, FileNotFoundError) as exc:
            raise gr.Error(str(exc)) from None
        return (
            (codec.sample_rate, _pcm16(result.reconstructed)),
            summary(result, codec),
            str(save_codes(result.codes, codec.codebook_size, downloads)),
            token_grid(result.codes, codec.codebook_size, codec.frame_rate),
            spectrograms(result.original, result.reconstructed, codec.sample_rate),
        )

    run.click(
        on_run,
        inputs=[audio_in, layers],
        outputs=[audio_out, stats, codes_file, grid, spec],
        api_name="codec_round_trip",
        concurrency_id=concurrency_id,
    )
