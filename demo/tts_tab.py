"""The demo's *Text to speech* tab: text (+ an optional voice prompt) → speech, with sampling controls.

Output is streamed chunk by chunk while the model generates when gradio can stream audio (its streaming player
encodes with ffmpeg); otherwise the whole utterance is shown when it is done. The statistics line gives the audio
length, the wall time, the real-time factor and, when streaming, the time to the first audio.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from codec.audio import load_audio
from demo.speech import MAX_PROMPT_TEXT_CHARS, MAX_TEXT_CHARS, check_sampling, check_text
from tts.pipeline import TTS

MAX_PROMPT_UPLOAD_SECONDS = 60.0  # longer uploads are refused; the model uses the first 15 s of a prompt anyway
SAMPLES = Path(__file__).resolve().parent.parent / "docs" / "samples"  # present in a clone, not in a wheel
EXAMPLE_TEXTS = (
    "Hello! This is a five hertz speech codec, speaking through a small language model.",
    "The quick brown fox jumps over the lazy dog. Then it takes a well deserved nap.",
)


def first_value(value):
    """The layer-0 value of a sampling default that may be per layer."""
    return value[0] if isinstance(value, (list, tuple)) else value


def override(default, value):
    """Apply a UI value: to every layer, or to layer 0 only when the model sets per-layer values (layer 0 decides
    the content; the finer layers keep the model's cheaper setting)."""
    if isinstance(default, (list, tuple)):
        return [value, *default[1:]]
    return value


def examples() -> list[list]:
    """Example rows ``[text, prompt path, prompt transcript]`` that work offline."""
    rows: list[list] = [[EXAMPLE_TEXTS[0], None, ""]]
    wav, txt = SAMPLES / "prompt.wav", SAMPLES / "prompt.txt"
    if wav.is_file():
        transcript = txt.read_text(encoding="utf-8").strip() if txt.is_file() else ""
        rows.append([EXAMPLE_TEXTS[1], str(wav), transcript])
    return rows


def _pcm16(wav: torch.Tensor) -> np.ndarray:
    return (wav.reshape(-1).float().clamp(-1.0, 1.0).numpy() * 32767.0).round().astype(np.int16)


def _stats(seconds: float, elapsed: float, first: float | None) -> str:
    rtf = elapsed / seconds if seconds else float("nan")
    latency = f" · first audio after **{first:.2f} s**" if first is not None else ""
    return f"**{seconds:.2f} s** of audio in {elapsed:.2f} s · **RTF {rtf:.2f}**{latency}"


class Synthesizer:
    """The tab's event handler: checks the inputs and runs the model (streamed or not). Holds no per-user state."""

    def __init__(self, tts: TTS, stream: bool) -> None:
        self.tts, self.stream = tts, stream

    def options(self, text, prompt_path, prompt_text, temperature, top_k, top_p, seed) -> dict:
        """Checked keyword arguments for ``TTS.synthesize``/``stream``.

        Raises:
            ValueError: empty or too long text, unreadable/too long prompt audio, out-of-range sampling values.
        """
        text = check_text(text, MAX_TEXT_CHARS)
        top_k = int(top_k) if top_k is not None else None
        check_sampling(temperature, top_k, top_p)
        prompt = None
        if prompt_path:
            prompt = load_audio(prompt_path, self.tts.sample_rate, max_seconds=MAX_PROMPT_UPLOAD_SECONDS)
            if prompt.numel() == 0:
                raise ValueError("the voice prompt is empty")
        transcript = (prompt_text or "").strip() or None
        if transcript is not None:
            if prompt is None:
                gr.Warning("The prompt transcript is ignored: there is no voice prompt.")
                transcript = None
            else:
                transcript = check_text(transcript, MAX_PROMPT_TEXT_CHARS, "prompt transcript")
        defaults = self.tts.config.sampling
        return dict(
            text=text,
            prompt_wav=prompt,
            prompt_text=transcript,
            temperature=override(defaults.temperature, float(temperature)) if temperature is not None else None,
            top_k=override(defaults.top_k, top_k) if top_k is not None else None,
            top_p=override(defaults.top_p, float(top_p)) if top_p is not None else None,
            seed=int(seed or 0),
        )

    def run(self, *inputs) -> Iterator[tuple]:
        """Yields ``(audio, stats)`` updates: chunks as ``(rate, int16)`` while streaming, then the final stats."""
        try:  # bad inputs, and text the model rejects (nothing speakable, ...), become a message in the page
            yield from self._generate(self.options(*inputs))
        except (ValueError, FileNotFoundError) as exc:
            raise gr.Error(str(exc)) from None

    def _generate(self, options: dict) -> Iterator[tuple]:
        """Synthesize (or stream) ``options`` from :meth:`options`; yields what :meth:`run` yields."""
        rate = self.tts.sample_rate
        start = time.perf_counter()
        if not self.stream:
            wav = self.tts.synthesize(**options)
            elapsed = time.perf_counter() - start
            yield (rate, _pcm16(wav)), _stats(wav.shape[-1] / rate, elapsed, None)
            return
        samples, first = 0, None
        for chunk in self.tts.stream(**options):
            first = first if first is not None else time.perf_counter() - start
            samples += chunk.shape[-1]
            yield (rate, _pcm16(chunk)), f"generating... {samples / rate:.1f} s"
        yield gr.skip(), _stats(samples / rate, time.perf_counter() - start, first)


def build_tts_tab(tts: TTS, stream: bool, concurrency_id: str) -> None:
    """Add the tab's components and events to the enclosing ``gr.Blocks`` (call inside ``with gr.Tab(...)``).

    Args:
        tts: the model.
        stream: play audio while it is generated (needs ffmpeg for gradio's streaming player).
        concurrency_id: the queue slot shared with every other event that runs a model.
    """
    sampling = tts.config.sampling
    gr.Markdown(
        f"Type up to {MAX_TEXT_CHARS} characters (long text is spoken sentence by sentence). Optionally give a few "
        "seconds of a voice to imitate, with its transcript."
    )
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Text", lines=4, max_length=MAX_TEXT_CHARS, placeholder="Type something to say")
            with gr.Row():
                prompt = gr.Audio(label="Voice prompt (optional)", sources=["upload", "microphone"], type="filepath")
                prompt_text = gr.Textbox(
                    label="Prompt transcript (optional)", lines=3, max_length=MAX_PROMPT_TEXT_CHARS
                )
            with gr.Accordion("Sampling", open=True):
                gr.Markdown("Per-layer model settings are overridden for layer 0 only (it decides the content).")
                temperature = gr.Slider(
                    0.0, 1.5, value=first_value(sampling.temperature), step=0.05, label="temperature"
                )
                top_k = gr.Slider(0, 256, value=first_value(sampling.top_k), step=1, label="top-k (0 = off)")
                top_p = gr.Slider(0.05, 1.0, value=first_value(sampling.top_p), step=0.01, label="top-p (1 = off)")
                seed = gr.Number(value=0, precision=0, label="seed (same seed, same audio)")
            run = gr.Button("Speak", variant="primary")
        with gr.Column():
            audio = gr.Audio(
                label="Speech",
                type="numpy",
                interactive=False,
                streaming=stream,
                autoplay=stream,
                sources=["microphone"] if stream else None,  # gradio requires it of streaming outputs
            )
            stats = gr.Markdown()
    gr.Examples(examples(), inputs=[text, prompt, prompt_text], label="Examples (click one, then Speak)")
    run.click(
        Synthesizer(tts, stream).run,  # a bound generator method: gradio sees that it yields
        inputs=[text, prompt, prompt_text, temperature, top_k, top_p, seed],
        outputs=[audio, stats],
        api_name="synthesize",
        concurrency_id=concurrency_id,
    )
