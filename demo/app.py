"""The Gradio demo: ``build_app(tts) -> gr.Blocks`` with a *Text to speech* and a *Codec* tab.

Nothing happens at import: the app is built by :func:`build_app` and served by :func:`launch` (``ucodec demo``).

Concurrency: every event that runs a model shares one queue slot (``concurrency_id="model"``, limit 1), because the
codec's streaming decoder keeps its state on the modules and the models are fast enough that a queue is fairer
than time-slicing two CPU cores. The queue holds at most ``MAX_QUEUE`` waiting users; later ones are told it is
full. Handlers are plain functions of their inputs, so no state is shared between users.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import gradio as gr

from codec.model import Codec
from demo.codec_tab import build_codec_tab
from demo.tts_tab import SAMPLES, build_tts_tab
from tts.pipeline import TTS

MAX_QUEUE = 16  # waiting users; more are refused with "queue is full" instead of growing memory
MAX_UPLOAD = "20mb"  # a minute of 16-bit 48 kHz stereo is 11 MB
MODEL_SLOT = "model"
TITLE = "U-Codec: 5 Hz speech codec and TTS"


def can_stream_audio() -> bool:
    """gradio's streaming audio player encodes chunks with ffmpeg; without it we show the finished audio."""
    return shutil.which("ffmpeg") is not None


def build_app(tts: TTS, codec: Codec | None = None, stream: bool | None = None) -> gr.Blocks:
    """The demo as a ``gr.Blocks`` (not launched).

    Args:
        tts: the text-to-speech model.
        codec: the codec of the *Codec* tab (default: the TTS model's own codec).
        stream: stream the TTS output while generating (default: when ffmpeg is installed).
    """
    codec = codec or tts.codec
    stream = can_stream_audio() if stream is None else stream
    downloads = Path(tempfile.gettempdir()) / "ucodec-demo"
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(
            f"# {TITLE}\n"
            f"TTS model `{tts.config.name}` · codec `{codec.config.name}`: {codec.num_codebooks} RVQ layers x "
            f"{codec.codebook_size} codes at {codec.frame_rate:g} frames/s ({codec.bitrate:g} bit/s)."
        )
        with gr.Tab("Text to speech"):
            build_tts_tab(tts, stream, MODEL_SLOT)
        with gr.Tab("Codec"):
            build_codec_tab(codec, downloads, MODEL_SLOT)
    app.queue(default_concurrency_limit=1, max_size=MAX_QUEUE)
    return app


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860) -> str:
    """Serve ``app`` on ``host:port`` in a background thread; returns its URL at once (``app.block_thread()``
    waits for Ctrl-C, ``app.close()`` stops it).

    Raises:
        OSError: the port is taken.
    """
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        show_error=True,
        max_file_size=MAX_UPLOAD,
        allowed_paths=[str(SAMPLES)],
        ssr_mode=False,
        footer_links=["api"],
    )
    return url
