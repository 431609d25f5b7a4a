"""``ucodec demo`` (the Gradio app) and ``ucodec serve`` (the OpenAI-compatible speech server).

The ``ucodec`` program (:mod:`ucodec.cli`) imports this module and calls :func:`register`; gradio, FastAPI and the
models are imported inside the handlers so ``ucodec --help`` stays fast. Both verbs load the model first, so a
missing or broken model is one clear error line before any port is opened.
"""

from __future__ import annotations

import argparse
import time

DEMO_COMMANDS = ("demo.cli",)  # demo, serve: what the ucodec program (ucodec.cli) takes from the demo


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` and ``serve`` to the ``ucodec`` parser."""
    p = subparsers.add_parser(
        "demo",
        help="web demo: text to speech and codec round trip in the browser (Gradio)",
        description="Serve the Gradio demo (tabs: Text to speech, Codec) until Ctrl-C.",
    )
    _model_arguments(p)
    p.add_argument("--codec", help="codec release for the Codec tab (default: the TTS model's own codec)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--no-stream", action="store_true", help="show TTS audio when finished instead of streaming it")
    p.set_defaults(func=run_demo)

    p = subparsers.add_parser(
        "serve",
        help="OpenAI-compatible speech server (POST /v1/audio/speech)",
        description="Serve POST /v1/audio/speech (OpenAI-compatible: input, voice, response_format wav|flac|pcm, "
        "speed) and GET /health until Ctrl-C. See docs/demo.md.",
    )
    _model_arguments(p)
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--voices", help="folder of voice prompts NAME.wav (+ NAME.txt transcript); 'default' = none")
    p.add_argument("--max-workers", type=int, default=1, help="syntheses at the same time, one model copy each (1)")
    p.add_argument("--max-queue", type=int, default=8, help="requests that may wait for a worker; more get 503 (8)")
    p.set_defaults(func=run_serve)


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default", help="TTS release directory or name (default: the shipped model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise ValueError(f"--port must be in 1..65535, got {port}")


def _require(module: str, verb: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ValueError(f"{verb} needs the '{module}' package: pip install 'ucodec[demo]'")


def _load(args: argparse.Namespace):
    """The TTS model named by ``--model`` (after the cheap argument checks)."""
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    import torch

    from tts.pipeline import TTS

    if args.threads:
        torch.set_num_threads(args.threads)
    return TTS.from_pretrained(args.model, device=args.device)


def run_demo(args: argparse.Namespace) -> int:
    """Handler of ``ucodec demo``."""
    _check_port(args.port)
    start = time.perf_counter()
    _require("gradio", "ucodec demo")
    tts = _load(args)
    from codec.model import Codec
    from demo.app import build_app, launch

    codec = Codec.from_pretrained(args.codec, device=args.device) if args.codec else None
    app = build_app(tts, codec=codec, stream=False if args.no_stream else None)
    try:
        url = launch(app, host=args.host, port=args.port)
    except OSError as exc:
        raise ValueError(f"cannot listen on {args.host}:{args.port} ({exc})") from None
    print(f"demo ready at {url} after {time.perf_counter() - start:.1f} s (Ctrl-C to stop)", flush=True)
    try:
        app.block_thread()
    finally:
        app.close()
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``ucodec serve``."""
    _check_port(args.port)
    if args.max_workers < 1:
        raise ValueError(f"--max-workers must be >= 1, got {args.max_workers}")
    if args.max_queue < 0:
        raise ValueError(f"--max-queue must be >= 0, got {args.max_queue}")
    _require("fastapi", "ucodec serve")
    _require("uvicorn", "ucodec serve")
    tts = _load(args)
    from demo.server import serve
    from demo.voices import VoiceStore

    voices = VoiceStore(args.voices, tts.sample_rate)
    print(f"voices: {', '.join(voices.names)}", flush=True)
    serve(tts, host=args.host, port=args.port, voices=voices, workers=args.max_workers, max_queue=args.max_queue)
    return 0
