"""Take a headless-Chromium screenshot of the demo (``docs/demo.png``), as a person would first see it.

    python -m demo.screenshot [--model DIR] [--out docs/demo.png]

The demo runs with the shipped default TTS model when it is installed, else with a tiny random model (the page
looks the same; only the model names differ). Chromium comes from the system (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from codec.atomic import atomic_path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1280, 1400)
TIME_BUDGET_MS = 8000  # virtual time for the page's scripts to build the UI before the picture is taken


def find_browser() -> str | None:
    """Path of a Chromium-like browser on ``PATH``, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def screenshot(url: str, out: str | Path, window: tuple[int, int] = WINDOW, timeout: float = 120.0) -> Path:
    """Render ``url`` headless and write a PNG to ``out`` (atomically).

    Raises:
        FileNotFoundError: no Chromium on ``PATH``.
        ValueError: the browser failed or wrote no picture (its last output lines are in the message).
    """
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError(
            f"no browser found (tried {', '.join(BROWSERS)}); install one: apt-get install chromium"
        )
    with atomic_path(out, suffix=".png") as tmp:  # chromium picks the image type by suffix
        tmp.unlink()  # so an existing empty file cannot pass for a picture
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--virtual-time-budget={TIME_BUDGET_MS}",
            f"--screenshot={tmp}",
            f"--window-size={window[0]},{window[1]}",
            url,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise ValueError(f"{browser} made no screenshot of {url} (exit {result.returncode}): {tail}")
    return Path(out)


def demo_model(model: str | None):
    """The TTS model to show: ``model``, else the shipped default, else a tiny random one."""
    from tts.pipeline import TTS

    if model is not None:
        return TTS.from_pretrained(model)
    try:
        return TTS.from_pretrained("default")
    except FileNotFoundError as exc:
        print(f"{exc}; using a tiny random model", file=sys.stderr)
    import torch

    from codec.config import CodecConfig
    from codec.model import Codec
    from tts.config import TTSConfig

    root = Path(__file__).resolve().parent.parent / "configs"
    torch.manual_seed(0)
    codec = Codec(CodecConfig.load(root / "codec" / "tiny.yaml")).eval()
    return TTS.from_config(TTSConfig.load(root / "tts" / "tiny.yaml"), codec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="TTS release directory (default: the shipped model, else a tiny random one)")
    parser.add_argument("--out", default="docs/demo.png", help="PNG to write (default docs/demo.png)")
    args = parser.parse_args(argv)
    from demo.app import build_app, launch

    app = build_app(demo_model(args.model), stream=False)
    url = launch(app, port=free_port())
    try:
        start = time.perf_counter()
        path = screenshot(url, args.out)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB) in {time.perf_counter() - start:.1f} s")
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
